"""Our quality engine against Deequ itself, metric for metric: the battery of data sets and analyzers
in tests/data/quality_parity_battery.json runs through Deequ (2.0.7 for Spark 3.5, in the reference
JVM) and through our engine, and every value must agree — exactly for counts and ratios of counts,
to a relative 1e-9 for floating aggregates, within Deequ's documented error for the approximate ones.
Where the two differ on purpose the difference is listed in KNOWN_DIFFERENCES (and in the docs)."""

from __future__ import annotations

import decimal
import json
import math
from pathlib import Path

import pytest
from reference_jvm import decode

from featurestore.quality import analyzers as ours
from featurestore.quality.engine import run_analyzers

BATTERY = json.loads((Path(__file__).parent / "data" / "quality_parity_battery.json").read_text())
EXACT = {"Size", "Completeness", "Uniqueness", "Distinctness", "UniqueValueRatio", "CountDistinct", "Compliance",
         "PatternMatch", "MinLength", "MaxLength"}
APPROXIMATE = {"ApproxCountDistinct": 0.05 * 3, "ApproxQuantile": 0.01}  # HLL relative SD (3 sigma); GK rank error
# (data set, analyzer as text) -> why we differ on purpose; empty: no known difference
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def _rows(name: str) -> list[list]:
    data = BATTERY["datasets"][name]
    if isinstance(data, dict):
        n = data["generate"]
        return [[i, None if i % 97 == 0 else i * 0.5, f"k{i % 1000}", {"$dec": f"{i / 100:.2f}"}] for i in range(n)]
    return data


def _ours(spec: list) -> ours.Analyzer:
    name, args, kwargs = spec
    if name in ("Uniqueness", "Distinctness", "UniqueValueRatio", "CountDistinct"):
        return getattr(ours, name)(list(args[0]), **kwargs)
    return getattr(ours, name)(*args, **kwargs)


def _deequ_value(metrics: list[dict]) -> object:
    return metrics[0]["value"] if metrics else None


def _same(kind: str, theirs: object, mine: object, rows: list) -> bool:
    if theirs is None or mine is None:
        return theirs is None and mine is None
    theirs, mine = float(theirs), float(mine)
    if math.isnan(theirs) or math.isnan(mine):
        return math.isnan(theirs) and math.isnan(mine)
    if kind in EXACT:
        return theirs == mine
    if kind in APPROXIMATE:
        return math.isclose(theirs, mine, rel_tol=APPROXIMATE[kind], abs_tol=1e-9)
    return math.isclose(theirs, mine, rel_tol=1e-9, abs_tol=1e-12)


@pytest.fixture(scope="module")
def deequ_values(reference_jvm):
    return {name: reference_jvm.deequ_metrics(BATTERY["schema"], _rows(name), BATTERY["analyzers"])
            for name in BATTERY["datasets"]}


@pytest.mark.parametrize("dataset", list(BATTERY["datasets"]))
def test_every_metric_equals_deequs(spark, deequ_values, dataset):
    rows = [tuple(decode(r)) for r in _rows(dataset)]
    frame = spark.createDataFrame(rows, BATTERY["schema"])
    analyzers = [_ours(spec) for spec in BATTERY["analyzers"]]
    metrics = run_analyzers(frame, analyzers)
    differences = []
    for spec, analyzer, theirs in zip(BATTERY["analyzers"], analyzers, deequ_values[dataset], strict=True):
        metric = metrics[analyzer]
        mine = metric.value if metric.success else None
        if isinstance(mine, decimal.Decimal):
            mine = float(mine)
        text = f"{spec[0]}({', '.join(map(str, spec[1]))})"
        if (dataset, text) in KNOWN_DIFFERENCES:
            continue
        if not _same(spec[0], _deequ_value(theirs), mine, rows):
            differences.append(f"{text}: Deequ {_deequ_value(theirs)!r}, ours {mine!r}"
                               + (f" ({metric.error})" if metric.error else ""))
    assert differences == []
