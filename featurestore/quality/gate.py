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
from typing import Any

from pyspark.sql import DataFrame

from featurestore.alerts import send_alert
from featurestore.errors import FeatureGroupError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import FeatureGroupRecord
from featurestore.quality.errors import SuiteError
from featurestore.quality.statistics import compute_statistics, scan_analyzers, statistics_config
from featurestore.quality.suite import ExpectationSuite, ValidationError, ValidationReport, verify

log = logging.getLogger(__name__)

POLICIES = ("STRICT", "ALWAYS")
VALIDATION_OPTIONS = ("run_validation", "save_report")


def check_policy(policy: str) -> str:
    """Upper-cased policy, or an error naming the allowed values."""
    value = str(policy).upper()
    if value not in POLICIES:
        raise SuiteError(f"validation_policy must be STRICT or ALWAYS, got {policy!r}")
    return value


def load_feature_group_suite(ctx: StoreContext, fg: FeatureGroupRecord) -> tuple[ExpectationSuite | None, str]:
    """The feature group's stored suite and policy."""
    stored = ctx.registry.get_expectation_suite(fg.id)
    if stored is None:
        return None, "STRICT"
    return ExpectationSuite.from_data(stored["suite"]), stored["policy"]


def history_lookup(ctx: StoreContext, fg: FeatureGroupRecord) -> Any:
    """``key -> [values]`` of earlier accepted inserts, for anomaly checks."""
    return lambda key: [v for _, v in ctx.registry.metric_history(fg.id, key)]


def validate_before_write(ctx: StoreContext, fg: FeatureGroupRecord, df: DataFrame,
                          options: dict[str, Any] | None) -> ValidationReport | None:
    """Validate ``df`` (sharing the scan with the commit statistics); raise if a STRICT suite fails."""
    opts = dict(options or {})
    unknown = set(opts) - set(VALIDATION_OPTIONS)
    if unknown:
        raise FeatureGroupError(f"unknown validation option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(VALIDATION_OPTIONS)}")
    suite, policy = load_feature_group_suite(ctx, fg)
    if suite is None or not opts.get("run_validation", True):
        return None
    cfg = statistics_config(fg.statistics_options)
    extra = scan_analyzers(df, cfg) if cfg["enabled"] else []
    report = verify(df, suite, history_lookup(ctx, fg), extra_analyzers=extra)
    report.outcome, report.policy, report.save = "accepted", policy, bool(opts.get("save_report", True))
    if not report.success and policy == "STRICT":
        report.outcome = "rejected"
        if opts.get("save_report", True):
            report.id = ctx.registry.add_validation_report(fg.id, report.to_dict(), "rejected", policy, None,
                                                              _numeric_metrics(report))
        _alert(ctx, fg, "validation_rejected", report)
        raise ValidationError(report, f"the insert into feature group '{fg.name}' v{fg.version}")
    if report.status != "Success":
        _alert(ctx, fg, "validation_warning" if report.success else "validation_failed_written", report)
    return report


def after_commit(ctx: StoreContext, fg: FeatureGroupRecord, df: DataFrame, commit_id: str,
                 report: ValidationReport | None) -> None:
    """Store the report with its commit, its metrics, and the commit's statistics."""
    registry = ctx.registry
    if report is not None:
        report.commit_id = commit_id
        if report.save:
            try:
                report.id = registry.add_validation_report(fg.id, report.to_dict(), "accepted", report.policy,
                                                           commit_id, _numeric_metrics(report))
            except Exception as exc:  # noqa: BLE001 - the commit stands: a lost report must not fail the insert
                log.warning("validation report of commit %s of feature group '%s' v%s was not stored: %s",
                            commit_id, fg.name, fg.version, exc)
    cfg = statistics_config(fg.statistics_options)
    if cfg["enabled"]:
        try:
            stats = compute_statistics(df, cfg, metrics=report.metrics if report is not None else None)
            registry.add_statistics(fg.id, commit_id, "commit", stats)
        except Exception as exc:  # noqa: BLE001 - the commit stands; statistics can be recomputed
            log.warning("statistics of commit %s of feature group '%s' v%s were not stored: %s", commit_id,
                        fg.name, fg.version, exc)


def _alert(ctx: StoreContext, fg: FeatureGroupRecord, event: str, report: ValidationReport) -> None:
    send_alert(ctx.config, event, {
        "feature_store": ctx.name, "feature_group": fg.name, "version": fg.version, "status": report.status,
        "policy": report.policy, "rows": report.rows,
        "failures": [r.to_dict() for r in report.failures]})


def _numeric_metrics(report: ValidationReport) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in report.metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = float(value) if math.isfinite(value) else None
    return out
