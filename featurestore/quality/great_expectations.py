"""Great Expectations suites in: what hsfs users attach to their feature groups, as our checks.

A GE expectation-suite JSON (the classic ``{"expectation_suite_name", "expectations": [{"expectation_type",
"kwargs"}]}`` or GE 1.x ``{"name", "expectations": [{"type", "kwargs"}]}``) becomes one check per
expectation (``ExpectationSuite.from_great_expectations``, or any suite path given to
``fg.save_expectation_suite`` / ``verify``), keeping GE's meaning:

- per-row expectations (``..._to_be_between``, ``..._to_be_in_set``, ``..._to_match_regex``,
  ``expect_column_value_lengths_to_be_between``) count, as GE does, only the non-null values: the
  fraction of non-null values that comply must be at least ``mostly`` (default 1);
- ``expect_column_values_to_not_be_null``: the fraction of all rows that are not null >= ``mostly``;
- ``expect_column_values_to_be_unique``: Deequ's uniqueness >= ``mostly`` (here a null counts as a
  value that is not unique, where GE ignores nulls: the two agree on columns without nulls);
- aggregate expectations (``expect_column_mean_to_be_between``,
  ``expect_table_row_count_to_be_between``) with GE's inclusive bounds, ``strict_min``/``strict_max``
  making them exclusive, and a missing bound meaning unbounded.

An expectation we do not have, or a keyword argument we would have to ignore, is a
:class:`SuiteError` naming it (and its position in the suite), before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from featurestore.quality.checks import Check, CheckLevel
from featurestore.quality.checks import _quote as _quoted  # the one quoting of Spark SQL identifiers here
from featurestore.quality.checks import _sql_literal as _literal
from featurestore.quality.errors import SuiteError

# kwargs GE uses for rendering or result shape only: accepted, no meaning for the verdict
_PRESENTATION_KWARGS = frozenset({"result_format", "include_config", "catch_exceptions", "meta"})


def _mostly(kwargs: Mapping[str, Any], where: str) -> float:
    mostly = kwargs.get("mostly", 1.0)
    if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 <= mostly <= 1:
        raise SuiteError(f"{where}: 'mostly' must be a number between 0 and 1, got {mostly!r}")
    return float(mostly)


def _bounds(kwargs: Mapping[str, Any], where: str) -> tuple[float | None, float | None, bool, bool]:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    for name, value in (("min_value", low), ("max_value", high)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SuiteError(f"{where}: {name} must be a number or null, got {value!r}")
    if low is None and high is None:
        raise SuiteError(f"{where}: needs min_value, max_value or both")
    return low, high, bool(kwargs.get("strict_min", False)), bool(kwargs.get("strict_max", False))


def _range_predicate(expression: str, low: float | None, high: float | None, strict_min: bool,
                     strict_max: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{expression} {'>' if strict_min else '>='} {low!r}")
    if high is not None:
        parts.append(f"{expression} {'<' if strict_max else '<='} {high!r}")
    return " AND ".join(parts)


def _per_row(check: Check, column: str, predicate: str, name: str, mostly: float) -> None:
    """GE's per-row expectation: the fraction of the non-null values satisfying ``predicate``."""
    check.satisfies(predicate, name, f">= {mostly!r}", where=f"{_quoted(column)} IS NOT NULL")


def _aggregate_between(add: Callable[[str], Any], low: float | None, high: float | None, strict_min: bool,
                       strict_max: bool) -> None:
    if low is not None and high is not None and not strict_min and not strict_max:
        add(f"between {low!r} and {high!r}")
        return
    if low is not None:
        add(f"{'>' if strict_min else '>='} {low!r}")
    if high is not None:
        add(f"{'<' if strict_max else '<='} {high!r}")


def _not_null(check: Check, kw: Mapping[str, Any], where: str) -> None:
    mostly = _mostly(kw, where)
    check.isComplete(kw["column"]) if mostly == 1 else check.hasCompleteness(kw["column"], f">= {mostly!r}")


def _between(check: Check, kw: Mapping[str, Any], where: str) -> None:
    low, high, strict_min, strict_max = _bounds(kw, where)
    column = kw["column"]
    predicate = _range_predicate(_quoted(column), low, high, strict_min, strict_max)
    _per_row(check, column, predicate, f"{column} between {low} and {high}", _mostly(kw, where))


def _unique(check: Check, kw: Mapping[str, Any], where: str) -> None:
    mostly = _mostly(kw, where)
    check.isUnique(kw["column"]) if mostly == 1 else check.hasUniqueness(kw["column"], f">= {mostly!r}")


def _in_set(check: Check, kw: Mapping[str, Any], where: str) -> None:
    values = kw.get("value_set")
    if not isinstance(values, list | tuple) or not values:
        raise SuiteError(f"{where}: value_set must be a non-empty list, got {values!r}")
    column = kw["column"]
    predicate = f"{_quoted(column)} IN ({', '.join(_literal(v) for v in values)})"
    _per_row(check, column, predicate, f"{column} in set {list(values)}", _mostly(kw, where))


def _regex(check: Check, kw: Mapping[str, Any], where: str) -> None:
    regex = kw.get("regex")
    if not isinstance(regex, str) or not regex:
        raise SuiteError(f"{where}: regex must be a non-empty string, got {regex!r}")
    column = kw["column"]
    # GE searches (a match anywhere in the value), as Spark's RLIKE does
    predicate = f"CAST({_quoted(column)} AS STRING) RLIKE {_literal(regex)}"
    _per_row(check, column, predicate, f"{column} matches {regex}", _mostly(kw, where))


def _lengths(check: Check, kw: Mapping[str, Any], where: str) -> None:
    low, high, strict_min, strict_max = _bounds(kw, where)
    column = kw["column"]
    predicate = _range_predicate(f"char_length({_quoted(column)})", low, high, strict_min, strict_max)
    _per_row(check, column, predicate, f"{column} length between {low} and {high}", _mostly(kw, where))


def _mean(check: Check, kw: Mapping[str, Any], where: str) -> None:
    low, high, strict_min, strict_max = _bounds(kw, where)
    _aggregate_between(lambda a: check.hasMean(kw["column"], a), low, high, strict_min, strict_max)


def _row_count(check: Check, kw: Mapping[str, Any], where: str) -> None:
    low, high, strict_min, strict_max = _bounds(kw, where)
    _aggregate_between(check.hasSize, low, high, strict_min, strict_max)


# expectation type -> (builder, the kwargs it understands besides the presentation ones)
EXPECTATIONS: dict[str, tuple[Callable[[Check, Mapping[str, Any], str], None], frozenset[str]]] = {
    "expect_column_values_to_not_be_null": (_not_null, frozenset({"column", "mostly"})),
    "expect_column_values_to_be_between": (
        _between, frozenset({"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"})),
    "expect_column_values_to_be_unique": (_unique, frozenset({"column", "mostly"})),
    "expect_column_values_to_be_in_set": (_in_set, frozenset({"column", "value_set", "mostly"})),
    "expect_column_values_to_match_regex": (_regex, frozenset({"column", "regex", "mostly"})),
    "expect_column_value_lengths_to_be_between": (
        _lengths, frozenset({"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"})),
    "expect_column_mean_to_be_between": (
        _mean, frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"})),
    "expect_table_row_count_to_be_between": (
        _row_count, frozenset({"min_value", "max_value", "strict_min", "strict_max"})),
}


def is_great_expectations_suite(data: Any) -> bool:
    """Whether parsed JSON/YAML is a Great Expectations suite (it has ``expectations``, not ``checks``)."""
    return isinstance(data, dict) and "expectations" in data and "checks" not in data


def great_expectations_checks(source: Mapping[str, Any], origin: str = "Great Expectations suite",
                              level: str = CheckLevel.Error) -> tuple[str, list[Check]]:
    """The suite name and one check per expectation (named ``<expectation type> #<position>``, at
    ``level``) of a parsed Great Expectations suite; ``origin`` names it in errors."""
    if not is_great_expectations_suite(source):
        raise SuiteError(f"{origin}: a Great Expectations suite is a mapping with 'expectations'")
    name = str(source.get("expectation_suite_name") or source.get("name") or "great_expectations")
    checks = []
    for position, item in enumerate(source["expectations"] or [], start=1):
        if not isinstance(item, dict):
            raise SuiteError(f"{origin}: expectation #{position} is not a mapping: {item!r}")
        kind = item.get("expectation_type") or item.get("type")
        where = f"{origin}: expectation #{position} ({kind})"
        if kind not in EXPECTATIONS:
            supported = ", ".join(sorted(EXPECTATIONS))
            raise SuiteError(f"{where}: not supported; supported expectations: {supported}")
        build, understood = EXPECTATIONS[kind]
        kwargs = dict(item.get("kwargs") or {})
        ignored = set(kwargs) - understood - _PRESENTATION_KWARGS
        if ignored:
            raise SuiteError(f"{where}: keyword argument(s) {', '.join(sorted(ignored))} not supported")
        if "column" in understood and not isinstance(kwargs.get("column"), str):
            raise SuiteError(f"{where}: needs a 'column' name")
        check = Check(level, f"{kind} #{position}")
        build(check, kwargs, where)
        checks.append(check)
    return name, checks
