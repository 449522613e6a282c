"""From feature names to a query, and from a query plus a spine to point-in-time correct rows."""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore import ingestion, offline
from featurestore.model.records import FeatureGroupRecord
from featurestore.query.pit import FeatureSource, pit_join
from featurestore.query.query import Part, Query, QueryError
from featurestore.sources import read_feature_group

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext

FIRST_INSTANT = "00000000000000000"
DELETED_AT = "_deleted_at"  # not a feature name: feature names start with a letter


def resolve_features(fs: StoreContext, names: list[str]) -> Query:
    """A query over the latest version of the feature groups holding ``names``.

    ``"fg.feature"`` picks a feature group; a bare name must belong to exactly one feature group, except
    primary-key columns, which are taken from the first feature group that has them. Feature groups are
    joined (inner equi-join, as before point-in-time joins) on the primary-key columns they share with the
    first one.
    """
    queries = feature_queries(fs, names)
    query = queries[0]
    for other in queries[1:]:
        query = query.join(other, join_type="inner", point_in_time=False)
    return query


def feature_queries(fs: StoreContext, names: list[str]) -> list[Query]:
    """One query per feature group holding ``names`` (resolved as by :func:`resolve_features`), not joined."""
    if isinstance(names, str) or not names:
        raise QueryError("get_features needs a non-empty list of feature names")
    latest: dict[str, FeatureGroupRecord] = {}
    for fg in fs.feature_group_records():
        latest[fg.name] = fg  # ordered by version: the last one wins
    chosen: dict[str, list[str]] = {}
    pending_keys: list[str] = []
    for name in names:
        if "." in name:
            fg_name, feature = name.split(".", 1)
            if fg_name not in latest:
                raise QueryError(f"feature '{name}': no feature group '{fg_name}' in feature store '{fs.name}'")
            if feature not in [f.name for f in latest[fg_name].features]:
                raise QueryError(f"feature '{name}': feature group '{fg_name}' has no feature '{feature}'")
            chosen.setdefault(fg_name, []).append(feature)
            continue
        candidates = [fg for fg in latest.values() if name in [f.name for f in fg.features]]
        if not candidates:
            raise QueryError(f"no feature group has a feature '{name}'")
        if len(candidates) > 1:
            if all(name in fg.primary_key for fg in candidates):
                pending_keys.append(name)
                continue
            raise QueryError(f"feature '{name}' is ambiguous: it is in feature groups "
                             f"{', '.join(repr(fg.name) for fg in candidates)}; write '<feature group>.{name}'")
        chosen.setdefault(candidates[0].name, []).append(name)
    for key in pending_keys:
        owner = next((n for n in chosen if key in latest[n].primary_key), None)
        if owner is None:
            owner = next(fg.name for fg in latest.values() if key in fg.primary_key)
        chosen.setdefault(owner, []).insert(0, key)
    return [Query(fs, latest[fg_name], feats) for fg_name, feats in chosen.items()]


def entity_keys(fg: FeatureGroupRecord) -> list[str]:
    """Join keys of a point-in-time join: the primary key without the event-time column."""
    return [c for c in fg.primary_key if c != fg.event_time]


def resolve_commit(ctx: StoreContext, fg: FeatureGroupRecord, as_of: str | None) -> str | None:
    """The commit a read ``as_of`` (None = now) sees: the newest commit at or before it, or None."""
    if fg.kind != "cached":
        return None
    limit = offline.open_table(ctx, fg).commit_id(as_of) if as_of else None
    for commit in ingestion.commit_log(ctx, fg):  # newest first
        if limit is None or commit["commit_id"] <= limit:
            return commit["commit_id"]
    return None


def history(ctx: StoreContext, fg: FeatureGroupRecord, up_to: str | None) -> tuple[DataFrame, tuple[str, ...]]:
    """Every row version written by the commits up to ``up_to`` (inclusive), and the delete commits.

    One incremental read per commit: each returns the rows as that commit wrote them, including values a
    later upsert overwrote (as long as the cleaner kept that file version). The frame has
    ``_hoodie_commit_time`` and :data:`DELETED_AT`: the first delete commit (up to ``up_to``) that removed
    the version's record after it was written, or null.
    """
    table = offline.open_table(ctx, fg)
    details = {c["commit_id"]: c for c in ingestion.commit_log(ctx, fg)}
    commits = sorted(c for c in details if up_to is None or c <= up_to)
    frames, previous = [], FIRST_INSTANT
    for commit in commits:
        frames.append(table.read_changes(previous, commit, include_meta=True))
        previous = commit
    if not frames:
        return table.read(include_meta=True).limit(0).withColumn(DELETED_AT, F.lit(None).cast("string")), ()
    versions = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    # a delete commit writes no rows: the records it removed are those its snapshot lost
    deletes = [c for c in commits if details[c]["operation"] == "delete" or details[c]["rows_deleted"]]
    gone = [_deleted_keys(table, commits[commits.index(c) - 1], c) for c in deletes if commits.index(c) > 0]
    if not gone:
        return versions.withColumn(DELETED_AT, F.lit(None).cast("string")), ()
    row_id, commit_col = list(table.row_id_columns), table.commit_column
    removed = reduce(DataFrame.unionByName, gone)
    # per version (one per record and commit): the first delete of its record after it was written
    until = (versions.select(*row_id, commit_col).join(removed, row_id)
             .where(F.col("_deleted") > F.col(commit_col))
             .groupBy(*row_id, commit_col).agg(F.min("_deleted").alias(DELETED_AT)))
    return versions.join(until, [*row_id, commit_col], "left"), tuple(deletes)


def _instant(when: dt.datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


def _as_instants(table: offline.OfflineTable, df: DataFrame, commit_col: str,
                 deletes: tuple[str, ...]) -> tuple[DataFrame, tuple[str, ...]]:
    """The commit ids of a history (its commit column, :data:`DELETED_AT`, the delete commits) as the UTC
    instants ``yyyyMMddHHmmssSSS`` of their commits, which the join compares with spine times. A Hudi commit
    id is its instant already (returned as is); a Delta version is not. The commits are log metadata: one
    small map literal, no data on the driver."""
    instants = {c.commit_id: _instant(c.committed_at) for c in table.commits()}
    if all(cid == instant for cid, instant in instants.items()):
        return df, deletes
    mapping = F.create_map(*[F.lit(x) for pair in sorted(instants.items()) for x in pair])
    for column in (commit_col, DELETED_AT):
        if column in df.columns:
            df = df.withColumn(column, F.try_element_at(mapping, F.col(f"`{column}`")))
    return df, tuple(instants[d] for d in deletes)


def _deleted_keys(table: offline.OfflineTable, before: str, commit: str) -> DataFrame:
    """(row id columns, ``_deleted`` = commit) of the stored rows ``commit`` deleted."""
    row_id = list(table.row_id_columns)
    old = table.read(as_of=before, include_meta=True).select(*row_id)
    new = table.read(as_of=commit, include_meta=True).select(*row_id)
    return old.join(new, row_id, "left_anti").withColumn("_deleted", F.lit(commit))


def as_queries(fs: StoreContext, features_or_query: Query | list[Query] | list[str]) -> list[Query]:
    """A query, a list of queries, or feature names (one query per feature group, not joined)."""
    if isinstance(features_or_query, Query):
        return [features_or_query]
    items = list(features_or_query or [])
    if items and all(isinstance(i, Query) for i in items):
        return items
    if items and all(isinstance(i, str) for i in items):
        return feature_queries(fs, items)
    raise QueryError("features must be a Query, a list of Queries or a non-empty list of feature names")


def point_in_time(fs: StoreContext, spine: DataFrame, query: Query | list[Query], spine_event_time: str,
                  ttl: dt.timedelta | None = None, as_known_at_spine_time: bool = False,
                  ) -> tuple[DataFrame, dict[str, str | None]]:
    """The spine with the query's features joined point-in-time; also the commit read per feature group."""
    if ttl is not None and not isinstance(ttl, dt.timedelta):
        raise QueryError(f"ttl must be a datetime.timedelta, got {type(ttl).__name__}")
    if not isinstance(spine, DataFrame):
        raise QueryError(f"spine must be a Spark DataFrame, got {type(spine).__name__}")
    sources, commits = [], {}
    parts = [p for qry in ([query] if isinstance(query, Query) else query) for p in qry.parts()]
    for part in parts:
        source, commit = _source(fs, part, spine, spine_event_time, as_known_at_spine_time)
        commits[part.feature_group.table_name] = commit
        if source.features:
            sources.append(source)
    return pit_join(spine, spine_event_time, sources, ttl), commits


def _source(ctx: StoreContext, part: Part, spine: DataFrame, spine_event_time: str,
            as_known: bool) -> tuple[FeatureSource, str | None]:
    fg = part.feature_group
    if not fg.event_time:
        raise QueryError(f"feature group '{fg.name}' v{fg.version} has no event_time: a point-in-time join needs "
                         "one (create the feature group with event_time=...)")
    commit = resolve_commit(ctx, fg, part.as_of)
    deletes: tuple[str, ...] = ()
    commit_col = None
    if as_known:
        table = offline.open_table(ctx, fg)
        commit_col = table.commit_column
        df, deletes = history(ctx, fg, commit) if commit else (table.read(include_meta=True).limit(0), ())
        if commit_col not in df.columns:  # a feature group without any commit yet
            df = df.withColumn(commit_col, F.lit(None).cast("string"))
        if part.exclude_until:  # an incremental query: only the row versions of the later commits
            # commit ids are digits on both formats (Hudi instants, Delta versions): compare them as numbers
            df = df.where(F.col(commit_col).cast("decimal(38,0)") > F.lit(part.exclude_until).cast("decimal(38,0)"))
        df, deletes = _as_instants(table, df, commit_col, deletes)
    else:
        df = read_feature_group(ctx, fg, commit, part.exclude_until)
    for cond in part.filters:
        df = df.where(F.expr(cond))
    keys = entity_keys(fg)
    # keys and the event time are already spine columns of the same name: not repeated
    skip = set(keys) | {fg.event_time}
    features = tuple((src, out) for src, out in part.features
                     if not (src == out and src in skip and out in spine.columns))
    return FeatureSource(fg.table_name, df, tuple(keys), fg.event_time, features,
                         commit_col,
                         DELETED_AT if deletes else None, deletes), commit
