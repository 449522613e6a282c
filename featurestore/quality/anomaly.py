"""Anomaly detection on a metric's history (Deequ's strategies).

The history is the series of a metric over the feature group's earlier accepted inserts, oldest
first; the new value is the metric of the batch being validated. With no history there is nothing
to compare against and the check passes (as in Deequ).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from featurestore.quality import analyzers
from featurestore.quality.errors import SuiteError


class _Strategy:
    """Serializes as ``{"Name": {params}}`` in YAML/JSON suites."""

    def to_data(self) -> dict[str, Any]:
        return strategy_to_data(self)


@dataclass(frozen=True)
class RelativeRateOfChangeStrategy(_Strategy):
    """Anomaly when ``new / previous`` is below ``max_rate_decrease`` or above ``max_rate_increase``
    (e.g. 0.5 and 2.0: the metric may halve or double, not more)."""

    max_rate_decrease: float | None = None
    max_rate_increase: float | None = None

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        if not history:
            return False, "no history"
        previous = history[-1]
        if previous == 0:
            rate = math.inf if value > 0 else (-math.inf if value < 0 else 1.0)
        else:
            rate = value / previous
        low = self.max_rate_decrease if self.max_rate_decrease is not None else -math.inf
        high = self.max_rate_increase if self.max_rate_increase is not None else math.inf
        return not (low <= rate <= high), f"rate of change {rate:.6g} vs allowed [{low}, {high}] (previous {previous})"


@dataclass(frozen=True)
class AbsoluteChangeStrategy(_Strategy):
    """Anomaly when ``new - previous`` is below ``max_rate_decrease`` (a negative number) or above
    ``max_rate_increase``."""

    max_rate_decrease: float | None = None
    max_rate_increase: float | None = None

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        if not history:
            return False, "no history"
        change = value - history[-1]
        low = self.max_rate_decrease if self.max_rate_decrease is not None else -math.inf
        high = self.max_rate_increase if self.max_rate_increase is not None else math.inf
        return not (low <= change <= high), f"change {change:.6g} vs allowed [{low}, {high}] (previous {history[-1]})"


@dataclass(frozen=True)
class SimpleThresholdStrategy(_Strategy):
    """Anomaly when the value is outside [``lower_bound``, ``upper_bound``]."""

    lower_bound: float = -math.inf
    upper_bound: float = math.inf

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        return (not (self.lower_bound <= value <= self.upper_bound),
                f"value {value:.6g} vs allowed [{self.lower_bound}, {self.upper_bound}]")


STRATEGIES = {"RelativeRateOfChange": RelativeRateOfChangeStrategy, "AbsoluteChange": AbsoluteChangeStrategy,
              "SimpleThreshold": SimpleThresholdStrategy}


@dataclass(frozen=True)
class AnomalyCheck:
    """A metric checked against its history with a strategy."""

    analyzer: analyzers.Analyzer
    strategy: Any

    def evaluate(self, value: Any, history: list[float]) -> tuple[bool, str]:
        """``(passed, message)`` for the new ``value``."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False, f"metric {self.analyzer.key} is not a number: {value!r}"
        if isinstance(value, float) and math.isnan(value):
            return False, f"metric {self.analyzer.key} is NaN"
        anomalous, detail = self.strategy.is_anomaly([float(h) for h in history], float(value))
        return not anomalous, ("anomaly: " if anomalous else "") + detail


def strategy_to_data(strategy: Any) -> dict[str, Any]:
    """``{"RelativeRateOfChange": {"max_rate_increase": 2.0}}``."""
    for name, cls in STRATEGIES.items():
        if isinstance(strategy, cls):
            return {name: {k: v for k, v in dataclasses.asdict(strategy).items()
                           if v is not None and not (isinstance(v, float) and math.isinf(v))}}
    raise SuiteError(f"unknown anomaly strategy {strategy!r}")


def strategy_from_data(data: dict[str, Any] | str) -> Any:
    """The strategy from its YAML/JSON form."""
    name, params = (data, {}) if isinstance(data, str) else next(iter(data.items()))
    name = name.removesuffix("Strategy")
    if name not in STRATEGIES:
        raise SuiteError(f"unknown anomaly strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    try:
        return STRATEGIES[name](**(params or {}))
    except TypeError as exc:
        raise SuiteError(f"anomaly strategy {name}: {exc}") from None


def analyzer_to_data(analyzer: analyzers.Analyzer) -> dict[str, Any]:
    """``{"Mean": {"column": "x"}}``."""
    params: dict[str, Any] = {}
    for f in dataclasses.fields(analyzer):
        value = getattr(analyzer, f.name)
        if f.name == "group_columns":
            params["columns"] = list(value)
        else:
            params[f.name] = list(value) if isinstance(value, tuple) else value
    return {analyzer.name: params}


def analyzer_from_data(data: dict[str, Any] | str) -> analyzers.Analyzer:
    """An analyzer from ``"Size"`` or ``{"Mean": {"column": "x"}}``."""
    name, params = (data, {}) if isinstance(data, str) else next(iter(data.items()))
    cls = analyzers.ALL_ANALYZERS.get(name)
    if cls is None:
        raise SuiteError(f"unknown analyzer {name!r}; use one of {', '.join(sorted(analyzers.ALL_ANALYZERS))}")
    params = dict(params or {})
    if "columns" in params and issubclass(cls, analyzers.GroupingAnalyzer):
        params[next(iter(("columns" if cls in (analyzers.Uniqueness, analyzers.Distinctness, analyzers.UniqueValueRatio,
                                               analyzers.CountDistinct) else "column",)))] = params.pop("columns")
        if cls in (analyzers.Entropy, analyzers.Histogram):
            cols = params.pop("column")
            params["column"] = cols[0] if isinstance(cols, list) else cols
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return cls(**params)
    except TypeError as exc:
        raise SuiteError(f"analyzer {name}: {exc}") from None
