"""Great Expectations suites in: each supported expectation keeps GE's meaning (nulls left out of
per-row fractions, ``mostly``, strict bounds), unsupported ones are named, and the gate uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.quality import ExpectationSuite, SuiteError, ValidationError, verify

GE_SUITE = Path(__file__).parent / "data" / "ge_transactions_suite.json"
SCHEMA = "tid int, category string, amount double, merchant string"
ROWS = [(1, "food", 10.0, "Aldi"), (2, "café", 0.0, "Bäcker"), (3, None, 1500.0, "zoo"),
        (4, "travel", 300.0, None), (5, "food", 400.0, "Ébène")]
# Computed by hand from ROWS, in the suite's order (value, status):
EXPECTED = [
    (1.0, "Success"),    # tid not null: 5 of 5
    (0.8, "Success"),    # category not null, mostly 0.8: 4 of 5
    (0.8, "Success"),    # amount in [0, 1000] of the 5 non-null amounts: 4 (1500 out), mostly 0.75
    (0.8, "Failure"),    # amount > 0 (strict): 0.0 fails, 4 of 5, mostly 1
    (1.0, "Success"),    # tid unique
    (1.0, "Success"),    # category in the set: 4 of the 4 non-null values (the null is not counted)
    (0.5, "Failure"),    # merchant matches ^[A-Z]: Aldi, Bäcker of the 4 non-null (zoo, Ébène not), mostly 0.6
    (442.0, "Failure"),  # mean amount 2210 / 5 = 442, not in [100, 400]
    (0.75, "Failure"),   # merchant length in [2, 5]: Bäcker has 6, 3 of 4 non-null
    (5.0, "Success"),    # row count in [5, 5]
]


def test_each_expectation_keeps_ge_meaning(spark):
    suite = ExpectationSuite.from_great_expectations(GE_SUITE)
    assert suite.name == "transactions_suite" and len(suite.checks) == 10
    report = verify(spark.createDataFrame(ROWS, SCHEMA), suite)
    got = [(pytest.approx(r.value), r.status) for r in report.results]
    assert got == EXPECTED
    assert report.status == "Error"
    assert [r.check for r in report.results][6] == "expect_column_values_to_match_regex #7"


def test_ge_1x_format_and_a_path_given_where_suites_go(spark, tmp_path):
    data = json.loads(GE_SUITE.read_text())
    modern = {"name": "modern", "expectations": [{"type": e["expectation_type"], "kwargs": e["kwargs"]}
                                                 for e in data["expectations"]]}
    path = tmp_path / "modern.json"
    path.write_text(json.dumps(modern))
    report = verify(spark.createDataFrame(ROWS, SCHEMA), str(path))  # a path: detected as GE
    assert [(pytest.approx(r.value), r.status) for r in report.results] == EXPECTED


@pytest.mark.parametrize(("expectation", "named"), [
    ({"expectation_type": "expect_column_kl_divergence_to_be_less_than", "kwargs": {"column": "amount"}},
     "expectation #1 (expect_column_kl_divergence_to_be_less_than): not supported"),
    ({"expectation_type": "expect_column_values_to_be_between",
      "kwargs": {"column": "amount", "min_value": 0, "parse_strings_as_datetimes": True}},
     "keyword argument(s) parse_strings_as_datetimes not supported"),
    ({"expectation_type": "expect_column_values_to_be_between", "kwargs": {"column": "amount"}},
     "needs min_value, max_value or both"),
    ({"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "tid", "mostly": 1.5}},
     "'mostly' must be a number between 0 and 1"),
    ({"expectation_type": "expect_column_values_to_be_in_set", "kwargs": {"column": "category", "value_set": []}},
     "value_set must be a non-empty list"),
    ({"expectation_type": "expect_column_values_to_be_unique", "kwargs": {}}, "needs a 'column' name"),
])
def test_unsupported_or_malformed_expectations_are_named(expectation, named):
    with pytest.raises(SuiteError, match=named.replace("(", r"\(").replace(")", r"\)")):
        ExpectationSuite.from_great_expectations({"expectation_suite_name": "s", "expectations": [expectation]})


def test_a_strict_ge_suite_gates_ingestion(spark, tmp_path):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}), spark=spark)
    try:
        fg = fs.create_feature_group("transactions", primary_key=["tid"])
        fg.save_expectation_suite(str(GE_SUITE), validation_policy="STRICT")
        with pytest.raises(ValidationError, match="expect_column_mean_to_be_between #8"):
            fg.insert(spark.createDataFrame(ROWS, SCHEMA))
        assert fg.commit_details() == {}
        good = [(1, "food", 100.0, "Aldi"), (2, "café", 200.0, "Bob"), (3, "travel", 300.0, "Cy"),
                (4, "food", 250.0, "Dee"), (5, "food", 150.0, "Eve")]
        assert fg.insert(spark.createDataFrame(good, SCHEMA)).validation.status == "Success"
        assert fg.read().count() == 5
    finally:
        fs.close()
