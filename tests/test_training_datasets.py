"""Training datasets: every format reads back, splits, reproducibility, immutability, serving vectors."""

from __future__ import annotations

import datetime as dt
import os
import struct
from decimal import Decimal

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.query import QueryError
from featurestore.registry.sql import RegistryError
from featurestore.training import FORMATS, FormatError, SplitError, TrainingDatasetError

T0 = dt.datetime(2024, 3, 1)
TYPED = ("id long, name string, score double, small int, flag boolean, day date, ts timestamp, "
         "amount decimal(12,2)")
TYPED_ROWS = [
    (1, "ana", 0.1, 1, True, dt.date(2024, 1, 1), T0, Decimal("12.50")),  # 0.1: not a float32
    (2, "chloé 😀", -1.25, None, False, dt.date(1969, 12, 31), T0 + dt.timedelta(microseconds=123456), None),
    (3, None, None, -7, None, None, None, Decimal("-0.01")),
    (2**62, "", 2.0**40, 2**31 - 1, True, dt.date(2999, 12, 31), dt.datetime(1960, 5, 5, 1, 2, 3),
     Decimal("9999999999.99")),
]


def float32(x: float | None) -> float | None:
    """``x`` rounded to the nearest float32, as a Python float."""
    return None if x is None else struct.unpack("<f", struct.pack("<f", x))[0]


def store(spark, path, **overrides) -> FeatureStore:
    return FeatureStore(load_config(environ={}, overrides={"warehouse": str(path / "warehouse"), **overrides}),
                        "default", spark=spark)


def rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.fixture(scope="module")
def typed_fs(spark, tmp_path_factory):
    fs = store(spark, tmp_path_factory.mktemp("formats"))
    fg = fs.create_feature_group("typed", primary_key=["id"], event_time="ts")
    fg.insert(spark.createDataFrame(TYPED_ROWS, TYPED))
    return fs, fg


@pytest.mark.parametrize("data_format", FORMATS)
def test_every_format_reads_back(spark, typed_fs, data_format):
    fs, fg = typed_fs
    td = fs.create_training_dataset(f"typed_{data_format}", query=fg.select_all(), data_format=data_format,
                                    description="all types")
    assert td.location.endswith(os.path.join("training_datasets", f"typed_{data_format}_1"))
    assert td.row_counts == {"all": 4} and td.features == [f.name for f in fg.features]
    again = fs.get_training_dataset(f"typed_{data_format}", 1)
    assert again.read().schema == fg.read().schema
    expected = TYPED_ROWS
    if data_format == "tfrecord":  # tf.train.Example has only float32 lists: doubles come back rounded
        expected = [r[:2] + (float32(r[2]),) + r[3:] for r in TYPED_ROWS]
        assert expected[0][2] == 0.10000000149011612 != 0.1
    assert rows(again.read()) == rows(spark.createDataFrame(expected, TYPED))
    assert td.commits == {"typed_1": next(iter(fg.commit_details()))}


def test_format_errors(spark, tmp_path):
    fs = store(spark, tmp_path)
    fg = fs.create_feature_group("nested", primary_key=["id"], event_time="ts")
    fg.insert(spark.createDataFrame([(1, {"a": 1}, T0)], "id long, attrs map<string,int>, ts timestamp"))
    with pytest.raises(FormatError, match=r"column 'attrs' \(map<string,int>\) cannot be written as csv"):
        fs.create_training_dataset("bad", query=fg.select_all(), data_format="csv")
    with pytest.raises(FormatError, match="cannot be written as tfrecord"):
        fs.create_training_dataset("bad", query=fg.select_all(), data_format="tfrecord")
    with pytest.raises(FormatError, match="unknown data_format 'xls'"):
        fs.create_training_dataset("bad", query=fg.select_all(), data_format="xls")
    huge = fs.create_feature_group("huge", primary_key=["id"], event_time="ts")
    huge.insert(spark.createDataFrame([(1, 1e300, T0)], "id long, x double, ts timestamp"))
    with pytest.raises(Exception, match=r"column 'x': 1e\+300 is beyond float32's range"):
        fs.create_training_dataset("bad", query=huge.select_all(), data_format="tfrecord")
    # nothing half-written stays behind
    assert fs.get_training_datasets() == []
    assert not os.path.exists(fs.location / "training_datasets" / "bad_1")
    assert os.listdir(fs.location / "training_datasets") == []


@pytest.fixture(scope="module")
def spine_env(spark, tmp_path_factory):
    fs = store(spark, tmp_path_factory.mktemp("splits"))
    fg = fs.create_feature_group("activity", primary_key=["user", "ts"], event_time="ts")
    first = [(u, T0 + dt.timedelta(hours=k), float(u * 10 + k)) for u in range(20) for k in range(0, 48, 6)]
    fg.insert(spark.createDataFrame(first, "user int, ts timestamp, value double"))
    spine = [(i, i % 20, T0 + dt.timedelta(hours=i % 50, minutes=i % 7), i % 2) for i in range(240)]
    spine_df = spark.createDataFrame(spine, "rid int, user int, ts timestamp, label int")
    return fs, fg, spine_df


def test_random_splits_are_disjoint_complete_reproducible(spark, spine_env):
    fs, fg, spine = spine_env
    td = fs.create_training_dataset("churn", query=fg.select(["value"]), spine=spine, label="label",
                                    splits={"train": 0.7, "test": 0.3}, seed=42, data_format="parquet")
    assert td.features == ["value"] and td.label == ["label"] and td.split_names == ["train", "test"]
    assert td.splits == {"type": "random", "fractions": {"train": 0.7, "test": 0.3}, "seed": 42}
    train = {r.rid for r in td.read("train").collect()}
    test = {r.rid for r in td.read("test").collect()}
    assert not train & test and train | test == set(range(240))
    assert td.row_counts == {"train": len(train), "test": len(test)}
    assert 120 < len(train) < 215  # a 70 % split of 240 rows, far from degenerate
    same = fs.create_training_dataset("churn", query=fg.select(["value"]), spine=spine, label="label",
                                      splits={"train": 0.7, "test": 0.3}, seed=42)
    assert same.version == 2 and {r.rid for r in same.read("train").collect()} == train
    other = fs.create_training_dataset("churn_seed", query=fg.select(["value"]), spine=spine,
                                       splits={"train": 0.7, "test": 0.3}, seed=7)
    assert {r.rid for r in other.read("train").collect()} != train
    with pytest.raises(TrainingDatasetError, match="has no split 'validation'"):
        td.read("validation")
    with pytest.raises(SplitError, match="must add up to 1"):
        fs.create_training_dataset("bad", query=fg.select(["value"]), spine=spine, splits={"a": 0.5, "b": 0.6})


def test_time_splits(spark, spine_env):
    fs, fg, spine = spine_env
    cut = T0 + dt.timedelta(hours=30)
    td = fs.create_training_dataset("by_time", features=["value"], spine=spine, data_format="csv",
                                    splits={"train": {"end": cut}, "test": {"start": cut}})
    train, test = rows(td.read("train")), rows(td.read("test"))
    assert all(r[2] < cut for r in train) and all(r[2] >= cut for r in test)
    assert len(train) + len(test) == 240
    with pytest.raises(SplitError, match="'a' and 'b' overlap"):
        fs.create_training_dataset("bad", features=["value"], spine=spine,
                                   splits={"a": {"end": cut}, "b": {"start": T0}})


def test_recreate_after_upserts_and_immutability(spark, spine_env):
    fs, fg, spine = spine_env
    td = fs.create_training_dataset("repro", query=fg.select(["value"]), spine=spine, label=["label"],
                                    splits={"train": 0.5, "test": 0.5}, seed=3, data_format="json",
                                    ttl=dt.timedelta(hours=12))
    before = {s: rows(td.read(s)) for s in td.split_names}
    # change history afterwards: overwrite values and add newer and backfilled events
    changes = [(u, T0 + dt.timedelta(hours=k), -1.0) for u in range(20) for k in (0, 6, 7, 13)]
    fg.insert(spark.createDataFrame(changes, "user int, ts timestamp, value double"))
    fresh = fs.create_training_dataset("repro_fresh", query=fg.select(["value"]), spine=spine,
                                       ttl=dt.timedelta(hours=12))
    assert rows(fresh.read()) != rows(td.read().drop("label"))  # the data did change
    copy = td.recreate()
    assert copy.version == 2 and copy.commits == td.commits and copy.data_format == "json"
    assert {s: rows(copy.read(s)) for s in copy.split_names} == before
    assert fs.get_training_dataset("repro").version == 2
    assert [t.version for t in fs.get_training_datasets("repro")] == [1, 2]
    with pytest.raises(TrainingDatasetError, match="training dataset 'repro' version 1 already exists"):
        fs.create_training_dataset("repro", version=1, query=fg.select(["value"]))
    with pytest.raises(TrainingDatasetError, match=r"label column\(s\) 'nope' not in training dataset 'repro2'"):
        fs.create_training_dataset("repro2", query=fg.select(["value"]), spine=spine, label="nope")
    with pytest.raises(TrainingDatasetError, match="'nope' \\(any version\\) not found"):
        fs.get_training_dataset("nope")
    assert not os.path.exists(fs.location / "training_datasets" / "repro2_1")
    other = fs.create_feature_group("other", primary_key=["user"], event_time="ts")
    other.insert(spark.createDataFrame([(1, T0, 1.0)], "user int, ts timestamp, value double"))
    with pytest.raises(QueryError, match="feature 'value' is ambiguous"):
        fs.create_training_dataset("amb", features=["value"], spine=spine)
    with pytest.raises(RegistryError, match="already exists"):
        fs.registry.create_training_dataset({**{k: v for k, v in td._record.items() if k not in ("id", "created_at")}})


def test_serving_vector_in_feature_order(spark, tmp_path):
    fs = store(spark, tmp_path)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts", online_enabled=True)
    profile.insert(spark.createDataFrame([("u1", T0, 3, "fr"), ("u2", T0, 5, "ü")],
                                         "user string, ts timestamp, level int, country string"))
    spine = spark.createDataFrame([("u1", T0 + dt.timedelta(days=1), 1)], "user string, ts timestamp, churned int")
    td = fs.create_training_dataset("serve", query=profile.select(["country", "level"]), spine=spine,
                                    label="churned")
    assert td.features == ["country", "level"]
    assert rows(td.read()) == [("u1", T0 + dt.timedelta(days=1), 1, "fr", 3)]
    assert td.get_serving_vector({"user": "u2"}) == ["ü", 5]
    assert td.get_serving_vector({"user": "u1"}) == ["fr", 3]


def test_tfrecord_wire_format():
    """Byte-exact against the protobuf and TFRecord specifications (values worked out by hand)."""
    import io

    from featurestore.training.tfrecord import crc32c, decode_example, encode_example, masked_crc, read_records

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    example = encode_example({"a": ("int64", [1])})
    # Example{features(1){feature(1){key(1)="a", value(2)=Feature{int64_list(3){value(1) packed [1]}}}}}
    assert example == bytes.fromhex("0a0c0a0a0a016112051a030a0101")
    floats = encode_example({"f": ("float", [1.5, -2.0]), "s": ("bytes", ["ü".encode()]), "n": ("int64", [-1])})
    assert decode_example(floats) == {"f": ("float", [1.5, -2.0]), "s": ("bytes", [b"\xc3\xbc"]),
                                      "n": ("int64", [-1])}
    assert b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" in floats  # int64 -1: a 10-byte varint
    framed = io.BytesIO()
    from featurestore.training.tfrecord import write_records

    write_records(framed, [example])
    raw = framed.getvalue()
    assert raw[:8] == struct.pack("<Q", len(example)) and raw[12:-4] == example
    assert struct.unpack("<I", raw[8:12])[0] == masked_crc(raw[:8])
    assert list(read_records(io.BytesIO(raw))) == [example]
    corrupt = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(ValueError, match="data checksum mismatch"):
        list(read_records(io.BytesIO(corrupt)))


def test_spine_from_a_feature_group_query(spark, tmp_path):
    fs = store(spark, tmp_path)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts")
    profile.insert(spark.createDataFrame([("u1", T0, 3), ("u2", T0 + dt.timedelta(days=2), 5)],
                                         "user string, ts timestamp, level int"))
    labels = fs.create_feature_group("labels", primary_key=["user", "ts"], event_time="ts")
    labels.insert(spark.createDataFrame([("u1", T0 + dt.timedelta(days=1), 1), ("u2", T0 + dt.timedelta(days=1), 0)],
                                        "user string, ts timestamp, churned int"))
    td = fs.create_training_dataset("from_labels", query=profile.select(["level"]), spine=labels.select_all(),
                                    label="churned", data_format="avro")
    expected = [("u1", T0 + dt.timedelta(days=1), 1, 3), ("u2", T0 + dt.timedelta(days=1), 0, None)]
    assert rows(td.read()) == expected
    assert td.spine["kind"] == "query" and td.spine["event_time"] == "ts"
    assert set(td.commits) == {"profile_1", "labels_1"}
    labels.insert(spark.createDataFrame([("u3", T0, 1)], "user string, ts timestamp, churned int"))
    assert rows(td.recreate().read()) == expected  # the spine query is pinned to its commit too


def test_feature_view_cuts_datasets_and_serves_without_labels(spark, tmp_path):
    from featurestore import FeatureViewError
    from featurestore.names import NameError_

    fs = store(spark, tmp_path)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts", online_enabled=True)
    profile.insert(spark.createDataFrame([("u1", T0, 3, "fr"), ("u2", T0, 5, "ü")],
                                         "user string, ts timestamp, level int, country string"))
    orders = fs.create_feature_group("orders", primary_key=["user"], event_time="ts", online_enabled=True)
    orders.insert(spark.createDataFrame([("u1", T0, 10.0, 0), ("u2", T0 + dt.timedelta(days=1), 20.5, 1)],
                                        "user string, ts timestamp, total double, returned int"))
    # the plain equi-join, asked for explicitly (the batch rows below pair u2 with its later order)
    query = profile.select(["user", "country", "level"]).join(orders.select(["total", "returned"]),
                                                              join_type="inner", point_in_time=False)
    fv = fs.create_feature_view("churn", query=query, labels=["returned", "churned"], description="churn model")
    assert (fv.name, fv.version, fv.description) == ("churn", 1, "churn model")
    assert fv.labels == ["returned", "churned"]  # one from the query, one from the spines
    assert fv.features == ["user", "country", "level", "total"]
    again = fs.get_feature_view("churn")
    assert (again.id, again.features, again.query.features) == (fv.id, fv.features, query.features)
    assert rows(fv.get_batch_data()) == [("u1", "fr", 3, 10.0, 0), ("u2", "ü", 5, 20.5, 1)]

    spine = spark.createDataFrame([("u1", T0 + dt.timedelta(days=1), 1), ("u2", T0 + dt.timedelta(hours=12), 0),
                                   ("u3", T0 + dt.timedelta(days=1), 1)], "user string, ts timestamp, churned int")
    # u2's order happened after its spine time: no leak, nulls; u3 is unknown: nulls, the row is kept
    expected = [("u1", T0 + dt.timedelta(days=1), 1, "fr", 3, 10.0, 0),
                ("u2", T0 + dt.timedelta(hours=12), 0, "ü", 5, None, None),
                ("u3", T0 + dt.timedelta(days=1), 1, None, None, None, None)]
    assert rows(fv.get_training_data(spine)) == expected  # the entity key comes from the spine
    # a new version of the view: a changed query (the key selected out, the join key named)
    fv = fs.create_feature_view("churn", query=profile.select(["country", "level"]).join(
        orders.select(["total", "returned"]), on="user", join_type="inner", point_in_time=False),
        labels=["returned", "churned"])
    assert fv.version == 2 and fv.features == ["country", "level", "total"]
    assert rows(fv.get_training_data(spine)) == expected
    td = fv.create_training_dataset(spine=spine, description="first cut")
    assert (td.name, td.version, td.feature_view) == ("churn_v2", 1, {"name": "churn", "version": 2})
    assert td.label == ["returned", "churned"] and td.features == ["country", "level", "total"]
    assert rows(td.read()) == expected
    td2 = fv.create_training_dataset(spine=spine, splits={"train": 0.5, "test": 0.5}, seed=7)
    assert [t.version for t in fv.get_training_datasets()] == [1, 2] and fv.get_training_dataset().version == 2
    assert sorted(rows(td2.read("train")) + rows(td2.read("test")), key=repr) == expected

    # serving: the view's features in order, labels left out, one lookup per feature group
    assert fv.get_feature_vector({"user": "u2"}) == ["ü", 5, 20.5]
    assert fv.get_feature_vector({"user": "u1"}, as_dict=True) == {"country": "fr", "level": 3, "total": 10.0}
    assert fv.get_feature_vectors([{"user": "u3"}, {"user": "u2"}]) == [[None, None, None], ["ü", 5, 20.5]]

    # the view reads the feature groups as they are now; its datasets stay as they were cut
    profile.insert(spark.createDataFrame([("u2", T0, 6, "ü")], "user string, ts timestamp, level int, country string"))
    assert fv.get_feature_vector({"user": "u2"}) == ["ü", 6, 20.5]
    assert rows(td.read()) == expected
    again = td.recreate()
    assert again.version == 3 and again.feature_view == td.feature_view and rows(again.read()) == expected

    by_name = fs.create_feature_view("levels", features=["level"])
    assert by_name.features == ["level"] and by_name.labels == []
    assert [(v.name, v.version) for v in fs.get_feature_views()] == [("churn", 1), ("churn", 2), ("levels", 1)]
    with pytest.raises(RegistryError, match="feature view 'churn' version 1 already exists"):
        fs.create_feature_view("churn", 1, features=["level"])
    with pytest.raises(NameError_, match="feature view name 'Churn!'"):
        fs.create_feature_view("Churn!", features=["level"])
    with pytest.raises(FeatureViewError, match="exactly one of query= or features="):
        fs.create_feature_view("empty")
    with pytest.raises(FeatureViewError, match="every column of the query is a label"):
        fs.create_feature_view("labels_only", query=orders.select(["returned"]), labels="returned")
    with pytest.raises(FeatureViewError, match="feature view 'nope' \\(any version\\) not found"):
        fs.get_feature_view("nope")
    fs.get_feature_view("churn", 1).delete()
    assert [v.version for v in fs.get_feature_views("churn")] == [2]
    assert rows(td.read()) == expected  # a deleted view leaves its datasets
