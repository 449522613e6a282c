"""The materializer: keeps an online table equal to the latest offline snapshot, from the Hudi timeline.

``full``: upsert the whole snapshot, then delete online keys that are absent offline.
``incremental``: upsert the rows written by the commits since the last materialized commit and,
when those commits deleted or replaced rows, delete the keys that disappeared. The mark (last
materialized commit) is written to the registry only after every online write succeeded; the
upsert guard makes a rerun from the previous mark converge to the same table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore import offline
from featurestore.errors import OfflineStoreError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import CommitInfo, FeatureGroupRecord
from featurestore.names import spark_column
from featurestore.online.store import COMMIT_COL, OnlineStore, now_instant
from featurestore.online.types import OnlineStoreError, from_db, kind_of, to_db
from featurestore.online.writer import run_statement

FIRST_INSTANT = "19700101000000000"


def store_of(ctx: StoreContext) -> OnlineStore:
    """The online store of the feature store."""
    return ctx.online_store


def ttl_cutoff(record: FeatureGroupRecord, now: dt.datetime | None = None) -> Any:
    """Oldest event time still served (in the event-time column's type), or None without TTL."""
    ttl = record.online_ttl
    if ttl is None or not record.event_time:
        return None
    cutoff = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None) - dt.timedelta(seconds=ttl)
    kind = kind_of(record.get_feature(record.event_time).data_type)
    if kind == "timestamp":
        return cutoff
    if kind == "date":
        return cutoff.date()
    return int((cutoff - dt.datetime(1970, 1, 1)).total_seconds())  # long/int event time: epoch seconds


def latest_per_key(record: FeatureGroupRecord, df: DataFrame) -> DataFrame:
    """One row per primary key: the highest ordering value (NULL lowest), then the latest commit."""
    order = [spark_column(record.ordering_key).desc_nulls_last()] if record.ordering_key else []
    w = Window.partitionBy(*[spark_column(k) for k in record.primary_key]).orderBy(*order, F.col(COMMIT_COL).desc())
    return df.withColumn("_fs_rank", F.row_number().over(w)).where("_fs_rank = 1").drop("_fs_rank")


def latest_per_key_of_read(record: FeatureGroupRecord, df: DataFrame) -> DataFrame:
    """:func:`latest_per_key` of rows read from the feature group's Hudi table (snapshot or incremental).

    Such a read has one row per record key and partition path (the latest file slice of each file
    group), so when the partition columns are part of the primary key (or there are none) every
    primary key is there once already and the window, a shuffle of every row, is skipped.
    """
    if set(record.partition_key) <= set(record.primary_key):
        return df
    return latest_per_key(record, df)


def _online_frame(record: FeatureGroupRecord, df: DataFrame, commit: Any,
                  commit_column: str | None = None) -> DataFrame:
    """``df`` as the online columns: features in registry order plus the commit time (the literal
    ``commit``, else the offline read's ``commit_column``)."""
    have = set(df.columns)
    cols = [spark_column(f.name) if f.name in have else F.lit(None).cast(f.data_type).alias(f.name)
            for f in record.features]
    stamp = F.lit(commit) if commit is not None else spark_column(str(commit_column))
    return df.select(*cols, stamp.alias(COMMIT_COL))


def upsert(ctx: StoreContext, record: FeatureGroupRecord, df: DataFrame) -> int:
    """Upsert an online frame (features + commit time, one row per key) from the executors."""
    store = store_of(ctx)
    store.ensure_table(record)
    schema = T.StructType(list(record.schema.fields) + [T.StructField(COMMIT_COL, T.StringType())])
    sql = store.upsert_sql(record, record.feature_names)
    return run_statement(df, store.conn, sql, schema, store.batch_size, store.max_connections)


def delete_keys(ctx: StoreContext, record: FeatureGroupRecord, keys: DataFrame) -> int:
    """Delete the primary keys in ``keys`` from the online table, from the executors."""
    store = store_of(ctx)
    store.ensure_table(record)
    schema = T.StructType([record.schema[k] for k in record.primary_key])
    keys = keys.select(*[spark_column(k).cast(schema[k].dataType).alias(k) for k in record.primary_key]).distinct()
    return run_statement(keys, store.conn, store.delete_sql(record), schema, store.batch_size, store.max_connections,
                         affected=True)


def write_batch(ctx: StoreContext, record: FeatureGroupRecord, df: DataFrame) -> dict[str, Any]:
    """``insert(df, storage="online")``: the batch's latest row per key, stamped with the current time."""
    commit = now_instant()
    rows = latest_per_key(record, _online_frame(record, df, commit))
    return {"rows": upsert(ctx, record, rows), "commit_time": commit}


def sync_range(ctx: StoreContext, record: FeatureGroupRecord, begin: str, end: str,
               commits: list[CommitInfo] | None = None) -> dict[str, Any]:
    """Apply the offline commits in (begin, end] to the online table (does not move the mark).

    ``commits``: the table's commit list if the caller has just read it (one timeline read per write).
    """
    table = offline.open_table(ctx, record)
    in_range = [c for c in (commits if commits is not None else table.commits()) if begin < c.commit_id <= end]
    changes = _online_frame(record, table.read_changes(begin, end, include_meta=True), None, table.commit_column)
    changes = latest_per_key_of_read(record, changes)
    deleted = 0
    if any(c.removes_rows for c in in_range):
        pk = list(record.primary_key)
        snapshot = True
        try:
            # "not the sentinel", not "after it": a format's commit ids need not sort after a 1970 instant
            before = table.read(as_of=begin) if begin != FIRST_INSTANT else None
        except OfflineStoreError:  # the begin commit was cleaned: compare with what is online instead
            before, snapshot = online_keys(ctx, record), False
        if before is not None:
            after = table.read(as_of=end).select(*pk)
            gone = before.select(*pk).join(after, pk, "left_anti")
            if record.ordering_key and snapshot:
                # deleted then re-inserted with an older event: the guard would keep the stale row
                ordering = spark_column(record.ordering_key)
                old = before.select(*pk, ordering.alias("_fs_old"))
                gone = gone.unionByName(old.join(changes.select(*pk, ordering.alias("_fs_new")), pk)
                                        .where(F.col("_fs_old") > F.col("_fs_new")).select(*pk))
            deleted = delete_keys(ctx, record, gone)
    return {"rows": upsert(ctx, record, changes), "deleted": deleted}


def online_keys(ctx: StoreContext, record: FeatureGroupRecord) -> DataFrame:
    """The primary keys currently online, as a Spark DataFrame."""
    return read_online(ctx, record, columns=list(record.primary_key))


def purge_expired(ctx: StoreContext, record: FeatureGroupRecord) -> int:
    """Delete online rows whose event time is older than the feature group's TTL; rows deleted."""
    cutoff = ttl_cutoff(record)
    if cutoff is None:
        return 0
    store = store_of(ctx)
    store.ensure_table(record)
    value = to_db(record.get_feature(record.event_time).data_type, store.dialect)(cutoff)
    conn = store.conn.connect()
    try:
        cur = store.conn.cursor(conn)
        cur.execute(f"DELETE FROM {store.table(record)} WHERE {store.q(record.event_time)} < {store.param()}", (value,))  # noqa: S608 - identifiers checked and quoted
        conn.commit()
        return cur.rowcount
    finally:
        conn.close()


def materialize(ctx: StoreContext, record: FeatureGroupRecord, mode: str = "incremental") -> dict[str, Any]:
    """Bring the online table of a feature group up to the latest offline commit; returns what was done."""
    if mode not in ("incremental", "full"):
        raise OnlineStoreError(f"unknown materialization mode {mode!r}; use 'incremental' or 'full'")
    if not record.online_enabled:
        raise OnlineStoreError(f"feature group {record.label} is not online-enabled")
    registry = ctx.registry
    state = registry.online_state(record.id) or {}
    mark = state.get("last_commit")
    table = offline.open_table(ctx, record)
    commits = table.commits() if record.features else []
    report: dict[str, Any] = {"feature_group": record.name, "version": record.version, "mode": mode, "begin": mark,
                              "end": mark, "rows": 0, "deleted": 0, "expired": 0}
    if not commits:
        return report
    end = commits[-1].commit_id
    if mode == "incremental" and (mark is None or mark not in {c.commit_id for c in commits}):
        mode = report["mode"] = "full"  # nothing materialized yet, or the mark left the timeline
    pk = list(record.primary_key)
    if mode == "full":
        snapshot = _online_frame(record, table.read(as_of=end, include_meta=True), None, table.commit_column)
        report["rows"] = upsert(ctx, record, latest_per_key_of_read(record, snapshot))
        offline_keys = table.read(as_of=end).select(*pk)
        report["deleted"] = delete_keys(ctx, record, online_keys(ctx, record).join(offline_keys, pk, "left_anti"))
    elif end > mark:
        report.update(sync_range(ctx, record, mark, end, commits))
    report["expired"] = purge_expired(ctx, record)
    report["end"] = end
    registry.set_online_state(record.id, last_commit=end, mode=mode, rows_written=report["rows"],
                              rows_deleted=report["deleted"] + report["expired"])
    return report


def read_online(ctx: StoreContext, record: FeatureGroupRecord, columns: list[str] | None = None) -> DataFrame:
    """The online table as a Spark DataFrame in the offline types: Spark JDBC on MariaDB/MySQL; on
    SQLite the rows are read on the driver (quick-start sizes)."""
    store = store_of(ctx)
    spark = ctx.spark
    names = columns or record.feature_names
    schema = T.StructType([record.schema[c] for c in names])
    if not store.table_exists(record):
        return spark.createDataFrame([], schema)
    if store.dialect == "sqlite":
        convs = [from_db(f.dataType, "sqlite") for f in schema.fields]
        conn = store.conn.connect()
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT {', '.join(store.q(c) for c in names)} FROM {store.table(record)}")  # noqa: S608 - identifiers checked and quoted
            rows = [tuple(c(v) for c, v in zip(convs, r, strict=True)) for r in cur.fetchall()]
        finally:
            conn.close()
        return spark.createDataFrame(rows, schema)
    reader = (spark.read.format("jdbc").option("url", store.jdbc_url()).option("driver", "org.mariadb.jdbc.Driver")
              .option("query", f"SELECT {', '.join(store.q(c) for c in names)} FROM {store.table(record)}")  # noqa: S608 - identifiers checked and quoted
              .option("user", store.conn.user or ""))
    if store.conn.password:
        reader = reader.option("password", store.conn.password)
    df = reader.load()
    out = []
    for f in schema.fields:
        col = spark_column(f.name)
        if kind_of(f.dataType) == "json":
            col = F.from_json(col, f.dataType)
        out.append(col.cast(f.dataType).alias(f.name))
    return df.select(*out)
