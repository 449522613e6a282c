"""Descriptive statistics of a DataFrame: what is stored for every commit and shown in the report.

Passes over the data: one shared scan (counts, completeness, min/max/mean/stddev, approximate
distinct counts, quantiles, string lengths, correlations — shared with the validation suite when
there is one); with ``histograms``, one more scan for the numeric histograms and one group-by
over all categorical columns stacked together for their top values; with ``exact_uniqueness``,
the same stacked group-by covers every column's exact distinct/unique counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore.quality import analyzers
from featurestore.quality.engine import run_analyzers

DEFAULT_CONFIG: dict[str, Any] = {"enabled": True, "histograms": False, "correlations": False,
                                  "exact_uniqueness": False, "columns": None}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20
TOP_VALUES = 20
CATEGORICAL_TYPES = (T.StringType, T.BooleanType)


def statistics_config(config: Mapping[str, Any] | bool | None) -> dict[str, Any]:
    """The effective config: defaults overlaid with ``config`` (``False`` disables statistics)."""
    if config is False:
        return {**DEFAULT_CONFIG, "enabled": False}
    merged = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(DEFAULT_CONFIG)
    if unknown:
        from featurestore.quality.errors import SuiteError

        raise SuiteError(f"statistics_config: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(DEFAULT_CONFIG)}")
    merged.update(config or {})
    return merged


def _columns(df: DataFrame, config: Mapping[str, Any]) -> list[T.StructField]:
    wanted = config.get("columns")
    fields = [f for f in df.schema.fields if not f.name.startswith("_hoodie_")]
    if wanted:
        missing = set(wanted) - {f.name for f in fields}
        if missing:
            from featurestore.quality.errors import SuiteError

            raise SuiteError(f"statistics_config.columns: no column(s) {', '.join(sorted(missing))}")
        fields = [f for f in fields if f.name in wanted]
    return [f for f in fields if isinstance(f.dataType, T.AtomicType)]


def scan_analyzers(df: DataFrame, config: Mapping[str, Any]) -> list[analyzers.Analyzer]:
    """The scan analyzers statistics need (shared with a validation run)."""
    out: list[analyzers.Analyzer] = [analyzers.Size()]
    numeric = []
    for f in _columns(df, config):
        out += [analyzers.Completeness(f.name), analyzers.ApproxCountDistinct(f.name)]
        if isinstance(f.dataType, analyzers.NUMERIC_TYPES):
            numeric.append(f.name)
            out += [analyzers.Minimum(f.name), analyzers.Maximum(f.name), analyzers.Mean(f.name),
                    analyzers.StandardDeviation(f.name),
                    analyzers.ApproxQuantiles(f.name, QUANTILES)]
        elif isinstance(f.dataType, T.StringType):
            out += [analyzers.MinLength(f.name), analyzers.MaxLength(f.name)]
    if config.get("correlations"):
        out += [analyzers.Correlation(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1:]]
    return out


def compute_statistics(df: DataFrame, config: Mapping[str, Any] | None = None,
                       metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Statistics of ``df`` as a JSON-ready dict: ``{"rows", "columns": {name: {...}}, "correlations"}``.

    ``metrics`` are metric values already computed (by key, e.g. from a validation report) that are
    reused instead of scanning again.
    """
    cfg = statistics_config(config)
    scan = scan_analyzers(df, cfg)
    known = dict(metrics or {})
    todo = [a for a in scan if a.key not in known]
    if todo:
        for analyzer, metric in run_analyzers(df, todo).items():
            known[analyzer.key] = metric.value if metric.success else None
    fields = _columns(df, cfg)
    columns: dict[str, dict[str, Any]] = {}
    for f in fields:
        c = f.name
        entry: dict[str, Any] = {"type": f.dataType.simpleString(), "count": known.get("Size()"),
                                 "completeness": known.get(f"Completeness({c})"),
                                 "approx_distinct": known.get(f"ApproxCountDistinct({c})")}
        if isinstance(f.dataType, analyzers.NUMERIC_TYPES):
            q = known.get(analyzers.ApproxQuantiles(c, QUANTILES).key) or {}
            entry.update({"min": known.get(f"Minimum({c})"), "max": known.get(f"Maximum({c})"),
                          "mean": known.get(f"Mean({c})"), "stddev": known.get(f"StandardDeviation({c})"),
                          "quantiles": q, "kind": "numeric"})
        else:
            entry["kind"] = "categorical" if isinstance(f.dataType, CATEGORICAL_TYPES) else "other"
            if isinstance(f.dataType, T.StringType):
                entry.update({"min_length": known.get(f"MinLength({c})"), "max_length": known.get(f"MaxLength({c})")})
        columns[c] = entry
    if cfg.get("histograms"):
        _numeric_histograms(df, columns)
    stacked = [f.name for f in fields if (cfg.get("exact_uniqueness")
                                          or (cfg.get("histograms") and columns[f.name]["kind"] == "categorical"))]
    if stacked:
        _frequency_stats(df, columns, stacked, top=bool(cfg.get("histograms")),
                         exact=bool(cfg.get("exact_uniqueness")))
    out: dict[str, Any] = {"rows": known.get("Size()"), "columns": _clean(columns)}
    if cfg.get("correlations"):
        numeric = [f.name for f in fields if columns[f.name]["kind"] == "numeric"]
        out["correlations"] = {
            a: {b: _clean(1.0 if a == b else known.get(analyzers.Correlation(*sorted_pair(a, b, numeric)).key))
                for b in numeric}
            for a in numeric}
    return out


def sorted_pair(a: str, b: str, order: list[str]) -> tuple[str, str]:
    """The pair in the order the correlation analyzers were created."""
    return (a, b) if order.index(a) < order.index(b) else (b, a)


def _numeric_histograms(df: DataFrame, columns: dict[str, dict[str, Any]]) -> None:
    """Equal-width histograms over [min, max] for every numeric column, in one aggregation."""
    exprs, layout = [], []
    for name, entry in columns.items():
        lo, hi = entry.get("min"), entry.get("max")
        if entry["kind"] != "numeric" or lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        width = (hi - lo) / HISTOGRAM_BINS if hi > lo else 1.0
        x = analyzers.col(name).cast("double")
        bucket = F.least(F.floor((x - F.lit(lo)) / F.lit(width)), F.lit(HISTOGRAM_BINS - 1)) if hi > lo else F.lit(0)
        valid = x.isNotNull() & ~F.isnan(x) & (x >= lo) & (x <= hi)
        bins = HISTOGRAM_BINS if hi > lo else 1
        for i in range(bins):
            exprs.append(F.sum(F.when(valid & (bucket == i), 1).otherwise(0)).alias(f"h{len(exprs)}"))
        layout.append((name, lo, width, bins))
    if not exprs:
        return
    row = df.agg(*exprs).collect()[0]
    pos = 0
    for name, lo, width, bins in layout:
        columns[name]["histogram"] = [{"lower": lo + i * width, "upper": lo + (i + 1) * width if bins > 1 else lo,
                                       "count": int(row[pos + i] or 0)} for i in range(bins)]
        pos += bins


def _frequency_stats(df: DataFrame, columns: dict[str, dict[str, Any]], names: list[str], top: bool,
                     exact: bool) -> None:
    """One group-by over (column, value) pairs of all ``names``: top values and exact distinct/unique."""
    pairs = F.explode(F.array(*[F.struct(F.lit(n).alias("c"), analyzers.col(n).cast("string").alias("v"))
                                for n in names]))
    freq = (df.select(pairs.alias("p")).select("p.c", "p.v").where(F.col("v").isNotNull())
            .groupBy("c", "v").agg(F.count(F.lit(1)).alias("n")))
    ranked = freq.withColumn("r", F.row_number().over(Window.partitionBy("c").orderBy(F.col("n").desc(),
                                                                                    F.col("v").asc())))
    summary = ranked.groupBy("c").agg(
        F.count(F.lit(1)).alias("distinct"), F.count(F.when(F.col("n") == 1, 1)).alias("unique"),
        F.sum("n").alias("non_null"),
        F.sort_array(F.collect_list(F.when(F.col("r") <= TOP_VALUES, F.struct("r", "v", "n")))).alias("top"))
    for row in summary.collect():
        entry = columns[row["c"]]
        if exact:
            entry["distinct"] = int(row["distinct"])
            entry["uniqueness"] = row["unique"] / row["non_null"] if row["non_null"] else None
        if top and entry["kind"] == "categorical":
            entry["top_values"] = [{"value": t["v"], "count": int(t["n"])} for t in row["top"]]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/infinity become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
