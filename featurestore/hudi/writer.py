"""Driver side of a write: validate, lock, plan, run the Spark write job, commit.

Every write is one instant on the timeline. The sequence (each step only after the previous one
succeeded): validate options and data (nothing written on error) -> take the table lock -> finish
what a killed writer left (pending rollbacks and cleans re-run from their plans, unfinished commits
rolled back, stale marker folders removed; :func:`actions.recover`) -> turn Hudi's metadata table
off if another writer left it on -> ``<t>.commit.requested`` and ``<t>.inflight`` -> executors
write the new base files -> remove files of failed task attempts -> ``<t>.commit`` (table version
9: ``<t>_<completion>.commit``; atomic rename: the commit point) -> clean and archive. A failure
before the commit point rolls the instant back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.hudi import actions, index
from featurestore.hudi.errors import HudiSchemaError
from featurestore.hudi.file_writer import (
    DELETE,
    GROUP,
    INSERT,
    KIND,
    NEW_PREFIX,
    ORD,
    STATS_SCHEMA,
    UPDATE,
    WriteContext,
    make_write_function,
)
from featurestore.hudi.fs_view import BaseFile, FileSystemView
from featurestore.hudi.keys import KeySpec, file_id_of, partition_path_column, record_key_column
from featurestore.hudi.options import DEFAULT_WRITE_TABLE_VERSION, WriteOptions
from featurestore.hudi.schema import (
    META_COLUMNS,
    evolve_schema,
    from_avro_schema,
    to_avro_schema,
    with_meta_fields,
)
from featurestore.hudi.table import (
    TableConfig,
    create_table,
    disable_metadata_table,
    load_table_config,
    table_exists,
)
from featurestore.hudi.timeline import Timeline

SPARK_SCHEMA_KEY = "featurestore.spark.schema"
DEFAULT_RECORD_SIZE = 1024  # bytes, Hudi's hoodie.copyonwrite.record.size.estimate
SEQ, FID = "_fs_seq", "_fs_fid"
BROADCAST_ROWS = 200_000  # incoming batches up to this size are broadcast to the index scan
SMALL_BATCH_ROWS = 50_000  # batches up to this size look their keys up row group by row group
# The driver looks keys up itself when they fall in at most this many row groups (a bounded read of
# one column, ~1M keys); a Spark job costs more than that. Otherwise executors do it.
DRIVER_LOOKUP_ROW_GROUPS = 8
MAX_WRITE_TASKS = 400


@dataclass(frozen=True)
class CommitResult:
    """What one write did. ``instant_time`` is None when there was nothing to write."""

    instant_time: str | None
    operation: str
    action: str = "commit"
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    files_written: int = 0
    partitions: tuple[str, ...] = ()
    replaced_file_groups: int = 0
    rolled_back: tuple[str, ...] = ()
    files_cleaned: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def table_spark_schema(timeline: Timeline, config: TableConfig | None) -> T.StructType | None:
    """The table's Spark schema (data columns): ours exactly, else converted from Avro."""
    for inst in reversed(timeline.completed_commits):
        extra = timeline.read_metadata(inst).get("extraMetadata") or {}
        if extra.get(SPARK_SCHEMA_KEY):
            return T.StructType.fromJson(json.loads(extra[SPARK_SCHEMA_KEY]))
        if extra.get("schema"):
            return from_avro_schema(json.loads(extra["schema"]))
    if config is not None and config.create_schema:
        return from_avro_schema(config.create_schema)
    return None


def _check_columns(df: DataFrame, opts: WriteOptions, delete: bool) -> None:
    names = set(df.columns)
    for role, cols in (("record key", opts.record_key_fields), ("partition path", opts.partition_fields),
                       ("precombine", (opts.precombine_field,) if opts.precombine_field and not delete else ())):
        missing = [c for c in cols if c not in names]
        if missing:
            raise HudiSchemaError(
                f"{role} column(s) {', '.join(repr(c) for c in missing)} not in the data "
                f"(columns: {', '.join(df.columns)})"
            )
    for c in opts.record_key_fields + opts.partition_fields:
        dtype = df.schema[c].dataType
        if isinstance(dtype, T.StructType | T.ArrayType | T.MapType | T.BinaryType):
            raise HudiSchemaError(f"key column '{c}' has type {dtype.simpleString()}; keys must be atomic values")
    clash = [c for c in df.columns if c.startswith("_fs_")]
    if clash:
        raise HudiSchemaError(f"column name(s) {', '.join(clash)} use the reserved prefix '_fs_'")


def write(df: DataFrame, path: str, options: Mapping[str, Any]) -> CommitResult:
    """Write ``df`` to the Hudi copy-on-write table at ``path`` as one commit.

    ``options`` are Hudi's write keys (see :mod:`featurestore.hudi.options`). Returns what the
    commit did. Bad options or data raise before anything is written; a failure during the write
    rolls the instant back, leaving readers on the previous commit.
    """
    opts = WriteOptions.parse(options)
    if opts.engine == "spark-datasource":
        return _write_with_datasource(df, path, opts)
    path = str(path)
    delete = opts.operation == "delete"
    _check_columns(df, opts, delete)
    spark = df.sparkSession
    with actions.table_lock(path, opts.lock_timeout):
        config = load_table_config(path) if table_exists(path) else None
        if config is not None:
            config.check_write_options(opts)
        version = config.version if config is not None else (opts.table_version or DEFAULT_WRITE_TABLE_VERSION)
        timeline = Timeline.load(path, version)
        view = FileSystemView(path, timeline, bool(opts.partition_fields))
        table_schema = table_spark_schema(timeline, config)
        if delete:
            new_schema = table_schema or T.StructType([f for f in df.schema.fields if f.name not in META_COLUMNS])
        else:
            data_schema = T.StructType([f for f in df.schema.fields if f.name not in META_COLUMNS])
            new_schema = evolve_schema(table_schema, data_schema) if table_schema else _nullable(data_schema)
        avro = to_avro_schema(new_schema, opts.table_name)  # raises on types Hudi cannot hold
        spec = KeySpec(opts.record_key_fields, opts.partition_fields, opts.hive_style, opts.url_encode)
        incoming = _prepare(df, spec, opts, new_schema, delete)
        incoming = incoming.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            summary = incoming.agg(
                F.count(F.lit(1)).alias("n"),
                F.sum(F.col("_hoodie_record_key").isNull().cast("long")).alias("null_keys"),
                *[F.sum((F.col(f"`{k}`").isNull() | (F.col(f"`{k}`").cast("string") == "")).cast("long"))
                  .alias(f"_fs_null_{i}") for i, k in enumerate(opts.record_key_fields)],
                F.collect_set("_hoodie_partition_path").alias("partitions"),
                F.min("_hoodie_record_key").alias("min_key"),
                F.max("_hoodie_record_key").alias("max_key"),
            ).first()
            if summary["null_keys"]:
                per_column = ", ".join(
                    f"'{k}' in {summary[f'_fs_null_{i}']} row(s)"
                    for i, k in enumerate(opts.record_key_fields) if summary[f"_fs_null_{i}"])
                raise HudiSchemaError(
                    f"{summary['null_keys']} row(s) have a null or empty record key "
                    f"(null or empty: {per_column}); nothing was written"
                )
            if config is None:
                config = create_table(path, opts, to_avro_schema(new_schema, opts.table_name, create_style=True))
            if summary["n"] == 0:
                return CommitResult(None, opts.operation)
            config = disable_metadata_table(config)
            instant = timeline.new_instant_time()
            # Finish what a killed writer left (rollbacks, unfinished commits, cleans, markers) first.
            recovery = actions.recover(path, timeline, bool(opts.partition_fields), instant)
            rolled = list(recovery.rolled_back)
            if recovery != actions.Recovery():
                timeline = Timeline.load(path)
                view = FileSystemView(path, timeline, bool(opts.partition_fields))
                instant = timeline.new_instant_time()
            plan = WritePlan(spark, path, opts, view, timeline, incoming, summary, new_schema, table_schema)
            result = plan.execute(instant, avro, rolled)
        finally:
            incoming.unpersist()
        return _maintain(path, opts, result)


def _maintain(path: str, opts: WriteOptions, result: CommitResult) -> CommitResult:
    """Clean old file versions and archive old instants after a successful commit."""
    timeline = Timeline.load(path)
    view = FileSystemView(path, timeline, bool(opts.partition_fields))
    cleaned = actions.clean(path, timeline, view, opts.commits_retained, timeline.new_instant_time())
    if cleaned:
        actions.archive(path, Timeline.load(path), opts.keep_max_commits)
    return replace(result, files_cleaned=cleaned)


def _nullable(schema: T.StructType) -> T.StructType:
    return T.StructType([T.StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])


def _prepare(df: DataFrame, spec: KeySpec, opts: WriteOptions, schema: T.StructType, delete: bool) -> DataFrame:
    """Incoming rows in table column order, with record key, partition path and ordering value."""
    # A delete needs only the key (and partition) columns; the others are carried as nulls.
    cols = [F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) if f.name in df.columns
            else F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields]
    ordering = F.col(f"`{opts.precombine_field}`") if opts.precombine_field and not delete else F.lit(0)
    return df.select(
        F.lit(None).cast("string").alias("_hoodie_commit_time"),
        F.lit(None).cast("string").alias("_hoodie_commit_seqno"),
        record_key_column(spec, df.schema).alias("_hoodie_record_key"),
        partition_path_column(spec, df.schema).alias("_hoodie_partition_path"),
        F.lit(None).cast("string").alias("_hoodie_file_name"),
        *cols,
        ordering.alias(ORD),
        F.monotonically_increasing_id().alias(SEQ),
    )


class WritePlan:
    """One write's plan: which incoming rows go to which file group; then the job and the commit.

    Only incoming rows are shuffled: each task reads the current base file of the file groups it
    owns and merges into it (Hudi's merge handle), so stored data is read once and never shuffled.
    """

    def __init__(self, spark: SparkSession, path: str, opts: WriteOptions, view: FileSystemView,
                 timeline: Timeline, incoming: DataFrame, summary: Any, schema: T.StructType,
                 old_schema: T.StructType | None) -> None:
        self.spark = spark
        self.path = path
        self.opts = opts
        self.view = view
        self.timeline = timeline
        self.incoming = incoming
        self.partitions = sorted(summary["partitions"])
        self.rows_in = summary["n"]
        self.key_range = (summary["min_key"], summary["max_key"])
        self.schema = schema
        self.old_schema = old_schema
        self.op = opts.operation
        self.parallelism = max(1, spark.sparkContext.defaultParallelism)
        # Set by the small-batch index lookup: the file ids that get updates, the partitions with new keys.
        self.updated_groups: list[str] | None = None
        self.partitions_with_new_keys: list[str] = []
        self.groups: list[str] | None = None  # every file group the write touches, when known
        self.file_sizes: dict[str, int] = {}
        self.cached: list[DataFrame] = []  # persisted by the plan, released when it ends

    # -- helpers ------------------------------------------------------------------------------
    def _latest(self, partitions: list[str] | None) -> list[BaseFile]:
        existing = set(self.view.partitions()) if self.opts.partition_fields else {""}
        wanted = [p for p in partitions if p in existing] if partitions is not None else None
        return self.view.latest_base_files(wanted)

    def _record_size(self) -> int:
        latest = self.timeline.latest_commit()
        if latest is None:
            return DEFAULT_RECORD_SIZE
        stats = [s for ss in (self.timeline.read_metadata(latest).get("partitionToWriteStats") or {}).values()
                 for s in ss]
        rows = sum(s.get("numWrites") or 0 for s in stats)
        size = sum(s.get("totalWriteBytes") or 0 for s in stats)
        return max(1, size // rows) if rows else DEFAULT_RECORD_SIZE

    def _file_path(self, f: BaseFile) -> str:
        return f"{self.path}/{f.relative_path}"

    def _candidates(self, files: list[BaseFile]) -> list[BaseFile]:
        """Files whose record-key range (from their footer) can hold an incoming key."""
        lo, hi = self.key_range
        out = []
        for f in files:
            fmin, fmax = index.FOOTER_KEY_RANGES.get(self._file_path(f))
            if fmin is None or fmax is None or lo is None or not (fmax < lo or fmin > hi):
                out.append(f)
        return out

    def _tag(self, incoming: DataFrame, files: list[BaseFile]) -> DataFrame:
        """Hudi's SIMPLE index: the file id holding each incoming key (null for a new key)."""
        if not files:
            return incoming.withColumn(FID, F.lit(None).cast("string"))
        if self.rows_in <= SMALL_BATCH_ROWS:
            return incoming.join(F.broadcast(self._lookup_small(incoming, files)),
                                 ["_hoodie_record_key", "_hoodie_partition_path"], "left")
        stored_keys = self.spark.read.schema(
            "_hoodie_record_key string, _hoodie_partition_path string, _hoodie_file_name string"
        ).parquet(*[self._file_path(f) for f in files])
        keys = incoming.select("_hoodie_record_key", "_hoodie_partition_path")
        if self.rows_in <= BROADCAST_ROWS:
            keys = F.broadcast(keys)
        found = stored_keys.join(keys, ["_hoodie_record_key", "_hoodie_partition_path"], "inner").select(
            "_hoodie_record_key", "_hoodie_partition_path", file_id_of(F.col("_hoodie_file_name")).alias(FID))
        return incoming.join(found, ["_hoodie_record_key", "_hoodie_partition_path"], "left")

    def _lookup_small(self, incoming: DataFrame, files: list[BaseFile]) -> DataFrame:
        """The index for a small batch: its keys (at most SMALL_BATCH_ROWS, the size of a broadcast)
        go to the executors, which read only the row groups whose key statistics admit them."""
        wanted: dict[str, set[str]] = {}
        for key, partition in incoming.select("_hoodie_record_key", "_hoodie_partition_path").collect():
            wanted.setdefault(partition, set()).add(key)
        rows = [(self._file_path(f), f.partition, f.file_id) for f in files if f.partition in wanted]
        sorted_keys = {p: sorted(keys) for p, keys in wanted.items()}
        # Which file groups hold incoming keys, and which partitions get new keys: the write job
        # then knows its file groups and packs them into as few tasks as there are cores.
        found_per_partition: dict[str, int] = {}
        on_driver = index.lookup_on_driver(rows, sorted_keys, DRIVER_LOOKUP_ROW_GROUPS)
        if on_driver is not None:
            found = self.spark.createDataFrame(on_driver)  # one record batch: a local relation
            for partition in on_driver.column(1).to_pylist():
                found_per_partition[partition] = found_per_partition.get(partition, 0) + 1
            self.updated_groups = sorted(set(on_driver.column(2).to_pylist()))
        else:
            tasks = self.spark.createDataFrame(rows, index.FILES_SCHEMA)
            found = tasks.mapInArrow(index.make_key_lookup(sorted_keys), index.LOOKUP_SCHEMA)
            found = found.persist(StorageLevel.MEMORY_AND_DISK)
            self.cached.append(found)
            held = found.groupBy("_hoodie_partition_path", FID).count().collect()
            self.updated_groups = sorted({row[FID] for row in held})
            for row in held:
                found_per_partition[row[0]] = found_per_partition.get(row[0], 0) + row["count"]
        self.partitions_with_new_keys = sorted(
            p for p, keys in wanted.items() if len(keys) > found_per_partition.get(p, 0))
        return found

    # -- execution ----------------------------------------------------------------------------
    def execute(self, instant: str, avro: dict, rolled: list[str]) -> CommitResult:
        action = "replacecommit" if self.op.startswith("insert_overwrite") else "commit"
        layout = self.timeline.layout
        inflight = {"partitionToWriteStats": {}, "compacted": False, "extraMetadata": {},
                    "operationType": self.op.upper()}
        actions.request_instant(self.path, instant, action, inflight, layout)
        try:
            rows, old_files, replaced = self._rows()
            stats = self._run(rows, instant, avro, old_files)
            self._remove_failed_attempts(instant, stats)
            for partition in {s["partition"] for s in stats}:
                actions.write_partition_metadata(self.path, partition, instant)
            metadata = self._commit_metadata(stats, avro, replaced, old_files)
            actions.complete_instant(self.path, instant, action, metadata, layout)
        except BaseException:
            timeline = Timeline.load(self.path)
            actions.rollback_pending(self.path, timeline, FileSystemView(self.path, timeline,
                                     bool(self.opts.partition_fields)), timeline.new_instant_time())
            raise
        finally:
            for frame in self.cached:
                frame.unpersist()
        import shutil

        shutil.rmtree(actions.marker_dir(self.path, instant), ignore_errors=True)
        return CommitResult(
            instant_time=instant, operation=self.op, action=action,
            rows_inserted=sum(s["num_inserts"] for s in stats),
            rows_updated=sum(s["num_updates"] for s in stats),
            rows_deleted=sum(s["num_deletes"] for s in stats),
            files_written=len(stats), partitions=tuple(sorted({s["partition"] for s in stats})),
            replaced_file_groups=sum(len(v) for v in replaced.values()), rolled_back=tuple(rolled),
            extra=dict(self.opts.extra_metadata),
        )

    def _rows(self) -> tuple[DataFrame, dict[str, tuple[str, str]], dict[str, list[str]]]:
        """Incoming rows with their target group (file id, or ``new:<partition>``), the current
        base file of every file group that will be merged, and the file groups replaced."""
        op = self.op
        # Duplicate keys of an upsert are combined by the write tasks (a key's rows all go to the task
        # of its file group), which saves a shuffle of the batch.
        incoming = self.incoming
        new_group = F.concat(F.lit(NEW_PREFIX), F.col("_hoodie_partition_path"))
        replaced: dict[str, list[str]] = {}
        if op in ("bulk_insert", "insert_overwrite", "insert_overwrite_table"):
            if op != "bulk_insert":
                scope = None if op == "insert_overwrite_table" else self.partitions
                for f in self._latest(scope):
                    replaced.setdefault(f.partition, []).append(f.file_id)
            rows = incoming.withColumn(GROUP, new_group).withColumn(KIND, F.lit(INSERT))
            # Key ranges per task: new files hold disjoint key ranges, which later upserts prune on.
            rows = rows.repartitionByRange(self.parallelism, "_hoodie_partition_path", "_hoodie_record_key")
            return rows, {}, replaced

        latest = self._latest(self.partitions)
        old_files = {f.file_id: (f.relative_path, f.instant) for f in latest}
        self.file_sizes = {f.file_id: f.size for f in latest}
        if op in ("upsert", "delete"):
            tagged = self._tag(incoming, self._candidates(latest))
        else:
            tagged = incoming.withColumn(FID, F.lit(None).cast("string"))
        if op == "delete":
            if self.updated_groups is not None:
                self.groups = self.updated_groups
            return (tagged.where(F.col(FID).isNotNull()).withColumn(GROUP, F.col(FID))
                    .withColumn(KIND, F.lit(DELETE)), old_files, replaced)
        # New keys fill the smallest small file of their partition when the whole batch fits in it
        # (Hudi's small-file handling); otherwise they start new file groups.
        record_size = self._record_size()
        small: dict[str, str] = {}
        for f in sorted(latest, key=lambda f: f.size):
            fits = f.size + self.rows_in * record_size <= self.opts.max_file_size
            if f.size < self.opts.small_file_limit and fits and f.partition not in small:
                small[f.partition] = f.file_id
        target = new_group
        if small:
            routes = F.create_map(*[F.lit(x) for kv in small.items() for x in kv])
            target = F.coalesce(routes[F.col("_hoodie_partition_path")], new_group)
        if self.updated_groups is not None:
            new_groups = [small.get(p, f"{NEW_PREFIX}{p}") for p in self.partitions_with_new_keys]
            self.groups = sorted(set(self.updated_groups) | set(new_groups))
        rows = (tagged.withColumn(GROUP, F.coalesce(F.col(FID), target))
                .withColumn(KIND, F.lit(UPDATE)))
        return rows, old_files, replaced

    def _run(self, rows: DataFrame, instant: str, avro: dict, old_files: dict[str, tuple[str, str]]) -> list[dict]:
        data_columns = tuple(f.name for f in self.schema.fields)
        if self.op not in ("bulk_insert", "insert_overwrite", "insert_overwrite_table"):
            if self.groups is not None:
                rows = self._pack_groups(rows, self.groups)
            else:
                n = min(MAX_WRITE_TASKS, max(self.parallelism, len(old_files) + len(self.partitions)))
                rows = rows.repartition(n, GROUP)
        rows = rows.select(*META_COLUMNS, *[F.col(f"`{c}`") for c in data_columns], F.col(ORD),
                           F.col(SEQ), F.col(GROUP), F.col(KIND).cast("int").alias(KIND))
        rows = rows.sortWithinPartitions(GROUP, "_hoodie_record_key", F.col(ORD).desc_nulls_last(), F.col(SEQ).desc())
        ctx = WriteContext(
            self.path, instant, self.op, data_columns, json.dumps(with_meta_fields(avro), separators=(",", ":")),
            self.opts.max_file_size, self.opts.precombine_field, old_files=old_files,
            row_group_rows=self.opts.row_group_rows, bloom=self.opts.bloom)
        return [r.asDict() for r in rows.mapInArrow(make_write_function(ctx), STATS_SCHEMA).collect()]

    def _pack_groups(self, rows: DataFrame, groups: list[str]) -> DataFrame:
        """Repartition the rows of a write whose file groups are known into one task per core,
        the file groups spread over them by size (largest first, each to the least loaded task):
        a task costs a fixed fraction of a second, a spliced file group less than that.

        ``repartition(n, col)`` places a row in partition ``pmod(hash(col), n)`` (Spark's Murmur3
        ``hash``); each task gets a number whose hash lands on its own partition.
        """
        n = max(1, min(len(groups), self.parallelism))
        load = [0] * n
        task_of: dict[str, int] = {}
        for g in sorted(groups, key=lambda g: -self.file_sizes.get(g, 0)):
            task = load.index(min(load))
            task_of[g] = task
            load[task] += self.file_sizes.get(g, 0) + 1
        slot_for_task: dict[int, int] = {}
        candidate = 0
        while len(slot_for_task) < n:
            slot_for_task.setdefault(spark_hash_long(candidate) % n, candidate)
            candidate += 1
        slot = F.create_map(*[x for g, t in task_of.items() for x in (F.lit(g), F.lit(slot_for_task[t]).cast("long"))])
        return rows.withColumn("_fs_slot", slot[F.col(GROUP)]).repartition(n, "_fs_slot").drop("_fs_slot")

    def _remove_failed_attempts(self, instant: str, stats: list[dict]) -> None:
        """Delete files a failed or speculative task attempt left behind for this instant."""
        import os

        kept = {f"{s['partition']}/{s['file_name']}" if s["partition"] else s["file_name"] for s in stats}
        for rel in actions.marked_files(self.path, instant):
            if rel not in kept:
                try:
                    os.remove(f"{self.path}/{rel}")
                except FileNotFoundError:
                    pass

    def _commit_metadata(self, stats: list[dict], avro: dict, replaced: dict[str, list[str]],
                         old_files: dict[str, tuple[str, str]]) -> dict:
        by_partition: dict[str, list[dict]] = {}
        for s in sorted(stats, key=lambda s: (s["partition"], s["file_id"])):
            rel = f"{s['partition']}/{s['file_name']}" if s["partition"] else s["file_name"]
            by_partition.setdefault(s["partition"], []).append({
                "fileId": s["file_id"], "path": rel, "cdcStats": None, "prevCommit": s["prev_commit"],
                "numWrites": s["num_writes"], "numDeletes": s["num_deletes"], "numUpdateWrites": s["num_updates"],
                "numInserts": s["num_inserts"], "totalWriteBytes": s["file_size"], "totalWriteErrors": 0,
                "tempPath": None, "partitionPath": s["partition"], "totalLogRecords": 0,
                "totalLogFilesCompacted": 0, "totalLogSizeCompacted": 0, "totalUpdatedRecordsCompacted": 0,
                "totalLogBlocks": 0, "totalCorruptLogBlock": 0, "totalRollbackBlocks": 0,
                "fileSizeInBytes": s["file_size"], "minEventTime": None, "maxEventTime": None,
                "runtimeStats": {"totalScanTime": 0,
                                 "totalUpsertTime": s["write_ms"] if s["prev_commit"] != "null" else 0,
                                 "totalCreateTime": s["write_ms"] if s["prev_commit"] == "null" else 0},
            })
            if self.timeline.layout == 2:
                # Hudi 1.x records the base file a merge replaced (its Avro write stats have the field)
                previous = old_files.get(s["file_id"]) if s["prev_commit"] != "null" else None
                by_partition[s["partition"]][-1]["prevBaseFile"] = previous[0].rsplit("/", 1)[-1] if previous else None
        extra = {"schema": json.dumps(avro, separators=(",", ":")), SPARK_SCHEMA_KEY: self.schema.json()}
        extra.update(self.opts.extra_metadata)
        metadata: dict[str, Any] = {"partitionToWriteStats": by_partition, "compacted": False,
                                    "extraMetadata": extra, "operationType": self.op.upper()}
        if replaced:
            metadata["partitionToReplaceFileIds"] = replaced
        elif self.op.startswith("insert_overwrite"):
            metadata["partitionToReplaceFileIds"] = {}
        return metadata


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


def spark_hash_long(value: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of a long (Murmur3 x86_32 over its two 32-bit halves, seed 42), as a
    signed 32-bit int: what ``repartition(n, col)`` hashes to place a row."""
    h = seed
    for half in (value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF):
        k = _rotl32((half * 0xCC9E2D51) & 0xFFFFFFFF, 15) * 0x1B873593 & 0xFFFFFFFF
        h = (_rotl32(h ^ k, 13) * 5 + 0xE6546B64) & 0xFFFFFFFF
    h ^= 8
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def _write_with_datasource(df: DataFrame, path: str, opts: WriteOptions) -> CommitResult:
    """Hand the write to Spark's Hudi datasource (clusters with the Hudi bundle; not run in CI)."""
    hudi_opts = {k: v for k, v in opts.raw.items() if k.startswith("hoodie.")}
    df.write.format("hudi").options(**hudi_opts).mode("append").save(path)
    latest = Timeline.load(path).latest_commit()
    return CommitResult(latest.timestamp if latest else None, opts.operation)


def clean(path: str, commits_retained: int, lock_timeout: float = 60.0) -> int:
    """Clean file versions no longer needed to read the last ``commits_retained`` commits (recorded as a
    Hudi clean instant) and archive old instants; returns the number of files removed.

    First finishes what a killed writer left: pending rollbacks and cleans run again from their plans,
    unfinished commits are rolled back, marker folders of finished instants are removed.
    """
    from featurestore.hudi.table import load_table_config

    if commits_retained < 1:
        raise ValueError(f"commits_retained must be at least 1, got {commits_retained}")
    config = load_table_config(path)
    config.check_writable()
    with actions.table_lock(path, lock_timeout):
        timeline = Timeline.load(path)
        recovery = actions.recover(path, timeline, bool(config.partition_fields), timeline.new_instant_time())
        timeline = Timeline.load(path)
        view = FileSystemView(path, timeline, bool(config.partition_fields))
        cleaned = actions.clean(path, timeline, view, commits_retained, timeline.new_instant_time())
        if cleaned or recovery != actions.Recovery():
            actions.archive(path, Timeline.load(path))
    return cleaned + recovery.files_cleaned
