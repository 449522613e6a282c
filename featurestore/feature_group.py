"""Feature groups, the hsfs-shaped user objects: a named, versioned set of features with a primary key
and an event time, stored in the offline store (cached) or read from a JDBC source (external).

The facades hold a :class:`~featurestore.model.FeatureGroupRecord` and delegate: writes to
:mod:`featurestore.ingestion`, reads to the offline interface, quality to :mod:`featurestore.quality`,
serving to :mod:`featurestore.online`, queries to :mod:`featurestore.query`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
from typing import TYPE_CHECKING, Any, NoReturn

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from featurestore import ingestion, offline, provenance, sources, streaming
from featurestore.errors import FeatureGroupError
from featurestore.model.records import Feature, FeatureGroupRecord, WriteResult, features_from_schema
from featurestore.online import sync as online_sync
from featurestore.quality import gate
from featurestore.quality import history as quality_history
from featurestore.quality.report import write_report
from featurestore.quality.statistics import statistics_config
from featurestore.quality.suite import ExpectationSuite, ValidationReport, as_suite, verify
from featurestore.query import FeatureColumn, Query, QueryError, timetravel

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

    from featurestore.model.protocols import StoreContext

__all__ = ["ExternalFeatureGroup", "Feature", "FeatureGroup", "FeatureGroupError", "WriteResult",
           "features_from_schema"]

log = logging.getLogger(__name__)

# write options that only mean something on Hopsworks (its jobs): accepted from hsfs code, ignored here
HOPSWORKS_ONLY_WRITE_OPTIONS = ("wait_for_job", "start_offline_materialization")


class _FeatureGroupBase:
    """What every feature group has: its record, metadata, tags and queries."""

    def __init__(self, fs: StoreContext, record: FeatureGroupRecord | dict[str, Any]) -> None:
        self._fs = fs
        self._record = record if isinstance(record, FeatureGroupRecord) else FeatureGroupRecord.from_row(record)

    # -- properties --------------------------------------------------------------------------
    @property
    def record(self) -> FeatureGroupRecord:
        """The registry record of this version (immutable; replaced when the feature group changes)."""
        return self._record

    @property
    def id(self) -> int:
        """Registry id."""
        return self._record.id

    @property
    def name(self) -> str:
        """Feature group name."""
        return self._record.name

    @property
    def version(self) -> int:
        """Version number."""
        return self._record.version

    @property
    def description(self) -> str:
        """Free-text description."""
        return self._record.description

    @property
    def primary_key(self) -> list[str]:
        """Primary-key columns."""
        return list(self._record.primary_key)

    @property
    def event_time(self) -> str | None:
        """Event-time column (timestamp, date or long), if any."""
        return self._record.event_time

    @property
    def partition_key(self) -> list[str]:
        """Partition columns."""
        return list(self._record.partition_key)

    @property
    def precombine_key(self) -> str | None:
        """Ordering column of upserts: the precombine key, else the event time, else none (commit order)."""
        return self._record.ordering_key

    @property
    def online_enabled(self) -> bool:
        """Whether the feature group is served online."""
        return self._record.online_enabled

    @property
    def location(self) -> str | None:
        """Folder of the offline table (None for an external feature group)."""
        return self._record.location

    @property
    def time_travel_format(self) -> str:
        """The offline table format (hsfs's name): ``HUDI`` or ``DELTA``."""
        return self._record.table_format

    @property
    def engine(self) -> str:
        """The writer keeping the offline table: ``native`` (ours) or ``hudi`` (Apache Hudi's)."""
        return self._record.engine

    @property
    def features(self) -> list[Feature]:
        """The features, in column order."""
        return list(self._record.features)

    @property
    def schema(self) -> T.StructType:
        """Spark schema of the features (empty until the first insert if none were declared)."""
        return self._record.schema

    @property
    def table_name(self) -> str:
        """Name of the offline table (and of the SQL view in ``fs.sql``): ``<name>_<version>``."""
        return self._record.table_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, version={self.version}, primary_key={self.primary_key})"

    # -- features for filters (hsfs: fg.amount > 100, fg["amount"]) --------------------------
    def __getitem__(self, name: str) -> FeatureColumn:
        """A feature for building filter conditions: ``query.filter(fg["amount"] > 100)``."""
        if not isinstance(name, str) or name not in self._record.feature_names:
            raise KeyError(f"feature group '{self.name}' v{self.version} has no feature {name!r} "
                           f"(features: {', '.join(self._record.feature_names)})")
        return FeatureColumn(name, self._record.table_name)

    def __getattr__(self, name: str) -> FeatureColumn:
        # only reached for names that are not attributes: features whose names are properties (name,
        # version, ...) are reached with fg["name"]
        record = self.__dict__.get("_record")
        if name.startswith("_") or record is None or name not in record.feature_names:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return FeatureColumn(name, record.table_name)

    # -- metadata ----------------------------------------------------------------------------
    def get_feature(self, name: str) -> Feature:
        """One feature by name."""
        return self._record.get_feature(name)

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

    def update_description(self, description: str) -> _FeatureGroupBase:
        """Change the description."""
        self._update(description=description)
        return self

    def update_feature_description(self, feature: str, description: str) -> _FeatureGroupBase:
        """Change one feature's description."""
        features = [f.to_dict() for f in self.features]
        if feature not in {f["name"] for f in features}:
            raise FeatureGroupError(f"feature group '{self.name}' has no feature '{feature}'")
        for f in features:
            if f["name"] == feature:
                f["description"] = description
        self._update(features=features)
        return self

    def _update(self, **values: Any) -> None:
        self._record = FeatureGroupRecord.from_row(
            self._fs.registry.update_feature_group(self.id, getpass.getuser(), **values))

    # -- queries (featurestore.query) --------------------------------------------------------
    def select_all(self) -> Query:
        """A :class:`~featurestore.query.Query` of every feature (keys and event time included)."""
        return Query(self._fs, self._record, self._record.feature_names)

    def select(self, features: list[str]) -> Query:
        """A :class:`~featurestore.query.Query` of the named features, in that order."""
        if isinstance(features, str) or not features:
            raise QueryError(f"select on '{self.name}' needs a non-empty list of feature names")
        return Query(self._fs, self._record, list(features))

    def select_except(self, features: list[str]) -> Query:
        """A query of every feature except those named."""
        unknown = [f for f in features if f not in self._record.feature_names]
        if unknown:
            raise QueryError(f"feature group '{self.name}' has no feature(s) {', '.join(map(repr, unknown))}")
        return self.select([f for f in self._record.feature_names if f not in features])

    def filter(self, condition: Any) -> Query:
        """``select_all().filter(condition)``: rows matching a Column or SQL condition."""
        return self.select_all().filter(condition)

    def show(self, n: int = 20) -> None:
        """Print the first ``n`` rows."""
        self.read().show(n, truncate=False)

    def read(self, as_of: str | dt.datetime | None = None, include_meta: bool = False) -> DataFrame:
        """The feature group's rows."""
        raise NotImplementedError


class FeatureGroup(_FeatureGroupBase):
    """A cached feature group version, backed by a table of the offline store."""

    @property
    def _table(self) -> offline.OfflineTable:
        return offline.open_table(self._fs, self._record)

    # -- writes ------------------------------------------------------------------------------
    def insert(self, df: Any, operation: str = "upsert", write_options: dict[str, Any] | None = None,
               storage: str | None = None, validation_options: dict[str, Any] | None = None) -> WriteResult:
        """Write ``df`` (a Spark, pandas or pyarrow DataFrame) as one commit (``upsert`` by default; also
        ``insert``, ``bulk_insert``, ``insert_overwrite``). The first insert creates the offline table.

        The batch is validated against the feature group's expectation suite before anything is
        written. ``storage``: None writes offline and, for online-enabled feature groups, through to
        the online store after the offline commit; ``"offline"`` or ``"online"`` writes only there.
        ``write_options`` keys that only mean something on Hopsworks (``wait_for_job``,
        ``start_offline_materialization``) are ignored with a warning naming them.
        """
        frame = self._as_spark(df)
        result, self._record = ingestion.insert(self._fs, self._fs.refresh(self._record), frame, operation,
                                                _without_hopsworks_options(write_options), storage,
                                                validation_options)
        return result

    def _as_spark(self, df: Any) -> DataFrame:
        """``df`` as a Spark DataFrame; pandas and pyarrow frames are converted (hsfs accepts them)."""
        if isinstance(df, DataFrame):
            return df
        kind = f"{type(df).__module__}.{type(df).__name__}"
        if kind.startswith("pandas.") and type(df).__name__ == "DataFrame":
            return self._fs.spark.createDataFrame(df)
        if kind.startswith("pyarrow.") and type(df).__name__ == "Table":
            return self._fs.spark.createDataFrame(df.to_pandas())
        raise FeatureGroupError(f"insert into feature group '{self.name}' v{self.version} needs a Spark, pandas or "
                                f"pyarrow DataFrame (a pyarrow Table), got {kind}")

    def delete_records(self, keys_df: DataFrame) -> WriteResult:
        """Delete the rows whose primary key (and partition key) appear in ``keys_df``."""
        return ingestion.delete_records(self._fs, self._record, keys_df)

    def commit_delete(self, delete_df: Any, write_options: dict[str, Any] | None = None) -> WriteResult:
        """hsfs's name of :meth:`delete_records` (``delete_df`` a Spark, pandas or pyarrow DataFrame of keys;
        ``write_options`` as for :meth:`insert`, none of which changes a delete)."""
        _without_hopsworks_options(write_options)
        return self.delete_records(self._as_spark(delete_df))

    def insert_stream(self, df: DataFrame, checkpoint_location: str, trigger: dict[str, Any] | None = None,
                      query_name: str | None = None, operation: str = "upsert",
                      write_options: dict[str, Any] | None = None) -> StreamingQuery:
        """Write a streaming DataFrame: each micro-batch is validated and upserted as one commit, exactly
        once across restarts from ``checkpoint_location``. ``trigger``: ``{"processingTime": "10
        seconds"}``, ``{"availableNow": True}`` or ``{"once": True}``. Returns the ``StreamingQuery``."""
        return streaming.insert_stream(self._fs, self._record, df, checkpoint_location, trigger, query_name,
                                       operation, write_options)

    # -- reads -------------------------------------------------------------------------------
    def read(self, as_of: str | dt.datetime | None = None, include_meta: bool = False,
             online: bool = False, wallclock_time: str | dt.datetime | None = None) -> DataFrame:
        """The snapshot as a Spark DataFrame, or the state as of a commit id or a time (UTC).

        ``wallclock_time`` is hsfs's name of ``as_of``. A time exactly at a commit includes it; a time before
        the first commit is an error naming that commit. ``online=True`` reads the online table instead
        (Spark JDBC; on SQLite through the driver).
        """
        if wallclock_time is not None:
            if as_of is not None:
                raise FeatureGroupError("read: pass as_of or wallclock_time, not both")
            as_of = wallclock_time
        if online:
            return self._read_online(as_of, include_meta)
        commit = timetravel.read_commit(self._fs, self._record, as_of, "as_of") if as_of is not None else None
        return self._table.read(as_of=commit, include_meta=include_meta)

    def read_changes(self, start_wallclock_time: str | int | dt.datetime | None = None,
                     end_wallclock_time: str | int | dt.datetime | None = None,
                     read_options: dict[str, Any] | None = None, include_meta: bool = False, *,
                     start_commit: str | None = None, end_commit: str | None = None) -> DataFrame:
        """Rows written by the commits after ``start_wallclock_time`` up to ``end_wallclock_time`` (inclusive;
        None = the latest), as they are at the end: hsfs's ``fg.as_of(end, exclude_until=start).read()``.

        Both are times (UTC) or commit ids; ``start_commit``/``end_commit`` are the same under their older
        names. A start before the first commit reads from the first commit; an end before it is an error.
        ``read_options`` (hsfs's) change nothing here.
        """
        if start_commit is not None:
            if start_wallclock_time is not None:
                raise FeatureGroupError("read_changes: pass start_wallclock_time or start_commit, not both")
            start_wallclock_time = start_commit
        if end_commit is not None:
            if end_wallclock_time is not None:
                raise FeatureGroupError("read_changes: pass end_wallclock_time or end_commit, not both")
            end_wallclock_time = end_commit
        if start_wallclock_time is None:
            raise FeatureGroupError("read_changes needs start_wallclock_time (a time or a commit id)")
        end, start = timetravel.resolve(self._fs, self._record, end_wallclock_time, start_wallclock_time)
        return self._table.read_changes(start or timetravel.BEFORE_FIRST, end, include_meta)

    def as_of(self, wallclock_time: str | int | dt.datetime | None = None,
              exclude_until: str | int | dt.datetime | None = None) -> Query:
        """``select_all().as_of(wallclock_time, exclude_until)``: the feature group as of a commit id or time,
        and with ``exclude_until`` only the changes after it (see :meth:`Query.as_of`)."""
        return self.select_all().as_of(wallclock_time, exclude_until)

    # -- schema ------------------------------------------------------------------------------
    def append_features(self, features: Feature | list[Feature]) -> FeatureGroup:
        """Add features to this version (hsfs's call): each a :class:`Feature` (``Feature("channel",
        "string")``), nullable, after the existing ones. Rows already written read them as null; inserts
        from then on must hold them. The only other way to add a feature is an insert with
        ``write_options={"schema_evolution": True}``."""
        new = [features] if isinstance(features, Feature) else list(features) if isinstance(features, list) else None
        if not new or any(not isinstance(f, Feature) for f in new):
            raise FeatureGroupError(f"append_features on {self._record.label} needs a Feature or a non-empty list of "
                                    f"Features (Feature(name, type)), got {features!r}")
        record = self._fs.refresh(self._record)
        if not record.features:
            raise FeatureGroupError(f"feature group {record.label} has no features yet: insert data first, or "
                                    "declare them with features= when creating it")
        taken = {f.name.lower(): f.name for f in record.features}
        for f in new:
            if not isinstance(f.name, str) or not f.name.strip():
                raise FeatureGroupError(f"append_features on {record.label}: a feature name must be a non-empty "
                                        f"string, got {f.name!r}")
            if f.name.lower() in taken:
                # Spark resolves column names case-insensitively: 'Amount' would shadow 'amount'
                raise FeatureGroupError(f"append_features on {record.label}: feature {f.name!r} is already a "
                                        f"feature ({taken[f.name.lower()]!r})")
            taken[f.name.lower()] = f.name
        added = [Feature(f.name, f.type_json, f.description, False, False) for f in new]
        self._record = record
        self._update(features=[f.to_dict() for f in [*record.features, *added]])
        return self

    def commit_details(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """``{commit_id: {"committedOn", "rowsInserted", "rowsUpdated", "rowsDeleted", ...}}``, newest first.

        A read: commits the registry has not recorded yet (a writer killed after its commit) are shown
        from the offline table and recorded by the next write."""
        out: dict[str, dict[str, Any]] = {}
        for c in ingestion.commit_log(self._fs, self._record, limit):
            out[c["commit_id"]] = {
                "committedOn": c["committed_at"].strftime("%Y%m%d%H%M%S"),
                "committedAt": c["committed_at"].isoformat() + "Z",
                "operation": c["operation"], "rowsInserted": c["rows_inserted"],
                "rowsUpdated": c["rows_updated"], "rowsDeleted": c["rows_deleted"],
            }
        return out

    def get_provenance(self, commit_id: str | None = None) -> dict[str, Any] | None:
        """What produced a commit (default: the newest): kind (script | notebook | interactive), path,
        sha256, git commit, user, host, packages, and ``content`` (the script or .ipynb), or None."""
        return provenance.load(self._fs.registry, "commit", self.id,
                               self._table.commit_id(commit_id) if commit_id else None)

    # -- quality: suites, validation, statistics (featurestore.quality) ---------------------
    @property
    def statistics_config(self) -> dict[str, Any]:
        """Effective statistics config: enabled, histograms, correlations, exact_uniqueness, columns."""
        return statistics_config(self._record.statistics_options)

    def save_expectation_suite(self, suite: Any, validation_policy: str = "STRICT") -> FeatureGroup:
        """Attach an expectation suite (an ExpectationSuite, Check(s), or a YAML/JSON path) that every
        insert is validated against; ``validation_policy`` STRICT rejects failing batches, ALWAYS
        writes them and records the report."""
        made = as_suite(suite)
        if made is None:
            raise FeatureGroupError("save_expectation_suite needs a suite (use delete_expectation_suite to remove)")
        data = made.to_data()  # raises on callables, which cannot be stored
        self._fs.registry.set_expectation_suite(self.id, data, gate.check_policy(validation_policy),
                                                getpass.getuser())
        return self

    def get_expectation_suite(self) -> ExpectationSuite | None:
        """The attached ExpectationSuite, or None."""
        return gate.load_feature_group_suite(self._fs, self._record)[0]

    @property
    def validation_policy(self) -> str | None:
        """STRICT or ALWAYS (None without a suite)."""
        stored = self._fs.registry.get_expectation_suite(self.id)
        return stored["policy"] if stored else None

    def delete_expectation_suite(self) -> bool:
        """Detach the suite; True if there was one."""
        return self._fs.registry.delete_expectation_suite(self.id)

    def validate(self, df: DataFrame, suite: Any = None, save_report: bool = False,
                 engine: str = "native") -> ValidationReport:
        """Dry run: the ValidationReport of ``df`` against the feature group's suite (or ``suite``);
        nothing is written (the report is stored as ``dry_run`` if ``save_report``)."""
        made = as_suite(suite) if suite is not None else self.get_expectation_suite()
        if made is None:
            raise FeatureGroupError(f"feature group '{self.name}' v{self.version} has no expectation suite; "
                                    "pass suite= or call save_expectation_suite first")
        report = verify(df, made, gate.history_lookup(self._fs, self._record), engine=engine)
        report.outcome = "dry_run"
        if save_report:
            report.id = self._fs.registry.add_validation_report(self.id, report.to_dict(), "dry_run", None, None, {})
        return report

    def get_validation_history(self, limit: int | None = None) -> list[ValidationReport]:
        """Stored validation reports, newest first, each with ``commit_id`` and ``outcome``
        (accepted, rejected or dry_run)."""
        return quality_history.validation_history(self._fs, self._record, limit)

    def get_metric_history(self, analyzer: str) -> list[tuple[str | None, float]]:
        """``(commit_id, value)`` of a metric (e.g. ``"Mean(amount)"``) over accepted inserts, oldest first."""
        return self._fs.registry.metric_history(self.id, analyzer)

    def get_statistics(self, commit_id: str | None = None) -> dict[str, Any] | None:
        """Statistics of a commit's data (default: the newest stored), or None."""
        return quality_history.statistics_of_commit(self._fs, self._record,
                                                    self._table.commit_id(commit_id) if commit_id else None)

    def get_all_statistics(self) -> list[dict[str, Any]]:
        """Every stored statistics record, oldest first (the report plots them across commits)."""
        return quality_history.all_statistics(self._fs, self._record)

    def compute_statistics(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Statistics over the whole current snapshot, stored with ``kind="table"`` and the latest commit id."""
        return quality_history.table_statistics(self._fs, self._record, config)

    def statistics_report(self, path: str | None = None, compute: bool = True) -> str:
        """Write the static HTML statistics report (plots embedded; viewable offline); returns its path.
        ``compute=False`` shows the newest stored statistics instead of computing the snapshot's."""
        return write_report(self._fs, self._record, path, compute)

    # -- online store (featurestore.online) --------------------------------------------------
    def _read_online(self, as_of: Any, include_meta: bool) -> DataFrame:
        if as_of is not None or include_meta:
            raise FeatureGroupError("read(online=True) reads the latest online rows: as_of and include_meta "
                                    "are not supported")
        if not self.online_enabled:
            raise FeatureGroupError(f"feature group '{self.name}' v{self.version} is not online-enabled")
        return online_sync.read_online(self._fs, self._record)

    def materialize(self, mode: str = "incremental") -> dict[str, Any]:
        """Sync this feature group's online table (same as ``fs.materialize(fg, mode)``)."""
        return online_sync.materialize(self._fs, self._fs.refresh(self._record), mode)

    @property
    def online_ttl(self) -> int | None:
        """Online TTL in seconds: older rows (by event time) are not served and are purged."""
        return self._record.online_ttl

    def delete(self) -> None:
        """Delete the offline table, the online table and every registry record of this version."""
        if self.online_enabled:
            self._fs.online_store.drop_table(self._record)
        self._table.drop()
        self._fs.registry.delete_feature_group(self.id)


class ExternalFeatureGroup(_FeatureGroupBase):
    """A feature group whose data stays in a JDBC source, read through Spark JDBC.

    It has no offline table: no commits, writes, time travel or online store. Those calls are
    clear errors naming what external feature groups do not support.
    """

    def read(self, as_of: str | dt.datetime | None = None, include_meta: bool = False) -> DataFrame:
        """The query's current result (external data has no commit history)."""
        return sources.read_feature_group(self._fs, self._record, None if as_of is None else str(as_of))

    def commit_details(self, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """External feature groups have no commits."""
        return {}

    def delete(self) -> None:
        """Remove the registry record (the source's data is not touched)."""
        self._fs.registry.delete_feature_group(self.id)

    def _unsupported(self, what: str) -> NoReturn:
        raise FeatureGroupError(f"external feature group '{self.name}' is read-only: its data stays in the source "
                                f"(no {what})")

    def insert(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external feature groups are read-only."""
        self._unsupported("insert")

    def delete_records(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external feature groups are read-only."""
        self._unsupported("delete_records")

    def commit_delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external feature groups are read-only."""
        self._unsupported("commit_delete")

    def insert_stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external feature groups are read-only."""
        self._unsupported("insert_stream")

    def read_changes(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external data has no commits."""
        self._unsupported("read_changes: it has no commits")

    def as_of(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external data has no commits."""
        self._unsupported("time travel: it has no commits")

    def materialize(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: external feature groups are not served online."""
        self._unsupported("online store")


def _without_hopsworks_options(write_options: dict[str, Any] | None) -> dict[str, Any] | None:
    """``write_options`` without the Hopsworks-only keys, with one warning naming those present."""
    if not write_options:
        return write_options
    ignored = [k for k in HOPSWORKS_ONLY_WRITE_OPTIONS if k in write_options]
    if not ignored:
        return write_options
    log.warning("write_options %s only mean something on Hopsworks (its jobs); ignored here",
                ", ".join(repr(k) for k in ignored))
    return {k: v for k, v in write_options.items() if k not in ignored}
