"""Data quality: every analyzer and constraint against hand-computed values, the ingestion gate,
anomaly checks over a recorded history, suggestions, statistics and the HTML report."""

from __future__ import annotations

import math
import os
import re
import shutil
import statistics as pystats
import subprocess
from pathlib import Path

import pytest

from featurestore import FeatureStore, hudi
from featurestore.config import load_config
from featurestore.quality import (
    Check,
    CheckLevel,
    ExpectationSuite,
    RelativeRateOfChangeStrategy,
    SimpleThresholdStrategy,
    SuiteError,
    ValidationError,
    load_suite,
    suggest,
    verify,
)
from featurestore.quality import analyzers as A
from featurestore.quality.engine import run_analyzers

SCHEMA = "id int, email string, amount double, cat string, score double, site string, note string"
ROWS = [
    (1, "alice@example.com", 10.0, "a", 1.0, "https://x.org", "card 4111 1111 1111 1111"),
    (2, "bob@example.org", 20.0, "b", 2.0, None, "nothing"),
    (3, None, None, "a", 3.0, "ftp://files.net/x", None),
    (3, "not an email", -5.0, "ü", 4.0, "nope", "5500-0000-0000-0004"),
    (5, "ünï@example.com", 35.0, None, 5.0, "see http://a.b/c here", "378282246310005"),
]


@pytest.fixture(scope="module")
def df(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


def _entropy(counts: list[int]) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts)


def test_analyzers_hand_computed(df):
    amounts = [10.0, 20.0, -5.0, 35.0]
    pairs = [(10.0, 1.0), (20.0, 2.0), (-5.0, 4.0), (35.0, 5.0)]
    expected = {
        A.Size(): 5,
        A.Completeness("email"): 4 / 5,
        A.Completeness("amount"): 4 / 5,
        A.Uniqueness("id"): 3 / 5,  # 1, 2, 5 once; 3 twice
        A.Distinctness("id"): 4 / 5,
        A.UniqueValueRatio("id"): 3 / 4,
        A.CountDistinct("id"): 4,
        A.ApproxCountDistinct("id"): 4,
        A.Entropy("id"): _entropy([1, 1, 2, 1]),
        A.Uniqueness(("id", "cat")): 1.0,
        A.Uniqueness("cat"): 2 / 4,  # nulls are not counted: a twice, b and ü once, over 4 non-null rows
        A.Mean("amount"): sum(amounts) / 4,
        A.Sum("amount"): 60.0,
        A.Minimum("amount"): -5.0,
        A.Maximum("amount"): 35.0,
        A.StandardDeviation("amount"): pystats.pstdev(amounts),
        A.MinLength("email"): float(len("not an email")),
        A.MaxLength("email"): float(len("alice@example.com")),
        A.MinLength("cat"): 1.0,  # "ü" is one character
        A.ApproxQuantile("amount", 0.5): 10.0,  # an element of the data: the 2nd of 4 sorted
        A.Correlation("amount", "score"): pystats.correlation([p[0] for p in pairs], [p[1] for p in pairs]),
        A.Compliance("positive amount", "amount > 0"): 3 / 5,  # null is not compliant
        A.PatternMatch("cat", "^[a-z]$"): 3 / 5,
    }
    metrics = run_analyzers(df, list(expected))
    for analyzer, value in expected.items():
        metric = metrics[analyzer]
        assert metric.success, (analyzer.key, metric.error)
        assert metric.value == pytest.approx(value), analyzer.key
    hist = run_analyzers(df, [A.Histogram("cat")])[A.Histogram("cat")].value
    assert hist["bins"] == 4
    assert hist["values"] == {"a": {"absolute": 2, "ratio": 0.4}, "b": {"absolute": 1, "ratio": 0.2},
                              "ü": {"absolute": 1, "ratio": 0.2}, "NullValue": {"absolute": 1, "ratio": 0.2}}
    types = run_analyzers(df, [A.DataType("email"), A.DataType("amount")])
    assert types[A.DataType("email")].value["Unknown"] == {"absolute": 1, "ratio": 0.2}
    assert types[A.DataType("email")].value["String"]["absolute"] == 4
    assert types[A.DataType("amount")].value["Fractional"]["absolute"] == 4


def test_empty_all_null_and_nan(spark):
    empty = spark.createDataFrame([], "x double, s string")
    m = run_analyzers(empty, [A.Size(), A.Completeness("x"), A.Mean("x"), A.Uniqueness("x"), A.CountDistinct("x"),
                              A.ApproxCountDistinct("x"), A.MaxLength("s"), A.DataType("s")])
    assert m[A.Size()].value == 0
    assert m[A.CountDistinct("x")].value == 0 and m[A.ApproxCountDistinct("x")].value == 0
    for a in (A.Completeness("x"), A.Mean("x"), A.Uniqueness("x"), A.MaxLength("s"), A.DataType("s")):
        assert not m[a].success and m[a].error.startswith("Empty state"), a.key

    nulls = spark.createDataFrame([(None,), (None,), (None,)], "x double")
    m = run_analyzers(nulls, [A.Completeness("x"), A.Mean("x"), A.Uniqueness("x"), A.Histogram("x"),
                              A.DataType("x"), A.CountDistinct("x")])
    assert m[A.Completeness("x")].value == 0.0
    assert not m[A.Mean("x")].success and not m[A.Uniqueness("x")].success
    assert m[A.CountDistinct("x")].value == 0
    assert m[A.Histogram("x")].value == {"bins": 1, "values": {"NullValue": {"absolute": 3, "ratio": 1.0}}}
    assert m[A.DataType("x")].value["Unknown"]["ratio"] == 1.0

    nan = spark.createDataFrame([(1.0,), (float("nan"),), (None,)], "x double")
    m = run_analyzers(nan, [A.Completeness("x"), A.Mean("x"), A.Maximum("x"), A.Minimum("x")])
    assert m[A.Completeness("x")].value == pytest.approx(2 / 3)  # NaN is a value, not a null
    assert math.isnan(m[A.Mean("x")].value) and math.isnan(m[A.Maximum("x")].value)
    assert m[A.Minimum("x")].value == 1.0
    report = verify(nan, Check(CheckLevel.Error, "nan").hasMean("x", ">= 0"))
    assert report.status == "Error" and math.isnan(report.results[0].value)

    report = verify(empty, [Check(CheckLevel.Error, "e").hasSize(0).isComplete("x")])
    assert [r.status for r in report.results] == ["Success", "Failure"]
    assert "Empty state" in report.results[1].message


def _all_constraints_check() -> tuple[Check, dict[str, tuple[str, float | int]]]:
    check = (Check(CheckLevel.Error, "everything")
             .hasSize(5).isComplete("id").hasCompleteness("email", 0.8).areComplete(["id", "cat"])
             .isUnique("id").isPrimaryKey("id", "cat").hasUniqueness(["id"], ">= 0.6").hasDistinctness("id", 0.9)
             .hasNumberOfDistinctValues("cat", 4).hasMin("amount", -5).hasMax("amount", "<= 30")
             .hasMean("amount", 15).hasSum("amount", "between 59 and 61").hasStandardDeviation("amount", "< 15")
             .hasMinLength("email", 12).hasMaxLength("email", 16).hasApproxQuantile("amount", 0.5, "== 10")
             .hasCorrelation("amount", "score", "> 0.2").hasPattern("cat", "^[a-z]$", ">= 0.6")
             .containsEmail("email", ">= 0.4").containsURL("site", 0.6).containsCreditCardNumber("note", ">= 0.6")
             .hasDataType("email", "String").hasDataType("email", "Null", "== 0.2").hasDataType("id", "Integral")
             .hasDataType("amount", "Numeric").isNonNegative("amount").isPositive("score")
             .isLessThan("amount", "score").isGreaterThanOrEqualTo("amount", "score", ">= 0.6")
             .isContainedIn("cat", ["a", "b"]).isContainedIn("amount", lower_bound=-10, upper_bound=40)
             .satisfies("amount > 0", "positive amount", ">= 0.6", hint="refunds are negative"))
    corr = pystats.correlation([10.0, 20.0, -5.0, 35.0], [1.0, 2.0, 4.0, 5.0])
    expected = {
        "hasSize": ("Success", 5), "isComplete": ("Success", 1.0), "hasCompleteness": ("Success", 0.8),
        "areComplete": ("Failure", 0.8), "isUnique": ("Failure", 0.6), "isPrimaryKey": ("Success", 1.0),
        "hasUniqueness": ("Success", 0.6), "hasDistinctness": ("Failure", 0.8),
        "hasNumberOfDistinctValues": ("Success", 4), "hasMin": ("Success", -5.0), "hasMax": ("Failure", 35.0),
        "hasMean": ("Success", 15.0), "hasSum": ("Success", 60.0),
        "hasStandardDeviation": ("Success", pystats.pstdev([10.0, 20.0, -5.0, 35.0])),
        "hasMinLength": ("Success", 12.0), "hasMaxLength": ("Failure", 17.0),
        "hasApproxQuantile": ("Success", 10.0), "hasCorrelation": ("Success", corr),
        "hasPattern": ("Success", 0.6), "containsEmail": ("Success", 0.4), "containsURL": ("Success", 0.6),
        "containsCreditCardNumber": ("Success", 0.6),
        "hasDataType(email, String)": ("Success", 1.0), "hasDataType(email, Null": ("Success", 0.2),
        "hasDataType(id, Integral)": ("Success", 1.0), "hasDataType(amount, Numeric)": ("Success", 1.0),
        "isNonNegative": ("Failure", 0.8), "isPositive": ("Success", 1.0), "isLessThan": ("Failure", 0.2),
        "isGreaterThanOrEqualTo": ("Success", 0.6), "isContainedIn(cat": ("Failure", 0.8),
        "isContainedIn(amount": ("Success", 1.0), "satisfies": ("Success", 0.6),
    }
    return check, expected


def test_every_constraint(df):
    check, expected = _all_constraints_check()
    report = verify(df, check)
    assert len(report.results) == len(expected)
    for result in report.results:
        matches = [k for k in expected if result.constraint.startswith(k)]
        key = max(matches, key=len)
        status, value = expected[key]
        assert result.status == status, (result.constraint, result.value, result.message)
        assert result.value == pytest.approx(value), result.constraint
    assert report.status == "Error" and not report.success
    failed = {r.constraint.split("(")[0] for r in report.failures}
    assert failed == {"areComplete", "isUnique", "hasDistinctness", "hasMax", "hasMaxLength", "isNonNegative",
                      "isLessThan", "isContainedIn"}
    hinted = next(r for r in report.results if r.constraint.startswith("satisfies"))
    assert hinted.hint == "refunds are negative"
    warn = verify(df, Check(CheckLevel.Warning, "soft").hasSize(4))
    assert warn.status == "Warning" and warn.success


def test_yaml_and_python_suites_give_identical_reports(df, tmp_path):
    check, _ = _all_constraints_check()
    suite = ExpectationSuite([check, Check("warning", "soft").hasSize(">= 100")], "orders")
    path = tmp_path / "suite.yaml"
    path.write_text(suite.to_yaml(), encoding="utf-8")
    loaded = load_suite(path)
    assert loaded.to_data() == suite.to_data()
    a, b = verify(df, suite).to_dict(), verify(df, loaded).to_dict()
    a.pop("validated_at"), b.pop("validated_at")
    assert a == b
    json_path = tmp_path / "suite.json"
    import json

    json_path.write_text(json.dumps(suite.to_data()), encoding="utf-8")
    c = verify(df, str(json_path)).to_dict()
    c.pop("validated_at")
    assert c == a


def test_suite_errors_name_the_problem(df, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n- level: Error\n  description: x\n  constraints:\n  - isCompleet: {column: id}\n")
    with pytest.raises(SuiteError, match="isCompleet"):
        load_suite(bad)
    with pytest.raises(SuiteError, match="assertion"):
        Check(CheckLevel.Error, "x").hasMin("amount", "at least 3")
    with pytest.raises(SuiteError, match="level"):
        Check("fatal", "x")
    with pytest.raises(SuiteError, match="callable"):
        ExpectationSuite([Check(CheckLevel.Error, "x").hasMin("amount", lambda v: v > 0)]).to_yaml()
    report = verify(df, Check(CheckLevel.Error, "x").isComplete("no_such_column").hasMin("email", 0))
    assert "no_such_column" in report.results[0].message
    assert "email" in report.results[1].message and "numeric" in report.results[1].message
    broken = verify(df, Check(CheckLevel.Error, "x").satisfies("amount >>> 1", "broken").isComplete("id"))
    assert broken.results[0].status == "Failure" and broken.results[1].status == "Success"
    custom = verify(df, Check(CheckLevel.Error, "x").hasMean("amount", lambda v: 14 < v < 16))
    assert custom.success


def _store(spark, tmp_path) -> FeatureStore:
    return FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse")}), spark=spark)


ORDER_SCHEMA = "order_id int, customer string, amount double, ts timestamp"


def _orders(spark, rows):
    import datetime as dt

    base = dt.datetime(2024, 5, 1)
    return spark.createDataFrame([(i, c, a, base + dt.timedelta(minutes=i)) for i, c, a in rows], ORDER_SCHEMA)


def _snapshot_files(location: str) -> list[str]:
    root = Path(location)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_strict_rejects_and_leaves_everything_untouched(spark, tmp_path):
    fs = _store(spark, tmp_path)
    suite = [Check(CheckLevel.Error, "orders").isComplete("customer").isNonNegative("amount", hint="no refunds"),
             Check(CheckLevel.Warning, "volume").hasSize(">= 3")]
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts", expectation_suite=suite,
                                 validation_policy="STRICT", online_enabled=True)
    ok = fg.insert(_orders(spark, [(1, "ann", 5.0), (2, "bob", 7.5)]))
    keys = [{"order_id": i} for i in range(1, 6)]
    online = fs.get_feature_vectors(fg, keys)
    assert [v["customer"] for v in online] == ["ann", "bob", None, None, None]
    assert ok.validation.status == "Warning" and ok.validation.commit_id == ok.commit_id  # warnings never block
    files, timeline = _snapshot_files(fg.location), hudi.timeline(fg.location)
    commits = fg.commit_details()
    with pytest.raises(ValidationError) as err:
        fg.insert(_orders(spark, [(3, None, 1.0), (4, "dan", -2.0), (5, "eve", 3.0)]))
    message = str(err.value)
    assert "isComplete(customer)" in message and "isNonNegative(amount)" in message and "no refunds" in message
    # what each failed constraint measured and required, in words: 2 of 3 rows each
    assert "66.67% of rows have customer not null; required: all rows" in message
    assert "66.67% of rows have amount >= 0; required: all rows" in message
    assert _snapshot_files(fg.location) == files and hudi.timeline(fg.location) == timeline
    assert fg.commit_details() == commits
    assert sorted(r.order_id for r in fg.read().collect()) == [1, 2]
    assert fs.get_feature_vectors(fg, keys) == online
    history = fg.get_validation_history()
    assert [(h.outcome, h.status, h.commit_id) for h in history] == [("rejected", "Error", None),
                                                                     ("accepted", "Warning", ok.commit_id)]
    dry = fg.validate(_orders(spark, [(9, None, 1.0)]))
    assert dry.status == "Error" and dry.outcome == "dry_run" and len(fg.get_validation_history()) == 2


def test_always_writes_and_records(spark, tmp_path):
    fs = _store(spark, tmp_path)
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts")
    fg.save_expectation_suite(Check(CheckLevel.Error, "orders").isNonNegative("amount"), "ALWAYS")
    assert fg.validation_policy == "ALWAYS"
    result = fg.insert(_orders(spark, [(1, "ann", -1.0), (2, "bob", 2.0)]))
    assert result.commit_id and result.validation.status == "Error"
    assert fg.read().count() == 2
    (stored,) = fg.get_validation_history()
    assert (stored.outcome, stored.status, stored.commit_id) == ("accepted", "Error", result.commit_id)
    assert stored.failures[0].value == 0.5
    skipped = fg.insert(_orders(spark, [(3, "c", -3.0)]), validation_options={"run_validation": False})
    assert skipped.validation is None and len(fg.get_validation_history()) == 1
    with pytest.raises(Exception, match="run_validaton"):
        fg.insert(_orders(spark, [(3, "c", 1.0)]), validation_options={"run_validaton": False})


def test_anomaly_checks_against_recorded_history(spark, tmp_path):
    fs = _store(spark, tmp_path)
    suite = [Check(CheckLevel.Error, "volume").isNewestPointNonAnomalous(
        A.Size(), RelativeRateOfChangeStrategy(max_rate_decrease=0.5, max_rate_increase=2.0)),
        Check(CheckLevel.Error, "mean").isNewestPointNonAnomalous({"Mean": {"column": "amount"}},
                                                                  {"SimpleThreshold": {"upper_bound": 100}})]
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts", expectation_suite=suite)
    first = fg.insert(_orders(spark, [(i, "c", 10.0) for i in range(10)]))  # no history: passes
    assert first.validation.success
    second = fg.insert(_orders(spark, [(i, "c", 20.0) for i in range(100, 115)]))  # 15 / 10 = 1.5
    assert second.validation.success
    with pytest.raises(ValidationError, match="anomaly"):
        fg.insert(_orders(spark, [(i, "c", 20.0) for i in range(200, 240)]))  # 40 / 15 > 2
    with pytest.raises(ValidationError, match="Mean"):
        fg.insert(_orders(spark, [(i, "c", 500.0) for i in range(300, 320)]))  # 20 / 15 fine, mean 500 > 100
    # rejected batches are not part of the baseline: the history is the two accepted inserts
    assert [v for _, v in fg.get_metric_history("Size()")] == [10.0, 15.0]
    assert [c for c, _ in fg.get_metric_history("Mean(amount)")] == [first.commit_id, second.commit_id]
    third = fg.insert(_orders(spark, [(i, "c", 30.0) for i in range(400, 425)]))  # 25 / 15 fine
    assert third.validation.success
    reloaded = load_suite_from_yaml(fs.get_feature_group("orders").get_expectation_suite().to_yaml(), tmp_path)
    assert [c.to_data() for c in reloaded.checks] == [c.to_data() for c in suite]
    assert SimpleThresholdStrategy(0, 1).is_anomaly([], 2.0)[0]


def load_suite_from_yaml(text: str, tmp_path: Path) -> ExpectationSuite:
    path = tmp_path / "roundtrip.yaml"
    path.write_text(text, encoding="utf-8")
    return load_suite(path)


def test_statistics_per_commit_and_table(spark, tmp_path):
    fs = _store(spark, tmp_path)
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts",
                                 statistics_config={"histograms": True, "correlations": True,
                                                    "exact_uniqueness": True})
    rows = [(1, "ann", 1.0), (2, "bob", 2.0), (3, "ann", 3.0), (4, None, 10.0), (5, "ann", None)]
    r1 = fg.insert(_orders(spark, rows))
    stats = fg.get_statistics(r1.commit_id)
    assert stats["rows"] == 5 and stats["commit_id"] == r1.commit_id
    amount = stats["columns"]["amount"]
    values = [1.0, 2.0, 3.0, 10.0]
    assert amount["completeness"] == 0.8 and amount["min"] == 1.0 and amount["max"] == 10.0
    assert amount["mean"] == pytest.approx(pystats.mean(values))
    assert amount["stddev"] == pytest.approx(pystats.pstdev(values))
    assert sum(b["count"] for b in amount["histogram"]) == 4 and amount["histogram"][-1]["count"] == 1
    customer = stats["columns"]["customer"]
    assert customer["top_values"] == [{"value": "ann", "count": 3}, {"value": "bob", "count": 1}]
    assert customer["distinct"] == 2 and customer["uniqueness"] == 0.25
    assert stats["columns"]["order_id"]["uniqueness"] == 1.0
    corr = stats["correlations"]["order_id"]["amount"]
    assert corr == pytest.approx(pystats.correlation([1, 2, 3, 4], values))
    r2 = fg.insert(_orders(spark, [(6, "zoë", 4.0)]))
    assert fg.get_statistics()["commit_id"] == r2.commit_id and fg.get_statistics()["rows"] == 1
    table = fg.compute_statistics()
    assert table["rows"] == 6 and table["kind"] == "table"
    assert table["columns"]["amount"]["max"] == 10.0
    off = fs.create_feature_group("plain", primary_key="order_id", statistics_config=False)
    off.insert(_orders(spark, [(1, "a", 1.0)]))
    assert off.get_statistics() is None
    with pytest.raises(SuiteError, match="histogramz"):
        fs.create_feature_group("bad", primary_key="order_id", statistics_config={"histogramz": True})
    assert fs.get_feature_groups("bad") == []


def test_suggestions_pass_on_their_data_and_print_as_yaml(df, tmp_path):
    suite = suggest(df)
    text = suite.to_yaml()
    methods = {next(iter(c)) for c in suite.to_data()["checks"][0]["constraints"]}
    assert {"isComplete", "hasCompleteness", "isNonNegative", "hasMin", "hasMax"} <= methods
    # cat has a, b, ü and a null, three of its four entries seen once: samples, not a category list (as Deequ)
    assert "isContainedIn" not in methods
    assert verify(df, suite).success
    assert verify(df, load_suite_from_yaml(text, tmp_path)).success
    id_constraints = [c for c in suite.checks[0].constraints if c.params.get("column") == "score"]
    assert any(c.method == "isUnique" for c in id_constraints)
    # every category twice: now a value set, unicode kept through YAML
    doubled = df.unionAll(df)
    suite = suggest(doubled)
    text = suite.to_yaml()
    contained = {c.params["column"]: c.params for c in suite.checks[0].constraints if c.method == "isContainedIn"}
    assert sorted(contained["cat"]["allowed_values"]) == ["a", "b", "ü"]
    assert "ü" in text and verify(doubled, load_suite_from_yaml(text, tmp_path)).success


def test_report_renders_in_headless_chromium(spark, tmp_path):
    fs = _store(spark, tmp_path)
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts",
                                 expectation_suite=Check(CheckLevel.Error, "o").isNonNegative("amount"),
                                 statistics_config={"histograms": True})
    fg.insert(_orders(spark, [(1, "ann", 1.0), (2, "bob", 2.0), (3, "ann", 3.0)]))
    fg.insert(_orders(spark, [(4, "cy", 4.0), (5, "ann", 8.0)]))
    with pytest.raises(ValidationError):
        fg.insert(_orders(spark, [(6, "x", -1.0)]))
    path = fg.statistics_report(str(tmp_path / "report.html"))
    text = Path(path).read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "Validation history" in text and "rejected" in text
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is not installed; run ./bootstrap.sh"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", Path(path).as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert int(attrs["plots-total"]) >= 5  # histograms, top values, heat map, trends, validation history
    assert attrs["plots-loaded"] == attrs["plots-total"] and attrs["plots-broken"] == "0"
    assert attrs["errors"] == "0"
    assert "Uncaught" not in proc.stderr
    # the page as a person sees it (looked at by eye once: legend beside the plot with its own swatches,
    # figure titles clear of the panels, commit times on the x axes)
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,2600", f"--screenshot={shot}", Path(path).as_uri()],
                   capture_output=True, text=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("FEATURESTORE_TEST_KEEP_REPORT"):
        shutil.copy(shot, os.environ["FEATURESTORE_TEST_KEEP_REPORT"])


def test_report_shows_an_approximate_distinct_count_as_at_most_the_rows():
    from featurestore.model.records import FeatureGroupRecord
    from featurestore.quality.report import render_report

    record = FeatureGroupRecord.from_row({"id": 1, "feature_store_id": 1, "name": "wide", "version": 1,
                                          "primary_key": ["id"], "features": []})
    stats = {"rows": 200, "columns": {"id": {"type": "int", "completeness": 1.0, "approx_distinct": 205}}}
    text = render_report(record, stats, [], [])
    assert "≈ 200" in text and "205" not in text


def test_report_lost_after_the_commit_does_not_fail_the_insert(spark, tmp_path, caplog):
    """The Hudi commit is the point of no return: if the registry then cannot take the validation
    report (here its table is gone), the insert still succeeds and says so in a warning."""
    import sqlalchemy as sa

    fs = _store(spark, tmp_path)
    fg = fs.create_feature_group("kept", primary_key="id", statistics_config=False,
                                 expectation_suite=Check(CheckLevel.Error, "ok").isComplete("id"))
    with fs.registry.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE validation_reports"))
    with caplog.at_level("WARNING"):
        result = fg.insert(spark.createDataFrame([(1, "a"), (2, None)], "id int, v string"))
    assert result.commit_id is not None
    assert sorted((r.id, r.v) for r in fg.read().collect()) == [(1, "a"), (2, None)]
    assert any("validation report of commit" in r.getMessage() and result.commit_id in r.getMessage()
               for r in caplog.records)
