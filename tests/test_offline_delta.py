"""Feature groups on Delta Lake (``time_travel_format="DELTA"``) through the public API, with delta-rs
(the ``deltalake`` package, an independent reader of the Delta protocol) as the oracle of every version.

Expected rows are written out by hand from the inputs; nothing is derived from what the code wrote.
"""

from __future__ import annotations

import datetime as dt
import json

import deltalake
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.errors import FeatureGroupError
from featurestore.offline import open_table
from featurestore.quality import Check, CheckLevel, ValidationError

SCHEMA = "uid int, amount double, ts timestamp, name string"


def day(n: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, n, hour)


def v(n: int) -> str:
    """The commit id of Delta version ``n``."""
    return f"{n:020d}"


def rows_of(df) -> dict[int, tuple]:
    return {r["uid"]: (r["amount"], r["ts"], r["name"]) for r in df.collect()}


def delta_rs_rows(path: str, version: int) -> dict[int, tuple]:
    """The table as delta-rs reads it at ``version`` (timestamps as naive UTC, as Spark gives them here)."""
    table = deltalake.DeltaTable(path, version=version).to_pyarrow_table()
    out = {}
    for r in table.to_pylist():
        ts = r["ts"].replace(tzinfo=None) if r["ts"] is not None else None
        out[r["uid"]] = (r["amount"], ts, r["name"])
    return out


@pytest.fixture
def fs(spark, tmp_path):
    store = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}), "deltas", spark=spark)
    yield store
    store.close()


def test_format_choice_default_and_config(spark, tmp_path, fs):
    fg = fs.create_feature_group("plain", primary_key="uid", event_time="ts")
    assert (fg.time_travel_format, fg.engine) == ("HUDI", "native")
    fg = fs.create_feature_group("d", primary_key="uid", event_time="ts", time_travel_format="delta")
    assert (fg.time_travel_format, fg.engine) == ("DELTA", "delta")
    with pytest.raises(FeatureGroupError, match="no offline engine for DELTA with engine 'native'"):
        fs.create_feature_group("bad", primary_key="uid", time_travel_format="DELTA", engine="native")
    cfg = load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh2"), "offline.format": "DELTA"})
    with FeatureStore(cfg, "configured", spark=spark) as other:
        fg = other.create_feature_group("from_conf", primary_key="uid", event_time="ts")
        assert (fg.time_travel_format, fg.engine) == ("DELTA", "delta")
        # the version keeps its format: read back from the registry
        again = other.get_feature_group("from_conf", 1)
        assert (again.time_travel_format, again.engine) == ("DELTA", "delta")


def test_feature_group_life_on_delta(spark, fs):
    suite = Check(CheckLevel.Error, "amounts").isNonNegative("amount")
    fg = fs.create_feature_group("accounts", primary_key="uid", event_time="ts", online_enabled=True,
                                 time_travel_format="DELTA", expectation_suite=suite)
    path = open_table(fs, fg.record).location

    def frame(rows):
        return spark.createDataFrame(rows, SCHEMA)

    # v0: first insert creates the table (null and unicode values)
    r0 = fg.insert(frame([(1, 10.0, day(1), "a"), (2, 20.0, day(1), "ü ß 😀"), (3, 3.0, day(1), None)]))
    assert r0.commit_id == v(0) and (r0.rows_inserted, r0.rows_updated, r0.rows_deleted) == (3, 0, 0)
    state0 = {1: (10.0, day(1), "a"), 2: (20.0, day(1), "ü ß 😀"), 3: (3.0, day(1), None)}
    assert rows_of(fg.read()) == state0
    assert fs.get_feature_vector(fg, {"uid": 2})["name"] == "ü ß 😀"  # written through online

    # v1: duplicates combined by event time, a late event ignored, a new key
    r1 = fg.insert(frame([(1, 11.0, day(2), "a2"), (1, 12.0, day(3), "a3"), (1, 11.5, day(2, 5), "a2.5"),
                          (2, 99.0, dt.datetime(2023, 12, 31), "late"), (4, 4.0, day(2), "new")]))
    assert r1.commit_id == v(1) and (r1.rows_inserted, r1.rows_updated, r1.rows_deleted) == (1, 1, 0)
    state1 = {1: (12.0, day(3), "a3"), 2: (20.0, day(1), "ü ß 😀"), 3: (3.0, day(1), None), 4: (4.0, day(2), "new")}
    assert rows_of(fg.read()) == state1
    assert fs.get_feature_vector(fg, {"uid": 1})["amount"] == 12.0
    assert fs.get_feature_vector(fg, {"uid": 2})["amount"] == 20.0

    # STRICT validation: a failing batch writes nothing, offline or online
    with pytest.raises(ValidationError):
        fg.insert(frame([(5, -1.0, day(3), "negative"), (1, 13.0, day(4), "would update")]))
    assert rows_of(fg.read()) == state1 and list(fg.commit_details()) == [v(1), v(0)]
    assert fs.get_feature_vector(fg, {"uid": 1})["amount"] == 12.0

    # v2: delete (one key present, one absent), offline and online
    r2 = fg.delete_records(spark.createDataFrame([(3,), (77,)], "uid int"))
    assert r2.commit_id == v(2) and r2.rows_deleted == 1
    state2 = {k: row for k, row in state1.items() if k != 3}
    assert rows_of(fg.read()) == state2
    assert fs.get_feature_vector(fg, {"uid": 3})["amount"] is None

    # the materializer: first run is full; then an offline-only overwrite synced incrementally from the CDF
    assert fs.materialize(fg)["mode"] == "full"
    r3 = fg.insert(frame([(1, 1.0, day(4), "over"), (5, 5.0, day(4), "five")]),
                   operation="insert_overwrite_table", storage="offline")
    assert r3.commit_id == v(3)
    state3 = {1: (1.0, day(4), "over"), 5: (5.0, day(4), "five")}
    assert fs.get_feature_vector(fg, {"uid": 2})["amount"] == 20.0  # not online yet
    report = fs.materialize(fg)
    assert report["mode"] == "incremental" and (report["begin"], report["end"]) == (v(2), v(3))
    assert report["rows"] == 2 and report["deleted"] == 2  # uid 2 and 4 left the table
    vectors = fs.get_feature_vectors(fg, [{"uid": u} for u in (1, 2, 4, 5)])
    assert [(x["amount"], x["name"]) for x in vectors] == [(1.0, "over"), (None, None), (None, None), (5.0, "five")]

    # time travel by version (text, int-like, padded) and by time
    states = [state0, state1, state2, state3]
    for number, state in enumerate(states):
        assert rows_of(fg.read(as_of=str(number))) == state, number
        assert rows_of(fg.read(as_of=v(number))) == state, number
    details = fg.commit_details()
    assert list(details) == [v(3), v(2), v(1), v(0)]
    assert [(d["rowsInserted"], d["rowsUpdated"], d["rowsDeleted"]) for d in details.values()] == \
        [(2, 0, 0), (0, 0, 1), (1, 1, 0), (3, 0, 0)]
    assert [d["operation"] for d in details.values()] == ["insert_overwrite_table", "delete", "upsert", "upsert"]
    committed_at = open_table(fs, fg.record).commits()[1].committed_at  # the log's time, to the millisecond
    assert rows_of(fg.read(as_of=committed_at)) == state1

    # changes: the latest state of the keys written in (start, end]
    assert rows_of(fg.read_changes("0", "1")) == {1: state1[1], 4: state1[4]}
    assert rows_of(fg.read_changes("1", "2")) == {}  # a delete writes no rows
    assert rows_of(fg.read_changes("2", "3")) == state3
    assert rows_of(fg.read_changes("0")) == {1: state3[1], 5: state3[5]}  # u4 written in v1, gone by v3
    meta = fg.read_changes("0", "1", include_meta=True).collect()
    assert sorted((r["uid"], r["_delta_commit_version"], r["_delta_record_key"]) for r in meta) == \
        [(1, v(1), "1"), (4, v(1), "4")]
    snapshot_meta = {r["uid"]: r["_delta_commit_version"] for r in fg.read(as_of="1", include_meta=True).collect()}
    assert snapshot_meta == {1: v(1), 2: v(0), 3: v(0), 4: v(1)}

    # the oracle: delta-rs reads the same rows at every version and sees our commits and their metrics
    for number, state in enumerate(states):
        assert delta_rs_rows(path, number) == state, number
    history = sorted(deltalake.DeltaTable(path).history(), key=lambda h: h["version"])
    assert [h["operation"] for h in history] == ["WRITE", "MERGE", "MERGE", "WRITE"]
    ours = [json.loads(h["userMetadata"]) for h in history]
    assert [m["featurestore.operation"] for m in ours] == ["upsert", "upsert", "delete", "insert_overwrite_table"]
    metrics = [h["operationMetrics"] for h in history]
    assert metrics[0]["numOutputRows"] in (3, "3")
    assert (int(metrics[1]["numTargetRowsInserted"]), int(metrics[1]["numTargetRowsUpdated"])) == (1, 1)
    assert int(metrics[2]["numTargetRowsDeleted"]) == 1
    assert int(metrics[3]["numOutputRows"]) == 2

    # a point-in-time training dataset at v3, recording the Delta version it read
    spine = spark.createDataFrame([(1, day(5), 1), (1, day(3), 0), (5, day(4), 1), (2, day(5), 0)],
                                  "uid int, ts timestamp, label int")
    td = fs.create_training_dataset("td", query=fg.select(["amount", "name"]), spine=spine, label="label")
    assert td.commits == {"accounts_1": v(3)}
    got = sorted((r["uid"], r["ts"], r["amount"], r["name"], r["label"]) for r in td.read().collect())
    assert got == [(1, day(3), None, None, 0), (1, day(5), 1.0, "over", 1), (2, day(5), None, None, 0),
                   (5, day(4), 5.0, "five", 1)]

    # VACUUM keeping the newest commit: older versions' files go, the snapshot stays
    table = open_table(fs, fg.record)
    assert table.clean(commits_retained=1) >= 1
    assert rows_of(fg.read()) == state3 and delta_rs_rows(path, 3) == state3
