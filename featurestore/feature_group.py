"""Feature groups: a named, versioned set of features with a primary key and an event time,
stored as a Hudi table (cached) or read from a JDBC source (external)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore import hudi, provenance
from featurestore.errors import FeatureStoreError
from featurestore.hudi.timeline import instant_to_datetime, normalize_instant

if TYPE_CHECKING:
    from featurestore.feature_store import FeatureStore

log = logging.getLogger(__name__)

EVENT_TIME_TYPES = (T.TimestampType, T.DateType, T.LongType, T.IntegerType)


class FeatureGroupError(FeatureStoreError, ValueError):
    """Bad input for a feature group: names the column, key or option at fault."""


@dataclass(frozen=True)
class Feature:
    """One feature (column) of a feature group."""

    name: str
    type: str
    description: str = ""
    primary: bool = False
    partition: bool = False

    @property
    def data_type(self) -> T.DataType:
        """The Spark type."""
        return T._parse_datatype_json_string(self.type)

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored in the registry."""
        return {"name": self.name, "type": self.type, "description": self.description,
                "primary": self.primary, "partition": self.partition}


@dataclass(frozen=True)
class WriteResult:
    """What ``insert`` did: the commit id, row counts, where it was written and the validation report."""

    commit_id: str | None
    operation: str
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    storage: str = "offline"
    validation: Any = None  # the ValidationReport of the batch, if the feature group has a suite
    details: dict[str, Any] = field(default_factory=dict)


def features_from_schema(schema: T.StructType, primary_key: list[str], partition_key: list[str],
                         descriptions: dict[str, str] | None = None) -> list[Feature]:
    """Features for every column of ``schema``."""
    descriptions = descriptions or {}
    return [Feature(f.name, f.dataType.json(), descriptions.get(f.name, ""), f.name in primary_key,
                    f.name in partition_key) for f in schema.fields]


class FeatureGroup:
    """A cached feature group version, backed by a Hudi copy-on-write table."""

    def __init__(self, fs: FeatureStore, record: dict[str, Any]) -> None:
        self._fs = fs
        self._record = record

    # -- properties --------------------------------------------------------------------------
    @property
    def id(self) -> int:
        """Registry id."""
        return self._record["id"]

    @property
    def name(self) -> str:
        """Feature group name."""
        return self._record["name"]

    @property
    def version(self) -> int:
        """Version number."""
        return self._record["version"]

    @property
    def description(self) -> str:
        """Free-text description."""
        return self._record["description"]

    @property
    def primary_key(self) -> list[str]:
        """Primary-key columns."""
        return list(self._record["primary_key"])

    @property
    def event_time(self) -> str | None:
        """Event-time column (timestamp, date or long), if any."""
        return self._record["event_time"]

    @property
    def partition_key(self) -> list[str]:
        """Partition columns."""
        return list(self._record["partition_key"])

    @property
    def precombine_key(self) -> str | None:
        """Ordering column of upserts: the precombine key, else the event time, else none (commit order)."""
        return self._record["precombine_key"] or self._record["event_time"]

    @property
    def online_enabled(self) -> bool:
        """Whether the feature group is served online."""
        return bool(self._record["online_enabled"])

    @property
    def location(self) -> str:
        """Folder of the Hudi table."""
        return self._record["location"]

    @property
    def features(self) -> list[Feature]:
        """The features, in column order."""
        return [Feature(**f) for f in self._record["features"]]

    @property
    def schema(self) -> T.StructType:
        """Spark schema of the features (empty until the first insert if none were declared)."""
        return T.StructType([T.StructField(f.name, f.data_type, True) for f in self.features])

    @property
    def table_name(self) -> str:
        """Name of the Hudi table (and of the SQL view in ``fs.sql``): ``<name>_<version>``."""
        return f"{self.name}_{self.version}"

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r}, version={self.version}, primary_key={self.primary_key})"

    # -- writes ------------------------------------------------------------------------------
    def _hudi_options(self, operation: str, write_options: dict[str, Any] | None,
                      prov: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = {
            "hoodie.table.name": self.table_name,
            "hoodie.datasource.write.recordkey.field": ",".join(self.primary_key),
            "hoodie.datasource.write.partitionpath.field": ",".join(self.partition_key),
            "hoodie.datasource.write.operation": operation,
            "hoodie.datasource.write.hive_style_partitioning": "true",
            "hoodie.cleaner.commits.retained": str(self._fs.config.get("hudi.cleaner_commits_retained")),
            "featurestore.lock.timeout.seconds": str(self._fs.config.get("hudi.lock_timeout_seconds")),
            "featurestore.commit.metadata.user": getpass.getuser(),
        }
        if self.precombine_key:
            opts["hoodie.datasource.write.precombine.field"] = self.precombine_key
        if prov is not None:
            opts.update(provenance.commit_metadata(prov))
        opts.update(write_options or {})
        return opts

    def _record_provenance(self, prov: dict[str, Any], commit_id: str) -> None:
        """Store what produced a commit (script/notebook content once per hash)."""
        try:
            provenance.record(self._fs.registry, prov, "commit", self.id, commit_id)
        except Exception as exc:  # noqa: BLE001 - the commit stands; provenance is best effort after it
            log.warning("provenance of commit %s was not stored: %s", commit_id, exc)

    def get_provenance(self, commit_id: str | None = None) -> dict[str, Any] | None:
        """What produced a commit (default: the newest): kind (script | notebook | interactive), path,
        sha256, git commit, user, host, packages, and ``content`` (the script or .ipynb), or None."""
        return provenance.load(self._fs.registry, "commit", self.id,
                               normalize_instant(commit_id) if commit_id else None)

    def _check_input(self, df: DataFrame) -> T.StructType | None:
        """Validate ``df`` against the feature group; returns the evolved schema if it changes."""
        cols = set(df.columns)
        for role, names in (("primary key", self.primary_key), ("partition key", self.partition_key),
                            ("event time", [self.event_time] if self.event_time else [])):
            missing = [c for c in names if c not in cols]
            if missing:
                raise FeatureGroupError(f"{role} column(s) {', '.join(repr(c) for c in missing)} missing from the "
                                        f"data of feature group '{self.name}' v{self.version} (columns: "
                                        f"{', '.join(df.columns)})")
        if self.event_time and not isinstance(df.schema[self.event_time].dataType, EVENT_TIME_TYPES):
            raise FeatureGroupError(f"event time column '{self.event_time}' must be a timestamp, date or long, got "
                                    f"{df.schema[self.event_time].dataType.simpleString()}")
        registered = {f.name: f for f in self.features}
        if not registered:
            return df.schema
        incoming = {f.name: f for f in df.schema.fields}
        missing = [n for n in registered if n not in incoming]
        changed = [f"'{n}' ({registered[n].data_type.simpleString()} -> {incoming[n].dataType.simpleString()})"
                   for n in registered if n in incoming
                   and incoming[n].dataType.simpleString() != registered[n].data_type.simpleString()]
        if missing or changed:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(repr(n) for n in missing))
            if changed:
                parts.append("changed type " + ", ".join(changed))
            raise FeatureGroupError(f"the data does not match feature group '{self.name}' v{self.version}: "
                                    + "; ".join(parts) + " (versions are immutable in keys and types; "
                                    "new nullable columns are allowed)")
        added = [f for f in df.schema.fields if f.name not in registered]
        if added:
            return T.StructType([T.StructField(n, registered[n].data_type, True) for n in registered] + added)
        return None

    def insert(self, df: DataFrame, operation: str = "upsert", write_options: dict[str, Any] | None = None,
               storage: str | None = None, validation_options: dict[str, Any] | None = None) -> WriteResult:
        """Write ``df`` as one commit (``upsert`` by default; also ``insert``, ``bulk_insert``,
        ``insert_overwrite``). The first insert creates the Hudi table.

        The batch is validated against the feature group's expectation suite before anything is
        written. ``storage``: None writes offline and, for online-enabled feature groups, through to
        the online store after the offline commit; ``"offline"`` or ``"online"`` writes only there.
        """
        if operation not in ("upsert", "insert", "bulk_insert", "insert_overwrite", "insert_overwrite_table"):
            raise FeatureGroupError(f"unknown operation {operation!r} for insert; use upsert, insert, "
                                    "bulk_insert, insert_overwrite or insert_overwrite_table")
        if storage not in (None, "offline", "online"):
            raise FeatureGroupError(f"unknown storage {storage!r}; use None (both), 'offline' or 'online'")
        if storage == "online" and not self.online_enabled:
            raise FeatureGroupError(f"feature group '{self.name}' v{self.version} is not online-enabled; "
                                    "storage='online' needs online_enabled=True")
        evolved = self._check_input(df)
        registered = self.schema.fieldNames()
        order = registered + [c for c in df.columns if c not in registered]
        df = df.select(*[F.col(f"`{c}`") for c in order])
        validation = self._validate_before_write(df, validation_options)
        if storage == "online":
            online = self._write_online(df, None)
            return WriteResult(None, operation, storage="online", validation=validation,
                               details={"online": online})
        prov = provenance.capture()
        result = hudi.write(df, self.location, self._hudi_options(operation, write_options, prov))
        if evolved is not None:
            descriptions = dict(self._record["options"].get("feature_descriptions") or {})
            descriptions.update({f.name: f.description for f in self.features if f.description})
            features = features_from_schema(evolved, self.primary_key, self.partition_key, descriptions)
            self._record = self._fs.registry.update_feature_group(
                self.id, getpass.getuser(), features=[f.to_dict() for f in features])
        self._sync_commits()
        self._record_provenance(prov, result.instant_time)
        self._after_commit(df, result.instant_time, validation)
        details: dict[str, Any] = {"files": result.files_written, "partitions": list(result.partitions)}
        written = "offline"
        if storage is None and self.online_enabled:
            details["online"] = self._write_online(df, result.instant_time)
            written = "offline+online"
        return WriteResult(result.instant_time, operation, result.rows_inserted, result.rows_updated,
                           result.rows_deleted, storage=written, validation=validation, details=details)

    def insert_stream(self, df: DataFrame, checkpoint_location: str, trigger: dict[str, Any] | None = None,
                      query_name: str | None = None, operation: str = "upsert",
                      write_options: dict[str, Any] | None = None) -> Any:
        """Write a streaming DataFrame: each micro-batch is validated and upserted as one commit, exactly
        once across restarts from ``checkpoint_location``. ``trigger``: ``{"processingTime": "10
        seconds"}``, ``{"availableNow": True}`` or ``{"once": True}``. Returns the ``StreamingQuery``."""
        from featurestore.streaming import insert_stream

        return insert_stream(self, df, checkpoint_location, trigger, query_name, operation, write_options)

    # -- quality hooks (featurestore.quality) ------------------------------------------------
    def _validate_before_write(self, df: DataFrame, validation_options: dict[str, Any] | None) -> Any:
        """Validate the batch against the expectation suite; raises ValidationError if STRICT fails."""
        from featurestore.quality import gate

        return gate.validate_before_write(self, df, validation_options)

    def _after_commit(self, df: DataFrame, commit_id: str, validation: Any) -> None:
        """Record the validation report and statistics of a commit."""
        from featurestore.quality import gate

        gate.after_commit(self, df, commit_id, validation)

    # -- online hooks (featurestore.online) --------------------------------------------------
    def _write_online(self, df: DataFrame, commit_id: str | None) -> dict[str, Any] | None:
        """Upsert the batch into the online store (write-through); returns what was written.

        After an offline commit the rows of that commit are read back from Hudi, so the online
        rows are exactly the offline ones (including keys a replace removed); without a commit
        (``storage="online"``) the batch's latest row per key is written.
        """
        from featurestore.online import sync as M

        if commit_id is None:
            return M.write_batch(self, df)
        begin = max([c["instant"] for c in M._commits(self) if c["instant"] < commit_id], default=M.FIRST_INSTANT)
        try:
            return M.sync_range(self, begin, commit_id)
        except M.OnlineStoreError as exc:
            raise M.OnlineStoreError(f"offline commit {commit_id} of '{self.name}' v{self.version} succeeded but the "
                                     f"online write failed ({exc}); fs.materialize(fg) catches up") from None

    def _delete_online(self, keys_df: DataFrame, commit_id: str) -> dict[str, Any] | None:
        """Delete the given keys from the online store after an offline delete commit."""
        from featurestore.online import sync as M

        # only keys really gone offline (a key given with the wrong partition value stays)
        gone = keys_df.select(*self.primary_key).join(self.read(as_of=commit_id).select(*self.primary_key),
                                                      self.primary_key, "left_anti")
        return {"deleted": M.delete_keys(self, gone)}

    def delete_records(self, keys_df: DataFrame) -> WriteResult:
        """Delete the rows whose primary key (and partition key) appear in ``keys_df``."""
        needed = self.primary_key + self.partition_key
        missing = [c for c in needed if c not in keys_df.columns]
        if missing:
            raise FeatureGroupError(f"delete_records needs column(s) {', '.join(repr(c) for c in missing)}")
        if not hudi_table_exists(self.location):
            return WriteResult(None, "delete")
        prov = provenance.capture()
        result = hudi.write(keys_df.select(*needed), self.location, self._hudi_options("delete", None, prov))
        self._sync_commits()
        self._record_provenance(prov, result.instant_time)
        details: dict[str, Any] = {}
        if self.online_enabled:
            details["online"] = self._delete_online(keys_df.select(*needed), result.instant_time)
        return WriteResult(result.instant_time, "delete", rows_deleted=result.rows_deleted, details=details)

    # -- reads -------------------------------------------------------------------------------
    def _empty(self) -> DataFrame:
        return self._fs.spark.createDataFrame(self._fs.spark.sparkContext.emptyRDD(), self.schema)

    def read(self, as_of: str | dt.datetime | None = None, include_meta: bool = False,
             online: bool = False) -> DataFrame:
        """The snapshot as a Spark DataFrame, or the state as of a commit id or a time.

        ``online=True`` reads the online table instead (Spark JDBC; on SQLite through the driver).
        """
        if online:
            return self._read_online(as_of, include_meta)
        if not hudi_table_exists(self.location):
            return self._empty()
        options = {"as.of.instant": normalize_instant(as_of)} if as_of is not None else {}
        df = hudi.read(self._fs.spark, self.location, options)
        return df if include_meta else _drop_meta(df)

    def read_changes(self, start_commit: str, end_commit: str | None = None,
                     include_meta: bool = False) -> DataFrame:
        """Rows written by the commits after ``start_commit`` up to ``end_commit`` (inclusive)."""
        if not hudi_table_exists(self.location):
            return self._empty()
        options = {"hoodie.datasource.query.type": "incremental",
                   "hoodie.datasource.read.begin.instanttime": normalize_instant(start_commit)}
        if end_commit is not None:
            options["hoodie.datasource.read.end.instanttime"] = normalize_instant(end_commit)
        df = hudi.read(self._fs.spark, self.location, options)
        return df if include_meta else _drop_meta(df)

    def show(self, n: int = 20) -> None:
        """Print the first ``n`` rows."""
        self.read().show(n, truncate=False)

    def _sync_commits(self) -> None:
        """Record commits that reached the Hudi timeline but not the registry (e.g. after a crash)."""
        if not hudi_table_exists(self.location):
            return
        known = {c["commit_id"] for c in self._fs.registry.list_commits(self.id)}
        for entry in hudi.timeline(self.location):
            if entry["action"] not in ("commit", "replacecommit") or entry["instant"] in known:
                continue
            self._fs.registry.add_commit(self.id, {
                "commit_id": entry["instant"],
                "committed_at": instant_to_datetime(entry["instant"]).replace(tzinfo=None),
                "operation": entry["operation"] or "unknown",
                "rows_inserted": entry["rows_inserted"], "rows_updated": entry["rows_updated"],
                "rows_deleted": entry["rows_deleted"],
                "details": {"files": entry["files"], **entry.get("extra_metadata", {})},
            })

    def commit_details(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """``{commit_id: {"committedOn", "rowsInserted", "rowsUpdated", "rowsDeleted", ...}}``, newest first."""
        self._sync_commits()
        out: dict[str, dict[str, Any]] = {}
        for c in self._fs.registry.list_commits(self.id, limit):
            out[c["commit_id"]] = {
                "committedOn": c["committed_at"].strftime("%Y%m%d%H%M%S"),
                "committedAt": c["committed_at"].isoformat() + "Z",
                "operation": c["operation"], "rowsInserted": c["rows_inserted"],
                "rowsUpdated": c["rows_updated"], "rowsDeleted": c["rows_deleted"],
            }
        return out

    # -- metadata ----------------------------------------------------------------------------
    def add_tag(self, name: str, value: Any) -> None:
        """Attach a tag with a JSON value."""
        json.dumps(value)  # raises on values that are not JSON
        self._fs.registry.set_tag("feature_group", self.id, name, value)

    def get_tag(self, name: str) -> Any:
        """A tag's value; KeyError naming the tag if absent."""
        tags = self.get_tags()
        if name not in tags:
            raise KeyError(f"feature group '{self.name}' v{self.version} has no tag '{name}'")
        return tags[name]

    def get_tags(self) -> dict[str, Any]:
        """All tags."""
        return self._fs.registry.get_tags("feature_group", self.id)

    def delete_tag(self, name: str) -> None:
        """Remove a tag."""
        if not self._fs.registry.delete_tag("feature_group", self.id, name):
            raise KeyError(f"feature group '{self.name}' v{self.version} has no tag '{name}'")

    def update_description(self, description: str) -> FeatureGroup:
        """Change the description."""
        self._record = self._fs.registry.update_feature_group(self.id, getpass.getuser(), description=description)
        return self

    def update_feature_description(self, feature: str, description: str) -> FeatureGroup:
        """Change one feature's description."""
        features = [f.to_dict() for f in self.features]
        if feature not in {f["name"] for f in features}:
            raise FeatureGroupError(f"feature group '{self.name}' has no feature '{feature}'")
        for f in features:
            if f["name"] == feature:
                f["description"] = description
        self._record = self._fs.registry.update_feature_group(self.id, getpass.getuser(), features=features)
        return self

    def get_feature(self, name: str) -> Feature:
        """One feature by name."""
        for f in self.features:
            if f.name == name:
                return f
        raise FeatureGroupError(f"feature group '{self.name}' has no feature '{name}'")

    # -- quality: suites, validation, statistics (featurestore.quality) ---------------------
    @property
    def statistics_config(self) -> dict[str, Any]:
        """Effective statistics config: enabled, histograms, correlations, exact_uniqueness, columns."""
        from featurestore.quality.statistics import statistics_config

        return statistics_config(self._record["options"].get("statistics_config"))

    def save_expectation_suite(self, suite: Any, validation_policy: str = "STRICT") -> FeatureGroup:
        """Attach an expectation suite (an ExpectationSuite, Check(s), or a YAML/JSON path) that every
        insert is validated against; ``validation_policy`` STRICT rejects failing batches, ALWAYS
        writes them and records the report."""
        from featurestore.quality import gate
        from featurestore.quality.suite import as_suite

        made = as_suite(suite)
        if made is None:
            raise FeatureGroupError("save_expectation_suite needs a suite (use delete_expectation_suite to remove)")
        data = made.to_data()  # raises on callables, which cannot be stored
        self._fs.registry.set_expectation_suite(self.id, data, gate.check_policy(validation_policy),
                                                getpass.getuser())
        return self

    def get_expectation_suite(self) -> Any:
        """The attached ExpectationSuite, or None."""
        from featurestore.quality import gate

        return gate.load_feature_group_suite(self)[0]

    @property
    def validation_policy(self) -> str | None:
        """STRICT or ALWAYS (None without a suite)."""
        record = self._fs.registry.get_expectation_suite(self.id)
        return record["policy"] if record else None

    def delete_expectation_suite(self) -> bool:
        """Detach the suite; True if there was one."""
        return self._fs.registry.delete_expectation_suite(self.id)

    def validate(self, df: DataFrame, suite: Any = None, save_report: bool = False, engine: str = "native") -> Any:
        """Dry run: the ValidationReport of ``df`` against the feature group's suite (or ``suite``);
        nothing is written (the report is stored as ``dry_run`` if ``save_report``)."""
        from featurestore.quality import gate
        from featurestore.quality.suite import as_suite, verify

        made = as_suite(suite) if suite is not None else self.get_expectation_suite()
        if made is None:
            raise FeatureGroupError(f"feature group '{self.name}' v{self.version} has no expectation suite; "
                                    "pass suite= or call save_expectation_suite first")
        report = verify(df, made, gate.history_lookup(self), engine=engine)
        report.outcome = "dry_run"
        if save_report:
            report.id = self._fs.registry.add_validation_report(self.id, report.to_dict(), "dry_run", None, None, {})
        return report

    def get_validation_history(self, limit: int | None = None) -> list[Any]:
        """Stored validation reports, newest first, each with ``commit_id`` and ``outcome``
        (accepted, rejected or dry_run)."""
        from featurestore.quality.suite import ValidationReport

        return [ValidationReport.from_dict(r["report"], id=r["id"], commit_id=r["commit_id"], outcome=r["outcome"],
                                           policy=r["policy"])
                for r in self._fs.registry.list_validation_reports(self.id, limit)]

    def get_metric_history(self, analyzer: str) -> list[tuple[str | None, float]]:
        """``(commit_id, value)`` of a metric (e.g. ``"Mean(amount)"``) over accepted inserts, oldest first."""
        return self._fs.registry.metric_history(self.id, analyzer)

    def get_statistics(self, commit_id: str | None = None) -> dict[str, Any] | None:
        """Statistics of a commit's data (default: the newest stored), or None."""
        rows = self._fs.registry.list_statistics(self.id, commit_id=normalize_instant(commit_id)
                                                 if commit_id else None)
        if not rows:
            return None
        return {"commit_id": rows[0]["commit_id"], "kind": rows[0]["kind"],
                "computed_at": rows[0]["computed_at"].isoformat() + "Z", **rows[0]["stats"]}

    def get_all_statistics(self) -> list[dict[str, Any]]:
        """Every stored statistics record, oldest first (the report plots them across commits)."""
        return [{"commit_id": r["commit_id"], "kind": r["kind"], "computed_at": r["computed_at"].isoformat() + "Z",
                 **r["stats"]} for r in reversed(self._fs.registry.list_statistics(self.id))]

    def compute_statistics(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Statistics over the whole current snapshot, stored with ``kind="table"`` and the latest commit id."""
        from featurestore.quality.statistics import compute_statistics

        cfg = {**self._record["options"].get("statistics_config", {}), **(config or {}), "enabled": True}
        stats = compute_statistics(self.read(), cfg)
        latest = next(iter(self.commit_details(limit=1)), None)
        self._fs.registry.add_statistics(self.id, latest, "table", stats)
        return {"commit_id": latest, "kind": "table", **stats}

    def statistics_report(self, path: str | None = None) -> str:
        """Write the static HTML statistics report (plots embedded; viewable offline); returns its path."""
        from featurestore.quality.report import write_report

        return write_report(self, path)

    # -- online store (featurestore.online) --------------------------------------------------
    def _read_online(self, as_of: Any, include_meta: bool) -> DataFrame:
        if as_of is not None or include_meta:
            raise FeatureGroupError("read(online=True) reads the latest online rows: as_of and include_meta "
                                    "are not supported")
        if not self.online_enabled:
            raise FeatureGroupError(f"feature group '{self.name}' v{self.version} is not online-enabled")
        from featurestore.online import read_online

        return read_online(self)

    def materialize(self, mode: str = "incremental") -> dict[str, Any]:
        """Sync this feature group's online table (same as ``fs.materialize(fg, mode)``)."""
        return self._fs.materialize(self, mode)

    @property
    def online_ttl(self) -> int | None:
        """Online TTL in seconds: older rows (by event time) are not served and are purged."""
        return (self._record.get("options") or {}).get("online_ttl_seconds")


    # -- queries (featurestore.query) --------------------------------------------------------
    def select_all(self) -> Any:
        """A :class:`~featurestore.query.Query` of every feature (keys and event time included)."""
        from featurestore.query import Query

        return Query(self, [f.name for f in self.features])

    def select(self, features: list[str]) -> Any:
        """A :class:`~featurestore.query.Query` of the named features, in that order."""
        from featurestore.query import Query, QueryError

        if isinstance(features, str) or not features:
            raise QueryError(f"select on '{self.name}' needs a non-empty list of feature names")
        return Query(self, list(features))

    def select_except(self, features: list[str]) -> Any:
        """A query of every feature except those named."""
        from featurestore.query import QueryError

        unknown = [f for f in features if f not in [x.name for x in self.features]]
        if unknown:
            raise QueryError(f"feature group '{self.name}' has no feature(s) {', '.join(map(repr, unknown))}")
        return self.select([f.name for f in self.features if f.name not in features])

    def filter(self, condition: Any) -> Any:
        """``select_all().filter(condition)``: rows matching a Column or SQL condition."""
        return self.select_all().filter(condition)

    def as_of(self, commit_or_time: Any) -> Any:
        """``select_all().as_of(commit_or_time)``: the feature group as of a commit id or time."""
        return self.select_all().as_of(commit_or_time)


    def delete(self) -> None:
        """Delete the Hudi table, the online table and every registry record of this version."""
        if self.online_enabled:
            self._fs.online_store.drop_table(self)
        shutil.rmtree(self.location, ignore_errors=True)
        self._fs.registry.delete_feature_group(self.id)


class ExternalFeatureGroup(FeatureGroup):
    """A feature group whose data stays in a JDBC source, read through Spark JDBC."""

    def read(self, as_of: str | dt.datetime | None = None, include_meta: bool = False) -> DataFrame:
        """The query's current result (external data has no commit history)."""
        if as_of is not None:
            raise FeatureGroupError(f"external feature group '{self.name}' has no commit history; as_of is not "
                                    "supported")
        return self._fs.read_jdbc(self._record["connector_id"], self._record["options"]["query"])

    def insert(self, df: DataFrame, operation: str = "upsert", write_options: dict | None = None) -> WriteResult:
        """External feature groups are read-only."""
        raise FeatureGroupError(f"external feature group '{self.name}' is read-only: its data stays in the source")

    def commit_details(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """External feature groups have no commits."""
        return {}


def hudi_table_exists(location: str) -> bool:
    """Whether the feature group's Hudi table has been created."""
    from featurestore.hudi.table import table_exists

    return table_exists(location)


def _drop_meta(df: DataFrame) -> DataFrame:
    return df.drop(*[c for c in df.columns if c.startswith("_hoodie_")])
