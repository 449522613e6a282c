"""Anomaly detection on a metric's history (Deequ's strategies).

The history is the series of a metric over the feature group's earlier accepted inserts, oldest
first; the new value is the metric of the batch being validated. With no history there is nothing
to compare against and the check passes (as in Deequ).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any

from featurestore.quality import analyzers
from featurestore.quality.errors import SuiteError


def _change_bounds(decrease: float | None, increase: float | None) -> tuple[float, float]:
    """A missing bound is the largest finite double, as in Deequ: an infinite rate (from 0 to non-zero) is
    then still an anomaly."""
    return (decrease if decrease is not None else -sys.float_info.max,
            increase if increase is not None else sys.float_info.max)


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
        if previous == 0:  # IEEE division, as Deequ's: 0/0 is NaN, which no bound rejects
            rate = math.nan if value == 0 else math.copysign(math.inf, value)
        else:
            rate = value / previous
        low, high = _change_bounds(self.max_rate_decrease, self.max_rate_increase)
        return (rate < low or rate > high,
                f"rate of change {rate:.6g} vs allowed [{low:.6g}, {high:.6g}] (previous {previous})")


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
        low, high = _change_bounds(self.max_rate_decrease, self.max_rate_increase)
        return (change < low or change > high,
                f"change {change:.6g} vs allowed [{low:.6g}, {high:.6g}] (previous {history[-1]})")


@dataclass(frozen=True)
class SimpleThresholdStrategy(_Strategy):
    """Anomaly when the value is outside [``lower_bound``, ``upper_bound``]."""

    lower_bound: float = -math.inf
    upper_bound: float = math.inf

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        return (value < self.lower_bound or value > self.upper_bound,
                f"value {value:.6g} vs allowed [{self.lower_bound}, {self.upper_bound}]")


# A missing deviation factor means "no bound on that side"; Deequ multiplies its largest double instead, which
# gives the same verdicts (also when the deviation is 0: the bound is then the mean itself, as in Deequ).
_NO_FACTOR = sys.float_info.max


def _running_mean_and_sum_of_squares(values: list[float]) -> tuple[float, float]:
    """Welford's one-pass mean and sum of squared deviations, in the order Deequ and Breeze update them
    (so bounds are equal to the last bit, not just close)."""
    mean, squares = 0.0, 0.0
    for n, value in enumerate(values, start=1):
        delta = value - mean
        mean = mean + 1.0 / n * delta
        squares = squares + (n - 1) * delta / n * delta
    return mean, squares


def _normal_bounds(mean: float, std: float, lower: float | None, upper: float | None) -> tuple[float, float]:
    return (mean - (lower if lower is not None else _NO_FACTOR) * std,
            mean + (upper if upper is not None else _NO_FACTOR) * std)


def _check_factors(lower: float | None, upper: float | None) -> None:
    if lower is None and upper is None:
        raise SuiteError("anomaly strategy: give lower_deviation_factor or upper_deviation_factor (or both)")
    if (lower is not None and lower < 0) or (upper is not None and upper < 0):
        raise SuiteError(f"anomaly strategy: deviation factors cannot be negative (lower {lower}, upper {upper})")


@dataclass(frozen=True)
class OnlineNormalStrategy(_Strategy):
    """Anomaly when the value lies outside ``mean -/+ factor * stddev`` of the running mean and (population)
    standard deviation over the history *and the value itself*, as Deequ's OnlineNormalStrategy computes
    them for the newest point. Points in the first ``ignore_start_percentage`` of the series are never
    anomalies (too little history). ``ignore_anomalies`` keeps Deequ's parameter: it leaves flagged points
    out of the running statistics, which for the newest point (the only one checked) changes nothing,
    because the history holds accepted batches only."""

    lower_deviation_factor: float | None = 3.0
    upper_deviation_factor: float | None = 3.0
    ignore_start_percentage: float = 0.1
    ignore_anomalies: bool = True

    def __post_init__(self) -> None:
        _check_factors(self.lower_deviation_factor, self.upper_deviation_factor)
        if not 0.0 <= self.ignore_start_percentage <= 1.0:
            raise SuiteError("OnlineNormal: ignore_start_percentage must be in [0, 1], "
                             f"not {self.ignore_start_percentage}")

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        series = [*history, value]
        if len(history) < len(series) * self.ignore_start_percentage:
            return False, f"within the first {self.ignore_start_percentage:.0%} of the series (too little history)"
        mean, squares = _running_mean_and_sum_of_squares(series)
        std = math.sqrt(squares / len(series))
        low, high = _normal_bounds(mean, std, self.lower_deviation_factor, self.upper_deviation_factor)
        return value > high or value < low, f"value {value:.6g} vs running bounds [{low:.6g}, {high:.6g}]"


@dataclass(frozen=True)
class BatchNormalStrategy(_Strategy):
    """Anomaly when the value lies outside ``mean -/+ factor * stddev`` of the history (sample standard
    deviation; with ``include_interval`` the value itself is part of the statistics), as Deequ's
    BatchNormalStrategy. With no history the check passes."""

    lower_deviation_factor: float | None = 3.0
    upper_deviation_factor: float | None = 3.0
    include_interval: bool = False

    def __post_init__(self) -> None:
        _check_factors(self.lower_deviation_factor, self.upper_deviation_factor)

    def is_anomaly(self, history: list[float], value: float) -> tuple[bool, str]:
        if not history:
            return False, "no history"
        sample = [*history, value] if self.include_interval else list(history)
        mean, squares = _running_mean_and_sum_of_squares(sample)
        std = math.sqrt(squares / (len(sample) - 1)) if len(sample) > 1 else 0.0
        low, high = _normal_bounds(mean, std, self.lower_deviation_factor, self.upper_deviation_factor)
        return value > high or value < low, f"value {value:.6g} vs bounds [{low:.6g}, {high:.6g}] of the history"


STRATEGIES = {"RelativeRateOfChange": RelativeRateOfChangeStrategy, "AbsoluteChange": AbsoluteChangeStrategy,
              "SimpleThreshold": SimpleThresholdStrategy, "OnlineNormal": OnlineNormalStrategy,
              "BatchNormal": BatchNormalStrategy}


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
            defaults = {f.name: f.default for f in dataclasses.fields(cls)}
            # a value equal to its default is left out; an explicit None (no bound, where the default
            # is a bound) is kept, so that the suite reads back to the same strategy
            return {name: {k: v for k, v in dataclasses.asdict(strategy).items()
                           if v != defaults[k] and not (v is None and defaults[k] is None)
                           and not (isinstance(v, float) and math.isinf(v))}}
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
