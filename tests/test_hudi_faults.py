"""A writer SIGKILLed at any stage leaves readers on the previous commit; the next write rolls
the unfinished instant back, as Hudi records it, and loses or duplicates nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hudi_helpers import hudi_rs, rows_of_arrow, rows_of_spark

from featurestore import hudi
from featurestore.hudi.timeline import Timeline

SCHEMA = "id int, region string, v double, ts timestamp, name string"
OPTS = {"hoodie.table.name": "faults", "hoodie.datasource.write.recordkey.field": "id",
        "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts"}
COLS = ["id", "region", "v", "name"]
SCRIPT = Path(__file__).with_name("fault_writer.py")


@pytest.mark.parametrize(("stage", "version"), [("files", "9"), ("inflight", "9"), ("commit", "9"),
                                              ("files", "6"), ("inflight", "6"), ("commit", "6")])
def test_killed_writer_leaves_previous_state_and_next_write_rolls_back(spark, tmp_path, stage, version):
    path = str(tmp_path / "faults")
    ts = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    seed = [(i, "a" if i % 2 else "b", float(i), ts, "seed") for i in range(6)]
    base = hudi.write(spark.createDataFrame(seed, SCHEMA), path, {**OPTS, "hoodie.write.table.version": version})
    before = rows_of_spark(hudi.read(spark, path), COLS)

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, str(SCRIPT), path, stage], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]
    hoodie = Path(path, ".hoodie", "timeline") if version == "9" else Path(path, ".hoodie")
    pending = [n for n in os.listdir(hoodie)
               if n.endswith((".inflight", ".requested")) and not n.startswith(base.instant_time)]
    assert pending, "the killed write should have left an unfinished instant"
    killed = pending[0].split(".")[0]
    if stage in ("files", "commit"):
        assert any(killed in n for _, _, names in os.walk(path) for n in names if n.endswith(".parquet"))

    # readers see exactly the previous commit
    assert rows_of_spark(hudi.read(spark, path), COLS) == before
    assert rows_of_arrow(hudi_rs(path), COLS) == before

    # the next write rolls the killed instant back and succeeds
    result = hudi.write(spark.createDataFrame([(1, "a", 11.0, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "next")],
                                              SCHEMA), path, OPTS)
    assert result.rolled_back == (killed,)
    assert not any(killed in n for _, _, names in os.walk(path) for n in names if n.endswith(".parquet"))
    names = os.listdir(hoodie)
    assert not any(n.startswith(killed) for n in names)
    assert any(n.endswith(".rollback") for n in names)
    expected = sorted([r for r in before if r[0] != 1] + [(1, "a", 11.0, "next")], key=repr)
    assert rows_of_spark(hudi.read(spark, path), COLS) == expected
    assert rows_of_arrow(hudi_rs(path), COLS) == expected


# -- a killed clean or rollback is finished by the next writer ------------------------------------
RETAINED = 2
FOLLOW_UP_COMMITS = 12  # with hoodie.keep.max.commits = RETAINED + 3, enough to archive several times
KILL_TIME = dt.datetime(2030, 1, 1)  # naive UTC, the row time fault_writer.py writes
CLEAN_STAGES = ["clean:requested", "clean:inflight", "clean:delete", "clean:complete"]
ROLLBACK_STAGES = ["rollback:requested", "rollback:inflight", "rollback:delete", "rollback:complete"]


def _opts_retaining(retained: int) -> dict[str, str]:
    # table version 6: these tests count the instants archival moves to .hoodie/archived (layout 1 only)
    return {**OPTS, "hoodie.cleaner.commits.retained": str(retained), "hoodie.write.table.version": "6",
            "hoodie.keep.max.commits": str(retained + 3)}


def _upsert(spark, path, model, rows, when):
    """Write ``rows`` (id, region, v, name) at time ``when`` and apply them to the model."""
    hudi.write(spark.createDataFrame([(i, r, v, when.replace(tzinfo=dt.UTC), n) for i, r, v, n in rows], SCHEMA),
               path, _opts_retaining(RETAINED))
    for i, region, v, name in rows:
        model[i] = (i, region, v, name)


def _seed(spark, path):
    """Three commits rewriting both file groups (regions a and b): the third already cleans."""
    model: dict[int, tuple] = {}
    for n in range(3):
        rows = [(i, "a" if i % 2 else "b", float(i * 10 + n), f"seed{n}") for i in range(6)]
        _upsert(spark, path, model, rows, dt.datetime(2024, 1, 1 + n))
    return model


def _follow_up(spark, path, model):
    """FOLLOW_UP_COMMITS small upserts, each updating one key and adding one (unicode names, a null)."""
    for n in range(FOLLOW_UP_COMMITS):
        rows = [(n % 6, "a" if n % 6 % 2 else "b", float(1000 + n), f"ü{n}"),
                (1000 + n, "b" if n % 2 else "a", None if n % 7 == 0 else float(n), "新")]
        _upsert(spark, path, model, rows, dt.datetime(2031, 1, 1) + dt.timedelta(hours=n))


def _instant_files(path):
    hoodie = Path(path, ".hoodie")
    active = [n for n in os.listdir(hoodie) if n[:1].isdigit()]
    archived = [n for n in os.listdir(hoodie / "archived") if n[:1].isdigit()]
    return active, archived


def _run_fault_writer(path, stage):
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, str(SCRIPT), path, stage, str(RETAINED)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def untouched_timeline(spark, tmp_path_factory):
    """Active and archived instant files of the same history without a kill."""
    path = str(tmp_path_factory.mktemp("untouched") / "faults")
    model = _seed(spark, path)
    _upsert(spark, path, model, [(1, "a", 99.0, "killed"), (500, "b", 5.0, "killed")], KILL_TIME)
    _follow_up(spark, path, model)
    active, archived = _instant_files(path)
    assert archived, "the history should have reached archival"
    return active, archived


@pytest.mark.parametrize("stage", CLEAN_STAGES + ROLLBACK_STAGES)
def test_killed_clean_or_rollback_is_finished_by_the_next_writer(spark, tmp_path, untouched_timeline, stage):
    path = str(tmp_path / "faults")
    model = _seed(spark, path)
    _run_fault_writer(path, stage)
    hoodie = Path(path, ".hoodie")
    action = stage.split(":")[0]
    left = [n for n in os.listdir(hoodie) if n.endswith((".requested", ".inflight")) and f".{action}." in n]
    assert left, f"the kill at {stage} should have left a pending {action}"
    killed = left[0].split(".")[0]
    doomed = [i.timestamp for i in Timeline.load(path).pending if i.is_commit]
    assert len(doomed) == (1 if action == "rollback" and stage != "rollback:complete" else 0)
    if action == "clean":
        model[1] = (1, "a", 99.0, "killed")  # the commit completed before its clean was killed
        model[500] = (500, "b", 5.0, "killed")

    _follow_up(spark, path, model)

    names = os.listdir(hoodie)
    assert Timeline.load(path).pending == [], "a pending instant was left"
    assert f"{killed}.{action}" in names + os.listdir(hoodie / "archived"), f"{stage}: {killed} not completed"
    assert not [d for d in os.listdir(hoodie / ".temp")], "marker folders of finished instants remain"
    active, archived = _instant_files(path)
    reference_active, reference_archived = untouched_timeline
    # One more instant (the finished clean or rollback) than without the kill, at most three files.
    assert len(active) <= len(reference_active) + 3, (len(active), len(reference_active))
    assert len(archived) >= len(reference_archived) - 3, (len(archived), len(reference_archived))

    expected = sorted([(i, r, v, n) for i, r, v, n in model.values()], key=repr)
    assert rows_of_spark(hudi.read(spark, path), COLS) == expected
    assert rows_of_arrow(hudi_rs(path), COLS) == expected
    # no data file of the rolled-back commit is left
    if doomed:
        assert not [n for _, _, files in os.walk(path) for n in files if doomed[0] in n and n.endswith(".parquet")]


# -- a commit that reached the timeline but not the registry ---------------------------------------
def _orders(spark, rows):
    base = dt.datetime(2024, 5, 1)
    return spark.createDataFrame([(i, c, a, base + dt.timedelta(minutes=n)) for n, (i, c, a) in enumerate(rows)],
                                 "order_id int, customer string, amount double, ts timestamp")


def test_commit_killed_before_the_registry_gets_provenance_statistics_and_report(spark, tmp_path):
    from featurestore import FeatureStore
    from featurestore.config import load_config
    from featurestore.quality import Check, CheckLevel

    warehouse = str(tmp_path / "warehouse")
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": warehouse}), spark=spark)
    fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts",
                                 expectation_suite=Check(CheckLevel.Error, "orders").isNonNegative("amount"))
    first = fg.insert(_orders(spark, [(1, "ann", 1.0), (2, "bob", 2.0), (3, "çé", None)]))

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, str(SCRIPT), warehouse, "registry"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]
    fg = fs.get_feature_group("orders", 1)
    timeline_commits = [c["instant"] for c in hudi.timeline(fg.location) if c["action"] == "commit"]
    assert len(timeline_commits) == 2
    killed = timeline_commits[1]
    registry = fs.registry
    assert [c["commit_id"] for c in registry.list_commits(fg.id)] == [first.commit_id]
    assert registry.get_provenance("commit", fg.id, killed) == []

    third = fg.insert(_orders(spark, [(20, "dee", 4.0)]))  # the next access recovers the killed commit

    assert sorted(c["commit_id"] for c in registry.list_commits(fg.id)) == sorted(
        [first.commit_id, killed, third.commit_id])
    provenance_rows = registry.get_provenance("commit", fg.id)
    assert sorted(r["commit_id"] for r in provenance_rows) == sorted([first.commit_id, killed, third.commit_id])
    recovered = fg.get_provenance(killed)
    assert recovered["kind"] == "recovered" and recovered["commit_id"] == killed
    assert recovered["user"] == fg.get_provenance(first.commit_id)["user"]
    assert fg.get_provenance(third.commit_id)["kind"] != "recovered"
    # statistics of the rows the table kept of the killed batch: ids 10, 11 (the later row, 35.0), 12
    stats = fg.get_statistics(killed)
    assert stats is not None and stats["commit_id"] == killed
    assert stats["rows"] == 3
    amount = stats["columns"]["amount"]
    assert amount["min"] == 10.0 and amount["max"] == 35.0
    assert amount["mean"] == pytest.approx((10.0 + 35.0 + 20.0) / 3)
    # the suite ran again on those rows: accepted, every amount non-negative
    reports = {r.commit_id: r for r in fg.get_validation_history()}
    assert set(reports) == {first.commit_id, killed, third.commit_id}
    assert reports[killed].outcome == "accepted" and reports[killed].status == "Success"
    assert reports[killed].rows == 3
    # nothing is recovered twice
    fg.insert(_orders(spark, [(21, "eve", 5.0)]))
    assert len([r for r in registry.get_provenance("commit", fg.id) if r["commit_id"] == killed]) == 1
    assert len(registry.list_statistics(fg.id, commit_id=killed)) == 1
