"""Expectation suites (lists of checks), verification runs and their reports."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame

from featurestore.quality.analyzers import Metric
from featurestore.quality.checks import Check, CheckLevel, Constraint, SuiteError
from featurestore.quality.engine import run_analyzers
from featurestore.quality.great_expectations import great_expectations_checks, is_great_expectations_suite
from featurestore.quality.results import (  # noqa: F401 - re-exported: the suite's results
    ERROR,
    SUCCESS,
    WARNING,
    ConstraintResult,
    ValidationError,
    ValidationReport,
    describe_failure,
    jsonable,
)
from featurestore.quality.verdicts import verdict


class ExpectationSuite:
    """A named list of checks."""

    def __init__(self, checks: Iterable[Check] = (), name: str = "default") -> None:
        self.name = name
        self.checks = list(checks)
        for c in self.checks:
            if not isinstance(c, Check):
                raise SuiteError(f"suite '{name}': every item must be a Check, got {c!r}")

    def __repr__(self) -> str:
        return f"ExpectationSuite({self.name!r}, {len(self.checks)} checks)"

    def to_data(self) -> dict[str, Any]:
        """The YAML/JSON form: ``{"name", "checks": [...]}``."""
        return {"name": self.name, "checks": [c.to_data() for c in self.checks]}

    def to_yaml(self) -> str:
        """The suite as YAML text."""
        return yaml.safe_dump(self.to_data(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_great_expectations(cls, source: Any, level: str = CheckLevel.Error) -> ExpectationSuite:
        """A suite from a Great Expectations expectation suite: parsed JSON or a path to its file
        (see :mod:`featurestore.quality.great_expectations` for what each expectation becomes)."""
        origin = "Great Expectations suite"
        if isinstance(source, str | os.PathLike):
            origin, source = str(source), _read_suite_file(source)
        name, checks = great_expectations_checks(source, origin, level)
        return cls(checks, name)

    @classmethod
    def from_data(cls, data: Any, source: str = "suite") -> ExpectationSuite:
        """Build from parsed YAML/JSON (our form, or a Great Expectations suite)."""
        if is_great_expectations_suite(data):
            name, checks = great_expectations_checks(data, source)
            return cls(checks, name)
        if isinstance(data, list):
            data = {"checks": data}
        if not isinstance(data, dict) or "checks" not in data:
            raise SuiteError(f"{source}: a suite is a mapping with 'checks' (and optionally 'name')")
        unknown = set(data) - {"name", "checks"}
        if unknown:
            raise SuiteError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls([Check.from_data(c) for c in data["checks"] or []], str(data.get("name") or "default"))


def _read_suite_file(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"expectation suite file {str(p)!r} not found")
    text = p.read_text(encoding="utf-8")
    try:
        return json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SuiteError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {exc}") from None


def load_suite(path: str | os.PathLike[str]) -> ExpectationSuite:
    """Read a suite from a YAML or JSON file (same method and parameter names as the Python API), or a
    Great Expectations expectation-suite JSON."""
    data = _read_suite_file(path)
    try:
        return ExpectationSuite.from_data(data, str(path))
    except SuiteError as exc:
        message = str(exc)
        raise SuiteError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def as_suite(suite: ExpectationSuite | Check | Iterable[Check] | str | os.PathLike[str] | None
             ) -> ExpectationSuite | None:
    """Accept a suite, a check, a list of checks or a path to a YAML/JSON suite."""
    if suite is None or isinstance(suite, ExpectationSuite):
        return suite
    if isinstance(suite, Check):
        return ExpectationSuite([suite])
    if isinstance(suite, str | os.PathLike):
        return load_suite(suite)
    return ExpectationSuite(list(suite))


HistoryLookup = Callable[[str], list[float]]


def verify(df: DataFrame, suite: ExpectationSuite | Iterable[Check] | Check | str | os.PathLike[str],
           history: HistoryLookup | None = None, extra_analyzers: Iterable[Any] = (),
           engine: str = "native") -> ValidationReport:
    """Run every check of ``suite`` on ``df`` (one shared scan + one group-by per column set).

    ``history(analyzer_key)`` returns the earlier values of a metric (oldest first) for anomaly
    checks; ``extra_analyzers`` are computed in the same passes (e.g. statistics) and returned in
    ``report.metrics``. ``engine="pydeequ"`` runs the suite through pydeequ instead (needs the Deequ
    jar; not exercised by CI).
    """
    made = as_suite(suite)
    if made is None:
        raise SuiteError("verify needs a suite")
    if engine == "pydeequ":
        from featurestore.quality.pydeequ_engine import verify_with_pydeequ

        return verify_with_pydeequ(df.sparkSession, df, made.checks, made.name)
    if engine != "native":
        raise SuiteError(f"unknown validation engine {engine!r}; use 'native' or 'pydeequ'")
    constraints: list[tuple[Check, Constraint]] = [(c, k) for c in made.checks for k in c.constraints]
    analyzers = [k.analyzer for _, k in constraints if k.analyzer is not None] + list(extra_analyzers)
    metrics = run_analyzers(df, analyzers) if analyzers else {}
    results: list[ConstraintResult] = []
    for check, constraint in constraints:
        results.append(_evaluate(check, constraint, metrics, history))
    status = SUCCESS
    for r in results:
        if r.status != "Success":
            if r.level == CheckLevel.Error.value:
                status = ERROR
            elif status == SUCCESS:
                status = WARNING
    size = next((m.value for a, m in metrics.items() if a.name == "Size" and m.success), None)
    by_key = {m.analyzer: (m.value if m.success else None) for m in metrics.values()}
    return ValidationReport(status, made.name, results, by_key, size)


def _evaluate(check: Check, constraint: Constraint, metrics: dict[Any, Metric],
              history: HistoryLookup | None) -> ConstraintResult:
    level = check.level.value
    metric = metrics.get(constraint.analyzer)
    base = dict(check=check.description, level=level, constraint=constraint.description,
                metric=constraint.analyzer.key if constraint.analyzer else None, hint=constraint.hint)
    if metric is None or not metric.success:
        return ConstraintResult(status="Failure", value=None,
                                message=metric.error if metric else "metric not computed", **base)
    value = metric.value
    if constraint.anomaly is not None:
        past = history(constraint.analyzer.key) if history else []
        ok, message = constraint.anomaly.evaluate(value, past)
        return ConstraintResult(status="Success" if ok else "Failure", value=value, message=message, **base)
    try:
        picked = constraint.pick(value) if constraint.pick else value
        ok = constraint.assertion(picked)
    except Exception as exc:  # noqa: BLE001 - a user's assertion raising is a failed constraint
        return ConstraintResult(status="Failure", value=value, message=f"Can't execute the assertion: {exc}", **base)
    # Deequ's wording, kept for comparison with Deequ; the verdict says it for people
    message = None if ok else f"Value: {jsonable(picked)} does not meet the constraint requirement!"
    return ConstraintResult(status="Success" if ok else "Failure", value=picked, message=message,
                            verdict=verdict(constraint, picked, ok), **base)
