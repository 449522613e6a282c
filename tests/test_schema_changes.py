"""Schema changes are explicit, as in hsfs: an unexpected column is an error naming it unless evolution is asked
for (``fg.append_features([Feature(...)])`` or ``write_options={"schema_evolution": True}``); safe widenings are
cast, unsafe type changes are errors naming the column and both types; nothing is written on error. On every
offline implementation."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from pyspark.sql import types as T

from featurestore import Feature, FeatureGroupError, FeatureStore
from featurestore.config import load_config
from featurestore.ingestion import widens
from featurestore.offline import IMPLEMENTATIONS

SCHEMA = "id int, balance bigint, score double, price decimal(10,2), ts timestamp"
D = decimal.Decimal


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 3, 1) + dt.timedelta(hours=hour)


@pytest.fixture(params=sorted(IMPLEMENTATIONS), ids=lambda i: "/".join(i))
def accounts(request, spark, tmp_path):
    table_format, engine = request.param
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}), spark=spark)
    fg = fs.create_feature_group("accounts", primary_key=["id"], event_time="ts", time_travel_format=table_format,
                                 engine=engine)
    fg.insert(spark.createDataFrame([(1, 100, 0.5, D("1.25"), at(0))], SCHEMA))
    return fs, fg


def rows(fg) -> dict:
    return {r["id"]: r.asDict() for r in fg.read().collect()}


def test_widens_follows_exact_conversions():
    ok = [(T.ByteType(), T.LongType()), (T.IntegerType(), T.LongType()), (T.ShortType(), T.IntegerType()),
          (T.FloatType(), T.DoubleType()), (T.IntegerType(), T.DoubleType()), (T.ShortType(), T.FloatType()),
          (T.IntegerType(), T.DecimalType(10, 0)), (T.DecimalType(5, 2), T.DecimalType(10, 2)),
          (T.DecimalType(5, 2), T.DecimalType(6, 3))]
    refused = [(T.LongType(), T.IntegerType()), (T.StringType(), T.IntegerType()), (T.DoubleType(), T.LongType()),
               (T.LongType(), T.DoubleType()), (T.IntegerType(), T.FloatType()), (T.DoubleType(), T.FloatType()),
               (T.DecimalType(12, 2), T.DecimalType(10, 2)), (T.DecimalType(5, 3), T.DecimalType(10, 2)),
               (T.LongType(), T.DecimalType(18, 0)), (T.DateType(), T.TimestampType()),
               (T.IntegerType(), T.StringType()), (T.BooleanType(), T.IntegerType())]
    assert [pair for pair in ok if not widens(*pair)] == []
    assert [pair for pair in refused if widens(*pair)] == []


def test_safe_widenings_are_cast_and_unsafe_changes_refused(accounts, spark):
    _, fg = accounts
    # int into bigint, float into double, short into the int key, decimal(5,2) into decimal(10,2); nulls too
    fg.insert(spark.createDataFrame([(2, 200, 0.25, D("2.50"), at(1)), (3, None, None, None, at(1))],
                                    "id smallint, balance int, score float, price decimal(5,2), ts timestamp"))
    fg.insert(spark.createDataFrame([(4, 400, 7, D("4.00"), at(2))],
                                    "id int, balance bigint, score int, price decimal(10,2), ts timestamp"))
    assert {f.name: f.dataType.simpleString() for f in fg.read().schema.fields} == {
        "id": "int", "balance": "bigint", "score": "double", "price": "decimal(10,2)", "ts": "timestamp"}
    assert [f.type for f in fg.features] == ["int", "bigint", "double", "decimal(10,2)", "timestamp"]
    assert {k: (v["balance"], v["score"], v["price"]) for k, v in rows(fg).items()} == {
        1: (100, 0.5, D("1.25")), 2: (200, 0.25, D("2.50")), 3: (None, None, None), 4: (400, 7.0, D("4.00"))}
    before = (fg.commit_details(), rows(fg))
    bad = {"balance string": r"'balance' \(bigint -> string\)", "balance double": r"'balance' \(bigint -> double\)",
           "score bigint": r"'score' \(double -> bigint\)",
           "price decimal(12,2)": r"'price' \(decimal\(10,2\) -> decimal\(12,2\)\)"}
    for retyped, message in bad.items():
        name = retyped.split()[0]
        cols = ", ".join(retyped if c.split()[0] == name else c for c in SCHEMA.split(", "))
        value = {"balance string": "5", "balance double": 5.0, "score bigint": 5,
                 "price decimal(12,2)": D("5.00")}[retyped]
        row = {"id": 5, "balance": 5, "score": 5.0, "price": D("5.00"), "ts": at(3), name: value}
        with pytest.raises(FeatureGroupError, match=r"the data does not match feature group 'accounts' v1: changed "
                                                    r"type " + message):
            fg.insert(spark.createDataFrame([tuple(row.values())], cols))
    assert (fg.commit_details(), rows(fg)) == before  # nothing written


def test_an_unexpected_column_needs_evolution_asked_for(accounts, spark):
    _, fg = accounts
    before = (fg.commit_details(), rows(fg))
    extra = spark.createDataFrame([(2, 200, 0.25, D("2.00"), at(1), "web", "ü")],
                                  SCHEMA + ", channel string, `naïve` string")
    with pytest.raises(FeatureGroupError, match=r"the data has column\(s\) 'channel', 'naïve' that feature group "
                                                r"'accounts' v1 does not have .*fg.append_features"):
        fg.insert(extra)
    with pytest.raises(FeatureGroupError, match="write option 'schema_evolution' .* must be True or False, got 'yes'"):
        fg.insert(extra, write_options={"schema_evolution": "yes"})
    assert (fg.commit_details(), rows(fg)) == before
    fg.insert(extra, write_options={"schema_evolution": True})
    assert fg.schema.fieldNames()[-2:] == ["channel", "naïve"]
    assert {k: (v["channel"], v["naïve"]) for k, v in rows(fg).items()} == {1: (None, None), 2: ("web", "ü")}
    # the option given as text (as from a YAML job definition) works too; a later batch may leave it out
    fg.insert(spark.createDataFrame([(3, 300, 0.0, D("0.00"), at(2), "app", None, 1)],
                                    SCHEMA + ", channel string, `naïve` string, visits int"),
              write_options={"schema_evolution": "true"})
    assert rows(fg)[3]["visits"] == 1 and rows(fg)[1]["visits"] is None


def test_append_features(accounts, spark):
    fs, fg = accounts
    assert fg.append_features([Feature("tier", "string"), Feature("größe", "int")]) is fg
    assert [f.name for f in fs.get_feature_group("accounts").features][-2:] == ["tier", "größe"]
    # rows already written read the new features as null, through reads and queries
    assert rows(fg)[1]["tier"] is None and rows(fg)[1]["größe"] is None
    assert [tuple(r) for r in fg.select(["id", "tier"]).read().collect()] == [(1, None)]
    # an insert must hold them from now on; one that does stores them
    with pytest.raises(FeatureGroupError, match="missing 'tier', 'größe'"):
        fg.insert(spark.createDataFrame([(2, 200, 0.25, D("2.00"), at(1))], SCHEMA))
    fg.insert(spark.createDataFrame([(2, 200, 0.25, D("2.00"), at(1), "gold", 7)],
                                    SCHEMA + ", tier string, `größe` int"))
    assert {k: (v["tier"], v["größe"]) for k, v in rows(fg).items()} == {1: (None, None), 2: ("gold", 7)}
    first = list(fg.commit_details())[-1]  # time travel to before the features existed shows them too
    assert fg.read(as_of=first).columns[-2:] == ["tier", "größe"] and fg.read(as_of=first).count() == 1
    # one Feature alone is accepted, as in hsfs
    fg.append_features(Feature("note", "string", "free text"))
    assert fg.get_feature("note").description == "free text" and rows(fg)[2]["note"] is None
    with pytest.raises(FeatureGroupError, match=r"feature 'Balance' is already a feature \('balance'\)"):
        fg.append_features([Feature("Balance", "int")])
    with pytest.raises(FeatureGroupError, match="needs a Feature or a non-empty list of Features"):
        fg.append_features(["tier2"])
    with pytest.raises(FeatureGroupError, match="needs a Feature or a non-empty list of Features"):
        fg.append_features([])
    fresh = fs.create_feature_group("fresh", primary_key=["id"])
    with pytest.raises(FeatureGroupError, match="'fresh' v1 has no features yet"):
        fresh.append_features([Feature("x", "int")])
