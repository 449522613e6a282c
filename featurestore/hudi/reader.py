"""Snapshot, time-travel and incremental reads as Spark DataFrames.

Copy-on-write tables with parquet base files (version 6, and versions 8 and 9 that the native
engine wrote into) are planned here from the timeline and the file listing, and scanned by Spark's
own parquet reader in parallel. Other tables (versions 8 and 9 only Apache Hudi wrote,
merge-on-read, Lance base files) are planned by hudi-rs, and each file slice is read (base file
merged with its log files) by hudi-rs's file-group reader inside a Spark task.

Incremental windows ``(begin, end]`` compare commit times as Hudi does: instant times on layout 1
(table version 6), completion times on layout 2 (versions 8 and 9). Time travel (``as.of.instant``)
compares instant (requested) times on both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.hudi import actions
from featurestore.hudi.errors import HudiError, HudiInstantNotReadable
from featurestore.hudi.fs_view import FileSystemView
from featurestore.hudi.options import ReadOptions
from featurestore.hudi.schema import META_SCHEMA
from featurestore.hudi.table import TableConfig, load_table_config
from featurestore.hudi.timeline import Instant, Timeline, normalize_instant
from featurestore.hudi.writer import table_spark_schema


def read(spark: SparkSession, path: str, options: Mapping[str, Any] | None = None) -> DataFrame:
    """Read the Hudi table at ``path``; meta columns first, as Hudi returns them.

    Options: ``hoodie.datasource.query.type`` (``snapshot`` or ``incremental``), ``as.of.instant``
    (an instant or a timestamp such as ``2024-01-31 12:00:00``, UTC), and for incremental reads
    ``hoodie.datasource.read.begin.instanttime`` (exclusive) and
    ``hoodie.datasource.read.end.instanttime`` (inclusive).
    """
    ropts = ReadOptions.parse(options)
    if ropts.engine == "spark-datasource":
        return _read_with_datasource(spark, path, options or {})
    path = os.path.abspath(str(path))
    config = load_table_config(path)
    base_format = config.props.get("hoodie.table.base.file.format", "PARQUET").upper()
    if base_format not in ("PARQUET", "LANCE"):
        # The native planner lists only .parquet files: it would return no rows, not an error.
        raise HudiError(f"table {path} stores its base files as {base_format}; "
                        "this reader reads PARQUET and LANCE base files only")
    if config.table_type == "COPY_ON_WRITE" and base_format == "PARQUET" and (
            config.version == 6 or _written_by_native_engine(path, config)):
        return _read_native(spark, path, config, ropts)
    return _read_with_hudi_rs(spark, path, config, ropts)


def _written_by_native_engine(path: str, config: TableConfig) -> bool:
    """Whether a commit of the active timeline was written by the native engine (its Spark schema
    is in the commit metadata). Such version 8/9 tables are planned natively, like version 6; tables
    only Apache Hudi wrote stay with hudi-rs's planner, which handles what Hudi's writers do beyond
    ours (e.g. timestamp-based key generators whose file types differ from the recorded schema)."""
    tl = Timeline.load(path, config.version)
    return any("featurestore.spark.schema" in (tl.read_metadata(i).get("extraMetadata") or {})
               for i in reversed(tl.completed_commits))


def timeline(path: str) -> list[dict[str, Any]]:
    """Completed instants of the table, oldest first: time, action, operation and row counts."""
    config = load_table_config(str(path))
    tl = Timeline.load(str(path), config.version)
    out = []
    for inst in tl.completed:
        entry: dict[str, Any] = {"instant": inst.timestamp, "action": inst.action,
                                 "completion_time": inst.completion_time or inst.timestamp}
        if inst.is_commit:
            meta = tl.read_metadata(inst)
            stats = [s for ss in (meta.get("partitionToWriteStats") or {}).values() for s in ss or []]
            entry.update(
                operation=str(meta.get("operationType") or "").lower(),
                rows_inserted=sum(s.get("numInserts") or 0 for s in stats),
                rows_updated=sum(s.get("numUpdateWrites") or 0 for s in stats),
                rows_deleted=sum(s.get("numDeletes") or 0 for s in stats),
                rows_written=sum(s.get("numWrites") or 0 for s in stats),
                files=len(stats),
                extra_metadata={k: v for k, v in (meta.get("extraMetadata") or {}).items()
                                if k not in ("schema", "featurestore.spark.schema")},
            )
        out.append(entry)
    return out


def _empty(spark: SparkSession, schema: T.StructType) -> DataFrame:
    return spark.createDataFrame(spark.sparkContext.emptyRDD(), schema)


def _read_native(spark: SparkSession, path: str, config: TableConfig, ropts: ReadOptions) -> DataFrame:
    tl = Timeline.load(path, config.version)
    view = FileSystemView(path, tl, bool(config.partition_fields))
    data_schema = table_spark_schema(tl, config) or T.StructType([])
    schema = T.StructType(list(META_SCHEMA.fields) + list(data_schema.fields))
    row_filter = None
    if ropts.query_type == "incremental":
        begin = normalize_instant(ropts.begin)
        latest = tl.latest_commit()
        end = normalize_instant(ropts.end) if ropts.end else (
            (latest.completion_time or latest.timestamp) if latest else begin)
        commits = tl.commits_between(begin, end)
        # the newest instant time in the window: file versions are named by instant, not completion
        last = max((c.timestamp for c in commits), default=None)
        if commits:
            actions.check_readable(tl, last, "an incremental read")
        files = _incremental_files(tl, view, commits, last) if commits else []
        if config.populate_meta_fields:
            # Without meta fields _hoodie_commit_time is null: keep every row of the touched
            # file groups, as hudi-rs (and the hudi-rs path below) does.
            row_filter = F.col("_hoodie_commit_time").isin([c.timestamp for c in commits])
    else:
        as_of = normalize_instant(ropts.as_of) if ropts.as_of else None
        if as_of is not None:
            commit = tl.commit_at_or_before(as_of)
            if commit is not None:
                actions.check_readable(tl, commit.timestamp)
            elif tl.completed_commits:
                # Before the first active commit: fine for a new table, not after cleaning.
                earliest = actions.earliest_retained_commit(tl)
                if earliest is not None:
                    raise HudiInstantNotReadable(
                        f"time travel to {as_of} is not possible: the cleaner removed those file versions; "
                        f"the oldest readable commit is {earliest}")
        files = [f"{path}/{f.relative_path}" for f in view.latest_base_files(as_of=as_of)]
    if not files:
        df = _empty(spark, schema)
    else:
        df = spark.read.schema(schema).parquet(*files)
        if row_filter is not None:
            df = df.where(row_filter)
    if not config.populate_meta_fields:
        df = df.drop(*META_SCHEMA.fieldNames())
    return df


def _incremental_files(tl: Timeline, view: FileSystemView, commits: list[Instant], end: str) -> list[str]:
    """The latest base file (as of ``end``) of every file group the commits wrote."""
    touched: set[tuple[str, str]] = set()
    for inst in commits:
        meta = tl.read_metadata(inst)
        for partition, stats in (meta.get("partitionToWriteStats") or {}).items():
            for s in stats or []:
                if s.get("fileId"):
                    touched.add((partition, s["fileId"]))
    partitions = sorted({p for p, _ in touched})
    groups = view.file_groups(partitions if view.partitioned else None, as_of=end)
    return [f"{view.base_path}/{groups[k][-1].relative_path}" for k in sorted(touched) if k in groups]


# -- other table versions and merge-on-read, through hudi-rs ------------------------------------

def _read_with_hudi_rs(spark: SparkSession, path: str, config: TableConfig, ropts: ReadOptions) -> DataFrame:
    from hudi import HudiQueryType, HudiReadOptions, HudiTableBuilder
    from pyspark.sql.pandas.types import from_arrow_schema

    table = HudiTableBuilder.from_base_uri(path).build()
    tl = Timeline.load(path, config.version)
    opts = HudiReadOptions()
    row_filter = None
    latest = tl.latest_commit()
    if ropts.query_type == "incremental":
        begin = normalize_instant(ropts.begin)
        end = normalize_instant(ropts.end) if ropts.end else (
            (latest.completion_time or latest.timestamp) if latest else begin)
        opts = opts.with_query_type(HudiQueryType.Incremental).with_start_timestamp(begin).with_end_timestamp(end)
        commits = tl.commits_between(begin, end)
        row_filter = F.col("_hoodie_commit_time").isin([c.timestamp for c in commits])
        end_ts = max((c.timestamp for c in commits), default=begin)
    elif ropts.as_of:
        end_ts = normalize_instant(ropts.as_of)
        opts = opts.with_as_of_timestamp(end_ts)
    else:
        end_ts = latest.timestamp if latest else None
    arrow_schema = (table.get_schema_with_meta_fields() if config.populate_meta_fields else table.get_schema())
    schema = from_arrow_schema(arrow_schema)
    if latest is None or (ropts.query_type == "incremental" and row_filter is not None and not commits):
        return _empty(spark, schema)
    slices = [(s.base_file_relative_path(), list(s.log_files_relative_paths())) for s in table.get_file_slices(opts)]
    if not slices:
        return _empty(spark, schema)
    # An Arrow table (one non-empty chunk: pyspark 4.1 drops rows after an empty batch) avoids the
    # extra Python tasks that a DataFrame built from a Python list costs.
    plan = pa.table({"base": [b for b, _ in slices], "logs": [list(logs) for _, logs in slices]},
                    schema=pa.schema([("base", pa.string()), ("logs", pa.list_(pa.string()))])).combine_chunks()
    tasks = spark.createDataFrame(plan).repartition(min(len(slices), max(1, spark.sparkContext.defaultParallelism)))
    df = tasks.mapInArrow(_slice_reader(path, end_ts, arrow_schema), schema)
    if row_filter is not None and config.populate_meta_fields:
        df = df.where(row_filter)
    return df


def _slice_reader(base_uri: str, end_ts: str | None, arrow_schema: pa.Schema):
    def read_slices(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from hudi import HudiFileGroupReader

        options = {"hoodie.read.end.timestamp": end_ts} if end_ts else {}
        reader = HudiFileGroupReader(base_uri, options)
        for batch in batches:
            for base, logs in zip(batch.column("base").to_pylist(), batch.column("logs").to_pylist(), strict=True):
                out = reader.read_file_slice_from_paths(base, logs or [])
                if out.num_rows == 0:
                    continue  # empty batches must never reach Spark's Arrow conversion
                table = pa.Table.from_batches([out]).select(arrow_schema.names).cast(arrow_schema)
                yield from (b for b in table.to_batches() if b.num_rows)

    return read_slices


def _read_with_datasource(spark: SparkSession, path: str, options: Mapping[str, Any]) -> DataFrame:
    """Spark's Hudi datasource (clusters with the Hudi bundle; not run in CI)."""
    opts = {k: str(v) for k, v in options.items() if k != "engine"}
    return spark.read.format("hudi").options(**opts).load(str(path))
