"""Train/test splits: random by a seeded hash of the row (deterministic), or by time ranges."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.errors import FeatureStoreError
from featurestore.names import check_name, spark_column

BUCKETS = 1_000_000


class SplitError(FeatureStoreError, ValueError):
    """A split definition that is inconsistent: names the split at fault."""


def normalize(splits: dict[str, Any] | None, seed: int | None, time_column: str | None) -> dict[str, Any] | None:
    """The split definition to record: ``{"type": "random", "fractions", "seed"}`` or
    ``{"type": "time", "column", "ranges": {name: [start, end]}}`` (ISO strings, start inclusive, end exclusive)."""
    if splits is None:
        return None
    if not isinstance(splits, dict) or not splits:
        raise SplitError("splits must be a non-empty dict such as {'train': 0.8, 'test': 0.2}")
    for name in splits:
        check_name(name, "split")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in splits.values()):
        bad = [n for n, v in splits.items() if not 0 < v <= 1]
        if bad:
            raise SplitError(f"split fraction(s) of {', '.join(map(repr, bad))} must be in (0, 1]")
        total = sum(splits.values())
        if abs(total - 1.0) > 1e-9:
            raise SplitError(f"split fractions must add up to 1, got {total}")
        seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
        return {"type": "random", "fractions": {n: float(v) for n, v in splits.items()}, "seed": int(seed)}
    if all(isinstance(v, dict) for v in splits.values()):
        if time_column is None:
            raise SplitError("time-range splits need a spine (its event time) or a query whose feature group has an "
                             "event_time")
        ranges = {}
        for name, rng in splits.items():
            unknown = sorted(set(rng) - {"start", "end"})
            if unknown:
                raise SplitError(f"split '{name}': unknown key(s) {', '.join(unknown)}; use start and end")
            start, end = _iso(rng.get("start"), name), _iso(rng.get("end"), name)
            if start and end and start >= end:
                raise SplitError(f"split '{name}': start {start} is not before end {end}")
            ranges[name] = [start, end]
        ordered = sorted(ranges.items(), key=lambda kv: kv[1][0] or "")
        for (a, (_, a_end)), (b, (b_start, _)) in zip(ordered, ordered[1:], strict=False):
            if a_end is None or b_start is None or b_start < a_end:
                raise SplitError(f"time-range splits '{a}' and '{b}' overlap")
        return {"type": "time", "column": time_column, "ranges": ranges}
    raise SplitError("splits must map names to fractions ({'train': 0.8, 'test': 0.2}) or to time ranges "
                     "({'train': {'end': '2024-06-01'}, 'test': {'start': '2024-06-01'}})")


def _iso(value: Any, split: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).isoformat(sep=" ")
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SplitError(f"split '{split}': {value!r} is not a date or time") from None
    return _iso(parsed, split)


def split_column(df: DataFrame, definition: dict[str, Any]) -> Column:
    """The split name of each row (null: in no time range)."""
    if definition["type"] == "random":
        # hash of the row's values (not its position): the same rows land in the same split on every run
        hashable = [spark_column(f.name) for f in df.schema.fields if not isinstance(f.dataType, T.MapType)]
        bucket = F.pmod(F.xxhash64(F.lit(definition["seed"]), *hashable), F.lit(BUCKETS))
        expr, upper = None, 0.0
        names = list(definition["fractions"])
        for i, name in enumerate(names):
            upper += definition["fractions"][name]
            bound = BUCKETS if i == len(names) - 1 else round(upper * BUCKETS)
            cond = bucket < F.lit(bound)
            expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
        return expr
    column = definition["column"]
    t = df.schema[column].dataType
    value = spark_column(column)
    if isinstance(t, T.LongType | T.IntegerType):
        value = F.timestamp_seconds(value)
    elif not isinstance(t, T.TimestampType):
        value = value.cast("timestamp")
    expr = None
    for name, (start, end) in definition["ranges"].items():
        cond = F.lit(True)
        if start:
            cond = cond & (value >= F.lit(_utc(start)))
        if end:
            cond = cond & (value < F.lit(_utc(end)))
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    return expr


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
