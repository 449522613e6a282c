"""Structured Streaming into feature groups: one validated commit per micro-batch, exactly once
across a SIGKILL and a restart from the checkpoint, STRICT stops the query, ALWAYS goes on."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featurestore import Check, CheckLevel, FeatureStore, hudi
from featurestore.config import load_config
from featurestore.offline import open_table
from featurestore.streaming import BATCH_ID_KEY, STREAM_ID_KEY, micro_batch_writer

SCHEMA = "user_id int, clicks long, ts timestamp"
WORKER = Path(__file__).resolve().parent / "stream_worker.py"
BASE = dt.datetime(2024, 6, 1, 12, 0, 0)


def _store(spark, warehouse: Path) -> FeatureStore:
    return FeatureStore(load_config(environ={}, overrides={"warehouse": str(warehouse)}), spark=spark)


def _write_batch(folder: Path, index: int, rows: list[tuple[int, int, int]]) -> None:
    """One JSON-lines file per micro-batch (maxFilesPerTrigger=1); rows are (user, clicks, minute)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{index:03d}.tmp"
    tmp.write_text("".join(json.dumps({"user_id": u, "clicks": c,
                                       "ts": (BASE + dt.timedelta(minutes=m)).isoformat()}) + "\n"
                           for u, c, m in rows), encoding="utf-8")
    target = folder / f"batch-{index:03d}.json"
    tmp.rename(target)  # atomic: the source never sees a half file
    stamp = time.time() - 1000 + index  # the file source orders files by modification time
    os.utime(target, (stamp, stamp))


def _stream_commits(location: str, with_stream: bool = False) -> list:
    if not (Path(location) / ".hoodie" / "hoodie.properties").exists():
        return []
    return [(e["extra_metadata"][STREAM_ID_KEY], int(e["extra_metadata"][BATCH_ID_KEY])) if with_stream
            else int(e["extra_metadata"][BATCH_ID_KEY]) for e in hudi.timeline(location)
            if BATCH_ID_KEY in (e.get("extra_metadata") or {})]


def _latest(rows: list[tuple[int, int, int]]) -> dict[int, int]:
    """Expected snapshot, computed independently: the row with the newest event per user."""
    best: dict[int, tuple[int, int]] = {}
    for u, c, m in rows:
        if u not in best or m >= best[u][1]:
            best[u] = (c, m)
    return {u: c for u, (c, _) in best.items()}


def test_file_source_one_commit_per_batch_and_replay_is_skipped(spark, tmp_path):
    fs = _store(spark, tmp_path / "wh")
    suite = Check(CheckLevel.Error, "clicks").isNonNegative("clicks")
    fg = fs.create_feature_group("clicks_stream", primary_key="user_id", event_time="ts", expectation_suite=suite)
    batches = [[(1, 5, 0), (2, 7, 0)], [(1, 6, 3), (3, 1, 1)], [(2, 2, -10), (4, 9, 2)]]  # user 2: a late event
    for i, rows in enumerate(batches):
        _write_batch(tmp_path / "in", i, rows)
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(tmp_path / "in"))
    checkpoint = str(tmp_path / "cp")
    query = fg.insert_stream(source, checkpoint, trigger={"availableNow": True})
    query.awaitTermination(300)
    assert query.exception() is None
    assert _stream_commits(fg.location) == [0, 1, 2]
    got = {r.user_id: r.clicks for r in fg.read().collect()}
    assert got == _latest([r for b in batches for r in b])
    assert len(fg.get_validation_history()) == 3 and fg.get_statistics()["rows"] == 2
    # Spark replaying an already committed micro-batch (a crash before its checkpoint commit) is a no-op
    before = hudi.timeline(fg.location)
    replay = spark.createDataFrame([(1, 999, BASE)], SCHEMA)
    micro_batch_writer(fs, fg.record, str(query.id), "upsert", None)(replay, 2)
    assert hudi.timeline(fg.location) == before
    # the stream is Spark's query id, the one Spark keeps in <checkpoint>/metadata
    kept = json.loads((Path(checkpoint) / "metadata").read_text(encoding="utf-8").splitlines()[0])["id"]
    assert kept == str(query.id) == before[-1]["extra_metadata"][STREAM_ID_KEY]
    with pytest.raises(Exception, match="streaming DataFrame"):
        fg.insert_stream(spark.createDataFrame([(1, 1, BASE)], SCHEMA), checkpoint)


def _table_stream_commits(fs, fg) -> list[int]:
    """Batch ids of the stream commits of any offline format, oldest first."""
    return [int(c.metadata[BATCH_ID_KEY]) for c in open_table(fs, fg.record).commits() if BATCH_ID_KEY in c.metadata]


def _delta_transactions(location: str) -> list[tuple[str, int]]:
    """(appId, version) of every txn action in a Delta log, in log order."""
    found = []
    for entry in sorted((Path(location) / "_delta_log").glob("*.json")):
        for line in entry.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "txn" in action:
                found.append((action["txn"]["appId"], int(action["txn"]["version"])))
    return found


@pytest.mark.parametrize("fmt", ["HUDI", "DELTA"])
def test_killed_stream_restarts_from_checkpoint_exactly_once(spark, tmp_path, fmt):
    warehouse = tmp_path / "wh"
    fs = _store(spark, warehouse)
    fg = fs.create_feature_group("clicks_stream", primary_key="user_id", event_time="ts", time_travel_format=fmt)
    batches = [[(1, 1, 0), (2, 1, 0)], [(1, 2, 1), (3, 1, 1)], [(2, 3, 2), (4, 1, 2)], [(1, 4, 3)]]
    for i, rows in enumerate(batches):
        _write_batch(tmp_path / "in", i, rows)
    cmd = [sys.executable, str(WORKER), str(warehouse), str(tmp_path / "in"), str(tmp_path / "cp")]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    killed = subprocess.run(cmd + ["--kill-after-commit-of-batch", "1"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert _table_stream_commits(fs, fg) == [0, 1]  # batch 1 is committed, Spark's checkpoint does not know
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert _table_stream_commits(fs, fg) == [0, 1, 2, 3]  # batch 1 replayed by Spark, not committed again
    got = {r.user_id: r.clicks for r in fg.read().collect()}
    assert got == _latest([r for b in batches for r in b])
    if fmt == "HUDI":
        assert _stream_commits(fg.location) == [0, 1, 2, 3]
        return
    # Delta: every micro-batch is the Delta transaction (stream id, batch id), so the table itself refuses a
    # batch again even past our batch-id check (a writer that read the commits before the batch landed)
    sid = str(json.loads((tmp_path / "cp" / "metadata").read_text(encoding="utf-8").splitlines()[0])["id"])
    assert _delta_transactions(fg.location) == [(sid, n) for n in range(4)]
    table = open_table(fs, fg.record)
    versions = [c.commit_id for c in table.commits()]
    again = table.write(spark.createDataFrame([(1, 999, BASE + dt.timedelta(days=1))], SCHEMA), "upsert",
                        {STREAM_ID_KEY: sid, BATCH_ID_KEY: "2"})
    assert again.commit_id is None and [c.commit_id for c in table.commits()] == versions
    assert {r.user_id: r.clicks for r in fg.read().collect()} == got


def test_strict_stops_the_query_and_always_goes_on(spark, tmp_path):
    fs = _store(spark, tmp_path / "wh")
    suite = Check(CheckLevel.Error, "clicks").isNonNegative("clicks", hint="clicks are counts")
    strict = fs.create_feature_group("strict_stream", primary_key="user_id", event_time="ts", expectation_suite=suite)
    lenient = fs.create_feature_group("lenient_stream", primary_key="user_id", event_time="ts",
                                      expectation_suite=suite, validation_policy="ALWAYS")
    batches = [[(1, 1, 0)], [(2, -5, 1)], [(3, 1, 2)]]
    for i, rows in enumerate(batches):
        _write_batch(tmp_path / "in", i, rows)
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(tmp_path / "in"))
    q = strict.insert_stream(source, str(tmp_path / "cp-strict"), trigger={"availableNow": True})
    with pytest.raises(Exception, match="validation rejected"):
        q.awaitTermination(300)
    assert "clicks are counts" in str(q.exception())
    assert _stream_commits(strict.location) == [0]
    assert [h.outcome for h in strict.get_validation_history()] == ["rejected", "accepted"]
    q = lenient.insert_stream(source, str(tmp_path / "cp-lenient"), trigger={"availableNow": True})
    q.awaitTermination(300)
    assert q.exception() is None and _stream_commits(lenient.location) == [0, 1, 2]
    assert sorted(r.user_id for r in lenient.read().collect()) == [1, 2, 3]


def test_rate_source(spark, tmp_path):
    fs = _store(spark, tmp_path / "wh")
    fg = fs.create_feature_group("rate_stream", primary_key="user_id", event_time="ts")
    source = (spark.readStream.format("rate").option("rowsPerSecond", 20).load()
              .selectExpr("CAST(value % 50 AS INT) AS user_id", "value AS clicks", "timestamp AS ts"))
    q = fg.insert_stream(source, str(tmp_path / "cp"), trigger={"processingTime": "2 seconds"})
    try:
        deadline = time.time() + 180
        while len(_stream_commits(fg.location)) < 2 and time.time() < deadline:
            time.sleep(1)
    finally:
        q.stop()
    batches = _stream_commits(fg.location)
    assert len(batches) >= 2 and batches == sorted(set(batches))
    rows = fg.read().collect()
    assert len(rows) == len({r.user_id for r in rows}) > 0
    # every user's row is its newest event: clicks grow with time in the rate source
    assert all(r.clicks % 50 == r.user_id for r in rows)


def test_checkpoint_spelled_three_ways_is_one_stream(spark, tmp_path):
    """Killed after committing a batch, restarted with the same checkpoint as a path, a file:// URI and
    through a symlink: one stream, no batch committed twice, every row as expected."""
    warehouse = tmp_path / "wh"
    fs = _store(spark, warehouse)
    fg = fs.create_feature_group("clicks_stream", primary_key="user_id", event_time="ts")
    batches = [[(1, 1, 0), (2, 1, 0)], [(1, 2, 1), (3, 1, 1)], [(2, 3, 2), (4, 1, 2)], [(1, 4, 3), (5, 5, 3)]]
    for i, rows in enumerate(batches):
        _write_batch(tmp_path / "in", i, rows)
    checkpoint = tmp_path / "cp"
    (tmp_path / "link").symlink_to(checkpoint)  # dangling until the first run creates the checkpoint
    spellings = [str(checkpoint), checkpoint.as_uri(), str(tmp_path / "link")]
    assert spellings[1].startswith("file:///")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    for spelling, kill_after in zip(spellings, (0, 1, None), strict=True):
        cmd = [sys.executable, str(WORKER), str(warehouse), str(tmp_path / "in"), spelling]
        if kill_after is not None:
            cmd += ["--kill-after-commit-of-batch", str(kill_after)]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        expected_rc = -signal.SIGKILL if kill_after is not None else 0
        assert run.returncode == expected_rc, (spelling, run.stdout[-2000:] + run.stderr[-3000:])
    commits = _stream_commits(fg.location, with_stream=True)
    assert [batch for _, batch in commits] == [0, 1, 2, 3]  # batches 0 and 1 replayed by Spark, skipped
    assert len({sid for sid, _ in commits}) == 1
    got = {r.user_id: r.clicks for r in fg.read().collect()}
    assert got == _latest([r for b in batches for r in b]) == {1: 4, 2: 3, 3: 1, 4: 1, 5: 5}


def test_reset_checkpoint_is_a_new_stream_and_writes_new_data(spark, tmp_path):
    """A checkpoint deleted and started again at the same path is a new query: its batches, whose ids
    start again at 0, are written, not skipped as already committed."""
    fs = _store(spark, tmp_path / "wh")
    fg = fs.create_feature_group("clicks_stream", primary_key="user_id", event_time="ts")
    checkpoint = str(tmp_path / "cp")
    old = [[(u, 1, 0) for u in range(0, 100)], [(u, 1, 1) for u in range(100, 200)]]
    for i, rows in enumerate(old):
        _write_batch(tmp_path / "in-old", i, rows)
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(tmp_path / "in-old"))
    first = fg.insert_stream(source, checkpoint, trigger={"availableNow": True})
    first.awaitTermination(300)
    assert first.exception() is None
    shutil.rmtree(checkpoint)
    new = [[(u, 2, 5) for u in range(k * 100 + 1000, k * 100 + 1100)] for k in range(3)]  # 300 new keys
    for i, rows in enumerate(new):
        _write_batch(tmp_path / "in-new", i, rows)
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(tmp_path / "in-new"))
    second = fg.insert_stream(source, checkpoint, trigger={"availableNow": True})
    second.awaitTermination(300)
    assert second.exception() is None and str(second.id) != str(first.id)
    commits = _stream_commits(fg.location, with_stream=True)
    assert commits == [(str(first.id), 0), (str(first.id), 1), (str(second.id), 0), (str(second.id), 1),
                       (str(second.id), 2)]
    got = {r.user_id: r.clicks for r in fg.read().collect()}
    expected = {u: 1 for u in range(200)} | {u: 2 for u in range(1000, 1300)}
    assert got == expected and len(got) == 500
