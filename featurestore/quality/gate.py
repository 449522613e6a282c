"""The ingestion gate: how a feature group validates a batch before writing and records the outcome.

Validation runs before any file is written. STRICT + a failed Error-level constraint: the report
is stored as *rejected* and :class:`ValidationError` is raised — the Hudi timeline, the registry's
commits and the online store are untouched. Otherwise the batch is written and the report is
stored with the commit id, together with its metrics (the history anomaly checks use) and the
commit's statistics (sharing the validation's scan).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from featurestore.quality.statistics import compute_statistics, scan_analyzers, statistics_config
from featurestore.quality.suite import ExpectationSuite, ValidationError, ValidationReport, verify

if TYPE_CHECKING:
    from featurestore.feature_group import FeatureGroup

log = logging.getLogger(__name__)

POLICIES = ("STRICT", "ALWAYS")
VALIDATION_OPTIONS = ("run_validation", "save_report")


def check_policy(policy: str) -> str:
    """Upper-cased policy, or an error naming the allowed values."""
    from featurestore.quality.checks import SuiteError

    value = str(policy).upper()
    if value not in POLICIES:
        raise SuiteError(f"validation_policy must be STRICT or ALWAYS, got {policy!r}")
    return value


def load_feature_group_suite(fg: FeatureGroup) -> tuple[ExpectationSuite | None, str]:
    """The feature group's stored suite and policy."""
    record = fg._fs.registry.get_expectation_suite(fg.id)
    if record is None:
        return None, "STRICT"
    return ExpectationSuite.from_data(record["suite"]), record["policy"]


def history_lookup(fg: FeatureGroup) -> Any:
    """``key -> [values]`` of earlier accepted inserts, for anomaly checks."""
    return lambda key: [v for _, v in fg._fs.registry.metric_history(fg.id, key)]


def validate_before_write(fg: FeatureGroup, df: DataFrame, options: dict[str, Any] | None) -> ValidationReport | None:
    """Validate ``df`` (sharing the scan with the commit statistics); raise if a STRICT suite fails."""
    opts = dict(options or {})
    unknown = set(opts) - set(VALIDATION_OPTIONS)
    if unknown:
        from featurestore.feature_group import FeatureGroupError

        raise FeatureGroupError(f"unknown validation option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(VALIDATION_OPTIONS)}")
    suite, policy = load_feature_group_suite(fg)
    if suite is None or not opts.get("run_validation", True):
        return None
    cfg = statistics_config(fg._record["options"].get("statistics_config"))
    extra = scan_analyzers(df, cfg) if cfg["enabled"] else []
    report = verify(df, suite, history_lookup(fg), extra_analyzers=extra)
    report.outcome, report.policy, report.save = "accepted", policy, bool(opts.get("save_report", True))
    if not report.success and policy == "STRICT":
        report.outcome = "rejected"
        if opts.get("save_report", True):
            report.id = fg._fs.registry.add_validation_report(fg.id, report.to_dict(), "rejected", policy, None,
                                                              _numeric_metrics(report))
        _alert(fg, "validation_rejected", report)
        raise ValidationError(report, f"the insert into feature group '{fg.name}' v{fg.version}")
    if report.status != "Success":
        _alert(fg, "validation_warning" if report.success else "validation_failed_written", report)
    return report


def after_commit(fg: FeatureGroup, df: DataFrame, commit_id: str, report: ValidationReport | None) -> None:
    """Store the report with its commit, its metrics, and the commit's statistics."""
    registry = fg._fs.registry
    if report is not None:
        report.commit_id = commit_id
        if report.save:
            try:
                report.id = registry.add_validation_report(fg.id, report.to_dict(), "accepted", report.policy,
                                                           commit_id, _numeric_metrics(report))
            except Exception as exc:  # noqa: BLE001 - the commit stands: a lost report must not fail the insert
                log.warning("validation report of commit %s of feature group '%s' v%s was not stored: %s",
                            commit_id, fg.name, fg.version, exc)
    cfg = statistics_config(fg._record["options"].get("statistics_config"))
    if cfg["enabled"]:
        try:
            stats = compute_statistics(df, cfg, metrics=report.metrics if report is not None else None)
            registry.add_statistics(fg.id, commit_id, "commit", stats)
        except Exception as exc:  # noqa: BLE001 - the commit stands; statistics can be recomputed
            log.warning("statistics of commit %s of feature group '%s' v%s were not stored: %s", commit_id,
                        fg.name, fg.version, exc)


def _alert(fg: FeatureGroup, event: str, report: ValidationReport) -> None:
    from featurestore.alerts import send_alert

    send_alert(fg._fs.config, event, {
        "feature_store": fg._fs.name, "feature_group": fg.name, "version": fg.version, "status": report.status,
        "policy": report.policy, "rows": report.rows,
        "failures": [r.to_dict() for r in report.failures]})


def _numeric_metrics(report: ValidationReport) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in report.metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = float(value) if math.isfinite(value) else None
    return out
