"""Runs analyzers with as few passes over the data as possible.

Every scan analyzer adds its aggregate expressions to one ``df.agg(...)`` (a single job over the
data). Grouping analyzers are grouped by column set: one ``groupBy(cols).count()`` per set, whose
(much smaller) result is aggregated once for all the set's metrics; a Histogram additionally
takes its most frequent values from the same cached frequencies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore.quality.analyzers import (
    COUNT_COL,
    NULL_VALUE,
    Analyzer,
    GroupingAnalyzer,
    Histogram,
    Metric,
    ScanAnalyzer,
    col,
)


def run_analyzers(df: DataFrame, analyzers: Iterable[Analyzer]) -> dict[Analyzer, Metric]:
    """Compute every analyzer's metric over ``df``: one shared scan plus one group-by per column set.

    A failing precondition (missing column, wrong type) gives a failure metric naming the column;
    it never stops the other analyzers.
    """
    unique: list[Analyzer] = list(dict.fromkeys(analyzers))
    results: dict[Analyzer, Metric] = {}
    scan: list[ScanAnalyzer] = []
    groups: dict[tuple[str, ...], list[GroupingAnalyzer]] = {}
    for analyzer in unique:
        problem = analyzer.precondition(df.schema)
        if problem:
            results[analyzer] = analyzer.failure(problem)
        elif isinstance(analyzer, GroupingAnalyzer):
            groups.setdefault(analyzer.group_columns, []).append(analyzer)
        else:
            scan.append(analyzer)  # type: ignore[arg-type]
    if scan:
        results.update(_run_scan(df, scan))
    for columns, members in groups.items():
        results.update(_run_grouping(df, columns, members))
    return {a: results[a] for a in unique}


def _run_scan(df: DataFrame, analyzers: list[ScanAnalyzer]) -> dict[Analyzer, Metric]:
    expressions = []
    slices: list[tuple[ScanAnalyzer, int, int]] = []
    for analyzer in analyzers:
        aggs = analyzer.aggregations()
        slices.append((analyzer, len(expressions), len(aggs)))
        expressions.extend(agg.alias(f"m{len(expressions) + i}") for i, agg in enumerate(aggs))
    try:
        row = df.agg(*expressions).collect()[0]
    except Exception as exc:  # noqa: BLE001 - e.g. a Compliance predicate that does not parse
        if len(analyzers) == 1:
            return {analyzers[0]: analyzers[0].failure(_spark_message(exc))}
        # Find the culprit(s) without losing the others: rerun each analyzer on its own.
        out: dict[Analyzer, Metric] = {}
        for analyzer in analyzers:
            out.update(_run_scan(df, [analyzer]))
        return out
    return {a: a.metric(list(row[start:start + n])) for a, start, n in slices}


def _run_grouping(df: DataFrame, columns: tuple[str, ...], analyzers: list[GroupingAnalyzer]) -> dict[Analyzer, Metric]:
    any_not_null = F.lit(False)
    for c in columns:
        any_not_null = any_not_null | col(c).isNotNull()
    freq = df.groupBy(*[col(c) for c in columns]).agg(F.count(F.lit(1)).alias(COUNT_COL),
                                                     F.first(any_not_null).alias("__fs_any"))
    histograms = [a for a in analyzers if isinstance(a, Histogram)]
    if histograms:
        freq = freq.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        cnt = F.col(COUNT_COL)
        real = F.col("__fs_any")
        row = freq.agg(
            F.sum(F.when(real, cnt)).alias("rows"),
            F.count(F.when(real & (cnt == 1), 1)).alias("unique"),
            F.count(F.when(real, 1)).alias("distinct"),
            F.sum(F.when(real, cnt * F.log(cnt.cast("double")))).alias("sum_c_ln_c"),
            F.sum(cnt).alias("all_rows"),
            F.count(F.lit(1)).alias("all_groups"),
        ).collect()[0]
        shared: dict[str, Any] = {k: (row[k] or 0) for k in row.asDict()}
        out: dict[Analyzer, Metric] = {}
        for analyzer in analyzers:
            agg = dict(shared)
            if isinstance(analyzer, Histogram):
                value = F.coalesce(col(columns[0]).cast("string"), F.lit(NULL_VALUE)).alias("v")
                top = (freq.select(value, F.col(COUNT_COL)).orderBy(F.col(COUNT_COL).desc(), F.col("v").asc())
                       .limit(analyzer.max_detail_bins).collect())
                agg["top_values"] = [(r["v"], int(r[COUNT_COL])) for r in top]
            out[analyzer] = analyzer.from_frequencies(agg)
        return out
    except Exception as exc:  # noqa: BLE001 - report, never crash the whole validation
        return {a: a.failure(_spark_message(exc)) for a in analyzers}
    finally:
        if histograms:
            freq.unpersist()


def _spark_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
