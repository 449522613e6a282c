"""Checks: Deequ's constraint vocabulary over the analyzers.

``Check(CheckLevel.Error, "description").isComplete("id").hasMin("age", ">= 0")`` — every
constraint method returns the check, so they chain. An *assertion* is a callable
``value -> bool`` or data: a number (compared with the constraint's natural operator, listed in
:data:`DEFAULT_OPERATORS`), a string such as ``">= 0.95"``, ``"== 3"``, ``"between 1 and 10"``,
or a dict ``{"min": a, "max": b}``. Data assertions round-trip through YAML/JSON suites;
callables cannot be written to a file.
"""

from __future__ import annotations

import enum
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featurestore.quality import analyzers
from featurestore.quality.errors import SuiteError


class CheckLevel(enum.StrEnum):
    """Error-level failures block a STRICT insert; Warning-level failures never block."""

    Error = "Error"
    Warning = "Warning"


# -- assertions -------------------------------------------------------------------------------------
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_ASSERTION_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?[0-9.eE+-]+|nan|inf|-inf)\s*$")
_BETWEEN_RE = re.compile(r"^\s*between\s+([-+]?[0-9.eE+-]+)\s+and\s+([-+]?[0-9.eE+-]+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Assertion:
    """A predicate on a metric value, as data (``op`` with ``bound``) or wrapping a callable."""

    op: str
    bound: Any = None
    upper: Any = None
    func: Callable[[Any], bool] | None = field(default=None, compare=False)

    def __call__(self, value: Any) -> bool:
        if self.func is not None:
            return bool(self.func(value))
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.op == "between":
            return self.bound <= value <= self.upper
        return bool(_OPS[self.op](value, self.bound))

    def describe(self) -> str:
        """Readable form, also the form stored in YAML/JSON."""
        if self.func is not None:
            return getattr(self.func, "__name__", "custom assertion")
        if self.op == "between":
            return f"between {_num(self.bound)} and {_num(self.upper)}"
        return f"{self.op} {_num(self.bound)}"

    def to_data(self) -> Any:
        """The assertion as YAML/JSON data; a callable cannot be serialized."""
        if self.func is not None:
            raise SuiteError(f"assertion {self.describe()!r} is a Python callable and cannot be written to a "
                             "YAML/JSON suite; use a string such as '>= 0.95' or 'between 1 and 10'")
        return self.describe()


def _num(v: Any) -> str:
    return repr(v) if isinstance(v, float) and not v.is_integer() else str(int(v) if isinstance(v, float) else v)


def make_assertion(spec: Any, default_op: str, where: str) -> Assertion:
    """Build an assertion from a callable, number, string or ``{"min", "max"}`` dict."""
    if isinstance(spec, Assertion):
        return spec
    if callable(spec):
        return Assertion("custom", func=spec)
    if isinstance(spec, bool):
        raise SuiteError(f"{where}: assertion must be a number, a string like '>= 0.9', or a callable, got {spec!r}")
    if isinstance(spec, int | float):
        return Assertion(default_op, float(spec))
    if isinstance(spec, dict) and set(spec) <= {"min", "max"} and spec:
        lo, hi = spec.get("min", -math.inf), spec.get("max", math.inf)
        return Assertion("between", float(lo), float(hi))
    if isinstance(spec, str):
        m = _ASSERTION_RE.match(spec)
        if m:
            return Assertion(m.group(1), float(m.group(2)))
        m = _BETWEEN_RE.match(spec)
        if m:
            return Assertion("between", float(m.group(1)), float(m.group(2)))
    raise SuiteError(f"{where}: cannot understand assertion {spec!r}; use a number, '>= 0.95', '== 3', "
                     "'between 1 and 10', {{min: 1, max: 10}} or a callable")


IS_ONE = Assertion("==", 1.0)


# -- constraints ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constraint:
    """One constraint of a check: a method name with its parameters, the analyzer it needs, and how
    the metric value is picked and asserted."""

    method: str
    params: dict[str, Any]
    analyzer: analyzers.Analyzer | None
    assertion: Assertion
    hint: str | None = None
    pick: Callable[[Any], Any] | None = field(default=None, compare=False)
    anomaly: Any = None  # an AnomalyCheck for isNewestPointNonAnomalous

    @property
    def description(self) -> str:
        """E.g. ``hasCompleteness(email, >= 0.95)``."""
        args = [str(v) if not isinstance(v, list | tuple) else ",".join(map(str, v))
                for k, v in self.params.items() if k not in ("assertion", "hint")]
        if "assertion" in self.params:
            args.append(self.assertion.describe())
        return f"{self.method}({', '.join(args)})"

    def to_data(self) -> dict[str, Any]:
        """``{method: {param: value}}`` as in a YAML/JSON suite."""
        params: dict[str, Any] = {}
        for k, v in self.params.items():
            if k == "assertion":
                params[k] = self.assertion.to_data()
            elif isinstance(v, tuple):
                params[k] = list(v)
            elif hasattr(v, "to_data"):
                params[k] = v.to_data()
            else:
                params[k] = v
        if self.hint:
            params["hint"] = self.hint
        return {self.method: params}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# Built-in patterns (our own; the same intent as Deequ's Patterns): matched anywhere in the value.
EMAIL_PATTERN = (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                 r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
URL_PATTERN = r"(?:https?|ftp)://[^\s/$.?#][^\s]*"
CREDIT_CARD_PATTERN = (r"\b(?:4[0-9]{3}|5[1-5][0-9]{2}|2[2-7][0-9]{2})(?:[ -]?[0-9]{4}){3}\b"
                       r"|\b3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}\b"
                       r"|\b3(?:0[0-5]|[68][0-9])[0-9][ -]?[0-9]{6}[ -]?[0-9]{4}\b")

DATA_TYPE_NAMES = ("Null", "Fractional", "Integral", "Boolean", "String", "Numeric")


def _data_type_ratio(kind: str) -> Callable[[dict[str, dict[str, float]]], float]:
    """Deequ's picker: the Null ratio is over all values; the others over the non-null values."""

    def pick(dist: dict[str, dict[str, float]]) -> float:
        if kind == "Null":
            return dist["Unknown"]["ratio"]
        non_null = sum(v["absolute"] for k, v in dist.items() if k != "Unknown")
        keys = ("Fractional", "Integral") if kind == "Numeric" else (kind,)
        hits = sum(dist[k]["absolute"] for k in keys)
        return hits / non_null if hits else 0.0

    pick.__name__ = f"ratio of {kind}"
    return pick


class Check:
    """A named group of constraints with a level (Deequ's ``Check``)."""

    def __init__(self, level: CheckLevel | str, description: str, constraints: list[Constraint] | None = None) -> None:
        try:
            self.level = CheckLevel(level.value if isinstance(level, CheckLevel) else str(level).capitalize())
        except ValueError:
            raise SuiteError(f"check '{description}': level must be Error or Warning, got {level!r}") from None
        self.description = description
        self.constraints: list[Constraint] = list(constraints or [])

    def __repr__(self) -> str:
        return f"Check({self.level.value}, {self.description!r}, {len(self.constraints)} constraints)"

    # -- building ------------------------------------------------------------------------------
    def _add(self, method: str, params: dict[str, Any], analyzer: analyzers.Analyzer | None, assertion: Any,
             default_op: str, hint: str | None, pick: Callable[[Any], Any] | None = None,
             anomaly: Any = None) -> Check:
        where = f"check '{self.description}', {method}"
        made = IS_ONE if assertion is None and default_op == "is_one" else make_assertion(
            assertion, ">=" if default_op == "is_one" else default_op, where)
        if assertion is not None:
            params = {**params, "assertion": assertion}
        self.constraints.append(Constraint(method, params, analyzer, made, hint, pick, anomaly))
        return self

    @staticmethod
    def _cols(columns: Any, where: str) -> tuple[str, ...]:
        cols = (columns,) if isinstance(columns, str) else tuple(columns or ())
        if not cols or not all(isinstance(c, str) and c for c in cols):
            raise SuiteError(f"{where}: needs one or more column names, got {columns!r}")
        return cols

    def hasSize(self, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802 - Deequ's names
        """The number of rows satisfies ``assertion`` (a number means ``==``)."""
        return self._add("hasSize", {}, analyzers.Size(), assertion, "==", hint)

    def isComplete(self, column: str, hint: str | None = None) -> Check:  # noqa: N802
        """No nulls in ``column``."""
        return self._add("isComplete", {"column": column}, analyzers.Completeness(column), None, "is_one", hint)

    def hasCompleteness(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """The fraction of non-null values satisfies ``assertion`` (a number means ``>=``)."""
        return self._add("hasCompleteness", {"column": column}, analyzers.Completeness(column), assertion, ">=", hint)

    def areComplete(self, columns: list[str], hint: str | None = None) -> Check:  # noqa: N802
        """No row has a null in any of ``columns``."""
        cols = self._cols(columns, "areComplete")
        predicate = " AND ".join(f"{_quote(c)} IS NOT NULL" for c in cols)
        analyzer = analyzers.Compliance(f"{','.join(cols)} are complete", predicate, cols)
        return self._add("areComplete", {"columns": list(cols)}, analyzer, None, "is_one", hint)

    def isUnique(self, column: str, hint: str | None = None) -> Check:  # noqa: N802
        """Every non-null value of ``column`` occurs once."""
        return self._add("isUnique", {"column": column}, analyzers.Uniqueness(column), None, "is_one", hint)

    def isPrimaryKey(self, column: str | None = None, *more: str, columns: list[str] | None = None,  # noqa: N802
                     hint: str | None = None) -> Check:
        """The combination of the columns is unique: ``isPrimaryKey("a", "b")`` or ``columns=["a", "b"]``."""
        cols = self._cols([c for c in (column, *more) if c is not None] + list(columns or []), "isPrimaryKey")
        return self._add("isPrimaryKey", {"columns": list(cols)}, analyzers.Uniqueness(cols), None, "is_one", hint)

    def hasUniqueness(self, columns: str | list[str], assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Uniqueness of the column(s) satisfies ``assertion`` (number: ``>=``)."""
        cols = self._cols(columns, "hasUniqueness")
        return self._add("hasUniqueness", {"columns": list(cols)}, analyzers.Uniqueness(cols), assertion, ">=", hint)

    def hasDistinctness(self, columns: str | list[str], assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Distinctness of the column(s) satisfies ``assertion`` (number: ``>=``)."""
        cols = self._cols(columns, "hasDistinctness")
        return self._add("hasDistinctness", {"columns": list(cols)}, analyzers.Distinctness(cols),
                         assertion, ">=", hint)

    def hasUniqueValueRatio(self, columns: str | list[str], assertion: Any,  # noqa: N802
                            hint: str | None = None) -> Check:
        """Unique-value ratio of the column(s) satisfies ``assertion`` (number: ``>=``)."""
        cols = self._cols(columns, "hasUniqueValueRatio")
        return self._add("hasUniqueValueRatio", {"columns": list(cols)}, analyzers.UniqueValueRatio(cols),
                         assertion, ">=",
                         hint)

    def hasNumberOfDistinctValues(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """The number of histogram bins (null counts as a value, as in Deequ) satisfies ``assertion``
        (number: ``==``)."""
        pick = _bins
        return self._add("hasNumberOfDistinctValues", {"column": column}, analyzers.Histogram(column), assertion, "==",
                         hint, pick)

    def hasEntropy(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Entropy of ``column`` satisfies ``assertion`` (number: ``==``)."""
        return self._add("hasEntropy", {"column": column}, analyzers.Entropy(column), assertion, "==", hint)

    def hasMin(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Minimum satisfies ``assertion`` (number: ``>=``)."""
        return self._add("hasMin", {"column": column}, analyzers.Minimum(column), assertion, ">=", hint)

    def hasMax(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Maximum satisfies ``assertion`` (number: ``<=``)."""
        return self._add("hasMax", {"column": column}, analyzers.Maximum(column), assertion, "<=", hint)

    def hasMean(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Mean satisfies ``assertion`` (number: ``==``)."""
        return self._add("hasMean", {"column": column}, analyzers.Mean(column), assertion, "==", hint)

    def hasSum(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Sum satisfies ``assertion`` (number: ``==``)."""
        return self._add("hasSum", {"column": column}, analyzers.Sum(column), assertion, "==", hint)

    def hasStandardDeviation(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Population standard deviation satisfies ``assertion`` (number: ``<=``)."""
        return self._add("hasStandardDeviation", {"column": column}, analyzers.StandardDeviation(column),
                         assertion, "<=",
                         hint)

    def hasMinLength(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Shortest string length satisfies ``assertion`` (number: ``>=``)."""
        return self._add("hasMinLength", {"column": column}, analyzers.MinLength(column), assertion, ">=", hint)

    def hasMaxLength(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Longest string length satisfies ``assertion`` (number: ``<=``)."""
        return self._add("hasMaxLength", {"column": column}, analyzers.MaxLength(column), assertion, "<=", hint)

    def hasApproxQuantile(self, column: str, quantile: float, assertion: Any,  # noqa: N802
                          hint: str | None = None) -> Check:
        """Approximate ``quantile`` satisfies ``assertion`` (number: ``==``)."""
        return self._add("hasApproxQuantile", {"column": column, "quantile": quantile},
                         analyzers.ApproxQuantile(column, float(quantile)), assertion, "==", hint)

    def hasApproxCountDistinct(self, column: str, assertion: Any, hint: str | None = None) -> Check:  # noqa: N802
        """Approximate distinct count satisfies ``assertion`` (number: ``>=``)."""
        return self._add("hasApproxCountDistinct", {"column": column}, analyzers.ApproxCountDistinct(column), assertion,
                         ">=", hint)

    def hasCorrelation(self, column_a: str, column_b: str, assertion: Any,  # noqa: N802
                       hint: str | None = None) -> Check:
        """Pearson correlation satisfies ``assertion`` (number: ``>=``)."""
        return self._add("hasCorrelation", {"column_a": column_a, "column_b": column_b},
                         analyzers.Correlation(column_a, column_b), assertion, ">=", hint)

    def hasPattern(self, column: str, pattern: str, assertion: Any = None, name: str | None = None,  # noqa: N802
                   hint: str | None = None) -> Check:
        """The fraction of values containing a match of ``pattern`` (Java regex) satisfies
        ``assertion`` (default: all; number: ``>=``)."""
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SuiteError(f"hasPattern({column}): invalid regular expression {pattern!r}: {exc}") from None
        params = {"column": column, "pattern": pattern, **({"name": name} if name else {})}
        return self._add("hasPattern", params, analyzers.PatternMatch(column, pattern), assertion, "is_one", hint)

    def containsEmail(self, column: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """The fraction of values containing an e-mail address satisfies ``assertion`` (default: all)."""
        return self._add("containsEmail", {"column": column}, analyzers.PatternMatch(column, EMAIL_PATTERN), assertion,
                         "is_one", hint)

    def containsURL(self, column: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """The fraction of values containing a URL satisfies ``assertion`` (default: all)."""
        return self._add("containsURL", {"column": column}, analyzers.PatternMatch(column, URL_PATTERN), assertion,
                         "is_one", hint)

    def containsCreditCardNumber(self, column: str, assertion: Any = None,  # noqa: N802
                                 hint: str | None = None) -> Check:
        """The fraction of values containing a Visa/MasterCard/Amex/Diners number satisfies ``assertion``
        (default: all; to forbid card numbers use ``"== 0"``)."""
        return self._add("containsCreditCardNumber", {"column": column},
                         analyzers.PatternMatch(column, CREDIT_CARD_PATTERN), assertion, "is_one", hint)

    def hasDataType(self, column: str, data_type: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """The ratio of values of ``data_type`` (Null, Fractional, Integral, Boolean, String, Numeric)
        satisfies ``assertion`` (default: all)."""
        kind = str(getattr(data_type, "value", data_type)).capitalize()
        if kind not in DATA_TYPE_NAMES:
            raise SuiteError(f"hasDataType({column}): data_type must be one of {', '.join(DATA_TYPE_NAMES)}, "
                             f"got {data_type!r}")
        return self._add("hasDataType", {"column": column, "data_type": kind}, analyzers.DataType(column), assertion,
                         "is_one", hint, _data_type_ratio(kind))

    def isNonNegative(self, column: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """Values are >= 0 (nulls count as compliant, as in Deequ)."""
        pred = f"COALESCE(CAST({_quote(column)} AS DOUBLE), 0.0) >= 0"
        return self._add("isNonNegative", {"column": column},
                         analyzers.Compliance(f"{column} is non-negative", pred, (column,)), assertion, "is_one", hint)

    def isPositive(self, column: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """Values are > 0 (nulls count as compliant, as in Deequ)."""
        pred = f"COALESCE(CAST({_quote(column)} AS DOUBLE), 1.0) > 0"
        return self._add("isPositive", {"column": column},
                         analyzers.Compliance(f"{column} is positive", pred, (column,)), assertion, "is_one", hint)

    def _compare(self, method: str, op: str, column_a: str, column_b: str, assertion: Any,
                 hint: str | None) -> Check:
        pred = f"{_quote(column_a)} {op} {_quote(column_b)}"
        words = {"<": "less than", "<=": "less than or equal to", ">": "greater than",
                 ">=": "greater than or equal to"}[op]
        return self._add(method, {"column_a": column_a, "column_b": column_b},
                         analyzers.Compliance(f"{column_a} is {words} {column_b}", pred, (column_a, column_b)),
                         assertion, "is_one", hint)

    def isLessThan(self, column_a: str, column_b: str, assertion: Any = None, hint: str | None = None) -> Check:  # noqa: N802
        """In each row ``column_a < column_b`` (a null makes the row non-compliant)."""
        return self._compare("isLessThan", "<", column_a, column_b, assertion, hint)

    def isLessThanOrEqualTo(self, column_a: str, column_b: str, assertion: Any = None,  # noqa: N802
                            hint: str | None = None) -> Check:
        """In each row ``column_a <= column_b``."""
        return self._compare("isLessThanOrEqualTo", "<=", column_a, column_b, assertion, hint)

    def isGreaterThan(self, column_a: str, column_b: str, assertion: Any = None,  # noqa: N802
                      hint: str | None = None) -> Check:
        """In each row ``column_a > column_b``."""
        return self._compare("isGreaterThan", ">", column_a, column_b, assertion, hint)

    def isGreaterThanOrEqualTo(self, column_a: str, column_b: str, assertion: Any = None,  # noqa: N802
                               hint: str | None = None) -> Check:
        """In each row ``column_a >= column_b``."""
        return self._compare("isGreaterThanOrEqualTo", ">=", column_a, column_b, assertion, hint)

    def isContainedIn(self, column: str, allowed_values: list[Any] | None = None,  # noqa: N802
                      lower_bound: float | None = None, upper_bound: float | None = None,
                      include_lower_bound: bool = True, include_upper_bound: bool = True,
                      assertion: Any = None, hint: str | None = None) -> Check:
        """Values are in ``allowed_values``, or within [``lower_bound``, ``upper_bound``] (nulls count as
        compliant, as in Deequ)."""
        q = _quote(column)
        if allowed_values is not None:
            if lower_bound is not None or upper_bound is not None:
                raise SuiteError(f"isContainedIn({column}): give allowed_values or bounds, not both")
            values = list(allowed_values)
            if not values:
                raise SuiteError(f"isContainedIn({column}): allowed_values is empty")
            pred = f"{q} IS NULL OR {q} IN ({', '.join(_sql_literal(v) for v in values)})"
            params: dict[str, Any] = {"column": column, "allowed_values": values}
            name = f"{column} contained in {','.join(map(str, values))}"
        else:
            if lower_bound is None or upper_bound is None:
                raise SuiteError(f"isContainedIn({column}): needs allowed_values, or lower_bound and upper_bound")
            lo_op, hi_op = (">=" if include_lower_bound else ">"), ("<=" if include_upper_bound else "<")
            pred = f"{q} IS NULL OR ({q} {lo_op} {float(lower_bound)!r} AND {q} {hi_op} {float(upper_bound)!r})"
            params = {"column": column, "lower_bound": lower_bound, "upper_bound": upper_bound}
            if not include_lower_bound:
                params["include_lower_bound"] = False
            if not include_upper_bound:
                params["include_upper_bound"] = False
            name = f"{column} between {lower_bound} and {upper_bound}"
        return self._add("isContainedIn", params, analyzers.Compliance(name, pred, (column,)),
                         assertion, "is_one", hint)

    def satisfies(self, sql: str, name: str, assertion: Any = None, hint: str | None = None,
                  where: str | None = None) -> Check:
        """The fraction of rows satisfying the SQL predicate ``sql`` satisfies ``assertion`` (default: all);
        with ``where`` (a SQL predicate) the fraction is of the rows where it holds."""
        if not sql or not name:
            raise SuiteError("satisfies: needs a SQL predicate and a name")
        params = {"sql": sql, "name": name, **({"where": where} if where else {})}
        return self._add("satisfies", params, analyzers.Compliance(name, sql, (), where or None),
                         assertion, "is_one", hint)

    def isNewestPointNonAnomalous(self, analyzer: Any, strategy: Any, hint: str | None = None) -> Check:  # noqa: N802
        """The metric of ``analyzer`` on the new data is not an anomaly relative to the feature group's
        metric history, by ``strategy`` (see :mod:`featurestore.quality.anomaly`)."""
        from featurestore.quality.anomaly import AnomalyCheck, analyzer_from_data, strategy_from_data

        made = analyzer if isinstance(analyzer, analyzers.Analyzer) else analyzer_from_data(analyzer)
        strat = strategy_from_data(strategy) if isinstance(strategy, dict | str) else strategy
        params = {"analyzer": AnalyzerRef(made), "strategy": strat}
        check = AnomalyCheck(made, strat)
        self.constraints.append(Constraint("isNewestPointNonAnomalous", params, made, Assertion("custom",
                                           func=lambda _v: True), hint, None, check))
        return self

    # -- serialization -------------------------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        """``{"level", "description", "constraints": [...]}`` as in a YAML/JSON suite."""
        return {"level": self.level.value, "description": self.description,
                "constraints": [c.to_data() for c in self.constraints]}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Check:
        """Build a check from its YAML/JSON form; unknown methods and parameters are named in the error."""
        if not isinstance(data, dict) or "description" not in data:
            raise SuiteError(f"a check needs 'level', 'description' and 'constraints', got {data!r}")
        unknown = set(data) - {"level", "description", "constraints"}
        if unknown:
            raise SuiteError(f"check '{data['description']}': unknown key(s) {', '.join(sorted(unknown))}")
        check = cls(data.get("level", "Error"), data["description"])
        for item in data.get("constraints") or []:
            if isinstance(item, str):
                method, params = item, {}
            elif isinstance(item, dict) and len(item) == 1:
                method, params = next(iter(item.items()))
                params = params or {}
            else:
                raise SuiteError(f"check '{check.description}': a constraint is {{method: {{param: value}}}}, "
                                 f"got {item!r}")
            fn = getattr(check, method, None)
            if method.startswith("_") or method in ("to_data", "from_data") or not callable(fn):
                raise SuiteError(f"check '{check.description}': unknown constraint {method!r}")
            if not isinstance(params, dict):
                raise SuiteError(f"check '{check.description}', {method}: parameters must be a mapping")
            try:
                fn(**params)
            except TypeError as exc:
                raise SuiteError(f"check '{check.description}', {method}: {exc}") from None
        return check


@dataclass(frozen=True)
class AnalyzerRef:
    """An analyzer as a constraint parameter (serializes as ``{Name: {params}}``)."""

    analyzer: analyzers.Analyzer

    def __str__(self) -> str:
        return self.analyzer.key

    def to_data(self) -> Any:
        from featurestore.quality.anomaly import analyzer_to_data

        return analyzer_to_data(self.analyzer)


def _bins(histogram: dict[str, Any]) -> int:
    return int(histogram["bins"])
