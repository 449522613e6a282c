"""Optional: run a suite through pydeequ where a Deequ jar is on the Spark classpath.

Not exercised by CI (Maven, and so the Deequ jar, is not reachable there). The suite is
translated method by method; the result is our :class:`ValidationReport`, so callers see the same
interface whichever engine ran. Constraints pydeequ lacks raise a clear error naming them.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame

from featurestore.errors import FeatureStoreError
from featurestore.quality.checks import Check
from featurestore.quality.results import ConstraintResult, ValidationReport

# Methods whose pydeequ signature is (column(s), assertion, hint) or (column, hint).
_SAME_NAME = {"hasSize", "isComplete", "hasCompleteness", "areComplete", "isUnique", "hasUniqueness",
              "hasDistinctness", "hasNumberOfDistinctValues", "hasMin", "hasMax", "hasMean", "hasSum",
              "hasStandardDeviation", "hasMinLength", "hasMaxLength", "hasApproxQuantile", "hasCorrelation",
              "hasPattern", "containsEmail", "containsURL", "containsCreditCardNumber", "isNonNegative",
              "isPositive", "isLessThan", "isGreaterThanOrEqualTo", "isContainedIn", "satisfies", "isPrimaryKey"}


def verify_with_pydeequ(spark: Any, df: DataFrame, checks: list[Check], suite_name: str) -> ValidationReport:
    """Run the checks of suite ``suite_name`` with pydeequ's VerificationSuite."""
    try:
        from pydeequ.checks import Check as DeequCheck
        from pydeequ.checks import CheckLevel as DeequLevel
        from pydeequ.verification import VerificationResult, VerificationSuite
    except ImportError as exc:
        raise FeatureStoreError("engine='pydeequ' needs the pydeequ package (pip install '.[jvm]') and a Deequ "
                                "jar on the Spark classpath") from exc
    run = VerificationSuite(spark).onData(df)
    for check in checks:
        dc = DeequCheck(spark, DeequLevel.Error if check.level.value == "Error" else DeequLevel.Warning,
                        check.description)
        for c in check.constraints:
            if c.method not in _SAME_NAME:
                raise FeatureStoreError(f"engine='pydeequ' cannot run constraint {c.method} of check "
                                        f"'{check.description}'; use the native engine")
            args = [v for k, v in c.params.items() if k not in ("assertion", "hint")]
            if c.method in ("isComplete", "isUnique", "areComplete"):
                getattr(dc, c.method)(*args)
            else:
                getattr(dc, c.method)(*args, c.assertion)
        run = run.addCheck(dc)
    result = run.run()
    rows = VerificationResult.checkResultsAsDataFrame(spark, result).collect()
    results = [ConstraintResult(check=r["check"], level=r["check_level"], constraint=r["constraint"],
                                status=r["constraint_status"], metric=None, value=None,
                                message=r["constraint_message"] or None) for r in rows]
    status = result.status
    return ValidationReport(status, suite_name, results, {}, None)
