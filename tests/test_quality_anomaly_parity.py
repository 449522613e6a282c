"""Anomaly detection against Deequ's own strategies: the metric histories and strategy settings of
tests/data/anomaly_parity_battery.json run through Deequ (2.0.7, in the reference JVM) and through our
strategies. At every point of every series the question is the gate's: is this value an anomaly given
the values before it? Deequ answers it with ``strategy.detect(series[: i + 1], (i, i + 1))``, we with
``strategy.is_anomaly(series[:i], series[i])``; the verdicts must be the same everywhere."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from featurestore.quality.anomaly import (
    BatchNormalStrategy,
    OnlineNormalStrategy,
    strategy_from_data,
    strategy_to_data,
)
from featurestore.quality.errors import SuiteError

BATTERY = json.loads((Path(__file__).parent / "data" / "anomaly_parity_battery.json").read_text())
LABELS = [json.dumps(spec, sort_keys=True) for spec in BATTERY["strategies"]]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _points(strategy: object) -> list[tuple[str, int]]:
    """(series, index) of every point judged; Deequ's BatchNormal needs one value outside the judged one."""
    skip_first = isinstance(strategy, BatchNormalStrategy) and not strategy.include_interval
    return [(name, i) for name, series in BATTERY["series"].items() for i in range(len(series))
            if not (skip_first and i == 0)]


@pytest.fixture(scope="module")
def deequ_verdicts(reference_jvm) -> dict[str, dict[tuple[str, int], bool]]:
    verdicts = {}
    for label, spec in zip(LABELS, BATTERY["strategies"], strict=True):
        strategy = strategy_from_data(spec)
        params = {_camel(k): v for k, v in dataclasses.asdict(strategy).items()}
        points = _points(strategy)
        cases = [(BATTERY["series"][name][: i + 1], i, i + 1) for name, i in points]
        found = reference_jvm.deequ_anomalies({"name": next(iter(spec)), "params": params}, cases)
        verdicts[label] = {point: bool(flagged) for point, flagged in zip(points, found, strict=True)}
    return verdicts


@pytest.mark.parametrize("label", LABELS)
def test_every_verdict_equals_deequs(deequ_verdicts, label):
    strategy = strategy_from_data(json.loads(label))
    theirs = deequ_verdicts[label]
    differ = []
    for (name, i), deequ_flags in theirs.items():
        series = BATTERY["series"][name]
        ours, detail = strategy.is_anomaly(series[:i], series[i])
        if ours != deequ_flags:
            differ.append(f"{name}[{i}]={series[i]}: Deequ {deequ_flags}, ours {ours} ({detail})")
    assert not differ, "\n".join(differ)
    # the battery is not vacuous: every strategy flags some point and passes some point
    assert any(theirs.values()) and not all(theirs.values()), label


def test_the_normal_strategies_round_trip_and_refuse_bad_settings():
    for strategy in (OnlineNormalStrategy(), OnlineNormalStrategy(upper_deviation_factor=None),
                     BatchNormalStrategy(2.0, None, True)):
        assert strategy_from_data(strategy_to_data(strategy)) == strategy
    with pytest.raises(SuiteError, match="lower_deviation_factor or upper_deviation_factor"):
        OnlineNormalStrategy(None, None)
    with pytest.raises(SuiteError, match="cannot be negative"):
        BatchNormalStrategy(-1.0)
    with pytest.raises(SuiteError, match="ignore_start_percentage"):
        OnlineNormalStrategy(ignore_start_percentage=1.5)
    with pytest.raises(SuiteError, match="unknown anomaly strategy 'Seasonal'"):
        strategy_from_data({"Seasonal": {}})
