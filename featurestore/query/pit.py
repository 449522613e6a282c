"""Point-in-time joins by sort-and-carry-forward: no range join, one shuffle per entity key.

The spine rows and the feature rows are unioned on a common schema (entity keys, a comparable time,
the whole spine row as a struct, the feature values as a struct), partitioned by the entity keys and
ordered by (time, feature rows before spine rows so ties at equal timestamps match). A running
``last(features, ignorenulls)`` over that window hands every spine row the latest feature row at or
before its time (``max_by(features, (event time, commit time))`` when rows are ordered by when they
became known); spine rows are then kept and the feature rows dropped, so spine rows are never
duplicated or lost. Feature groups with the same entity key share one pass (one window column each);
groups with other keys repeat the pass on the result. Work and shuffle volume are linear in spine +
feature rows; only a single entity key's rows must fit one task (skewed keys spill, as any window does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.query.errors import QueryError, q

TIME_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType)
NUMBER_TYPES = (T.LongType, T.IntegerType, T.ShortType)
PREFIX = "__pit_"


@dataclass(frozen=True)
class FeatureSource:
    """Feature rows of one feature group for a point-in-time join."""

    name: str                                  # for messages: "<feature group>_<version>"
    df: DataFrame
    keys: tuple[str, ...]                      # entity key columns, same names in df and the spine
    event_time: str                            # event-time column of df
    features: tuple[tuple[str, str], ...]      # (column of df, output name)
    commit_time: str | None = None             # column with the Hudi commit instant (yyyyMMddHHmmssSSS)
    deleted_at: str | None = None              # column: instant of the delete that removed the row, or null
    delete_commits: tuple[str, ...] = ()       # every instant that deleted_at takes


def time_kind(dtype: T.DataType, what: str) -> str:
    """``"time"`` for timestamps and dates, ``"number"`` for integers; else an error naming ``what``."""
    if isinstance(dtype, TIME_TYPES):
        return "time"
    if isinstance(dtype, NUMBER_TYPES):
        return "number"
    raise QueryError(f"{what} must be a timestamp, date or integer column, got {dtype.simpleString()}")


def as_long(col: Column, kind: str, dtype: T.DataType) -> Column:
    """A time column as a comparable long: epoch microseconds for times, the value for numbers."""
    if kind == "number":
        return col.cast("long")
    if not isinstance(dtype, T.TimestampType):
        col = col.cast("timestamp")
    return F.unix_micros(col)


def commit_as_long(col: Column, kind: str) -> Column:
    """A Hudi instant (UTC) in the unit of ``kind``: epoch microseconds, or epoch seconds for numbers."""
    # Spark's pattern parser cannot split the adjacent digits of yyyyMMddHHmmssSSS: build ISO text instead
    iso = F.concat(col.substr(1, 4), F.lit("-"), col.substr(5, 2), F.lit("-"), col.substr(7, 2), F.lit("T"),
                   col.substr(9, 2), F.lit(":"), col.substr(11, 2), F.lit(":"), col.substr(13, 2), F.lit("."),
                   F.coalesce(F.when(F.length(col) >= 17, col.substr(15, 3)), F.lit("000")), F.lit("Z"))
    micros = F.unix_micros(iso.cast("timestamp"))
    return micros if kind == "time" else F.floor(micros / 1_000_000).cast("long")


def ttl_units(ttl: dt.timedelta, kind: str) -> int:
    """``ttl`` in microseconds (time) or whole seconds (numbers: taken as epoch seconds)."""
    if ttl < dt.timedelta(0):
        raise QueryError(f"ttl must not be negative, got {ttl}")
    return ttl // dt.timedelta(microseconds=1) if kind == "time" else int(ttl.total_seconds())


def pit_join(spine: DataFrame, spine_event_time: str, sources: list[FeatureSource],
             ttl: dt.timedelta | None = None) -> DataFrame:
    """Every spine row with, per source, the latest feature row whose time <= the spine time.

    A source with ``commit_time`` counts a row only once it is both true (event time) and known
    (commit time) at the spine time, and among those takes the newest event time (then commit).
    Feature rows with a null event time never match; spine rows with a null time or null keys get nulls.
    """
    if spine_event_time not in spine.columns:
        raise QueryError(f"spine event time column '{spine_event_time}' is not in the spine "
                         f"(columns: {', '.join(spine.columns)})")
    reserved = [c for c in spine.columns if c.startswith(PREFIX)]
    if reserved:
        raise QueryError(f"spine column(s) {', '.join(map(repr, reserved))} use the reserved prefix {PREFIX}")
    spine_type = spine.schema[spine_event_time].dataType
    kind = time_kind(spine_type, f"spine event time '{spine_event_time}'")
    for src in sources:
        _check_source(spine, spine_event_time, spine_type, kind, src)
    outs = [out for src in sources for _, out in src.features]
    clash = sorted({o for o in outs if outs.count(o) > 1} | {o for o in outs if o in spine.columns})
    if clash:
        owners = [src.name for src in sources if any(out in clash for _, out in src.features)]
        raise QueryError(f"feature(s) {', '.join(map(repr, clash))} of feature group(s) {', '.join(owners)} clash "
                         "with columns of the spine or of another feature group; select them with a prefix")
    # feature groups with the same entity key share one shuffle and one sort
    groups: dict[tuple[str, ...], list[FeatureSource]] = {}
    for src in sources:
        groups.setdefault(src.keys, []).append(src)
    acc = spine
    for keys, srcs in groups.items():
        acc = _join_group(acc, spine_event_time, spine_type, kind, keys, srcs, ttl)
    return acc


def _check_source(spine: DataFrame, spine_time: str, spine_type: T.DataType, kind: str, src: FeatureSource) -> None:
    missing = [k for k in src.keys if k not in spine.columns]
    if missing:
        raise QueryError(f"the spine has no column {', '.join(map(repr, missing))}: the entity key of feature group "
                         f"'{src.name}' is {list(src.keys)} (primary key minus event time); spine columns: "
                         f"{', '.join(spine.columns)}")
    et_type = src.df.schema[src.event_time].dataType
    et_kind = time_kind(et_type, f"event time '{src.event_time}' of feature group '{src.name}'")
    if et_kind != kind:
        raise QueryError(f"spine event time '{spine_time}' ({spine_type.simpleString()}) and event time "
                         f"'{src.event_time}' of feature group '{src.name}' ({et_type.simpleString()}) cannot be "
                         "compared: use timestamps/dates on both sides or integers on both sides")


def _join_group(acc: DataFrame, spine_time: str, spine_type: T.DataType, kind: str, keys: tuple[str, ...],
                srcs: list[FeatureSource], ttl: dt.timedelta | None) -> DataFrame:
    key_types = {k: acc.schema[k].dataType for k in keys}
    key_cols = [f"{PREFIX}k{i}" for i in range(len(keys))]
    # Deletes split time into epochs at every delete commit; a row version takes part in the epochs in which
    # its record existed (from its commit to its delete) and a spine row only meets the versions of its own
    # epoch, so a running aggregate never has to forget a row. No deletes: one epoch, nothing is copied.
    bounds = sorted({d for src in srcs for d in src.delete_commits})
    epoch_of = (lambda c: sum(F.when(c >= commit_as_long(F.lit(b), kind), 1).otherwise(0)  # noqa: E731
                              for b in bounds))
    if bounds:
        key_cols.append(f"{PREFIX}e")
    frames, struct_types, order_types = [], [], []
    for j, src in enumerate(srcs):
        et_type = src.df.schema[src.event_time].dataType
        et = as_long(F.col(q(src.event_time)), kind, et_type)
        ct = commit_as_long(F.col(q(src.commit_time)), kind) if src.commit_time else F.lit(0).cast("long")
        epochs = []
        if bounds:
            first = epoch_of(ct) if src.commit_time else F.lit(0)
            last = F.lit(len(bounds))
            if src.deleted_at:
                # a version deleted at d is alive in the epochs before the one d starts
                gone = F.col(q(src.deleted_at))
                last = F.when(gone.isNull(), last).otherwise(epoch_of(commit_as_long(gone, kind)) - 1)
            epochs = [F.explode(F.sequence(first, last)).alias(f"{PREFIX}e")]
        # a feature row with a null key or a null event time matches no spine row (null is not equal to null)
        present = F.col(q(src.event_time)).isNotNull()
        for k in keys:
            present = present & F.col(q(k)).isNotNull()
        feats = src.df.where(present).select(
            *[F.col(q(k)).cast(key_types[k]).alias(key_cols[i]) for i, k in enumerate(keys)], *epochs,
            # a known-at row becomes visible when it is both true (event time) and known (commit time)
            (F.greatest(et, ct) if src.commit_time else et).alias(f"{PREFIX}t"),
            F.lit(0).alias(f"{PREFIX}kind"),
            # the event time rides along only when the TTL needs it: narrower rows shuffle and sort faster
            F.struct(*[F.col(q(c)).alias(f"f{i}") for i, (c, _) in enumerate(src.features)],
                     *([et.alias("et")] if ttl is not None else [])).alias(f"{PREFIX}f{j}"),
            # the ordering of max_by (known-at only; the plain join needs no extra column in the shuffle)
            (F.struct(et.alias("et"), ct.alias("ct")) if src.commit_time else F.lit(None).cast("boolean"))
            .alias(f"{PREFIX}o{j}"),
        )
        frames.append(feats)
        struct_types.append(feats.schema[f"{PREFIX}f{j}"].dataType)
        order_types.append(feats.schema[f"{PREFIX}o{j}"].dataType)
    row_type = T.StructType([T.StructField(f.name, f.dataType, True) for f in acc.schema.fields])

    def nulls_except(frame: DataFrame, j: int | None) -> DataFrame:
        for i in range(len(srcs)):
            if i != j:
                frame = (frame.withColumn(f"{PREFIX}f{i}", F.lit(None).cast(struct_types[i]))
                         .withColumn(f"{PREFIX}o{i}", F.lit(None).cast(order_types[i])))
        return frame

    spine_t = as_long(F.col(q(spine_time)), kind, spine_type)
    union = nulls_except(acc.select(
        *[F.col(q(k)).alias(key_cols[i]) for i, k in enumerate(keys)],
        *([epoch_of(spine_t).alias(f"{PREFIX}e")] if bounds else []),
        spine_t.alias(f"{PREFIX}t"),
        F.lit(1).alias(f"{PREFIX}kind"),
        F.struct(*[F.col(q(c)) for c in acc.columns]).alias(f"{PREFIX}row"),
    ), None)
    for j, feats in enumerate(frames):
        union = union.unionByName(nulls_except(feats.withColumn(f"{PREFIX}row", F.lit(None).cast(row_type)), j))
    window = (Window.partitionBy(*[F.col(c) for c in key_cols])
              .orderBy(F.col(f"{PREFIX}t").asc_nulls_first(), F.col(f"{PREFIX}kind"))
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    matched = union
    for j, src in enumerate(srcs):
        if src.commit_time:
            # visibility order differs from event order: keep the newest event among the visible rows
            latest = F.max_by(F.col(f"{PREFIX}f{j}"), F.col(f"{PREFIX}o{j}")).over(window)
        else:
            # ordered by event time already: the last feature row seen is the newest (cheaper than max_by)
            latest = F.last(F.col(f"{PREFIX}f{j}"), ignorenulls=True).over(window)
        matched = matched.withColumn(f"{PREFIX}m{j}", latest)
    matched = matched.where(F.col(f"{PREFIX}kind") == 1)
    outputs = []
    for j, src in enumerate(srcs):
        match = F.col(f"{PREFIX}m{j}")
        if ttl is not None:
            match = F.when(match["et"] >= F.col(f"{PREFIX}t") - F.lit(ttl_units(ttl, kind)), match)
        outputs += [match[f"f{i}"].alias(out) for i, (_, out) in enumerate(src.features)]
    return matched.select(f"{PREFIX}row.*", *outputs)


MATCHED = "__matched"  # a marker riding with the right rows of a query join: non-null exactly when one matched


def join_query_frames(left: DataFrame, left_time: str, right: DataFrame, right_time: str,
                      keys: list[tuple[str, str]], features: list[str], ttl: dt.timedelta | None,
                      join_type: str) -> DataFrame:
    """The point-in-time join of two query frames (``Query.join`` of two event-timed feature groups).

    Every row of ``left`` once, with the ``features`` of the ``right`` row whose ``keys`` (pairs of left and
    right column) are equal and whose ``right_time`` is the newest at or before the row's ``left_time``
    (within ``ttl``); nulls where there is none (``join_type="left"``), or the row dropped
    (``join_type="inner"``). The same sort-and-carry-forward pass as :func:`pit_join`, the left frame as spine.
    """
    if join_type not in ("left", "inner"):
        raise QueryError(f"a point-in-time join keeps each left row once: join_type must be 'left' or 'inner', "
                         f"got {join_type!r}")
    right_df = right.select(*[F.col(q(rc)).alias(lc) for lc, rc in keys], F.col(q(right_time)).alias(right_time),
                            *[F.col(q(c)) for c in features], F.lit(True).alias(MATCHED))
    source = FeatureSource("right side of a join", right_df, tuple(lc for lc, _ in keys), right_time,
                           tuple((c, c) for c in [*features, MATCHED]))
    joined = pit_join(left, left_time, [source], ttl)
    if join_type == "inner":
        joined = joined.where(F.col(MATCHED).isNotNull())
    return joined.drop(MATCHED)
