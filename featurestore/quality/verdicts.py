"""Readable verdicts: what a constraint measured and what it required, in words, once.

``isNonNegative(spend_7d)`` failing on 62 of 100 rows reads "38% of rows have spend_7d >= 0;
required: all rows" instead of "value 0.38 (Value: 0.38 does not meet the constraint requirement
(== 1))". The result's ``message`` keeps Deequ's own text (so our results compare with Deequ's);
the verdict is what the reports, errors and the CLI show.
"""

from __future__ import annotations

import math
from typing import Any

from featurestore.quality import analyzers
from featurestore.quality.checks import Assertion, Constraint

# analyzers whose value is a fraction of rows, and how one such row reads
_FRACTIONS: dict[type, str] = {
    analyzers.Completeness: "have {column} not null",
    analyzers.Compliance: "satisfy '{constraint_name}'",
    analyzers.PatternMatch: "have {column} matching {pattern}",
    analyzers.Uniqueness: "have a {columns} value no other row has",
}
# fractions of distinct values rather than of rows
_VALUE_FRACTIONS: dict[type, str] = {
    analyzers.Distinctness: "distinct {columns} values per row",
    analyzers.UniqueValueRatio: "of the distinct {columns} values occur once",
}
# the constraint's own words where they say it better than the analyzer's
_COMPLIANCE_WORDS = {"isNonNegative": "have {column} >= 0", "isPositive": "have {column} > 0"}
_NAMES: dict[type, str] = {
    analyzers.Size: "the row count", analyzers.Mean: "the mean of {column}", analyzers.Sum: "the sum of {column}",
    analyzers.Minimum: "the minimum of {column}", analyzers.Maximum: "the maximum of {column}",
    analyzers.StandardDeviation: "the standard deviation of {column}",
    analyzers.MinLength: "the shortest {column} length", analyzers.MaxLength: "the longest {column} length",
    analyzers.ApproxCountDistinct: "the approximate distinct count of {column}",
    analyzers.CountDistinct: "the distinct count of {columns}", analyzers.Entropy: "the entropy of {columns}",
    analyzers.Correlation: "the correlation of {first} and {second}",
    analyzers.ApproxQuantile: "the approximate {quantile} quantile of {column}",
}


def _fields(analyzer: Any, constraint: Constraint) -> dict[str, Any]:
    values = {name: getattr(analyzer, name) for name in ("column", "constraint_name", "pattern", "first",
                                                         "second", "quantile") if hasattr(analyzer, name)}
    columns = getattr(analyzer, "columns", None) or ()
    values["columns"] = ", ".join(columns) if columns else values.get("column", "")
    values.setdefault("column", constraint.params.get("column", values["columns"]))
    return values


def _percent(fraction: float) -> str:
    if fraction in (0, 1):
        return f"{fraction:.0%}"
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    # never round a failing fraction up to 100% or a passing one down to 0%
    if text == "100":
        text = "99.99"
    elif text == "0":
        text = "0.01"
    return f"{text}%"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


def _required_fraction(assertion: Assertion) -> str:
    if assertion.func is not None:
        return f"{assertion.describe()} (a custom assertion)"
    if assertion.op == "==" and assertion.bound == 1:
        return "all rows"
    if assertion.op == "==" and assertion.bound == 0:
        return "no rows"
    if assertion.op == "between":
        return f"between {_percent(assertion.bound)} and {_percent(assertion.upper)}"
    words = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than", "==": "exactly", "!=": "not"}
    return f"{words.get(assertion.op, assertion.op)} {_percent(assertion.bound)}"


def _required_value(assertion: Assertion) -> str:
    if assertion.func is not None:
        return f"{assertion.describe()} (a custom assertion)"
    if assertion.op == "between":
        return f"between {_number(assertion.bound)} and {_number(assertion.upper)}"
    return f"{assertion.op} {_number(assertion.bound)}"


def verdict(constraint: Constraint, value: Any, ok: bool) -> str:
    """What ``constraint`` measured (``value``) and what it required, as one sentence."""
    analyzer = constraint.analyzer
    fields = _fields(analyzer, constraint)
    kind = type(analyzer)
    measured_ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    if kind in _FRACTIONS and measured_ok:
        words = _COMPLIANCE_WORDS.get(constraint.method, _FRACTIONS[kind]).format(**fields)
        base = "of the rows counted" if getattr(analyzer, "where", None) else "of rows"
        text = f"{_percent(value)} {base} {words}"
        return text if ok else f"{text}; required: {_required_fraction(constraint.assertion)}"
    if kind in _VALUE_FRACTIONS and measured_ok:
        text = f"{_percent(value)} {_VALUE_FRACTIONS[kind].format(**fields)}"
        return text if ok else f"{text}; required: {_required_fraction(constraint.assertion)}"
    try:
        name = _NAMES.get(kind, "{method}({columns})").format(method=constraint.method, **fields)
    except (KeyError, IndexError):  # an analyzer without the fields its words name: say it plainly
        name = f"{constraint.method}({fields['columns']})"
    text = f"{name} is {_number(value)}"
    return text if ok else f"{text}; required: {_required_value(constraint.assertion)}"
