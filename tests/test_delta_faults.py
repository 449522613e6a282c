"""A Delta write SIGKILLed while the MERGE writes its data files leaves the previous version readable and
nothing half-committed (its files are in the folder, no log entry names them); killed right after its
log entry it is a complete new version, which the registry picks up on the next access. In both cases
delta-spark and delta-rs (an independent reader) read exactly the expected rows, and the next write
succeeds and reads right.

The writer runs in a subprocess (tests/delta_fault_writer.py) that kills its JVM at the marked point.
Expected rows are computed here in Python from the batches' formulas.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import deltalake
import pytest
from delta_fault_writer import KILLED_DAY, KILLED_IDS, data_files

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.quality import Check, CheckLevel

SCRIPT = Path(__file__).with_name("delta_fault_writer.py")
SEED_IDS = range(1000)


def v(n: int) -> str:
    return f"{n:020d}"


def seed_rows() -> dict[int, tuple]:
    # a null name every 97 rows, unicode elsewhere
    return {i: (float(i), None if i % 97 == 0 else f"seed é {i}", dt.datetime(2024, 1, 10)) for i in SEED_IDS}


def killed_rows() -> dict[int, tuple]:
    return {i: (i + 0.5, f"killed ü {i}", dt.datetime(2024, 1, KILLED_DAY)) for i in KILLED_IDS}


NEXT = {i: (100.0 + i, "next 😀", dt.datetime(2024, 1, 25)) for i in (*range(10), 1500)}


def spark_rows(df) -> dict[int, tuple]:
    return {r["order_id"]: (r["amount"], r["name"], r["ts"]) for r in df.collect()}


def delta_rs_rows(path: str, version: int | None = None) -> dict[int, tuple]:
    table = deltalake.DeltaTable(path, version=version).to_pyarrow_table()
    return {r["order_id"]: (r["amount"], r["name"], r["ts"].replace(tzinfo=None)) for r in table.to_pylist()}


def referenced(path: str) -> set[str]:
    """Data files the current Delta version names (relative paths), as delta-rs lists them."""
    return {os.path.relpath(uri.removeprefix("file://"), path) for uri in deltalake.DeltaTable(path).file_uris()}


def frame(spark, rows: dict[int, tuple]):
    return spark.createDataFrame([(i, a, n, t) for i, (a, n, t) in rows.items()],
                                 "order_id int, amount double, name string, ts timestamp")


@pytest.mark.parametrize("stage", ["files", "commit"])
def test_killed_delta_write(spark, tmp_path, stage):
    warehouse = str(tmp_path / "wh")
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": warehouse}), spark=spark)
    try:
        fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts", time_travel_format="DELTA",
                                     expectation_suite=Check(CheckLevel.Error, "orders").isNonNegative("amount"))
        seed = seed_rows()
        assert fg.insert(frame(spark, seed)).commit_id == v(0)
        path = fg.location
        files_before = data_files(path)

        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
        done = subprocess.run([sys.executable, str(SCRIPT), warehouse, stage], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]
        log = Path(path, "_delta_log")
        entries = sorted(p.name for p in log.glob("*.json"))
        # the registry knows only the commit of the writer that lived
        assert [c["commit_id"] for c in fs.registry.list_commits(fg.id)] == [v(0)]

        if stage == "files":
            # the MERGE had written data files, no log entry names them: the table is still version 0
            assert entries == [f"{v(0)}.json"], entries
            orphans = data_files(path) - files_before
            assert orphans, "the killed MERGE should have left data files"
            assert referenced(path) == files_before
            expected_now, last_version = seed, 0
        else:
            # the log entry is there and complete: version 1 is the whole batch
            assert entries == [f"{v(0)}.json", f"{v(1)}.json"], entries
            expected_now = {**seed, **killed_rows()}
            last_version = 1
            assert delta_rs_rows(path, 0) == seed
        assert spark_rows(fg.read()) == expected_now
        assert delta_rs_rows(path) == expected_now
        assert deltalake.DeltaTable(path).version() == last_version
        assert spark_rows(fg.read(as_of="0")) == seed

        # the next write succeeds and everything reads right; the registry is consistent again
        following = fs.get_feature_group("orders", 1)
        result = following.insert(frame(spark, NEXT))
        assert result.commit_id == v(last_version + 1)
        expected = {**expected_now, **NEXT}
        assert spark_rows(following.read()) == expected
        assert delta_rs_rows(path) == expected
        assert delta_rs_rows(path, last_version) == expected_now
        commits = sorted(c["commit_id"] for c in fs.registry.list_commits(following.id))
        assert commits == [v(n) for n in range(last_version + 2)]
        assert sorted(following.commit_details()) == commits
        if stage == "files":
            assert not referenced(path) & orphans  # the killed write's files stay out of every version
        else:
            # the killed commit was recovered: provenance, statistics of its 1,000 rows, its validation
            recovered = following.get_provenance(v(1))
            assert recovered["kind"] == "recovered" and recovered["commit_id"] == v(1)
            stats = following.get_statistics(v(1))
            assert stats is not None and stats["rows"] == len(KILLED_IDS)
            assert stats["columns"]["amount"]["min"] == KILLED_IDS.start + 0.5
            reports = {r.commit_id: r for r in following.get_validation_history()}
            assert reports[v(1)].outcome == "accepted" and reports[v(1)].rows == len(KILLED_IDS)
    finally:
        fs.close()

