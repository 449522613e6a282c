"""Readable verdicts: a failure says what was measured and what was required, once."""

from __future__ import annotations

import pytest

from featurestore.quality import Check, CheckLevel, ValidationError, verify
from featurestore.quality.results import describe_failure


@pytest.fixture(scope="module")
def spend(spark):
    # 100 rows: 38 with spend_7d >= 0 (0..37), 62 negative; 20 null names; amounts 1..100 (mean 50.5)
    rows = [(i, float(i) if i < 38 else -1.0, None if i % 5 == 0 else f"n{i}", float(i + 1)) for i in range(100)]
    return spark.createDataFrame(rows, "id int, spend_7d double, name string, amount double")


@pytest.mark.parametrize(("build", "expected"), [
    (lambda c: c.isNonNegative("spend_7d"), "38% of rows have spend_7d >= 0; required: all rows"),
    (lambda c: c.hasCompleteness("name", ">= 0.9"), "80% of rows have name not null; required: at least 90%"),
    (lambda c: c.isComplete("name"), "80% of rows have name not null; required: all rows"),
    (lambda c: c.hasMean("amount", "between 1 and 10"), "the mean of amount is 50.5; required: between 1 and 10"),
    (lambda c: c.hasSize("< 50"), "the row count is 100; required: < 50"),
    (lambda c: c.hasMax("amount", "<= 99"), "the maximum of amount is 100; required: <= 99"),
    (lambda c: c.hasPattern("name", "^n1", ">= 0.5"),
     "9% of rows have name matching ^n1; required: at least 50%"),
    (lambda c: c.satisfies("amount > 90", "big amounts", ">= 0.5"),
     "10% of rows satisfy 'big amounts'; required: at least 50%"),
])
def test_failure_reads_measured_and_required(spark, spend, build, expected):
    report = verify(spend, build(Check(CheckLevel.Error, "c")))
    [result] = report.results
    assert result.status == "Failure"
    assert result.verdict == expected
    line = describe_failure(result)
    assert line.endswith(expected) and "Value:" not in line  # said once, in words
    assert result.message.startswith("Value: ")  # Deequ's own wording stays in the message


def test_success_verdict_and_the_strict_error_text(spark, spend):
    report = verify(spend, Check(CheckLevel.Error, "c").isComplete("id").isNonNegative("spend_7d"))
    assert report.results[0].verdict == "100% of rows have id not null"
    error = ValidationError(report, "clicks v1")
    assert "38% of rows have spend_7d >= 0; required: all rows" in str(error)
    assert str(error).count("38%") == 1
