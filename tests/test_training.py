"""Point-in-time joins on hand-built timelines, checked against a brute-force oracle written here."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.offline import open_table
from featurestore.query import QueryError

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1)


def h(hours: float) -> dt.datetime:
    """A naive UTC timestamp (what Spark hands back in a UTC session)."""
    return T0 + dt.timedelta(hours=hours)


def store(spark, path) -> FeatureStore:
    return FeatureStore(load_config(environ={}, overrides={"warehouse": str(path / "warehouse")}), "default",
                        spark=spark)


def oracle(spine: list[tuple], versions: list[dict], key_of, t_of, value_of, ttl=None, known_of=None) -> list:
    """For each spine row: value of the version with the greatest event time <= t (and within ttl, and
    known at t), among versions of the same key; None if there is none."""
    out = []
    for s in spine:
        t = t_of(s)
        best = None
        for v in versions:
            if t is None or key_of(s) is None or v["key"] != key_of(s) or v["et"] is None or v["et"] > t:
                continue
            if ttl is not None and v["et"] < t - ttl:
                continue
            if known_of is not None and known_of(v) > t:
                continue
            if best is None or (v["et"], v.get("ct", "")) > (best["et"], best.get("ct", "")):
                best = v
        out.append(None if best is None else value_of(best))
    return out


SPINE_SCHEMA = "user string, item string, t timestamp, label int"
SPINE = [
    ("u1", "a", h(2), 1),    # tie with a@2 (a feature row at exactly the spine time counts)
    ("u1", "a", h(2), 1),    # duplicate spine row: kept twice
    ("u1", "a", h(1.5), 0),  # between a@1 (late event, second commit) and a@2
    ("u1", "a", h(-1), 0),   # before any feature row
    ("u2", "b", h(3.5), 1),  # b@3 has a null price: the latest row wins, null and all
    ("u2", "b", h(2.9), 0),
    ("u3", "c", h(10), 1),   # unknown item, known user
    ("u9", None, h(4), 0),   # null key
    ("u1", "a", None, 1),    # null time
    ("u2", "a", h(100), 0),  # long after: matches a@2 unless the TTL expired it
]


@pytest.fixture(scope="module")
def pit_env(spark, tmp_path_factory):
    fs = store(spark, tmp_path_factory.mktemp("pit"))
    prices = fs.create_feature_group("prices", primary_key=["item", "ts"], event_time="ts")
    first = [("a", h(0), 1.0, "ä"), ("a", h(2), 2.0, "x"), ("b", h(1), 10.0, None), ("b", h(3), None, "z")]
    prices.insert(spark.createDataFrame(first, "item string, ts timestamp, price double, tag string"))
    late = [("a", h(1), 1.5, "late")]  # an event older than what is stored, arriving later
    prices.insert(spark.createDataFrame(late, "item string, ts timestamp, price double, tag string"))
    users = fs.create_feature_group("users", primary_key=["user"], event_time="ts")
    users.insert(spark.createDataFrame([("u1", h(0), 1), ("u2", h(0), 5), ("u3", h(9), 7)],
                                       "user string, ts timestamp, level int"))
    # an upsert of u1: the entity-keyed group now holds only this row (its history is gone)
    users.insert(spark.createDataFrame([("u1", h(1.75), 2)], "user string, ts timestamp, level int"))
    # a second group keyed by item: joined in the same pass as prices
    stock = fs.create_feature_group("stock", primary_key=["item", "ts"], event_time="ts")
    stock_rows = [("a", h(1.5), 7), ("a", h(2.5), None), ("b", h(0), 3), ("c", h(11), 1)]
    stock.insert(spark.createDataFrame(stock_rows, "item string, ts timestamp, qty int"))
    stock_versions = [{"key": k, "et": et, "qty": n} for k, et, n in stock_rows]
    price_versions = [{"key": k, "et": et, "price": p, "tag": g} for k, et, p, g in first + late]
    user_versions = [{"key": "u1", "et": h(1.75), "level": 2}, {"key": "u2", "et": h(0), "level": 5},
                     {"key": "u3", "et": h(9), "level": 7}]
    return fs, prices, users, price_versions, user_versions, stock, stock_versions


def result_rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.mark.parametrize("ttl", [None, dt.timedelta(hours=1)])
def test_point_in_time_join_matches_oracle(spark, pit_env, ttl):
    fs, prices, users, price_versions, user_versions, stock, stock_versions = pit_env
    spine = spark.createDataFrame(SPINE, SPINE_SCHEMA)
    # feature groups with different keys, each joined to the spine on its own key
    df = fs.get_training_data(spine, [prices.select(["price", "tag"]), users.select(["level"]),
                                      stock.select(["qty"])], spine_event_time="t", ttl=ttl)
    assert df.columns == ["user", "item", "t", "label", "price", "tag", "qty", "level"]
    ttl_h = ttl
    prices_o = oracle(SPINE, price_versions, lambda s: s[1], lambda s: s[2], lambda v: (v["price"], v["tag"]), ttl_h)
    users_o = oracle(SPINE, user_versions, lambda s: s[0], lambda s: s[2], lambda v: v["level"], ttl_h)
    stock_o = oracle(SPINE, stock_versions, lambda s: s[1], lambda s: s[2], lambda v: v["qty"], ttl_h)
    expected = sorted((s + (p or (None, None)) + (q, u)
                       for s, p, u, q in zip(SPINE, prices_o, users_o, stock_o, strict=True)), key=repr)
    assert result_rows(df) == expected
    # spot checks of the oracle itself, so a wrong oracle cannot hide a wrong join
    if ttl is None:
        assert prices_o[:6] == [(2.0, "x"), (2.0, "x"), (1.5, "late"), None, (None, "z"), (10.0, None)]
        assert prices_o[9] == (2.0, "x")
        assert users_o[2] is None  # u1's only row (ts 1.75) is after 1.5
        assert stock_o[:4] == [7, 7, 7, None] and stock_o[9] is None  # a@2.5 has a null qty
    else:
        assert prices_o[9] is None and prices_o[4] == (None, "z") and prices_o[5] is None


def test_feature_names_and_errors(spark, pit_env):
    fs, prices, users, *_ = pit_env
    spine = spark.createDataFrame(SPINE, SPINE_SCHEMA)
    by_name = fs.get_training_data(spine, ["price", "level"], spine_event_time="t")
    assert by_name.columns == ["user", "item", "t", "label", "price", "level"]
    assert by_name.count() == len(SPINE)
    # the key and event time of a feature group are not repeated when the spine has them
    renamed = spine.withColumnRenamed("t", "ts")
    assert fs.get_training_data(renamed, prices.select_all()).columns == [
        "user", "item", "ts", "label", "price", "tag"]
    with pytest.raises(QueryError, match="the spine has no column 'item'"):
        fs.get_training_data(spine.drop("item"), prices.select(["price"]), spine_event_time="t")
    with pytest.raises(QueryError, match="spine event time column 'ts' is not in the spine"):
        fs.get_training_data(spine, prices.select(["price"]))
    with pytest.raises(QueryError, match="spine event time 't' must be a timestamp, date or integer column"):
        fs.get_training_data(spine.withColumn("t", spine.t.cast("string")), ["price"], spine_event_time="t")
    labels = fs.get_or_create_feature_group("labels", primary_key=["user"], event_time="ts")
    if not labels.features:
        labels.insert(spark.createDataFrame([("u1", h(0), 1)], "user string, ts timestamp, label int"))
    with pytest.raises(QueryError, match=r"feature\(s\) 'label' of feature group\(s\) labels_1 clash"):
        fs.get_training_data(spine, [labels.select(["label"])], spine_event_time="t")
    with pytest.raises(QueryError, match="ttl must be a datetime.timedelta"):
        fs.get_training_data(spine, ["price"], spine_event_time="t", ttl=3600)
    empty = fs.get_training_data(spine.limit(0), ["price", "level"], spine_event_time="t")
    assert empty.count() == 0 and empty.columns[-2:] == ["price", "level"]


def committed(fs, fg, commit_id: str) -> dt.datetime:
    """The UTC time (naive) of a commit: a Hudi instant read as a time, a Delta version's log time."""
    return open_table(fs, fg.record).commit_time(commit_id)


@pytest.mark.parametrize("fmt", ["HUDI", "DELTA"])
def test_as_known_at_spine_time_hides_backfills(spark, tmp_path, fmt):
    fs = store(spark, tmp_path)
    events = fs.create_feature_group("events", primary_key=["user", "ts"], event_time="ts", time_travel_format=fmt)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts", time_travel_format=fmt)
    schema = "user string, ts timestamp, amount double"
    # event times a day before the (real) commit times
    c1 = events.insert(spark.createDataFrame([("u1", h(0), 1.0), ("u2", h(0), 2.0)], schema)).commit_id
    p1 = profile.insert(spark.createDataFrame([("u1", h(0), 10.0)], schema)).commit_id
    known_at = max(committed(fs, events, c1), committed(fs, profile, p1))
    time.sleep(0.05)  # the next commits are strictly later than known_at
    # backfill: an event dated before known_at, committed after it; and a corrected profile value
    c2 = events.insert(spark.createDataFrame([("u1", h(1), 100.0)], schema)).commit_id
    profile.insert(spark.createDataFrame([("u1", h(1), 20.0)], schema))
    assert committed(fs, events, c2) > known_at
    # events are dated 2024 but committed now: place the spine at the commit time of the first batch
    spine_rows = [("u1", known_at, 1), ("u2", known_at, 0), ("u1", h(0.5), 1)]
    spine = spark.createDataFrame(spine_rows, "user string, ts timestamp, label int")
    with pytest.raises(QueryError, match=r"feature\(s\) 'amount' of feature group\(s\) events_1, profile_1 clash"):
        fs.get_training_data(spine, [events.select(["amount"]), profile.select(["amount"])])
    leak = fs.get_training_data(spine, [events.select(["amount"])])
    safe = fs.get_training_data(spine, [events.select(["amount"])], as_known_at_spine_time=True)
    # without the flag the backfilled event (h(1), 100.0) is used at known_at; with it, not yet known
    # (the spine row at h(0.5): the event at h(0) is true then, but was only committed in 2026)
    assert result_rows(leak) == sorted([("u1", known_at, 1, 100.0), ("u2", known_at, 0, 2.0),
                                        ("u1", h(0.5), 1, 1.0)], key=repr)
    assert result_rows(safe) == sorted([("u1", known_at, 1, 1.0), ("u2", known_at, 0, 2.0),
                                        ("u1", h(0.5), 1, None)], key=repr)
    # the entity-keyed group: the overwritten value (10.0) is only in the older file version; the history
    # read finds it, the snapshot read cannot (its only row, ts h(1), value 20.0, wins in event time)
    prof_leak = fs.get_training_data(spine, [profile.select(["amount"])])
    prof_safe = fs.get_training_data(spine, [profile.select(["amount"])], as_known_at_spine_time=True)
    assert result_rows(prof_leak) == sorted([("u1", known_at, 1, 20.0), ("u2", known_at, 0, None),
                                             ("u1", h(0.5), 1, None)], key=repr)
    assert result_rows(prof_safe) == sorted([("u1", known_at, 1, 10.0), ("u2", known_at, 0, None),
                                             ("u1", h(0.5), 1, None)], key=repr)
    # far in the future everything is known: both agree and take the newest event
    later = spark.createDataFrame([("u1", dt.datetime(2100, 1, 1), 1)], "user string, ts timestamp, label int")
    assert [r.amount for r in fs.get_training_data(later, ["events.amount"], as_known_at_spine_time=True)
            .collect()] == [100.0]


@pytest.mark.parametrize("fmt", ["HUDI", "DELTA"])
def test_as_known_at_spine_time_replays_deletes(spark, tmp_path, fmt):
    fs = store(spark, tmp_path)
    events = fs.create_feature_group("events", primary_key=["user", "ts"], event_time="ts",  # time series
                                     time_travel_format=fmt)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts",      # entity-keyed
                                      time_travel_format=fmt)
    ev_schema, pr_schema = "user string, ts timestamp, amount double", "user string, ts timestamp, level int"
    c1 = events.insert(spark.createDataFrame([("u1", h(0), 1.0), ("u1", h(1), 2.0), ("u2", h(0), 5.0)],
                                             ev_schema)).commit_id
    p1 = profile.insert(spark.createDataFrame([("u1", h(0), 10), ("u2", h(0), 20)], pr_schema)).commit_id
    # one event of u1 is deleted (its earlier event takes over), then u2's only event; u2 comes back later
    c2 = events.delete_records(spark.createDataFrame([("u1", h(1))], "user string, ts timestamp")).commit_id
    p2 = profile.delete_records(spark.createDataFrame([("u1",)], "user string")).commit_id
    c3 = events.delete_records(spark.createDataFrame([("u2", h(0))], "user string, ts timestamp")).commit_id
    c4 = events.insert(spark.createDataFrame([("u2", h(2), 7.0)], ev_schema)).commit_id
    at = {name: committed(fs, events if name.startswith("c") else profile, c)
          for name, c in {"c1": c1, "p1": p1, "c2": c2, "p2": p2, "c3": c3, "c4": c4}.items()}
    assert sorted(at.values()) == [at[n] for n in ("c1", "p1", "c2", "p2", "c3", "c4")]
    # spine rows exactly at the commit times: a delete at the spine time already counts
    times = ["p1", "c2", "p2", "c3", "c4"]
    spine = spark.createDataFrame([(u, at[n], n) for n in times for u in ("u1", "u2")] + [("u1", h(5), "old")],
                                  "user string, ts timestamp, label string")
    safe = fs.get_training_data(spine, [events.select(["amount"]), profile.select(["level"])],
                                as_known_at_spine_time=True)
    expected = {
        ("u1", "p1"): (2.0, 10), ("u2", "p1"): (5.0, 20),
        ("u1", "c2"): (1.0, 10), ("u2", "c2"): (5.0, 20),    # u1's h(1) event deleted
        ("u1", "p2"): (1.0, None), ("u2", "p2"): (5.0, 20),  # u1's profile deleted
        ("u1", "c3"): (1.0, None), ("u2", "c3"): (None, 20),  # u2's only event deleted
        ("u1", "c4"): (1.0, None), ("u2", "c4"): (7.0, 20),   # a new event of u2
        ("u1", "old"): (None, None),                          # known then: nothing (commits are in 2026)
    }
    assert sorted(((r.user, r.label), (r.amount, r.level)) for r in safe.collect()) == sorted(expected.items())
    # the snapshot join sees only what is left now, at every spine time
    now = {r.user: (r.amount, r.level) for r in fs.get_training_data(
        spine, [events.select(["amount"]), profile.select(["level"])]).where("label = 'c4'").collect()}
    assert now == {"u1": (1.0, None), "u2": (7.0, 20)}
