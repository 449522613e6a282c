"""Query API: select, filter, join, as_of, to_string and the feature-name planner, on real Hudi tables."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.query import Query, QueryError

UTC = dt.UTC


def ts(h: int) -> dt.datetime:
    return dt.datetime(2024, 3, 1, tzinfo=UTC) + dt.timedelta(hours=h)


def rows(df, cols=None) -> list[tuple]:
    cols = cols or df.columns
    return sorted((tuple(r[c] for c in cols) for r in df.collect()), key=repr)


@pytest.fixture(scope="module")
def env(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("query")
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(base / "warehouse")}), "default",
                      spark=spark)
    users = fs.create_feature_group("users", primary_key=["user_id"], event_time="ts")
    c1 = users.insert(spark.createDataFrame(
        [(1, "ana", 30, ts(0)), (2, "bo", None, ts(0)), (3, "chloé", 41, ts(0))],
        "user_id int, name string, age int, ts timestamp")).commit_id
    users.insert(spark.createDataFrame([(1, "ana", 31, ts(5)), (4, "dan", 22, ts(5))],
                                       "user_id int, name string, age int, ts timestamp"))
    clicks = fs.create_feature_group("clicks", primary_key=["user_id"], event_time="ts")
    clicks.insert(spark.createDataFrame([(1, 10, 0.5, ts(1)), (2, 20, 0.25, ts(1)), (5, 50, 5.0, ts(1))],
                                        "user_id int, clicks long, score double, ts timestamp"))
    devices = fs.create_feature_group("devices", primary_key=["device_id"])
    devices.insert(spark.createDataFrame([("d1", 1, "ios"), ("d2", 2, "android"), ("d3", 9, "ios")],
                                         "device_id string, owner int, os string"))
    return fs, users, clicks, devices, c1


def test_select_filter_and_as_of(env):
    fs, users, _, _, c1 = env
    assert users.select_all().features == ["user_id", "name", "age", "ts"]
    assert rows(users.select(["name", "age"]).read()) == sorted(
        [("ana", 31), ("bo", None), ("chloé", 41), ("dan", 22)], key=repr)
    # filter on a column that is not selected; SQL text and Column give the same rows
    q1 = users.select(["name"]).filter(F.col("age") > 25)
    q2 = users.select(["name"]).filter("age > 25")
    assert rows(q1.read()) == rows(q2.read()) == [("ana",), ("chloé",)]
    assert rows(users.filter(F.col("age").isNull()).read(), ["user_id"]) == [(2,)]
    # as_of: commit-time travel of this feature group only
    assert rows(users.select(["user_id", "age"]).as_of(c1).read()) == sorted([(1, 30), (2, None), (3, 41)], key=repr)
    assert users.as_of(c1).read().count() == 3
    with pytest.raises(QueryError, match="filter 'agee > 1' on feature group 'users' v1 is invalid"):
        users.select_all().filter("agee > 1")
    with pytest.raises(QueryError, match=r"has no feature\(s\) 'nope'"):
        users.select(["name", "nope"])
    with pytest.raises(QueryError, match="selected twice"):
        users.select(["name", "name"])


def test_joins(env):
    fs, users, clicks, devices, _ = env
    # the plain equi-join, asked for explicitly (event-timed feature groups join point-in-time by default:
    # tests/test_query_pit.py)
    inner = users.select(["user_id", "name"]).join(clicks.select(["clicks"]), join_type="inner", point_in_time=False)
    assert inner.features == ["user_id", "name", "clicks"]
    assert rows(inner.read()) == [(1, "ana", 10), (2, "bo", 20)]
    left = users.select(["user_id", "name"]).join(clicks.select(["clicks"]), join_type="left", point_in_time=False)
    assert rows(left.read()) == sorted([(1, "ana", 10), (2, "bo", 20), (3, "chloé", None), (4, "dan", None)], key=repr)
    # outer join with the key selected on both sides: merged like SQL USING, whichever side has it
    outer = users.select(["user_id", "age"]).join(clicks.select(["user_id", "clicks"]), join_type="outer",
                                                  point_in_time=False)
    assert outer.features == ["user_id", "age", "clicks"]
    assert rows(outer.read()) == sorted([(1, 31, 10), (2, None, 20), (3, 41, None), (4, 22, None), (5, None, 50)],
                                        key=repr)
    right = users.select(["user_id", "age"]).join(clicks.select(["clicks"]), join_type="right", point_in_time=False)
    assert rows(right.read()) == sorted([(1, 31, 10), (2, None, 20), (5, None, 50)], key=repr)
    # collisions: an error naming them, or a prefix
    with pytest.raises(QueryError, match=r"collision: 'ts' \(users.ts and clicks.ts\)"):
        users.select(["user_id", "ts"]).join(clicks.select(["clicks", "ts"]))
    pref = users.select(["user_id", "ts"]).join(clicks.select(["clicks", "ts"]), prefix="c_", join_type="inner",
                                                point_in_time=False)
    assert pref.features == ["user_id", "ts", "c_clicks", "c_ts"]
    assert rows(pref.read(), ["user_id", "c_ts"]) == [(1, ts(1).replace(tzinfo=None)), (2, ts(1).replace(tzinfo=None))]
    # no shared primary key: an error, unless keys are named
    with pytest.raises(QueryError, match="share no primary-key column"):
        users.select(["name"]).join(devices.select(["os"]))
    by_owner = users.select(["name"]).join(devices.select(["device_id", "os"]), left_on="user_id", right_on="owner",
                                           join_type="inner")
    assert rows(by_owner.read()) == [("ana", "d1", "ios"), ("bo", "d2", "android")]
    with pytest.raises(QueryError, match=r"join key\(s\) 'owner' \(left\) are not columns of feature group 'users'"):
        users.select(["name"]).join(devices.select(["os"]), on="owner")
    with pytest.raises(QueryError, match="unknown join_type 'cross'"):
        users.select(["name"]).join(clicks.select(["clicks"]), join_type="cross")
    # nested: users JOIN (clicks JOIN devices on owner)
    nested = users.select(["user_id", "name"]).join(
        clicks.select(["clicks"]).join(devices.select(["os"]), left_on="user_id", right_on="owner",
                                       join_type="inner"), join_type="inner", point_in_time=False)
    assert rows(nested.read()) == [(1, "ana", 10, "ios"), (2, "bo", 20, "android")]


def test_to_string_runs_as_sql_and_round_trips(env):
    fs, users, clicks, devices, c1 = env
    queries = [
        users.select(["user_id", "name"]).filter("age > 25").join(clicks.select(["clicks"]), join_type="left",
                                                                  point_in_time=False),
        users.select(["user_id", "age"]).join(clicks.select(["user_id", "clicks"]), join_type="outer",
                                              point_in_time=False),
        users.select(["user_id", "ts"]).join(clicks.select(["clicks", "ts"]), prefix="c_", join_type="inner",
                                             point_in_time=False),
        users.select(["user_id", "name"]).join(
            clicks.select(["clicks"]).join(devices.select(["os"]), left_on="user_id", right_on="owner",
                                           join_type="inner"), join_type="inner", point_in_time=False),
    ]
    for query in queries:
        sql = query.to_string()
        assert sql.startswith("SELECT ") and "users_1" in sql
        assert rows(fs.sql(sql)) == rows(query.read()), sql
        again = Query.from_dict(fs, query.to_dict())
        assert again.to_string() == sql and rows(again.read()) == rows(query.read())
    shown = users.select(["name"]).as_of(c1).to_string()
    assert f"/* as of commit {c1} */" in shown


def test_get_features_planner(env):
    fs, users, clicks, devices, _ = env
    query = fs.get_features(["name", "clicks", "user_id"])
    assert query.features == ["user_id", "name", "clicks"]
    assert rows(query.read()) == [(1, "ana", 10), (2, "bo", 20)]
    with pytest.raises(QueryError, match="feature 'ts' is ambiguous: it is in feature groups 'clicks', 'users'"):
        fs.get_features(["name", "ts"])
    assert fs.get_features(["users.ts"]).features == ["ts"]
    with pytest.raises(QueryError, match="no feature group has a feature 'nope'"):
        fs.get_features(["nope"])
    with pytest.raises(QueryError, match="no feature group 'nogroup'"):
        fs.get_features(["nogroup.x"])
    with pytest.raises(QueryError, match="share no primary-key column"):
        fs.get_features(["name", "os"])


def test_filters_built_from_features(env):
    fs, users, clicks, _, _ = env
    # users now: 1 ana 31, 2 bo null, 3 chloé 41, 4 dan 22
    assert rows(users.select(["name"]).filter(users.age > 25).read()) == [("ana",), ("chloé",)]
    assert rows(users.select(["name"]).filter(users["age"] <= 22).read()) == [("dan",)]
    both = users.select(["name"]).filter((users.age > 25) & (users["name"] == "chloé"))
    assert rows(both.read()) == [("chloé",)]
    either = users.select(["name"]).filter((users.age < 25) | ~(users["name"] != "bo"))
    assert rows(either.read()) == [("bo",), ("dan",)]
    assert rows(users.select(["name"]).filter(users.user_id.isin([1, 4, 9])).read()) == [("ana",), ("dan",)]
    assert rows(users.select(["name"]).filter(users["name"].like("%o%")).read()) == [("bo",), ("chloé",)]
    assert rows(users.select(["name"]).filter(users.age == None).read()) == [("bo",)]  # noqa: E711
    assert rows(users.filter(users.age.notnull() & (users.age >= 31)).read(), ["user_id"]) == [(1,), (3,)]
    # the same rows as the SQL text filter; stored as SQL, so it survives to_dict and to_string
    built = users.select(["name"]).filter((users.age > 25) & users["name"].like("a%"))
    assert rows(built.read()) == rows(users.select(["name"]).filter("age > 25 AND name LIKE 'a%'").read())
    assert rows(Query.from_dict(fs, built.to_dict()).read()) == [("ana",)]
    assert rows(fs.sql(built.to_string())) == [("ana",)]
    # a filter on the right query before a (point-in-time) join
    joined = users.select(["user_id", "name"]).join(clicks.select(["clicks"]).filter(clicks.score > 0.3))
    assert rows(joined.read()) == [(1, "ana", 10), (2, "bo", None), (3, "chloé", None), (4, "dan", None)]
    with pytest.raises(QueryError, match="uses features of clicks_1: filter that feature group's own query"):
        users.select(["name"]).filter(clicks.score > 0.3)
    with pytest.raises(QueryError, match="has no truth value"):
        users.select(["name"]).filter(users.age > 1 and users.age < 50)
    with pytest.raises(QueryError, match="wrap comparisons in parentheses"):
        (users.age > 1) & users["name"]  # noqa: B015
    with pytest.raises(QueryError, match="isin on feature 'name' needs a list"):
        users["name"].isin("ana")
    with pytest.raises(QueryError, match="filter needs a condition"):
        users.select(["name"]).filter(42)
    with pytest.raises(KeyError, match="has no feature 'nope'"):
        users["nope"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        users.nope  # noqa: B018
    assert users.name == "users"  # properties win over features of the same name: fg["name"] reaches those
    assert rows(users.select(["user_id"]).filter(users["name"] == "bo").read()) == [(2,)]


def test_show_and_to_string(env, capsys):
    _, users, clicks, _, _ = env
    query = users.select(["user_id", "name"]).join(clicks.select(["clicks"]))
    query.show(2)
    out = capsys.readouterr().out
    assert "user_id" in out and "clicks" in out and "only showing top 2 rows" in out
    sql = query.to_string()
    assert "LEFT OUTER JOIN LATERAL" in sql and "ORDER BY" in sql


def test_feature_group_calls_as_hsfs_writes_them(spark, tmp_path, caplog):
    import pandas as pd
    import pyarrow as pa

    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse")}), "default",
                      spark=spark)
    fg = fs.create_feature_group("cards", primary_key=["cc_num"], event_time="ts")
    first = fg.insert(pd.DataFrame({"cc_num": ["c1", "c2"], "limit_eur": [100, 200],
                                    "ts": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 01:00"])})).commit_id
    with caplog.at_level("WARNING", logger="featurestore.feature_group"):
        fg.insert(pa.table({"cc_num": ["c3"], "limit_eur": [300],
                            "ts": pa.array([dt.datetime(2024, 3, 1, 2)], pa.timestamp("us"))}),
                  write_options={"wait_for_job": True, "start_offline_materialization": False})
    warnings = [r.getMessage() for r in caplog.records if "only mean something on Hopsworks" in r.getMessage()]
    assert len(warnings) == 1 and "'wait_for_job'" in warnings[0] and "'start_offline_materialization'" in warnings[0]
    assert rows(fg.read(), ["cc_num", "limit_eur"]) == [("c1", 100), ("c2", 200), ("c3", 300)]
    # wallclock_time: hsfs's name of as_of
    assert rows(fg.read(wallclock_time=first), ["cc_num"]) == [("c1",), ("c2",)]
    with pytest.raises(Exception, match="pass as_of or wallclock_time, not both"):
        fg.read(as_of=first, wallclock_time=first)
    # commit_delete: delete_records, taking pandas too
    fg.commit_delete(pd.DataFrame({"cc_num": ["c2"]}))
    assert rows(fg.read(), ["cc_num"]) == [("c1",), ("c3",)]
    with pytest.raises(Exception, match=r"insert into feature group 'cards' v1 needs a Spark, pandas or pyarrow "
                                        r"DataFrame \(a pyarrow Table\), got builtins.list"):
        fg.insert([("c9", 1, dt.datetime(2024, 3, 1))])
    with pytest.raises(Exception, match="got builtins.dict"):
        fg.commit_delete({"cc_num": ["c1"]})
    assert rows(fg.read(), ["cc_num"]) == [("c1",), ("c3",)]  # the refused calls changed nothing
