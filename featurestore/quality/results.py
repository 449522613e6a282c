"""What a verification run found: per-constraint results, the report, and the error a STRICT suite raises.

Both engines (ours and pydeequ) produce these, so they sit below the suite and the engines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from featurestore.errors import FeatureStoreError
from featurestore.quality.analyzers import Metric

SUCCESS, WARNING, ERROR = "Success", "Warning", "Error"


@dataclass
class ConstraintResult:
    """The outcome of one constraint."""

    check: str
    level: str
    constraint: str
    status: str  # Success | Failure
    metric: str | None
    value: Any
    message: str | None = None  # Deequ's own wording (compared with Deequ's in the parity tests)
    hint: str | None = None
    verdict: str | None = None  # what was measured and what was required, in words

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"check": self.check, "level": self.level, "constraint": self.constraint, "status": self.status,
                "metric": self.metric, "value": jsonable(self.value), "message": self.message, "hint": self.hint,
                "verdict": self.verdict}


def jsonable(value: Any) -> Any:
    return Metric("", "", "", value).to_dict()["value"]


@dataclass
class ValidationReport:
    """What a verification run found: overall status, per-constraint results, and every metric."""

    status: str
    suite: str
    results: list[ConstraintResult]
    metrics: dict[str, Any]
    rows: int | None = None
    validated_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    id: int | None = None
    commit_id: str | None = None
    outcome: str | None = None  # accepted | rejected | dry_run
    policy: str | None = None
    save: bool = field(default=True, repr=False)  # store in the registry after the commit

    @property
    def success(self) -> bool:
        """True unless an Error-level constraint failed."""
        return self.status != ERROR

    @property
    def failures(self) -> list[ConstraintResult]:
        """Every failed constraint (Error and Warning level)."""
        return [r for r in self.results if r.status != "Success"]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored in the registry)."""
        return {"status": self.status, "suite": self.suite, "rows": self.rows, "validated_at": self.validated_at,
                "results": [r.to_dict() for r in self.results], "metrics": {k: jsonable(v)
                                                                            for k, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **extra: Any) -> ValidationReport:
        """Rebuild from the stored JSON form."""
        return cls(data["status"], data["suite"], [ConstraintResult(**r) for r in data["results"]], data["metrics"],
                   data.get("rows"), data.get("validated_at", ""), **extra)

    def __str__(self) -> str:
        lines = [f"Validation {self.status}: suite '{self.suite}', {self.rows} rows, "
                 f"{len(self.results) - len(self.failures)}/{len(self.results)} constraints passed"]
        for r in self.failures:
            lines.append("  " + describe_failure(r))
        return "\n".join(lines)


def describe_failure(r: ConstraintResult) -> str:
    """One line: level, check, constraint, what was measured and required (else value and message), hint."""
    if r.verdict:
        text = f"[{r.level}] {r.check}: {r.constraint} - {r.verdict}"
    else:
        text = f"[{r.level}] {r.check}: {r.constraint} - value {jsonable(r.value)!r}"
        if r.message:
            text += f" ({r.message})"
    if r.hint:
        text += f" - hint: {r.hint}"
    return text


class ValidationError(FeatureStoreError):
    """A STRICT suite rejected the data; ``report`` has every result."""

    def __init__(self, report: ValidationReport, target: str = "the data") -> None:
        self.report = report
        failed = [r for r in report.failures if r.level == ERROR]
        lines = [f"validation rejected {target}: {len(failed)} Error-level constraint(s) failed; nothing was written"]
        lines += ["  " + describe_failure(r) for r in report.failures]
        super().__init__("\n".join(lines))
