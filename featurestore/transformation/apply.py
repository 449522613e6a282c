"""Fitting transformation functions on a training dataset and applying them: to a Spark DataFrame
(training data, batch data) and to feature vectors in Python (serving).

Fitted statistics (``{"<function>:<feature>": {...}}``) are computed with the DataFrame API in one
aggregation (min/max, mean and population stddev, ``percentile_approx`` quartiles) plus one distinct
query per encoded feature; only the aggregates and the distinct categories reach the driver. Both
paths evaluate the same IEEE double expressions on the same stored statistics, so the same input
gives the same value. Documented edge cases: null stays null; a constant feature (max == min,
stddev 0, q3 == q1) scales to 0.0; statistics of a feature that was all null make every value null;
an unseen category encodes as -1 (label) or all 0 (one-hot).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from featurestore.names import spark_column
from featurestore.transformation.functions import TransformationError, TransformationFunction

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql import types as T

PERCENTILE_ACCURACY = 10000  # percentile_approx's default: relative error 1/10000 of the rows
SCALERS = ("min_max_scaler", "standard_scaler", "robust_scaler")
ENCODERS = ("label_encoder", "one_hot_encoder")


def stats_key(tf: TransformationFunction) -> str:
    """Where a built-in's statistics are kept: ``<function>:<feature>``."""
    return f"{tf.name}:{tf.features[0]}"


def in_place(tf: TransformationFunction) -> bool:
    """True when the function's output(s) replace its one input column at its position."""
    return len(tf.features) == 1 and (tf.builtin == "one_hot_encoder" or tf.output_name == tf.features[0])


def check(tfs: list[TransformationFunction], columns: Iterable[str], what: str) -> None:
    """Every input is one of ``columns``; no feature is replaced twice; no output collides."""
    known = list(columns)
    taken: dict[str, str] = {}
    for tf in tfs:
        missing = [f for f in tf.features if f not in known]
        if missing:
            raise TransformationError(f"{what}: transformation function '{tf.name}' reads "
                                      f"{', '.join(map(repr, missing))}, which is not a feature of it (features: "
                                      f"{', '.join(known)})")
        outputs = [tf.features[0]] if tf.builtin == "one_hot_encoder" else [tf.output_name]
        for out in outputs:
            if out in taken:
                raise TransformationError(f"{what}: feature {out!r} is written by transformation functions "
                                          f"'{taken[out]}' and '{tf.name}'; bind each feature once (or alias)")
            if out in known and not in_place(tf):
                raise TransformationError(f"{what}: the output {out!r} of transformation function '{tf.name}' is "
                                          "already a feature; alias it")
            taken[out] = tf.name


def _check_types(schema: T.StructType, tfs: list[TransformationFunction]) -> None:
    from pyspark.sql import types as T

    for tf in tfs:
        if tf.builtin is None:
            continue
        feature = tf.features[0]
        if feature not in schema.fieldNames():
            continue
        dtype = schema[feature].dataType
        if tf.builtin in SCALERS and (not isinstance(dtype, T.NumericType)):
            raise TransformationError(f"transformation function '{tf.name}' scales numbers, but feature "
                                      f"{feature!r} is {dtype.simpleString()}")
        if tf.builtin in ENCODERS and not isinstance(dtype, T.StringType | T.IntegralType | T.BooleanType):
            raise TransformationError(f"transformation function '{tf.name}' encodes strings, integers or booleans, "
                                      f"but feature {feature!r} is {dtype.simpleString()}")


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def fit(df: DataFrame, tfs: list[TransformationFunction]) -> dict[str, dict[str, Any]]:
    """The statistics of every built-in of ``tfs`` on the rows of ``df`` (see the module's note)."""
    from pyspark.sql import functions as F

    builtins = [tf for tf in tfs if tf.builtin is not None]
    _check_types(df.schema, builtins)
    aggregates: list[Column] = []
    for i, tf in enumerate(builtins):
        value = spark_column(tf.features[0]).cast("double")
        if tf.builtin == "min_max_scaler":
            aggregates += [F.min(value).alias(f"{i}_min"), F.max(value).alias(f"{i}_max")]
        elif tf.builtin == "standard_scaler":
            aggregates += [F.avg(value).alias(f"{i}_mean"), F.stddev_pop(value).alias(f"{i}_stddev")]
        elif tf.builtin == "robust_scaler":
            aggregates.append(F.percentile_approx(value, [0.25, 0.5, 0.75], PERCENTILE_ACCURACY).alias(f"{i}_q"))
    row = df.agg(*aggregates).first().asDict() if aggregates else {}
    out: dict[str, dict[str, Any]] = {}
    for i, tf in enumerate(builtins):
        if tf.builtin == "min_max_scaler":
            stats: dict[str, Any] = {"min": _finite(row[f"{i}_min"]), "max": _finite(row[f"{i}_max"])}
        elif tf.builtin == "standard_scaler":
            stats = {"mean": _finite(row[f"{i}_mean"]), "stddev": _finite(row[f"{i}_stddev"])}
        elif tf.builtin == "robust_scaler":
            q = row[f"{i}_q"] or [None, None, None]
            stats = {"q1": _finite(q[0]), "median": _finite(q[1]), "q3": _finite(q[2])}
        else:
            column = spark_column(tf.features[0])
            # one row per category reaches the driver: this scales with the categories, not the rows
            values = df.select(column.alias("c")).where(column.isNotNull()).distinct().orderBy("c").collect()
            stats = {"categories": [r["c"] for r in values]}
        out[stats_key(tf)] = stats
    return out


def _stats(tf: TransformationFunction, statistics: dict[str, Any] | None) -> dict[str, Any]:
    found = (statistics or {}).get(stats_key(tf))
    if found is None:
        raise TransformationError(f"transformation function '{tf.name}' on {tf.features[0]!r} has no fitted "
                                  "statistics: create a training dataset of the feature view first")
    return found


def _scale(tf: TransformationFunction, stats: dict[str, Any]) -> tuple[float | None, float | None]:
    """(offset, divisor) of a scaler: ``(x - offset) / divisor``; divisor 0.0 means a constant feature."""
    if tf.builtin == "min_max_scaler":
        low, high = stats["min"], stats["max"]
        return low, (None if low is None or high is None else high - low)
    if tf.builtin == "standard_scaler":
        return stats["mean"], stats["stddev"]
    low, high = stats["q1"], stats["q3"]
    return stats["median"], (None if low is None or high is None else high - low)


def category_label(value: Any) -> str:
    """How a category appears in a one-hot output's name."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def output_columns(columns: list[str], tfs: list[TransformationFunction],
                   statistics: dict[str, Any] | None) -> list[str]:
    """The column names after the transformations, in order (inputs replaced in place, new outputs last)."""
    return [name for _kind, _item, name in _plan(columns, tfs, statistics)]


def _applicable(columns: list[str], tfs: list[TransformationFunction]) -> list[TransformationFunction]:
    # a function over a column that is not there (a label, at serving) is left out
    return [tf for tf in tfs if all(f in columns for f in tf.features)]


def _plan(columns: list[str], tfs: list[TransformationFunction],
          statistics: dict[str, Any] | None) -> list[tuple[str, Any, str]]:
    """``(kind, column or (function, category), output name)`` per output column, in order."""
    tfs = _applicable(columns, tfs)
    replaced = {tf.features[0]: tf for tf in tfs if in_place(tf)}
    plan: list[tuple[str, Any, str]] = []

    def outputs(tf: TransformationFunction) -> list[tuple[str, Any, str]]:
        if tf.builtin == "one_hot_encoder":
            return [("onehot", (tf, c), f"{tf.features[0]}_{category_label(c)}")
                    for c in _stats(tf, statistics)["categories"]]
        return [("tf", tf, tf.output_name)]

    for c in columns:
        plan += outputs(replaced[c]) if c in replaced else [("keep", c, c)]
    for tf in tfs:
        if not in_place(tf):
            plan += outputs(tf)
    names = [name for _k, _i, name in plan]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise TransformationError(f"transformation outputs collide on {', '.join(map(repr, clash))}")
    return plan


# -- Spark ------------------------------------------------------------------------------------
def _spark_udf(tf: TransformationFunction) -> Any:
    from pyspark.sql import functions as F

    definition = tf.to_dict()  # the stored bytes: executors run what the registry holds
    loaded: dict[str, TransformationFunction] = {}

    def run(*values: Any) -> Any:
        function = loaded.get("tf")
        if function is None:
            function = loaded["tf"] = TransformationFunction.from_dict(definition)
        return function.call(values)

    return F.udf(run, tf.return_type)


def _expression(kind: str, item: Any, statistics: dict[str, Any] | None) -> Column:
    from pyspark.sql import functions as F

    if kind == "keep":
        return spark_column(item)
    if kind == "onehot":
        tf, category = item
        column = spark_column(tf.features[0])
        return F.when(column.isNull(), F.lit(None)).otherwise((column == F.lit(category)).cast("int")).cast("int")
    tf = item
    if tf.builtin is None:
        return _spark_udf(tf)(*[spark_column(f) for f in tf.features])
    column = spark_column(tf.features[0])
    stats = _stats(tf, statistics)
    if tf.builtin == "label_encoder":
        categories = stats["categories"]
        if not categories:
            return F.when(column.isNull(), F.lit(None)).otherwise(F.lit(-1)).cast("int")
        # array_position is 1-based and 0 when absent: minus one gives the index, -1 when unseen, null for null
        listed = F.array(*[F.lit(c) for c in categories])
        return (F.array_position(listed, column) - 1).cast("int")
    offset, divisor = _scale(tf, stats)
    value = column.cast("double")
    if offset is None or divisor is None:
        return F.lit(None).cast("double")
    if divisor == 0:
        return F.when(value.isNull(), F.lit(None)).otherwise(F.lit(0.0)).cast("double")
    return (value - F.lit(offset)) / F.lit(divisor)


def apply_frame(df: DataFrame, tfs: list[TransformationFunction], statistics: dict[str, Any] | None) -> DataFrame:
    """``df`` with the transformations applied (lazily: a failing user function fails the action)."""
    if not tfs:
        return df
    _check_types(df.schema, _applicable(df.columns, tfs))
    plan = _plan(df.columns, tfs, statistics)
    return df.select(*[_expression(kind, item, statistics).alias(name) for kind, item, name in plan])


# -- Python (serving) ---------------------------------------------------------------------------
def _value(kind: str, item: Any, row: dict[str, Any], statistics: dict[str, Any] | None,
           indexes: dict[str, dict[Any, int]]) -> Any:
    if kind == "keep":
        return row[item]
    if kind == "onehot":
        tf, category = item
        x = row[tf.features[0]]
        return None if x is None else int(x == category and type(x) is type(category))
    tf = item
    if tf.builtin is None:
        return tf.call([row[f] for f in tf.features])
    x = row[tf.features[0]]
    if x is None:
        return None
    stats = _stats(tf, statistics)
    if tf.builtin == "label_encoder":
        key = stats_key(tf)
        if key not in indexes:
            indexes[key] = {(type(c), c): i for i, c in enumerate(stats["categories"])}
        return indexes[key].get((type(x), x), -1)
    offset, divisor = _scale(tf, stats)
    if offset is None or divisor is None:
        return None
    if divisor == 0:
        return 0.0
    return (float(x) - offset) / divisor


def apply_vectors(vectors: list[dict[str, Any]], columns: list[str], tfs: list[TransformationFunction],
                  statistics: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Feature vectors (``{column: value}`` with ``columns``) transformed, in :func:`output_columns` order."""
    if not tfs:
        return [{c: v[c] for c in columns} for v in vectors]
    plan = _plan(columns, tfs, statistics)
    indexes: dict[str, dict[Any, int]] = {}
    return [{name: _value(kind, item, row, statistics, indexes) for kind, item, name in plan} for row in vectors]
