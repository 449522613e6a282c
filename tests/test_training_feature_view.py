"""hsfs's feature-view calls (training_data, train_test_split, create_/get_ splits, get_batch_data with times,
init_serving, feature vectors by return type, delete_training_dataset) on a hand-computed point-in-time timeline."""

from __future__ import annotations

import datetime as dt

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.training import TrainingDatasetError
from featurestore.training.feature_view_hsfs import FeatureViewSurfaceError

T0 = dt.datetime(2024, 3, 1)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# the view's point-in-time rows (tid, cc_num, ts, amount, avg_amount | fraud), worked out by hand:
# c1 aggregates at h0 (1.0) and h4 (4.0), c2 at h1 (2.0) and h4 (8.0), none of c9
ROWS = {1: (1, "c1", h(1), 10.0, 1.0, 0), 2: (2, "c1", h(5), 20.0, 4.0, 1), 3: (3, "c2", h(3), 30.0, 2.0, 0),
        4: (4, "c9", h(2), 40.0, None, 1)}
FEATURES = ["tid", "cc_num", "ts", "amount", "avg_amount"]


def pairs(x, y) -> list[tuple]:
    """(features..., label) rows of pandas X and y (aligned by position), sorted by tid."""
    return sorted((tuple(None if v != v else v for v in a) + tuple(b))  # NaN -> None
                  for a, b in zip(x.itertuples(index=False), y.itertuples(index=False), strict=True))


def expected(*tids: int) -> list[tuple]:
    return sorted(ROWS[t] for t in tids)


@pytest.fixture(scope="module")
def view(spark, tmp_path_factory):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path_factory.mktemp("fv") / "wh")}),
                      "default", spark=spark)
    trans = fs.create_feature_group("trans", primary_key=["tid", "cc_num"], event_time="ts")
    trans.insert(spark.createDataFrame([(t, c, ts, a, f) for t, c, ts, a, _, f in ROWS.values()],
                                       "tid int, cc_num string, ts timestamp, amount double, fraud int"))
    aggs = fs.create_feature_group("aggs", primary_key=["cc_num", "ts"], event_time="ts")
    aggs.insert(spark.createDataFrame([("c1", h(0), 1.0), ("c1", h(4), 4.0), ("c2", h(1), 2.0), ("c2", h(4), 8.0)],
                                      "cc_num string, ts timestamp, avg_amount double"))
    query = trans.select(["tid", "cc_num", "ts", "amount", "fraud"]).join(aggs.select_except(["cc_num", "ts"]))
    return fs, fs.create_feature_view("fraud", query=query, labels=["fraud"])


def test_training_data_in_memory(view):
    fs, fv = view
    x, y = fv.training_data(dataframe_type="pandas")
    assert list(x.columns) == FEATURES and list(y.columns) == ["fraud"]
    assert pairs(x, y) == expected(1, 2, 3, 4)
    spark_x, spark_y = fv.training_data()
    assert spark_x.columns == FEATURES and spark_y.columns == ["fraud"] and spark_x.count() == 4
    # start inclusive, end exclusive, on the left feature group's event time
    assert pairs(*fv.training_data(start_time=h(2), end_time=h(5), dataframe_type="pandas")) == expected(3, 4)
    assert sorted(fv.get_batch_data(start_time=h(3)).toPandas().tid) == [2, 3]
    assert sorted(fv.get_batch_data(end_time="2024-03-01 02:00:00", dataframe_type="pandas").tid) == [1]
    with pytest.raises(FeatureViewSurfaceError, match="unknown dataframe_type 'polars'"):
        fv.training_data(dataframe_type="polars")


def test_splits_in_memory(view):
    _, fv = view
    x_train, x_test, y_train, y_test = fv.train_test_split(test_size=0.5, seed=11, dataframe_type="pandas")
    train, test = pairs(x_train, y_train), pairs(x_test, y_test)
    assert sorted(train + test) == expected(1, 2, 3, 4) and not set(train) & set(test)
    again = fv.train_test_split(test_size=0.5, seed=11, dataframe_type="pandas")
    assert pairs(again[0], again[2]) == train  # the same seed, the same split
    # by time: train before h3, test from h3
    x_train, x_test, y_train, y_test = fv.train_test_split(train_end=h(3), test_start=h(3), dataframe_type="pandas")
    assert pairs(x_train, y_train) == expected(1, 4) and pairs(x_test, y_test) == expected(2, 3)
    parts = fv.train_validation_test_split(validation_size=0.25, test_size=0.25, seed=5, dataframe_type="pandas")
    assert len(parts) == 6
    got = [pairs(parts[i], parts[i + 3]) for i in range(3)]
    assert sorted(got[0] + got[1] + got[2]) == expected(1, 2, 3, 4)
    by_time = fv.train_validation_test_split(train_end=h(2), validation_start=h(2), validation_end=h(4),
                                             test_start=h(4), dataframe_type="pandas")
    assert [pairs(by_time[i], by_time[i + 3]) for i in range(3)] == [expected(1), expected(3, 4), expected(2)]
    with pytest.raises(FeatureViewSurfaceError, match="split either by size"):
        fv.train_test_split(test_size=0.2, train_end=h(3))
    with pytest.raises(FeatureViewSurfaceError, match=r"fractions in \(0, 1\)"):
        fv.train_test_split(test_size=1.5)
    with pytest.raises(FeatureViewSurfaceError, match="pass test_size"):
        fv.train_test_split()


def test_materialized_training_data_and_splits(view):
    fs, fv = view
    version, job = fv.create_training_data(description="all rows")
    assert job is None
    assert pairs(*fv.get_training_data(version, dataframe_type="pandas")) == expected(1, 2, 3, 4)
    assert pairs(*fv.get_training_data(training_dataset_version=version, dataframe_type="pandas")) == \
        expected(1, 2, 3, 4)
    timed, _ = fv.create_training_data(start_time=h(2), end_time=h(5))
    assert pairs(*fv.get_training_data(timed, dataframe_type="pandas")) == expected(3, 4)
    split, job = fv.create_train_test_split(train_end=h(3), test_start=h(3), description="by time")
    assert job is None and split == timed + 1
    x_train, x_test, y_train, y_test = fv.get_train_test_split(split, dataframe_type="pandas")
    assert pairs(x_train, y_train) == expected(1, 4) and pairs(x_test, y_test) == expected(2, 3)
    three, _ = fv.create_train_validation_test_split(validation_size=0.25, test_size=0.25, seed=3)
    parts = fv.get_train_validation_test_split(three, dataframe_type="pandas")
    got = [pairs(parts[i], parts[i + 3]) for i in range(3)]
    assert sorted(got[0] + got[1] + got[2]) == expected(1, 2, 3, 4)
    assert fv.get_training_dataset(three).splits["seed"] == 3
    with pytest.raises(FeatureViewSurfaceError, match="has no split"):
        fv.get_train_test_split(version)
    fv.delete_training_dataset(version)
    with pytest.raises(TrainingDatasetError, match="not found"):
        fv.get_training_dataset(version)
    assert [t.version for t in fv.get_training_datasets()] == [timed, split, three]


def test_serving_by_return_type(spark, tmp_path):
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}), "default",
                      spark=spark)
    profile = fs.create_feature_group("profile", primary_key=["user"], event_time="ts", online_enabled=True)
    profile.insert(spark.createDataFrame([("u1", T0, 3, "fr"), ("u2", T0, 5, "ü")],
                                         "user string, ts timestamp, level int, country string"))
    fv = fs.create_feature_view("levels", query=profile.select(["country", "level"]))
    version, _ = fv.create_training_data()
    assert fv.init_serving(training_dataset_version=version) is None
    with pytest.raises(TrainingDatasetError, match="not found"):
        fv.init_serving(training_dataset_version=99)
    assert fv.get_feature_vector(entry={"user": "u2"}) == ["ü", 5]
    assert fv.get_feature_vector(entry={"user": "u2"}, return_type="dict") == {"country": "ü", "level": 5}
    frame = fv.get_feature_vector(entry={"user": "u1"}, return_type="pandas")
    assert list(frame.columns) == ["country", "level"] and frame.values.tolist() == [["fr", 3]]
    assert fv.get_feature_vectors(entry=[{"user": "u1"}, {"user": "u3"}]) == [["fr", 3], [None, None]]
    assert fv.get_feature_vectors(entry=[{"user": "u1"}], return_type="pandas").values.tolist() == [["fr", 3]]
    # numpy, as hsfs: one vector a 1-d array, several a 2-d one
    assert fv.get_feature_vector(entry={"user": "u1"}, return_type="numpy").tolist() == ["fr", 3]
    assert fv.get_feature_vectors(entry=[{"user": "u1"}, {"user": "u2"}], return_type="numpy").tolist() == [
        ["fr", 3], ["ü", 5]]
    with pytest.raises(Exception, match="unknown return_type 'polars'"):
        fv.get_feature_vector(entry={"user": "u1"}, return_type="polars")


def test_get_or_create_feature_view_and_batch_scoring(view):
    fs, fv = view
    # there: returned as it is (hsfs's call, positional name and version)
    same = fs.get_or_create_feature_view("fraud", 1)
    assert (same.id, same.labels, same.features) == (fv.id, ["fraud"], FEATURES)
    # not there: created from the arguments, with hsfs's names
    query = fs.get_feature_group("trans").select(["tid", "amount", "fraud"])
    made = fs.get_or_create_feature_view(name="fraud_small", version=1, query=query, labels=["fraud"],
                                         description="amounts only", transformation_functions=None)
    assert (made.version, made.labels, made.description, made.features) == (1, ["fraud"], "amounts only",
                                                                             ["tid", "amount"])
    assert fs.get_or_create_feature_view(name="fraud_small", version=1, query=query).id == made.id
    assert fs.get_or_create_feature_view("fraud_small", 2, query, labels="fraud").version == 2
    assert fs.get_or_create_feature_view("fraud_new", query=query).version == 1  # no version: 1
    with pytest.raises(Exception, match="pass exactly one of query= or features="):
        fs.get_or_create_feature_view("fraud_none", 1)
    # init_batch_scoring: the training dataset version is checked, then get_batch_data reads the rows
    assert fv.init_batch_scoring() is None
    with pytest.raises(TrainingDatasetError, match="not found"):
        fv.init_batch_scoring(99)
    assert sorted(fv.get_batch_data(dataframe_type="pandas").tid) == [1, 2, 3, 4]
