"""Analyzers: the metrics of Deequ's vocabulary, defined as Spark aggregations.

Each analyzer is a frozen (hashable) value naming what it measures. Scan analyzers contribute
aggregate expressions to ONE shared ``df.agg(...)``; grouping analyzers (Uniqueness,
Distinctness, UniqueValueRatio, CountDistinct, Entropy, Histogram) share one ``groupBy`` per
column set (see :mod:`featurestore.quality.engine`).

Semantics follow Deequ:

- ratios are over all rows (Completeness, Compliance, PatternMatch) or, for the frequency-based
  analyzers, over the rows where at least one grouped column is not null;
- Mean, Sum, Minimum, Maximum, StandardDeviation (population), MinLength, MaxLength,
  ApproxQuantile(s) and Correlation ignore nulls;
- a metric that cannot be computed (no rows, or every value null) is a *failure* metric with the
  message ``Empty state ...``, and any constraint on it fails — as in Deequ;
- NaN follows Spark SQL, which Deequ runs on: NaN is a value, not a null (it counts as complete),
  it propagates through Mean/Sum/StandardDeviation and sorts above +infinity (Maximum is NaN).
  Where Deequ is silent we chose: DataType on an empty input is an empty-state failure; Size and
  CountDistinct/ApproxCountDistinct of an empty input are 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

NUMERIC_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
COUNT_COL = "__fs_count"

# Data type classification of a value's string form (our own patterns, Deequ's categories).
INTEGRAL_PATTERN = r"^[+-]? ?[0-9]+$"
FRACTIONAL_PATTERN = r"^[+-]? ?[0-9]+(\.[0-9]+([eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)$"
BOOLEAN_PATTERN = r"^(true|false)$"
DATA_TYPES = ("Unknown", "Fractional", "Integral", "Boolean", "String")


def col(name: str) -> Column:
    """A column reference that survives dots, spaces and backticks in the name."""
    return F.col("`" + name.replace("`", "``") + "`")


class EmptyStateError(ValueError):
    """The metric has no value: no rows, or every value null."""


@dataclass(frozen=True)
class Metric:
    """The value of one analyzer (or why it could not be computed)."""

    analyzer: str  # the analyzer's key, e.g. "Completeness(email)"
    name: str
    instance: str
    value: Any = None
    error: str | None = None

    @property
    def success(self) -> bool:
        """Whether the metric has a value."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"analyzer": self.analyzer, "name": self.name, "instance": self.instance,
                "value": _json_number(self.value), "error": self.error}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)  # JSON has no NaN/Infinity
    if isinstance(value, dict):
        return {str(k): _json_number(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Analyzer:
    """Base class: a named computation over a DataFrame."""

    grouping: ClassVar[bool] = False

    @property
    def name(self) -> str:
        """Deequ's name of the analyzer."""
        return type(self).__name__

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns read by the analyzer."""
        return ()

    @property
    def instance(self) -> str:
        """What the metric is about: the column(s), or ``*`` for the whole frame."""
        return ",".join(self.columns) or "*"

    @property
    def key(self) -> str:
        """Stable identifier, used to store metric history."""
        extra = self._extra()
        inner = ",".join([*self.columns, *extra])
        return f"{self.name}({inner})"

    def _extra(self) -> list[str]:
        return []

    def precondition(self, schema: T.StructType) -> str | None:
        """Why the analyzer cannot run on ``schema`` (a missing column, a wrong type), or None."""
        names = set(schema.fieldNames())
        missing = [c for c in self.columns if c not in names]
        if missing:
            return f"Input data does not include column {', '.join(missing)}!"
        return None

    def success(self, value: Any) -> Metric:
        """A metric with a value."""
        return Metric(self.key, self.name, self.instance, value)

    def failure(self, error: str) -> Metric:
        """A metric that could not be computed."""
        return Metric(self.key, self.name, self.instance, None, error)

    def empty(self) -> Metric:
        """Deequ's empty-state failure."""
        return self.failure(f"Empty state for analyzer {self.key}, all input values were NULL.")


def _require_types(schema: T.StructType, column: str, types: tuple[type, ...], what: str) -> str | None:
    dtype = schema[column].dataType
    if not isinstance(dtype, types):
        return f"Expected type of column {column} to be {what}, but found {dtype.simpleString()} instead!"
    return None


# -- scan analyzers: aggregations over the whole frame -------------------------------------------
@dataclass(frozen=True)
class ScanAnalyzer(Analyzer):
    """An analyzer computed from aggregate expressions in the shared scan."""

    def aggregations(self) -> list[Column]:
        """Aggregate expressions added to the shared ``df.agg``."""
        raise NotImplementedError

    def metric(self, values: list[Any]) -> Metric:
        """The metric from this analyzer's slice of the aggregation result."""
        try:
            return self.success(self.compute(values))
        except EmptyStateError:
            return self.empty()

    def compute(self, values: list[Any]) -> Any:
        """The value; raises EmptyStateError when there is none."""
        raise NotImplementedError


def _ratio(matches: Any, total: Any) -> float:
    if matches is None or not total:
        raise EmptyStateError
    return float(matches) / float(total)


def _not_null(value: Any) -> Any:
    if value is None:
        raise EmptyStateError
    return value


@dataclass(frozen=True)
class Size(ScanAnalyzer):
    """Number of rows."""

    def aggregations(self) -> list[Column]:
        return [F.count(F.lit(1))]

    def compute(self, values: list[Any]) -> int:
        return int(values[0])


@dataclass(frozen=True)
class Completeness(ScanAnalyzer):
    """Fraction of rows where ``column`` is not null."""

    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def aggregations(self) -> list[Column]:
        return [F.sum(col(self.column).isNotNull().cast("long")), F.count(F.lit(1))]

    def compute(self, values: list[Any]) -> float:
        return _ratio(values[0], values[1])


@dataclass(frozen=True)
class Compliance(ScanAnalyzer):
    """Fraction of rows satisfying a SQL predicate (null counts as not satisfied; null on every row:
    no value, as in Deequ); with ``where``
    (a SQL predicate, as Deequ's) only the rows where it holds are counted, above and below."""

    constraint_name: str
    predicate: str
    referenced: tuple[str, ...] = ()
    where: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return self.referenced

    @property
    def instance(self) -> str:
        return self.constraint_name

    @property
    def key(self) -> str:
        return f"Compliance({self.constraint_name})"

    def aggregations(self) -> list[Column]:
        # as Deequ: the predicate's value as 0/1 summed, so a null predicate counts as not satisfied,
        # and a predicate null on every row has no value (empty state)
        satisfied = F.expr(self.predicate).cast("int")
        if self.where is None:
            return [F.sum(satisfied), F.count(F.lit(1))]
        counted = F.coalesce(F.expr(self.where), F.lit(False))
        return [F.sum(F.when(counted, satisfied)), F.sum(F.when(counted, 1).otherwise(0))]

    def compute(self, values: list[Any]) -> float:
        return _ratio(values[0], values[1])


@dataclass(frozen=True)
class PatternMatch(ScanAnalyzer):
    """Fraction of rows whose string value contains a match of ``pattern`` (Java regex)."""

    column: str
    pattern: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def _extra(self) -> list[str]:
        return [self.pattern]

    def precondition(self, schema: T.StructType) -> str | None:
        return super().precondition(schema) or _require_types(schema, self.column, (T.StringType,), "string")

    def aggregations(self) -> list[Column]:
        found = F.when(F.regexp_extract(col(self.column), self.pattern, 0) != F.lit(""), 1).otherwise(0)
        return [F.sum(found), F.count(F.lit(1))]

    def compute(self, values: list[Any]) -> float:
        return _ratio(values[0], values[1])


@dataclass(frozen=True)
class _NumericAnalyzer(ScanAnalyzer):
    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def precondition(self, schema: T.StructType) -> str | None:
        return super().precondition(schema) or _require_types(schema, self.column, NUMERIC_TYPES, "numeric")

    def _double(self) -> Column:
        return col(self.column).cast("double")


@dataclass(frozen=True)
class Mean(_NumericAnalyzer):
    """Mean of the non-null values."""

    def aggregations(self) -> list[Column]:
        return [F.avg(self._double())]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class Sum(_NumericAnalyzer):
    """Sum of the non-null values."""

    def aggregations(self) -> list[Column]:
        return [F.sum(self._double())]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class Minimum(_NumericAnalyzer):
    """Smallest non-null value."""

    def aggregations(self) -> list[Column]:
        return [F.min(self._double())]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class Maximum(_NumericAnalyzer):
    """Largest non-null value."""

    def aggregations(self) -> list[Column]:
        return [F.max(self._double())]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class StandardDeviation(_NumericAnalyzer):
    """Population standard deviation of the non-null values."""

    def aggregations(self) -> list[Column]:
        return [F.stddev_pop(self._double())]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class _LengthAnalyzer(ScanAnalyzer):
    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def precondition(self, schema: T.StructType) -> str | None:
        return super().precondition(schema) or _require_types(schema, self.column, (T.StringType,), "string")


@dataclass(frozen=True)
class MinLength(_LengthAnalyzer):
    """Shortest string length in characters (nulls ignored)."""

    def aggregations(self) -> list[Column]:
        return [F.min(F.length(col(self.column)))]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class MaxLength(_LengthAnalyzer):
    """Longest string length in characters (nulls ignored)."""

    def aggregations(self) -> list[Column]:
        return [F.max(F.length(col(self.column)))]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class ApproxCountDistinct(ScanAnalyzer):
    """Approximate number of distinct non-null values (HyperLogLog++, 5% relative error)."""

    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def aggregations(self) -> list[Column]:
        return [F.approx_count_distinct(col(self.column), rsd=0.05)]

    def compute(self, values: list[Any]) -> int:
        return int(values[0] or 0)


@dataclass(frozen=True)
class ApproxQuantile(_NumericAnalyzer):
    """Approximate quantile (Greenwald-Khanna, ``relative_error`` of the rank)."""

    quantile: float = 0.5
    relative_error: float = 0.01

    def _extra(self) -> list[str]:
        return [repr(float(self.quantile))]

    def precondition(self, schema: T.StructType) -> str | None:
        if not 0.0 <= self.quantile <= 1.0:
            return f"Quantile parameter must be in the closed interval [0, 1], got {self.quantile}"
        return super().precondition(schema)

    def aggregations(self) -> list[Column]:
        accuracy = max(1, int(round(1.0 / self.relative_error)))
        return [F.percentile_approx(self._double(), float(self.quantile), accuracy)]

    def compute(self, values: list[Any]) -> float:
        return float(_not_null(values[0]))


@dataclass(frozen=True)
class ApproxQuantiles(_NumericAnalyzer):
    """Several approximate quantiles at once: ``{quantile: value}``."""

    quantiles: tuple[float, ...] = (0.25, 0.5, 0.75)
    relative_error: float = 0.01

    def _extra(self) -> list[str]:
        return [repr(float(q)) for q in self.quantiles]

    def precondition(self, schema: T.StructType) -> str | None:
        bad = [q for q in self.quantiles if not 0.0 <= q <= 1.0]
        if bad:
            return f"Quantile parameters must be in the closed interval [0, 1], got {bad}"
        return super().precondition(schema)

    def aggregations(self) -> list[Column]:
        accuracy = max(1, int(round(1.0 / self.relative_error)))
        return [F.percentile_approx(self._double(), [float(q) for q in self.quantiles], accuracy)]

    def compute(self, values: list[Any]) -> dict[str, float]:
        found = _not_null(values[0])
        return {str(float(q)): float(v) for q, v in zip(self.quantiles, found, strict=True)}


@dataclass(frozen=True)
class Correlation(ScanAnalyzer):
    """Pearson correlation of two numeric columns over rows where both are not null."""

    first: str
    second: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.first, self.second)

    def precondition(self, schema: T.StructType) -> str | None:
        return (super().precondition(schema)
                or _require_types(schema, self.first, NUMERIC_TYPES, "numeric")
                or _require_types(schema, self.second, NUMERIC_TYPES, "numeric"))

    def aggregations(self) -> list[Column]:
        a, b = col(self.first).cast("double"), col(self.second).cast("double")
        return [F.corr(a, b), F.count(F.when(a.isNotNull() & b.isNotNull(), 1))]

    def compute(self, values: list[Any]) -> float:
        if not values[1]:
            raise EmptyStateError
        # one pair: 0 / 0, NaN, as Deequ computes it (Spark's corr gives null there)
        return float("nan") if values[0] is None else float(values[0])


@dataclass(frozen=True)
class DataType(ScanAnalyzer):
    """Distribution of the inferred type of each value's string form:
    ``{Unknown (null), Fractional, Integral, Boolean, String: {"absolute", "ratio"}}``."""

    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def aggregations(self) -> list[Column]:
        text = col(self.column).cast("string")
        return [
            F.count(F.lit(1)),
            F.sum(F.when(text.isNull(), 1).otherwise(0)),
            F.sum(F.when(text.rlike(FRACTIONAL_PATTERN), 1).otherwise(0)),
            F.sum(F.when(text.rlike(INTEGRAL_PATTERN), 1).otherwise(0)),
            F.sum(F.when(text.rlike(BOOLEAN_PATTERN), 1).otherwise(0)),
        ]

    def compute(self, values: list[Any]) -> dict[str, dict[str, float]]:
        total = int(values[0] or 0)
        if total == 0:
            raise EmptyStateError
        nulls, fractional, integral, boolean = (int(v or 0) for v in values[1:])
        strings = total - nulls - fractional - integral - boolean
        counts = dict(zip(DATA_TYPES, (nulls, fractional, integral, boolean, strings), strict=True))
        return {k: {"absolute": v, "ratio": v / total} for k, v in counts.items()}


# -- grouping analyzers: one groupBy per column set ------------------------------------------------
@dataclass(frozen=True)
class GroupingAnalyzer(Analyzer):
    """An analyzer over the value frequencies of a column set.

    The engine computes ``freq = df.groupBy(cols).count()`` once per column set and passes the
    shared aggregates: ``rows`` (rows with at least one non-null grouped value), ``unique`` (groups
    seen once), ``distinct`` (groups), ``sum_c_ln_c`` (for entropy), ``all_rows`` and
    ``all_groups`` (including the all-null group, for Histogram).
    """

    grouping: ClassVar[bool] = True
    group_columns: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> tuple[str, ...]:
        return self.group_columns

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        """The metric from the shared frequency aggregates."""
        raise NotImplementedError


def _grouping_init(self: GroupingAnalyzer, columns: Any) -> None:
    cols = (columns,) if isinstance(columns, str) else tuple(columns)
    if not cols:
        raise ValueError(f"{type(self).__name__} needs at least one column")
    object.__setattr__(self, "group_columns", cols)


@dataclass(frozen=True, init=False)
class Uniqueness(GroupingAnalyzer):
    """Fraction of (non-null) rows whose value occurs exactly once."""

    def __init__(self, columns: str | tuple[str, ...] | list[str]) -> None:
        _grouping_init(self, columns)

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        if not agg["rows"]:
            return self.empty()
        return self.success(agg["unique"] / agg["rows"])


@dataclass(frozen=True, init=False)
class Distinctness(GroupingAnalyzer):
    """Number of distinct values divided by the number of (non-null) rows."""

    def __init__(self, columns: str | tuple[str, ...] | list[str]) -> None:
        _grouping_init(self, columns)

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        if not agg["rows"]:
            return self.empty()
        return self.success(agg["distinct"] / agg["rows"])


@dataclass(frozen=True, init=False)
class UniqueValueRatio(GroupingAnalyzer):
    """Values occurring exactly once divided by the number of distinct values."""

    def __init__(self, columns: str | tuple[str, ...] | list[str]) -> None:
        _grouping_init(self, columns)

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        if not agg["distinct"]:
            return self.empty()
        return self.success(agg["unique"] / agg["distinct"])


@dataclass(frozen=True, init=False)
class CountDistinct(GroupingAnalyzer):
    """Exact number of distinct non-null values (combinations)."""

    def __init__(self, columns: str | tuple[str, ...] | list[str]) -> None:
        _grouping_init(self, columns)

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        return self.success(int(agg["distinct"]))


@dataclass(frozen=True, init=False)
class Entropy(GroupingAnalyzer):
    """Shannon entropy (natural log) of the value distribution of the non-null rows."""

    def __init__(self, column: str) -> None:
        _grouping_init(self, column)

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        n = agg["rows"]
        if not n:
            return self.empty()
        # -sum (c/n) ln(c/n) = ln n - (sum c ln c) / n
        return self.success(max(0.0, math.log(n) - agg["sum_c_ln_c"] / n))


NULL_VALUE = "NullValue"


@dataclass(frozen=True, init=False)
class Histogram(GroupingAnalyzer):
    """Value counts of one column, nulls as ``"NullValue"``: ``{"bins": n, "values": {v: {absolute, ratio}}}``
    with details for the ``max_detail_bins`` most frequent values."""

    max_detail_bins: int = 1000

    def __init__(self, column: str, max_detail_bins: int = 1000) -> None:
        _grouping_init(self, column)
        if max_detail_bins < 1:
            raise ValueError("max_detail_bins must be at least 1")
        object.__setattr__(self, "max_detail_bins", int(max_detail_bins))

    def from_frequencies(self, agg: dict[str, Any]) -> Metric:
        total = agg["all_rows"]
        values = {v: {"absolute": c, "ratio": (c / total) if total else 0.0} for v, c in agg["top_values"]}
        return self.success({"bins": int(agg["all_groups"]), "values": values})


SCAN_ANALYZERS = {c.__name__: c for c in (Size, Completeness, Compliance, PatternMatch, Mean, Sum, Minimum, Maximum,
                                           StandardDeviation, MinLength, MaxLength, ApproxCountDistinct,
                                           ApproxQuantile, ApproxQuantiles, Correlation, DataType)}
GROUPING_ANALYZERS = {c.__name__: c for c in (Uniqueness, Distinctness, UniqueValueRatio, CountDistinct, Entropy,
                                               Histogram)}
ALL_ANALYZERS: dict[str, type[Analyzer]] = {**SCAN_ANALYZERS, **GROUPING_ANALYZERS}
