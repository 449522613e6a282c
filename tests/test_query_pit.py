"""Point-in-time correct queries: ``Query.join`` of event-timed feature groups, on hand-computed timelines.

Every expected row below was worked out by hand from the timelines written next to it: for each left row,
the right row of the same key with the newest event time at or before the left row's, nulls where none.
"""

from __future__ import annotations

import datetime as dt

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.query import Query, QueryError

T0 = dt.datetime(2024, 3, 1)


def h(hours: float) -> dt.datetime:
    """A naive UTC timestamp ``hours`` after T0 (what Spark hands back in a UTC session)."""
    return T0 + dt.timedelta(hours=hours)


def rows(df, cols=None) -> list[tuple]:
    cols = cols or df.columns
    return sorted((tuple(r[c] for c in cols) for r in df.collect()), key=repr)


TRANS = "tid int, cc_num string, merchant string, ts timestamp, amount double"
AGGS = "cc_num string, ts timestamp, avg_amount double"


@pytest.fixture(scope="module")
def env(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("query_pit")
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(base / "warehouse")}), "default",
                      spark=spark)
    # the issue's reproduction: four transactions, four aggregate rows (time series keyed by card and time)
    # keyed by transaction and card: the join below finds the card as the shared key, as hsfs's tutorial does
    trans = fs.create_feature_group("trans", primary_key=["tid", "cc_num"], event_time="ts")
    trans.insert(spark.createDataFrame([
        (1, "c1", "m1", h(1), 10.0),   # c1 aggregates: h0 (1.0), h4 (4.0) -> h0
        (2, "c1", "m2", h(5), 20.0),   # -> h4
        (3, "c2", "m1", h(3), 30.0),   # c2 aggregates: h1 (2.0), h4 (8.0) -> h1
        (4, "c9", "m9", h(2), 40.0),   # no aggregate of c9: nulls, the row stays
    ], TRANS))
    aggs = fs.create_feature_group("aggs", primary_key=["cc_num", "ts"], event_time="ts")
    first = aggs.insert(spark.createDataFrame([("c1", h(0), 1.0), ("c1", h(4), 4.0), ("c2", h(1), 2.0),
                                               ("c2", h(4), 8.0)], AGGS)).commit_id
    merchants = fs.create_feature_group("merchants", primary_key=["merchant_id"], event_time="ts")
    merchants.insert(spark.createDataFrame([("m1", h(2), "food"), ("m2", h(0), "toys"), ("m3", h(0), "cars")],
                                           "merchant_id string, ts timestamp, category string"))
    return fs, trans, aggs, merchants, first


def test_issue_reproduction_four_transactions_four_rows(env):
    fs, trans, aggs, _, _ = env
    query = trans.select(["tid", "cc_num", "ts", "amount"]).join(aggs.select_except(["cc_num", "ts"]))
    assert query.joins[0].point_in_time and query.joins[0].join_type == "left"
    assert query.joins[0].left_on == ("cc_num",)  # the event times are compared, not equated
    expected = [(1, "c1", h(1), 10.0, 1.0), (2, "c1", h(5), 20.0, 4.0), (3, "c2", h(3), 30.0, 2.0),
                (4, "c9", h(2), 40.0, None)]
    assert rows(query.read()) == expected
    # the hour-1 transaction does not see the hour-4 aggregate
    assert [r.avg_amount for r in query.read().where("tid = 1").collect()] == [1.0]
    # the plain equi-join, asked for explicitly: every pair (six rows), future values and all
    equi = trans.select(["tid", "cc_num", "ts", "amount"]).join(
        aggs.select_except(["cc_num", "ts"]), on="cc_num", join_type="inner", point_in_time=False)
    assert not equi.joins[0].point_in_time
    assert rows(equi.read(), ["tid", "avg_amount"]) == [(1, 1.0), (1, 4.0), (2, 1.0), (2, 4.0), (3, 2.0),
                                                        (3, 8.0)]
    # a feature view's batch data, training data and materialized training data are point-in-time too
    fv = fs.create_feature_view("fraud", query=query, labels=["amount"])
    assert rows(fv.get_batch_data()) == expected
    assert rows(fv.get_training_data()) == expected
    td = fv.create_training_dataset(description="pit")
    assert rows(td.read()) == expected and td.row_counts == {"all": 4}
    # saved and rebuilt from the registry: still point-in-time
    assert fs.get_feature_view("fraud").query.joins[0].point_in_time
    assert rows(fs.get_feature_view("fraud").get_batch_data()) == expected


def test_inner_join_drops_unmatched_left_rows_once(env):
    _, trans, aggs, _, _ = env
    inner = trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num", join_type="inner")
    assert rows(inner.read()) == [(1, 1.0), (2, 4.0), (3, 2.0)]
    # a left row before the key's first right row has no match either
    early = trans.select(["tid"]).filter("tid = 3").join(aggs.select(["avg_amount"]).filter("ts > '2024-03-01 02:00'"),
                                                         on="cc_num", join_type="inner")
    assert rows(early.read()) == []


def test_ties_late_events_and_ttl(spark, tmp_path):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse")}), "default",
                      spark=spark)
    left = fs.create_feature_group("orders", primary_key=["oid"], event_time="ts")
    left.insert(spark.createDataFrame([
        (1, "u1", h(2)),    # tie: the right row at exactly h2 counts
        (2, "u1", h(2)),    # two left rows of the same key and time: the same right row, each once
        (3, "u1", h(1.5)),  # between h1 (late event, second commit) and h2
        (4, "u1", h(-1)),   # before any right row: nulls
        (5, "u2", h(10)),   # the newest right row of u2 has a null value: taken, null and all
        (6, "u1", h(100)),  # long after: the newest row (h3), unless the ttl expired it
    ], "oid int, user string, ts timestamp"))
    right = fs.create_feature_group("scores", primary_key=["user", "ts"], event_time="ts")
    right.insert(spark.createDataFrame([("u1", h(0), 1.0), ("u1", h(2), 2.0), ("u1", h(3), 3.0), ("u2", h(1), 5.0),
                                        ("u2", h(9), None)], "user string, ts timestamp, score double"))
    right.insert(spark.createDataFrame([("u1", h(1), 1.5)], "user string, ts timestamp, score double"))  # late event
    query = left.select(["oid"]).join(right.select(["score"]), on="user")
    assert rows(query.read()) == [(1, 2.0), (2, 2.0), (3, 1.5), (4, None), (5, None), (6, 3.0)]
    # ttl: a right row older than the left time minus the ttl does not match
    assert rows(query.read(ttl=dt.timedelta(hours=2))) == [(1, 2.0), (2, 2.0), (3, 1.5), (4, None), (5, None),
                                                          (6, None)]
    assert rows(query.read(ttl=dt.timedelta(0))) == [(1, 2.0), (2, 2.0), (3, None), (4, None), (5, None), (6, None)]
    with pytest.raises(QueryError, match="ttl must be a datetime.timedelta"):
        query.read(ttl=3600)
    # the ttl reaches feature views' batch data and training datasets
    fv = fs.create_feature_view("scored", query=query)
    assert rows(fv.get_batch_data(ttl=dt.timedelta(hours=2))) == rows(query.read(ttl=dt.timedelta(hours=2)))
    td = fv.create_training_dataset(ttl=dt.timedelta(hours=2))
    assert rows(td.read()) == rows(query.read(ttl=dt.timedelta(hours=2)))
    # the matched right event time, selected with a prefix, is never after the left row's
    timed = left.select(["oid", "ts"]).join(right.select(["ts", "score"]), on="user", prefix="s_")
    assert timed.features == ["oid", "ts", "s_ts", "s_score"]
    assert rows(timed.read(), ["oid", "s_ts"]) == [(1, h(2)), (2, h(2)), (3, h(1)), (4, None), (5, h(9)),
                                                   (6, h(3))]


def test_null_keys_null_times_and_keys_on_one_side(spark, tmp_path):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse")}), "default",
                      spark=spark)
    left = fs.create_feature_group("visits", primary_key=["vid"], event_time="ts")
    left.insert(spark.createDataFrame([
        (1, "a", h(5)),    # a's right rows: h1 (10), h6 (60) -> 10
        (2, None, h(5)),   # null key: matches nothing, not even the right row with a null key
        (3, "a", None),    # null time: matches nothing
        (4, "b", h(5)),    # b's only right row has a null time: never matches
        (5, "z", h(5)),    # no right row with key z
    ], "vid int, card string, ts timestamp"))
    right = fs.create_feature_group("cards", primary_key=["rid"], event_time="ts")
    right.insert(spark.createDataFrame([
        (10, "a", h(1), 10), (11, "a", h(6), 60), (12, None, h(0), 99), (13, "b", None, 7),
        (14, "only_right", h(0), 5),  # a key only on the right: adds no row
    ], "rid int, card string, ts timestamp, limit_ int"))
    query = left.select(["vid"]).join(right.select(["limit_"]), on="card")
    assert rows(query.read()) == [(1, 10), (2, None), (3, None), (4, None), (5, None)]
    inner = left.select(["vid"]).join(right.select(["limit_"]), on="card", join_type="inner")
    assert rows(inner.read()) == [(1, 10)]
    # the same through to_string() and Spark SQL
    assert rows(fs.sql(query.to_string())) == rows(query.read())
    assert rows(fs.sql(inner.to_string())) == rows(inner.read())


def test_three_feature_groups_with_different_keys(env):
    _, trans, aggs, merchants, _ = env
    query = (trans.select(["tid", "cc_num", "merchant"])
             .join(aggs.select(["avg_amount"]), on="cc_num")
             .join(merchants.select(["category"]), left_on="merchant", right_on="merchant_id"))
    assert query.features == ["tid", "cc_num", "merchant", "avg_amount", "category"]
    # merchants: m1 food from h2, m2 toys from h0, m3 only on the right, m9 unknown
    expected = [(1, "c1", "m1", 1.0, None),     # t1 at h1: m1 known only from h2
                (2, "c1", "m2", 4.0, "toys"),
                (3, "c2", "m1", 2.0, "food"),   # t3 at h3
                (4, "c9", "m9", None, None)]
    assert rows(query.read()) == expected
    assert rows(query.context.sql(query.to_string())) == expected


def test_nested_joins_are_point_in_time_on_each_left_side(spark, tmp_path):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse")}), "default",
                      spark=spark)
    events = fs.create_feature_group("events", primary_key=["eid"], event_time="ts")
    events.insert(spark.createDataFrame([(1, "u1", h(10)), (2, "u1", h(3)), (3, "u2", h(10))],
                                        "eid int, user string, ts timestamp"))
    profiles = fs.create_feature_group("profiles", primary_key=["user", "ts"], event_time="ts")
    profiles.insert(spark.createDataFrame([("u1", h(2), "fr"), ("u1", h(8), "de"), ("u2", h(1), "it")],
                                          "user string, ts timestamp, country string"))
    rates = fs.create_feature_group("rates", primary_key=["country", "ts"], event_time="ts")
    rates.insert(spark.createDataFrame([("fr", h(0), 0.1), ("fr", h(9), 0.9), ("de", h(5), 0.5), ("de", h(9), 0.95),
                                        ("it", h(2), 0.2)], "country string, ts timestamp, rate double"))
    # events JOIN (profiles JOIN rates on country): the inner join is point-in-time on the profile's event
    # time, the outer one on the event's. Profile rows with their rate: u1@h2 fr -> 0.1 (fr@h0),
    # u1@h8 de -> 0.5 (de@h5; de@h9 is after h8), u2@h1 it -> null (it starts at h2).
    nested = events.select(["eid"]).join(
        profiles.select(["country"]).join(rates.select(["rate"]), on="country"), on="user")
    assert rows(nested.read()) == [(1, "de", 0.5),    # event at h10: the u1@h8 profile and its rate
                                   (2, "fr", 0.1),    # event at h3: the u1@h2 profile
                                   (3, "it", None)]
    assert rows(fs.sql(nested.to_string())) == rows(nested.read())
    # a nested explicit equi-join inside a point-in-time join: every profile row paired with every rate of
    # its country (u1@h2 fr: 0.1, 0.9; u1@h8 de: 0.5, 0.95; u2@h1 it: 0.2), then one per event
    mixed = events.select(["eid"]).join(
        profiles.select(["country"]).join(rates.select(["rate"]), on="country", join_type="inner",
                                          point_in_time=False), on="user")
    got = {r.eid: (r.country, r.rate) for r in mixed.read().collect()}
    assert mixed.read().count() == 3 and got[2][0] == "fr" and got[1][0] == "de" and got[3] == ("it", 0.2)
    assert got[2][1] in (0.1, 0.9) and got[1][1] in (0.5, 0.95)


def test_as_of_applies_per_feature_group(env):
    fs, trans, aggs, _, first = env
    aggs.insert(fs.spark.createDataFrame([("c1", h(0.5), 0.5)], AGGS))  # newer commit: a c1 row at h0.5
    now = trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num")
    then = trans.select(["tid"]).join(aggs.select(["avg_amount"]).as_of(first), on="cc_num")
    assert rows(now.read()) == [(1, 0.5), (2, 4.0), (3, 2.0), (4, None)]
    assert rows(then.read()) == [(1, 1.0), (2, 4.0), (3, 2.0), (4, None)]
    assert rows(Query.from_dict(fs, then.to_dict()).read()) == rows(then.read())
    aggs.delete_records(fs.spark.createDataFrame([("c1", h(0.5))], "cc_num string, ts timestamp"))
    assert rows(now.read()) == [(1, 1.0), (2, 4.0), (3, 2.0), (4, None)]


def test_prefix_collisions_and_merged_keys(env):
    _, trans, aggs, merchants, _ = env
    with pytest.raises(QueryError, match=r"collision: 'ts' \(trans.ts and aggs.ts\)"):
        trans.select(["tid", "ts"]).join(aggs.select(["ts", "avg_amount"]), on="cc_num")
    pref = trans.select(["tid", "ts"]).join(aggs.select(["cc_num", "ts", "avg_amount"]), on="cc_num", prefix="a_")
    assert pref.features == ["tid", "ts", "a_cc_num", "a_ts", "a_avg_amount"]
    assert rows(pref.read()) == [(1, h(1), "c1", h(0), 1.0), (2, h(5), "c1", h(4), 4.0),
                                 (3, h(3), "c2", h(1), 2.0), (4, h(2), None, None, None)]
    # the key selected on both sides is not repeated (like SQL USING): the left row's key, match or not
    merged = trans.select(["tid", "cc_num"]).join(aggs.select(["cc_num", "avg_amount"]), on="cc_num")
    assert merged.features == ["tid", "cc_num", "avg_amount"]
    assert rows(merged.read()) == [(1, "c1", 1.0), (2, "c1", 4.0), (3, "c2", 2.0), (4, "c9", None)]
    for query in (pref, merged):
        assert rows(query.context.sql(query.to_string())) == rows(query.read())


def test_join_options_and_errors(spark, env):
    fs, trans, aggs, merchants, _ = env
    devices = fs.create_feature_group("devices", primary_key=["device_id"])
    devices.insert(spark.createDataFrame([("d1", "c1", "ios")], "device_id string, card string, os string"))
    # no event time on one side: the plain equi-join, left by default (as hsfs)
    plain = trans.select(["tid"]).join(devices.select(["os"]), left_on="cc_num", right_on="card")
    assert not plain.joins[0].point_in_time and plain.joins[0].join_type == "left"
    assert rows(plain.read()) == [(1, "ios"), (2, "ios"), (3, None), (4, None)]
    with pytest.raises(QueryError, match=r"point_in_time=True: feature group\(s\) 'devices' v1 have no event_time"):
        trans.select(["tid"]).join(devices.select(["os"]), left_on="cc_num", right_on="card", point_in_time=True)
    with pytest.raises(QueryError, match="join_type must be 'left' or 'inner', got 'outer'; pass point_in_time=False"):
        trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num", join_type="outer")
    with pytest.raises(QueryError, match="join_type must be 'left' or 'inner', got 'right'"):
        trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num", join_type="RIGHT")
    with pytest.raises(QueryError, match="point_in_time must be None, True or False"):
        trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num", point_in_time="yes")
    # hsfs's spellings of the join types
    full = trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num", join_type="FULL", point_in_time=False)
    assert full.joins[0].join_type == "outer"
    # an event time that is a number cannot be compared with a timestamp
    counters = fs.create_feature_group("counters", primary_key=["cc_num"], event_time="seq")
    counters.insert(spark.createDataFrame([("c1", 5, 1)], "cc_num string, seq long, n int"))
    with pytest.raises(QueryError, match="event time 'ts' of 'trans' and 'seq' of 'counters' cannot be compared"):
        trans.select(["tid"]).join(counters.select(["n"]), on="cc_num")
    # saved queries keep the flag; a query saved before the flag existed is the equi-join it was made with
    pit = trans.select(["tid"]).join(aggs.select(["avg_amount"]), on="cc_num")
    saved = pit.to_dict()
    assert saved["joins"][0]["point_in_time"] is True
    assert Query.from_dict(fs, saved).joins[0].point_in_time
    del saved["joins"][0]["point_in_time"]
    saved["joins"][0]["join_type"] = "inner"
    old = Query.from_dict(fs, saved)
    assert not old.joins[0].point_in_time
    assert rows(old.read()) == [(1, 1.0), (1, 4.0), (2, 1.0), (2, 4.0), (3, 2.0), (3, 8.0)]
