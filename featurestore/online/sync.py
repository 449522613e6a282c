"""The materializer: keeps an online table equal to the latest offline snapshot, from the Hudi timeline.

``full``: upsert the whole snapshot, then delete online keys that are absent offline.
``incremental``: upsert the rows written by the commits since the last materialized commit and,
when those commits deleted or replaced rows, delete the keys that disappeared. The mark (last
materialized commit) is written to the registry only after every online write succeeded; the
upsert guard makes a rerun from the previous mark converge to the same table.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore import hudi
from featurestore.hudi.errors import HudiError
from featurestore.online.store import COMMIT_COL, OnlineStore, now_instant
from featurestore.online.types import OnlineStoreError, from_db, kind_of, to_db
from featurestore.online.writer import run_statement

if TYPE_CHECKING:
    from featurestore.feature_group import FeatureGroup

DELETING_OPERATIONS = {"delete", "insert_overwrite", "insert_overwrite_table", "delete_partition"}
FIRST_INSTANT = "19700101000000000"


def store_of(fg: FeatureGroup) -> OnlineStore:
    """The online store of the feature group's feature store."""
    return fg._fs.online_store


def ttl_seconds(fg: FeatureGroup) -> int | None:
    """The feature group's online TTL in seconds, if any."""
    return (fg._record.get("options") or {}).get("online_ttl_seconds")


def ttl_cutoff(fg: FeatureGroup, now: dt.datetime | None = None) -> Any:
    """Oldest event time still served (in the event-time column's type), or None without TTL."""
    ttl = ttl_seconds(fg)
    if ttl is None or not fg.event_time:
        return None
    cutoff = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None) - dt.timedelta(seconds=ttl)
    kind = kind_of(fg.get_feature(fg.event_time).data_type)
    if kind == "timestamp":
        return cutoff
    if kind == "date":
        return cutoff.date()
    return int((cutoff - dt.datetime(1970, 1, 1)).total_seconds())  # long/int event time: epoch seconds


def _commits(fg: FeatureGroup) -> list[dict[str, Any]]:
    return [e for e in hudi.timeline(fg.location) if e["action"] in ("commit", "replacecommit")]


def latest_per_key(fg: FeatureGroup, df: DataFrame) -> DataFrame:
    """One row per primary key: the highest ordering value (NULL lowest), then the latest commit."""
    order = [F.col(f"`{fg.precombine_key}`").desc_nulls_last()] if fg.precombine_key else []
    w = Window.partitionBy(*[F.col(f"`{k}`") for k in fg.primary_key]).orderBy(*order, F.col(COMMIT_COL).desc())
    return df.withColumn("_fs_rank", F.row_number().over(w)).where("_fs_rank = 1").drop("_fs_rank")


def latest_per_key_of_read(fg: FeatureGroup, df: DataFrame) -> DataFrame:
    """:func:`latest_per_key` of rows read from the feature group's Hudi table (snapshot or incremental).

    Such a read has one row per record key and partition path (the latest file slice of each file
    group), so when the partition columns are part of the primary key (or there are none) every
    primary key is there once already and the window, a shuffle of every row, is skipped.
    """
    if set(fg.partition_key) <= set(fg.primary_key):
        return df
    return latest_per_key(fg, df)


def _online_frame(fg: FeatureGroup, df: DataFrame, commit: Any) -> DataFrame:
    """``df`` as the online columns: features in registry order plus the commit time."""
    have = set(df.columns)
    cols = [F.col(f"`{f.name}`") if f.name in have else F.lit(None).cast(f.data_type).alias(f.name)
            for f in fg.features]
    return df.select(*cols, (F.col("_hoodie_commit_time") if commit is None else F.lit(commit)).alias(COMMIT_COL))


def upsert(fg: FeatureGroup, df: DataFrame) -> int:
    """Upsert an online frame (features + commit time, one row per key) from the executors."""
    store = store_of(fg)
    store.ensure_table(fg)
    schema = T.StructType(list(fg.schema.fields) + [T.StructField(COMMIT_COL, T.StringType())])
    sql = store.upsert_sql(fg, [f.name for f in fg.features])
    return run_statement(df, store.conn, sql, schema, store.batch_size, store.max_connections)


def delete_keys(fg: FeatureGroup, keys: DataFrame) -> int:
    """Delete the primary keys in ``keys`` from the online table, from the executors."""
    store = store_of(fg)
    store.ensure_table(fg)
    schema = T.StructType([fg.schema[k] for k in fg.primary_key])
    keys = keys.select(*[F.col(f"`{k}`").cast(schema[k].dataType).alias(k) for k in fg.primary_key]).distinct()
    return run_statement(keys, store.conn, store.delete_sql(fg), schema, store.batch_size, store.max_connections,
                         affected=True)


def write_batch(fg: FeatureGroup, df: DataFrame) -> dict[str, Any]:
    """``insert(df, storage="online")``: the batch's latest row per key, stamped with the current time."""
    commit = now_instant()
    rows = latest_per_key(fg, _online_frame(fg, df, commit))
    return {"rows": upsert(fg, rows), "commit_time": commit}


def sync_range(fg: FeatureGroup, begin: str, end: str) -> dict[str, Any]:
    """Apply the offline commits in (begin, end] to the online table (does not move the mark)."""
    commits = [c for c in _commits(fg) if begin < c["instant"] <= end]
    changes = _online_frame(fg, fg.read_changes(begin, end, include_meta=True), None)
    changes = latest_per_key_of_read(fg, changes)
    deleted = 0
    if any(c["action"] == "replacecommit" or c["rows_deleted"] or (c["operation"] or "") in DELETING_OPERATIONS
           for c in commits):
        pk = fg.primary_key
        snapshot = True
        try:
            before = fg.read(as_of=begin) if begin > FIRST_INSTANT else None
        except HudiError:  # the begin instant was cleaned: compare with what is online instead
            before, snapshot = online_keys(fg), False
        if before is not None:
            after = fg.read(as_of=end).select(*pk)
            gone = before.select(*pk).join(after, pk, "left_anti")
            if fg.precombine_key and snapshot:
                # deleted then re-inserted with an older event: the guard would keep the stale row
                o = fg.precombine_key
                old = before.select(*pk, F.col(f"`{o}`").alias("_fs_old"))
                gone = gone.unionByName(old.join(changes.select(*pk, F.col(f"`{o}`").alias("_fs_new")), pk)
                                        .where(F.col("_fs_old") > F.col("_fs_new")).select(*pk))
            deleted = delete_keys(fg, gone)
    return {"rows": upsert(fg, changes), "deleted": deleted}


def online_keys(fg: FeatureGroup) -> DataFrame:
    """The primary keys currently online, as a Spark DataFrame."""
    return read_online(fg, columns=fg.primary_key)


def purge_expired(fg: FeatureGroup) -> int:
    """Delete online rows whose event time is older than the feature group's TTL; rows deleted."""
    cutoff = ttl_cutoff(fg)
    if cutoff is None:
        return 0
    store = store_of(fg)
    store.ensure_table(fg)
    value = to_db(fg.get_feature(fg.event_time).data_type, store.dialect)(cutoff)
    conn = store.conn.connect()
    try:
        cur = store.conn.cursor(conn)
        cur.execute(f"DELETE FROM {store.table(fg)} WHERE {store.q(fg.event_time)} < {store.param()}", (value,))  # noqa: S608 - identifiers checked and quoted
        conn.commit()
        return cur.rowcount
    finally:
        conn.close()


def materialize(fg: FeatureGroup, mode: str = "incremental") -> dict[str, Any]:
    """Bring the online table of ``fg`` up to the latest offline commit; returns what was done."""
    if mode not in ("incremental", "full"):
        raise OnlineStoreError(f"unknown materialization mode {mode!r}; use 'incremental' or 'full'")
    if not fg.online_enabled:
        raise OnlineStoreError(f"feature group '{fg.name}' v{fg.version} is not online-enabled")
    registry = fg._fs.registry
    state = registry.online_state(fg.id) or {}
    mark = state.get("last_commit")
    commits = _commits(fg) if fg.features else []
    report: dict[str, Any] = {"feature_group": fg.name, "version": fg.version, "mode": mode, "begin": mark,
                              "end": mark, "rows": 0, "deleted": 0, "expired": 0}
    if not commits:
        return report
    end = commits[-1]["instant"]
    if mode == "incremental" and (mark is None or mark not in {c["instant"] for c in commits}):
        mode = report["mode"] = "full"  # nothing materialized yet, or the mark left the timeline
    if mode == "full":
        snapshot = _online_frame(fg, fg.read(as_of=end, include_meta=True), None)
        report["rows"] = upsert(fg, latest_per_key_of_read(fg, snapshot))
        offline = fg.read(as_of=end).select(*fg.primary_key)
        report["deleted"] = delete_keys(fg, online_keys(fg).join(offline, fg.primary_key, "left_anti"))
    elif end > mark:
        report.update(sync_range(fg, mark, end))
    report["expired"] = purge_expired(fg)
    report["end"] = end
    registry.set_online_state(fg.id, last_commit=end, mode=mode, rows_written=report["rows"],
                              rows_deleted=report["deleted"] + report["expired"])
    return report


def read_online(fg: FeatureGroup, columns: list[str] | None = None) -> DataFrame:
    """The online table as a Spark DataFrame in the offline types: Spark JDBC on MariaDB/MySQL; on
    SQLite the rows are read on the driver (quick-start sizes)."""
    store = store_of(fg)
    spark = fg._fs.spark
    names = columns or [f.name for f in fg.features]
    schema = T.StructType([fg.schema[c] for c in names])
    if not store.table_exists(fg):
        return spark.createDataFrame([], schema)
    if store.dialect == "sqlite":
        convs = [from_db(f.dataType, "sqlite") for f in schema.fields]
        conn = store.conn.connect()
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT {', '.join(store.q(c) for c in names)} FROM {store.table(fg)}")  # noqa: S608 - identifiers checked and quoted
            rows = [tuple(c(v) for c, v in zip(convs, r, strict=True)) for r in cur.fetchall()]
        finally:
            conn.close()
        return spark.createDataFrame(rows, schema)
    reader = (spark.read.format("jdbc").option("url", store.jdbc_url()).option("driver", "org.mariadb.jdbc.Driver")
              .option("query", f"SELECT {', '.join(store.q(c) for c in names)} FROM {store.table(fg)}")  # noqa: S608 - identifiers checked and quoted
              .option("user", store.conn.user or ""))
    if store.conn.password:
        reader = reader.option("password", store.conn.password)
    df = reader.load()
    out = []
    for f in schema.fields:
        col = F.col(f"`{f.name}`")
        if kind_of(f.dataType) == "json":
            col = F.from_json(col, f.dataType)
        out.append(col.cast(f.dataType).alias(f.name))
    return df.select(*out)
