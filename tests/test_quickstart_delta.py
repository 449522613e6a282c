"""The quick start with ``--format delta`` end to end: both feature groups are Delta Lake tables (read back
by delta-rs, an independent reader of the Delta protocol), the bad batch leaves no commit, the online
vectors and the point-in-time training dataset hold the values the job's generator gives, and the
dataset recreates exactly from the Delta versions it recorded after the table moved on.

Expected values are computed here from the generator's formulas (jobs/quickstart.py ``_transactions``
and the profile columns), never from what the job wrote.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import deltalake
import pytest
from test_quickstart import _check_story

from featurestore import FeatureStore
from featurestore.config import load_config

REPO = Path(__file__).resolve().parent.parent
START = dt.datetime(2024, 1, 1)
CUSTOMERS = 200
COUNTRIES = ("DE", "FR", "SE", "US")


def activity(customer: int, first_day: int, salt: int) -> tuple:
    """(ts, spend_7d, orders_7d) of one insert of 7 days from ``first_day``: the newest day's values."""
    day = 6  # the last of the 7 generated days wins (max_by ts)
    return (START + dt.timedelta(days=first_day + day), ((customer * 37 + day * 11 + salt) % 500) / 10.0,
            (customer + day + salt) % 9)


def profile(customer: int) -> tuple:
    return COUNTRIES[customer % 4], START - dt.timedelta(days=customer % 300)


def naive(ts):
    return ts.replace(tzinfo=None) if ts is not None else None


def delta_rs(path: str, version: int | None = None) -> dict[int, tuple]:
    table = deltalake.DeltaTable(path, version=version).to_pyarrow_table()
    return {r["customer_id"]: tuple(naive(v) if isinstance(v, dt.datetime) else v
                                    for k, v in r.items() if k != "customer_id") for r in table.to_pylist()}


def load_job(name: str = "quickstart"):
    spec = importlib.util.spec_from_file_location(f"{name}_job_delta", REPO / "jobs" / f"{name}.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


def test_quickstart_with_format_delta_end_to_end(spark, tmp_path, capsys):
    warehouse = tmp_path / "qs"
    assert load_job().main(["--warehouse", str(warehouse), "--format", "delta"]) == 0
    out = capsys.readouterr().out
    _check_story(out, warehouse)
    assert "Delta Lake tables, training data" in out

    fs = FeatureStore(load_config(warehouse / "featurestore.yaml", environ={}), spark=spark)
    try:
        assert fs.config.get("offline.format") == "DELTA"  # the CLI on this store makes Delta tables too
        act, prof = fs.get_feature_group("customer_activity"), fs.get_feature_group("customer_profile")
        for fg in (act, prof):
            assert (fg.time_travel_format, fg.engine) == ("DELTA", "delta")
            assert (Path(fg.location) / "_delta_log").is_dir() and not (Path(fg.location) / ".hoodie").exists()

        # offline: two commits (the rejected batch wrote none), each version as the generator made it
        first = {c: activity(c, 0, 0) for c in range(CUSTOMERS)}
        second = {c: activity(c, 7, 3) for c in range(CUSTOMERS)}
        history = sorted(deltalake.DeltaTable(act.location).history(), key=lambda h: h["version"])
        assert [(h["version"], h["operation"]) for h in history] == [(0, "WRITE"), (1, "MERGE")]
        assert [json.loads(h["userMetadata"])["featurestore.operation"] for h in history] == ["upsert", "upsert"]
        assert (int(history[1]["operationMetrics"]["numTargetRowsUpdated"]),
                int(history[1]["operationMetrics"]["numTargetRowsInserted"])) == (CUSTOMERS, 0)
        assert delta_rs(act.location, 0) == first
        assert delta_rs(act.location) == second
        assert delta_rs(prof.location) == {c: profile(c) for c in range(CUSTOMERS)}
        assert sorted(act.commit_details()) == [f"{0:020d}", f"{1:020d}"]
        assert {r["customer_id"]: (r["ts"], r["spend_7d"], r["orders_7d"]) for r in act.read().collect()} == second

        # online: the materialized vectors, also for the first and last customer
        for c in (0, 42, 199):
            vector = fs.get_feature_vector([act, (prof, ["country"])], {"customer_id": c})
            ts, spend, orders = second[c]
            assert (vector["spend_7d"], vector["orders_7d"], vector["country"]) == (spend, orders, profile(c)[0]), c
            assert naive(vector["ts"]) == ts, c

        # training data: each label sees the newest activity at or before its time (the snapshot holds the
        # second insert's rows, all on Jan 14) and the profile (signed up before every label)
        td = fs.get_training_dataset("churn", 1)
        assert td.commits == {"customer_activity_1": f"{1:020d}", "customer_profile_1": f"{0:020d}"}
        expected = {}
        for c in range(CUSTOMERS):
            when = START + dt.timedelta(days=c % 14 + 3)
            ts, spend, orders = second[c]
            seen = (spend, orders) if ts <= when else (None, None)
            expected[c] = (when, *seen, profile(c)[0], c % 7 == 0)
        got = {r["customer_id"]: (r["ts"], r["spend_7d"], r["orders_7d"], r["country"], r["churned"])
               for r in td.read().collect()}
        assert got == expected
        counts = td.row_counts() if callable(td.row_counts) else td.row_counts
        assert sum(counts.values()) == CUSTOMERS

        # the dataset recreates exactly from its Delta versions after the table moved on (a newer event
        # for every other customer, after every label: a fresh dataset would see none of them)
        moved = spark.createDataFrame([(c, START + dt.timedelta(days=19), 1.0, 1) for c in range(0, CUSTOMERS, 2)],
                                      act.schema)
        assert act.insert(moved).commit_id == f"{2:020d}"
        again = td.recreate()
        assert again.commits == td.commits
        assert {r["customer_id"]: (r["ts"], r["spend_7d"], r["orders_7d"], r["country"], r["churned"])
                for r in again.read().collect()} == expected

        # maintenance: OPTIMIZE compacts the three commits' files into one (a version that is no commit),
        # VACUUM keeping one commit readable removes the files only older versions need
        third = {c: ((START + dt.timedelta(days=19), 1.0, 1) if c % 2 == 0 else second[c]) for c in range(CUSTOMERS)}
        files_before = len(deltalake.DeltaTable(act.location).file_uris())
        maintenance = load_job("maintenance")
        config = str(warehouse / "featurestore.yaml")
        assert maintenance.main(["--all", "--retain-commits", "1", "--optimize", "--config", config]) == 0
        removed = int(capsys.readouterr().out.strip().splitlines()[-1])
        assert removed > 0
        assert len(deltalake.DeltaTable(act.location).file_uris()) == 1
        operations = [h["operation"] for h in deltalake.DeltaTable(act.location).history()]
        assert ("OPTIMIZE" in operations) == (files_before > 1), (files_before, operations)
        assert sorted(act.commit_details()) == [f"{n:020d}" for n in range(3)]
        assert delta_rs(act.location) == third
        assert {r["customer_id"]: (r["ts"], r["spend_7d"], r["orders_7d"]) for r in act.read().collect()} == third
        with pytest.raises(Exception, match=r"(?i)(not exist|not found|FileNotFound)"):
            act.read(as_of="0").collect()  # its files are gone: Delta's own error
    finally:
        fs.close()
