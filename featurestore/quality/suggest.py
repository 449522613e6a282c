"""Constraint suggestions: profile a DataFrame and propose a suite (like Deequ's suggestion runner).

Rules, per column: complete -> ``isComplete``; mostly complete -> ``hasCompleteness`` at a lower
confidence bound of the observed ratio; numeric with no negative value -> ``isNonNegative``;
numeric -> ``hasMin``/``hasMax`` at the observed range; a categorical column with few distinct
values, at most a tenth of them seen once -> ``isContainedIn`` those values; every value distinct and
no null -> ``isUnique``. Each suggestion
carries its reason as the constraint's hint. Review them: they describe the sample, not intent.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import DataFrame

from featurestore.quality.checks import Check, CheckLevel
from featurestore.quality.statistics import compute_statistics
from featurestore.quality.suite import ExpectationSuite

MAX_CATEGORIES = 20


def _completeness_bound(p: float, n: int) -> float:
    """Lower end of a 95% normal-approximation interval, floored to two decimals."""
    low = p - 1.96 * math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))
    return max(0.0, math.floor(low * 100) / 100)


def _few_singletons(top_values: list[dict[str, Any]], rows: int) -> bool:
    """A value set is only a category list when at most a tenth of its entries (the nulls one entry) occur
    once: ten values seen once each are ten samples, not ten categories (Deequ's categorical-range rule)."""
    nulls = rows - sum(t["count"] for t in top_values)
    entries = len(top_values) + (1 if nulls > 0 else 0)
    singletons = sum(1 for t in top_values if t["count"] == 1) + (1 if nulls == 1 else 0)
    return singletons <= 0.1 * entries


def suggest(df: DataFrame, name: str = "suggested", level: CheckLevel | str = CheckLevel.Error,
            columns: list[str] | None = None) -> ExpectationSuite:
    """Profile ``df`` (one scan + one group-by) and return a suite of suggested constraints.

    ``print(suggest(df).to_yaml())`` shows it as a YAML suite that ``load_suite`` reads back.
    """
    stats = compute_statistics(df, {"histograms": True, "exact_uniqueness": True, "columns": columns})
    rows = stats.get("rows") or 0
    check = Check(level, f"constraints suggested from {rows} rows")
    if rows == 0:
        return ExpectationSuite([check], name)
    for col_name, e in stats["columns"].items():
        completeness = e.get("completeness")
        if completeness == 1.0:
            check.isComplete(col_name, hint="no nulls in the profiled data")
        elif isinstance(completeness, float) and completeness > 0.2:
            bound = _completeness_bound(completeness, rows)
            check.hasCompleteness(col_name, f">= {bound}", hint=f"{completeness:.4f} complete in the profiled data")
        if e["kind"] == "numeric" and isinstance(e.get("min"), int | float) and isinstance(e.get("max"), int | float):
            if e["min"] >= 0:
                check.isNonNegative(col_name, hint="no negative values in the profiled data")
            check.hasMin(col_name, f">= {e['min']!r}", hint="observed minimum")
            check.hasMax(col_name, f"<= {e['max']!r}", hint="observed maximum")
        distinct = e.get("distinct")
        if (e["kind"] == "categorical" and distinct and distinct <= MAX_CATEGORIES and e.get("top_values")
                and distinct < rows and _few_singletons(e["top_values"], rows)):
            values: list[Any] = sorted(t["value"] for t in e["top_values"])
            if e["type"] == "boolean":
                values = [v == "true" for v in values]
            check.isContainedIn(col_name, values, hint=f"{distinct} distinct values in the profiled data")
        if e.get("uniqueness") == 1.0 and completeness == 1.0:  # one row too, as Deequ
            check.isUnique(col_name, hint="every value distinct in the profiled data")
    return ExpectationSuite([check], name)
