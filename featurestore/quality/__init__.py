"""Data quality: Deequ-vocabulary checks that gate ingestion, anomaly detection, suggestions,
statistics and the HTML statistics report.

    from featurestore.quality import Check, CheckLevel
    suite = [Check(CheckLevel.Error, "ids").isComplete("id").isUnique("id")]
    fg = fs.create_feature_group(..., expectation_suite=suite, validation_policy="STRICT")
"""

from featurestore.quality import analyzers
from featurestore.quality.analyzers import Metric
from featurestore.quality.anomaly import AbsoluteChangeStrategy, RelativeRateOfChangeStrategy, SimpleThresholdStrategy
from featurestore.quality.checks import Check, CheckLevel, SuiteError
from featurestore.quality.engine import run_analyzers
from featurestore.quality.statistics import compute_statistics
from featurestore.quality.suggest import suggest
from featurestore.quality.suite import (
    ConstraintResult,
    ExpectationSuite,
    ValidationError,
    ValidationReport,
    load_suite,
    verify,
)

__all__ = [
    "AbsoluteChangeStrategy",
    "Check",
    "CheckLevel",
    "ConstraintResult",
    "ExpectationSuite",
    "Metric",
    "RelativeRateOfChangeStrategy",
    "SimpleThresholdStrategy",
    "SuiteError",
    "ValidationError",
    "ValidationReport",
    "analyzers",
    "compute_statistics",
    "load_suite",
    "run_analyzers",
    "suggest",
    "verify",
]
