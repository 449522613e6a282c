"""Delta Lake behind the offline interface, through delta-spark (the DataFrame and DeltaTable APIs).

Every table is created with the Change Data Feed and row tracking on (``delta.enableChangeDataFeed``,
``delta.enableRowTracking``) and deletion vectors off, so a reader without deletion-vector support
(delta-rs, older engines) reads it too. Upserts are one ``MERGE`` keyed by primary key (+ partition
key) with the ordering key as its guard; every write runs on the executors, the driver only reads
the Delta log.

Commit ids are Delta versions as text, zero-padded to 20 digits (``00000000000000000007``) so that
text order is commit order, as the rest of the store compares commit ids as text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from featurestore.errors import OfflineStoreError
from featurestore.model.records import BATCH_ID_KEY, STREAM_ID_KEY, CommitInfo, CommitOutcome
from featurestore.offline.interface import WRITE_OPERATIONS, OfflineTable

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

ID_WIDTH = 20
COMMIT_COLUMN = "_delta_commit_version"
RECORD_KEY_COLUMN = "_delta_record_key"
PARTITION_PATH_COLUMN = "_delta_partition_path"
OPERATION_KEY = "featurestore.operation"
WRITE_ID_KEY = "featurestore.write_id"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
# idempotent MERGE/DELETE: the session's transaction (DataFrame writes take txnAppId/txnVersion options)
TXN_APP_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"
TABLE_PROPERTIES = {"delta.enableChangeDataFeed": "true", "delta.enableRowTracking": "true",
                    "delta.enableDeletionVectors": "false"}
# Delta log operations that change data (OPTIMIZE, VACUUM, property changes are not data commits)
DATA_OPERATIONS = {"WRITE", "MERGE", "DELETE", "UPDATE", "STREAMING UPDATE", "CREATE TABLE AS SELECT",
                   "REPLACE TABLE AS SELECT", "CREATE OR REPLACE TABLE AS SELECT"}
# sentinels other services pass as "before the first commit" (Hudi-shaped instants)
BEFORE_FIRST = ("00000000000000000", "19700101000000000")
_ARRIVAL, _RANK, _ORDER = "_fs_arrival", "_fs_rank", "_fs_order"


def version_id(version: int) -> str:
    """A Delta version as a commit id."""
    return f"{int(version):0{ID_WIDTH}d}"


def delta_error(what: str, exc: Exception) -> OfflineStoreError:
    """``exc`` from delta-spark as an :class:`OfflineStoreError` saying what was being done."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return OfflineStoreError(f"{what}: {first}")


class DeltaLakeTable(OfflineTable):
    """A Delta Lake table written and read through delta-spark."""

    commit_column = COMMIT_COLUMN
    row_id_columns = (RECORD_KEY_COLUMN, PARTITION_PATH_COLUMN)
    meta_prefix = "_delta_"

    # -- state -------------------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the folder holds a Delta log."""
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.ctx.spark, self.location))

    def _delta(self) -> Any:
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.ctx.spark, self.location)

    def _history(self) -> list[dict[str, Any]]:
        """The Delta log's commit entries, oldest first (log metadata only, never data)."""
        from pyspark.sql import functions as F

        rows = (self._delta().history()
                .select("version", F.unix_millis("timestamp").alias("millis"), "operation", "operationMetrics",
                        "userMetadata")
                .orderBy("version").collect())
        return [r.asDict() for r in rows]

    def commits(self) -> list[CommitInfo]:
        """The data commits of the Delta log, oldest first; counts from its operation metrics."""
        if not self.exists():
            return []
        return [self._commit_info(entry) for entry in self._history() if entry["operation"] in DATA_OPERATIONS]

    @staticmethod
    def _commit_info(entry: Mapping[str, Any]) -> CommitInfo:
        metrics = {k: int(v) for k, v in (entry["operationMetrics"] or {}).items() if str(v).lstrip("-").isdigit()}
        meta = _parse_metadata(entry["userMetadata"])
        operation = meta.pop(OPERATION_KEY, None) or str(entry["operation"]).lower()
        meta.pop(WRITE_ID_KEY, None)
        if entry["operation"] == "MERGE":
            inserted, updated = metrics.get("numTargetRowsInserted", 0), metrics.get("numTargetRowsUpdated", 0)
            deleted = metrics.get("numTargetRowsDeleted", 0)
            files = metrics.get("numTargetFilesAdded", 0)
        elif entry["operation"] in ("DELETE", "UPDATE"):
            inserted, deleted = 0, metrics.get("numDeletedRows", 0)
            updated = metrics.get("numUpdatedRows", 0)
            files = metrics.get("numAddedFiles", 0)
        else:
            inserted, updated, deleted = metrics.get("numOutputRows", 0), 0, 0
            files = metrics.get("numFiles", metrics.get("numAddedFiles", 0))
        return CommitInfo(commit_id=version_id(entry["version"]), action=str(entry["operation"]).lower(),
                          operation=operation, committed_at=_utc(entry["millis"]), rows_inserted=inserted,
                          rows_updated=updated, rows_deleted=deleted, files=files, metadata=meta)

    def commit_id(self, value: str | int | dt.datetime) -> str:
        """A Delta version (int, digits, a padded id) or a time (datetime, ISO text, ``yyyyMMddHHmmss[SSS]``):
        the version current at that time."""
        kind, parsed = self._parse_commit(value)
        if kind == "version":
            return self._known_version(parsed)
        found = self._version_at(parsed)
        if found is None:
            raise OfflineStoreError(f"the Delta table of {self.record.label} has no commit at or before {parsed}")
        return found

    def commit_at_or_before(self, value: str | int | dt.datetime) -> str | None:
        """The newest data commit at or before a version or a time; None when there is none that early."""
        kind, parsed = self._parse_commit(value)
        if kind == "version":
            return super().commit_at_or_before(value)
        return self._version_at(parsed)

    def _parse_commit(self, value: str | int | dt.datetime) -> tuple[str, Any]:
        """``("version", int)`` or ``("time", datetime)`` of a user's commit id or time."""
        if isinstance(value, bool):
            raise OfflineStoreError(f"not a commit id or time: {value!r}")
        if isinstance(value, int):
            return "version", value
        if isinstance(value, dt.datetime):
            return "time", value
        text = str(value).strip()
        if re.fullmatch(r"\d+", text) and (len(text) == ID_WIDTH or len(text) < 14):
            return "version", int(text)
        if re.fullmatch(r"\d{14}(\d{3})?", text):  # a Hudi-style instant: a time
            stamp = dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S") + dt.timedelta(milliseconds=int(text[14:] or 0))
            return "time", stamp
        try:
            return "time", dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise OfflineStoreError(f"not a Delta version or time: {value!r} (a version such as 3, or a "
                                    "time such as 2024-03-01T12:00:00)") from None

    def _known_version(self, version: int) -> str:
        if version < 0:
            raise OfflineStoreError(f"Delta version {version} is negative")
        return version_id(version)

    def _version_at(self, when: dt.datetime) -> str | None:
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        earlier = [c for c in self.commits() if c.committed_at <= when]
        return earlier[-1].commit_id if earlier else None

    def commit_time(self, commit_id: str) -> dt.datetime:
        """The UTC time (naive) of a Delta version, from the log."""
        for commit in self.commits():
            if commit.commit_id == version_id(int(commit_id)):
                return commit.committed_at
        raise OfflineStoreError(f"the Delta table of {self.record.label} has no commit {commit_id}")

    # -- writes ------------------------------------------------------------------------------
    def write(self, df: DataFrame, operation: str, commit_metadata: Mapping[str, str] | None = None,
              write_options: Mapping[str, Any] | None = None) -> CommitOutcome:
        """One Delta commit: append (insert, bulk_insert), overwrite (insert_overwrite: the partitions in
        ``df``; insert_overwrite_table: everything), ``MERGE`` (upsert, delete)."""
        if operation not in WRITE_OPERATIONS:
            raise OfflineStoreError(f"unknown write operation {operation!r}; use {', '.join(WRITE_OPERATIONS)}")
        self._check_keys(df)
        write_id = uuid.uuid4().hex
        meta = {"user": getpass.getuser(), **{k: str(v) for k, v in (commit_metadata or {}).items()},
                OPERATION_KEY: operation, WRITE_ID_KEY: write_id}
        exists = self.exists()
        if operation == "delete" and not exists:
            return CommitOutcome(None, operation)
        txn = _transaction(meta)
        try:
            if operation == "upsert":
                batch = self._combined(df)
                if exists:
                    self._merge(batch, meta, txn)
                else:
                    self._save(batch, "append", meta, write_options, txn)
            elif operation == "delete":
                self._delete(df, meta, txn)
            elif operation in ("insert", "bulk_insert"):
                self._save(df, "append", meta, write_options, txn)
            else:
                options = dict(write_options or {})
                if operation == "insert_overwrite" and self.record.partition_key:
                    options.setdefault("partitionOverwriteMode", "dynamic")
                self._save(df, "overwrite", meta, options, txn)
        except OfflineStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - delta-spark raises Py4J/analysis errors: one type for callers
            raise delta_error(f"{operation} into the Delta table of {self.record.label} failed", exc) from exc
        entry = next((e for e in reversed(self._history())
                      if _parse_metadata(e["userMetadata"]).get(WRITE_ID_KEY) == write_id), None)
        if entry is None and txn is not None:
            # Delta skipped the write: this stream's transaction version was committed before
            return CommitOutcome(None, operation)
        if entry is None:
            raise OfflineStoreError(f"{operation} into {self.record.label}: the Delta log has no commit of this write")
        info = self._commit_info(entry)
        partitions = tuple(self.record.partition_key)
        return CommitOutcome(info.commit_id, operation, info.rows_inserted, info.rows_updated, info.rows_deleted,
                             info.files, partitions)

    def _key_columns(self) -> list[str]:
        return list(self.record.primary_key) + [k for k in self.record.partition_key
                                                 if k not in self.record.primary_key]

    def _check_keys(self, df: DataFrame) -> None:
        """Primary-key columns must be there and not null (one aggregation job), as Hudi requires of record
        keys."""
        from pyspark.sql import functions as F

        keys = list(self.record.primary_key)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise OfflineStoreError(f"key column(s) {', '.join(map(repr, missing))} missing from the data of "
                                    f"{self.record.label}")
        if not keys:
            return
        counts = df.agg(*[F.sum(F.col(f"`{k}`").isNull().cast("long")).alias(f"n{i}")
                          for i, k in enumerate(keys)]).first()
        nulls = {k: counts[f"n{i}"] for i, k in enumerate(keys) if counts and counts[f"n{i}"]}
        if nulls:
            per = ", ".join(f"'{k}' in {n} row(s)" for k, n in nulls.items())
            raise OfflineStoreError(f"null key values in the data of {self.record.label} ({per}); nothing was written")

    def _ordering(self, alias: str | None = None) -> Column | None:
        from pyspark.sql import functions as F

        key = self.record.ordering_key
        if not key:
            return None
        return F.col(f"{alias}.`{key}`") if alias else F.col(f"`{key}`")

    def _combined(self, df: DataFrame) -> DataFrame:
        """One row per key: the highest ordering value (null lowest), then the latest to arrive (Hudi's
        pre-combine)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        order = self._ordering()
        ranked = df.withColumn(_ARRIVAL, F.monotonically_increasing_id())
        sort = ([order.desc_nulls_last()] if order is not None else []) + [F.col(_ARRIVAL).desc()]
        window = Window.partitionBy(*[F.col(f"`{k}`") for k in self._key_columns()]).orderBy(*sort)
        return ranked.withColumn(_RANK, F.row_number().over(window)).where(F.col(_RANK) == 1).drop(_RANK, _ARRIVAL)

    def _match(self) -> str:
        return " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in self._key_columns())

    def _merge(self, batch: DataFrame, meta: Mapping[str, str], txn: tuple[str, int] | None) -> None:
        key = self.record.ordering_key
        # the incoming row loses only to a stored one with a higher ordering value (null lowest)
        newer = (f"s.`{key}` >= t.`{key}` OR t.`{key}` IS NULL" if key else None)
        builder = self._delta().alias("t").merge(batch.alias("s"), self._match())
        builder = builder.whenMatchedUpdateAll(condition=newer).whenNotMatchedInsertAll()
        if hasattr(builder, "withSchemaEvolution"):
            builder = builder.withSchemaEvolution()  # new nullable columns
        with self._user_metadata(meta, txn):
            builder.execute()

    def _delete(self, keys: DataFrame, meta: Mapping[str, str], txn: tuple[str, int] | None) -> None:
        from pyspark.sql import functions as F

        batch = keys.select(*[F.col(f"`{k}`") for k in self._key_columns()]).dropDuplicates()
        builder = self._delta().alias("t").merge(batch.alias("s"), self._match()).whenMatchedDelete()
        with self._user_metadata(meta, txn):
            builder.execute()

    def _save(self, df: DataFrame, mode: str, meta: Mapping[str, str],
              write_options: Mapping[str, Any] | None, txn: tuple[str, int] | None) -> None:
        writer = df.write.format("delta").mode(mode).option("userMetadata", json.dumps(dict(meta), sort_keys=True))
        writer = writer.option("mergeSchema", "true")
        if txn is not None:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", str(txn[1]))
        if not self.exists():
            for key, value in TABLE_PROPERTIES.items():
                writer = writer.option(key, value)
            if self.record.partition_key:
                writer = writer.partitionBy(*self.record.partition_key)
        for key, value in (write_options or {}).items():
            writer = writer.option(key, str(value))
        writer.save(self.location)

    @contextlib.contextmanager
    def _user_metadata(self, meta: Mapping[str, str], txn: tuple[str, int] | None = None) -> Iterator[None]:
        """Our commit metadata (and the stream's transaction) on the next Delta commit of this session: MERGE
        takes them from the session's configuration, not from options."""
        conf = self.ctx.spark.conf
        conf.set(USER_METADATA_CONF, json.dumps(dict(meta), sort_keys=True))
        if txn is not None:
            conf.set(TXN_APP_CONF, txn[0])
            conf.set(TXN_VERSION_CONF, str(txn[1]))
        try:
            yield
        finally:
            for key in (USER_METADATA_CONF, TXN_APP_CONF, TXN_VERSION_CONF):
                conf.unset(key)

    def clean(self, commits_retained: int | None = None) -> int:
        """``VACUUM`` keeping the files of the newest ``commits_retained`` commits readable: the retention
        is the age of the oldest of them. Returns the files deleted (from the log's VACUUM metrics)."""
        if not self.exists():
            return 0
        keep = int(commits_retained if commits_retained is not None
                   else self.ctx.config.get("hudi.cleaner_commits_retained"))
        commits = self.commits()
        if keep < 1 or len(commits) <= keep:
            return 0
        oldest_kept = commits[-keep].committed_at
        age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - oldest_kept
        hours = max(age.total_seconds() / 3600.0, 0.0)
        conf = self.ctx.spark.conf
        before = conf.get(RETENTION_CHECK_CONF, "true")
        conf.set(RETENTION_CHECK_CONF, "false")  # the window is ours, often shorter than Delta's 7 days
        target = "delta.`" + self.location.replace("`", "``") + "`"
        try:
            # the dry run lists the files the VACUUM deletes (counted on the executors)
            doomed = self.ctx.spark.sql(f"VACUUM {target} RETAIN {hours:.6f} HOURS DRY RUN").count()
            self._delta().vacuum(hours)
        except Exception as exc:  # noqa: BLE001
            raise delta_error(f"VACUUM of {self.record.label} failed", exc) from exc
        finally:
            conf.set(RETENTION_CHECK_CONF, before)
        return int(doomed)

    def optimize(self) -> int:
        """``OPTIMIZE`` (bin-packing compaction): one Delta commit that changes no data (not a data commit of
        :meth:`commits`, no change-feed rows); the files it compacted, from its metrics."""
        if not self.exists():
            return 0
        try:
            metrics = self._delta().optimize().executeCompaction().select("metrics.numFilesRemoved").first()
        except Exception as exc:  # noqa: BLE001
            raise delta_error(f"OPTIMIZE of {self.record.label} failed", exc) from exc
        return int(metrics[0] or 0) if metrics else 0

    def drop(self) -> None:
        """Remove the table folder."""
        shutil.rmtree(self.location, ignore_errors=True)

    # -- reads -------------------------------------------------------------------------------
    def _with_meta(self, df: DataFrame, version: Column) -> DataFrame:
        """``df`` with the meta columns first: commit version (padded text), record key, partition path."""
        from pyspark.sql import functions as F

        def as_text(name: str) -> Column:
            return F.coalesce(F.col(f"`{name}`").cast("string"), F.lit("__null__"))

        pk = list(self.record.primary_key)
        record_key = (as_text(pk[0]) if len(pk) == 1
                      else F.concat_ws(",", *[F.concat(F.lit(f"{k}:"), as_text(k)) for k in pk]))
        parts = [F.concat(F.lit(f"{k}="), as_text(k)) for k in self.record.partition_key]
        partition = F.concat_ws("/", *parts) if parts else F.lit("")
        commit = F.lpad(version.cast("string"), ID_WIDTH, "0")
        return df.select(commit.alias(COMMIT_COLUMN), record_key.alias(RECORD_KEY_COLUMN),
                         partition.alias(PARTITION_PATH_COLUMN), *[F.col(f"`{c}`") for c in df.columns])

    def read(self, as_of: str | None = None, include_meta: bool = False) -> DataFrame:
        """The snapshot, or the table as of a Delta version; with ``include_meta`` each row's commit is its
        row-tracking commit version (the last commit that wrote it)."""
        from pyspark.sql import functions as F

        if not self.exists():
            return self.empty(include_meta)
        reader = self.ctx.spark.read.format("delta")
        if as_of is not None:
            reader = reader.option("versionAsOf", int(as_of))
        try:
            df = reader.load(self.location)
            if not include_meta:
                return self.conform(df)
            return self.conform(self._with_meta(df.select("*", F.col("_metadata.row_commit_version").alias("_fs_v")),
                                                F.col("_fs_v")).drop("_fs_v"))
        except Exception as exc:  # noqa: BLE001
            raise delta_error(f"reading {self.record.label} as of {as_of}", exc) from exc

    def read_changes(self, start: str, end: str | None = None, include_meta: bool = False) -> DataFrame:
        """From the Change Data Feed of the versions after ``start`` up to ``end``: the latest state of
        every key written in the range that still exists at ``end`` (as a Hudi incremental read)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not self.exists():
            return self.empty(include_meta)
        first = 0 if start in BEFORE_FIRST or str(start) < "0" * ID_WIDTH else int(start) + 1
        latest = self._history()[-1]["version"]
        last = latest if end is None else min(int(end), latest)
        if first > last:
            return self.read(include_meta=include_meta).limit(0)
        try:
            cdf = (self.ctx.spark.read.format("delta").option("readChangeFeed", "true")
                   .option("startingVersion", first).option("endingVersion", last).load(self.location))
        except Exception as exc:  # noqa: BLE001
            raise delta_error(f"reading the change feed of {self.record.label} ({start}, {end}]", exc) from exc
        cdf = cdf.where(F.col("_change_type") != "update_preimage")
        # the newest version of a key decides; in one version (an overwrite) its insert beats its delete
        is_delete = (F.col("_change_type") == "delete").cast("int")
        window = Window.partitionBy(*[F.col(f"`{k}`") for k in self._key_columns()]).orderBy(
            F.col("_commit_version").desc(), is_delete)
        ranked = (cdf.withColumn(_ORDER, F.rank().over(window))
                  .where((F.col(_ORDER) == 1) & (F.col("_change_type") != "delete")))
        data = [c for c in cdf.columns if c not in ("_change_type", "_commit_version", "_commit_timestamp")]
        if not include_meta:
            return self.conform(ranked.select(*[F.col(f"`{c}`") for c in data]))
        rows = ranked.select(*[F.col(f"`{c}`") for c in data], F.col("_commit_version").alias("_fs_v"))
        return self.conform(self._with_meta(rows, F.col("_fs_v")).drop("_fs_v"))


def _parse_metadata(text: str | None) -> dict[str, str]:
    """Our commit metadata from a commit's ``userMetadata`` (JSON); another writer's text is kept as is."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"userMetadata": text}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {"userMetadata": text}


def _transaction(meta: Mapping[str, str]) -> tuple[str, int] | None:
    """A streaming micro-batch's Delta transaction (application id, version) from its commit metadata."""
    app, version = meta.get(STREAM_ID_KEY), meta.get(BATCH_ID_KEY)
    if not app or version is None or not str(version).isdigit():
        return None
    return str(app), int(version)


def _utc(millis: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(millis))
