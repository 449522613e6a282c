"""Transformation functions of feature views (hsfs's model-dependent transformations): the built-ins on a small
data set with nulls, a constant feature and unicode categories, checked against hand-computed statistics and
values; the same input row gives the same value in training data, batch data, the in-process vector and the
HTTP vector; user functions registered and fetched back by name and version; a new FeatureStore on the same
registry reproduces the values; clear errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from featurestore import FeatureStore, TransformationError, udf
from featurestore.config import load_config
from featurestore.online.serving import json_value
from featurestore.transformation import (
    label_encoder,
    min_max_scaler,
    one_hot_encoder,
    robust_scaler,
    standard_scaler,
)

T0 = dt.datetime(2024, 3, 1)
SCHEMA = "id int, ts timestamp, amount double, const double, cat string, n int, label int"
# id: (amount, const, cat, n, label); id 6 is null everywhere but its key
ROWS = {1: (1.0, 5.0, "b", 10, 0), 2: (2.0, 5.0, "é", 20, 1), 3: (3.0, 5.0, "a", 30, 0), 4: (4.0, 5.0, "b", 40, 1),
        5: (5.0, 5.0, "日本", 50, 0), 6: (None, None, None, None, 1)}
CATEGORIES = sorted({r[2] for r in ROWS.values() if r[2] is not None})  # Python's code-point order: a, b, é, 日本
# statistics of the non-null amounts 1..5, by hand: min 1, max 5, mean 3, population variance 10/5 = 2,
# quartiles (nearest rank) 2, 3, 4
MIN, MAX, MEAN, STD, Q1, MEDIAN, Q3 = 1.0, 5.0, 3.0, math.sqrt(2.0), 2.0, 3.0, 4.0


@udf(float)
def plus(amount, n):
    """A user function over two features (None for a null input)."""
    return None if amount is None or n is None else amount + n


@udf(float)
def boom(amount):
    raise ValueError(f"cannot take {amount} ü")


@udf(float)
def not_a_number(amount):
    return float("nan")


TRANSFORMS = [min_max_scaler("amount"), standard_scaler("amount").alias("amount_std"),
              robust_scaler("amount").alias("amount_robust"), min_max_scaler("const"),
              standard_scaler("const").alias("const_std"), one_hot_encoder("cat"),
              label_encoder("cat").alias("cat_index"), plus("amount", "n")]
OUTPUTS = (["amount", "amount_std", "amount_robust", "const", "const_std"] + [f"cat_{c}" for c in CATEGORIES]
           + ["cat_index", "plus_amount_n"])


def expected(amount, const, cat, n) -> dict:
    """The transformed values of one input, from the hand-computed statistics."""
    def scaled(x, offset, divisor):
        return None if x is None else (x - offset) / divisor

    return {"amount": scaled(amount, MIN, MAX - MIN), "amount_std": scaled(amount, MEAN, STD),
            "amount_robust": scaled(amount, MEDIAN, Q3 - Q1),
            "const": None if const is None else 0.0, "const_std": None if const is None else 0.0,  # constant: 0.0
            **{f"cat_{c}": None if cat is None else int(cat == c) for c in CATEGORIES},
            "cat_index": None if cat is None else (CATEGORIES.index(cat) if cat in CATEGORIES else -1),
            "plus_amount_n": None if amount is None or n is None else amount + n}


def frame_rows(df) -> dict[int, dict]:
    """{id: {output: value}} of a Spark frame of the view's rows."""
    return {r["id"]: {c: r[c] for c in OUTPUTS} for r in (row.asDict() for row in df.collect())}


def approx(rows: dict[int, dict]) -> dict[int, dict]:
    return {k: {c: (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v) for c, v in r.items()}
            for k, r in rows.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def store(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tf")
    config = folder / "fs.yaml"
    config.write_text(f"warehouse: {folder / 'warehouse'}\n")
    fs = FeatureStore(load_config(config, environ={}), "tfs", spark=spark)
    fg = fs.create_feature_group("items", primary_key="id", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame([(i, T0 + dt.timedelta(hours=i), *r) for i, r in ROWS.items()], SCHEMA))
    fv = fs.create_feature_view("scored", query=fg.select_all(), labels=["label"], transformation_functions=TRANSFORMS)
    version, job = fv.create_training_data()
    assert (version, job) == (1, None)
    yield config, fs, fg, fv
    fs.close()


def test_fitted_statistics_are_stored_with_the_training_dataset(store):
    _, _, _, fv = store
    stats = fv.get_training_dataset(1).transformation_statistics
    assert stats.pop("standard_scaler:amount") == {"mean": MEAN, "stddev": pytest.approx(STD, rel=1e-12)}
    assert stats == {"min_max_scaler:amount": {"min": MIN, "max": MAX},
                     "robust_scaler:amount": {"q1": Q1, "median": MEDIAN, "q3": Q3},
                     "min_max_scaler:const": {"min": 5.0, "max": 5.0},
                     "standard_scaler:const": {"mean": 5.0, "stddev": 0.0},
                     "one_hot_encoder:cat": {"categories": CATEGORIES},
                     "label_encoder:cat": {"categories": CATEGORIES}}


def test_every_built_in_against_hand_computed_values(store):
    _, _, _, fv = store
    x, y = fv.get_training_data(1)
    # inputs replaced in place (one-hot by one column per category), new outputs last
    assert x.columns == ["id", "ts", "amount", "const"] + [f"cat_{c}" for c in CATEGORIES] + [
        "n", "amount_std", "amount_robust", "const_std", "cat_index", "plus_amount_n"]
    assert y.columns == ["label"]
    want = {i: expected(a, c, cat, n) for i, (a, c, cat, n, _) in ROWS.items()}
    assert frame_rows(x) == approx(want)
    assert want[2]["cat_é"] == 1 and want[5]["cat_index"] == 3 and want[6]["amount"] is None  # the data's corners
    types = dict(x.dtypes)
    assert (types["amount"], types["cat_index"], types["cat_a"], types["plus_amount_n"]) == (
        "double", "int", "int", "double")


def test_training_batch_in_process_and_http_vectors_agree(store):
    config, fs, fg, fv = store
    keys = [{"id": i} for i in ROWS]
    training = frame_rows(fv.get_training_data(1)[0])
    in_memory = frame_rows(fv.training_data()[0])  # fitted on the same rows: the same statistics
    batch = frame_rows(fv.get_batch_data())
    vectors = {v["id"]: {c: v[c] for c in OUTPUTS} for v in fv.get_feature_vectors(keys, return_type="dict")}
    assert training == in_memory == batch == vectors  # exactly equal: the same expressions on the same statistics
    assert list(fv.get_feature_vector({"id": 3}, return_type="dict")) == fv.serving_features()
    assert fv.get_feature_vector({"id": 3}) == [fv.get_feature_vector({"id": 3}, as_dict=True)[f]
                                                for f in fv.serving_features()]

    # a row inserted after the training dataset: unseen category, amount beyond the training range
    fg.insert(fs.spark.createDataFrame([(7, T0 + dt.timedelta(hours=7), 10.0, 7.0, "zzz", 1, 0)], SCHEMA))
    unseen = expected(10.0, 7.0, "zzz", 1)
    assert unseen["amount"] == 2.25 and unseen["cat_index"] == -1 and unseen["cat_a"] == 0
    assert frame_rows(fv.get_batch_data())[7] == approx({7: unseen})[7]
    fresh = fs.get_feature_view("scored", 1)
    assert {c: fresh.get_feature_vector({"id": 7}, as_dict=True)[c] for c in OUTPUTS} == frame_rows(
        fv.get_batch_data())[7]

    nan_view = fs.create_feature_view("nan_view", query=fg.select(["id", "amount"]),
                                      transformation_functions=[not_a_number])  # bound to its parameter: amount
    assert math.isnan(nan_view.get_feature_vector({"id": 1}, as_dict=True)["amount"])

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("featurestore")), "--config", str(config), "serve",
                             "--port", str(port), "--store", "tfs"], env=env, cwd=config.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts the server slowly
        while True:
            try:
                assert _http(base + "/health")[0] == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "the feature server did not start within 180 s"
                time.sleep(0.2)
        status, body = _http(base + "/feature-views/scored/1/vector", {"entries": keys + [{"id": 7}]})
        assert status == 200
        over_http = {v["id"]: {c: v[c] for c in OUTPUTS} for v in body["vectors"]}
        assert over_http == {**vectors, 7: frame_rows(fv.get_batch_data())[7]}
        assert list(body["vectors"][0]) == fv.serving_features()  # the order of the serving features
        status, body = _http(base + "/feature-views/scored/1/vector", {"entry": {"id": 2},
                                                                       "training_dataset_version": 1})
        assert status == 200 and {c: body["vector"][c] for c in OUTPUTS} == vectors[2]
        # NaN cannot be JSON: it is sent as null (it was an HTTP 500)
        assert _http(base + "/feature-views/nan_view/1/vector", {"entry": {"id": 1}}) == (
            200, {"vector": {"id": 1, "amount": None}})
        status, body = _http(base + "/feature-views/nope/1/vector", {"entry": {"id": 1}})
        assert status == 404 and "'nope'" in body["error"]
        status, body = _http(base + "/feature-views/scored/1/vector", {"entry": {"id": 1},
                                                                       "training_dataset_version": 9})
        assert status == 404 and "version 9" in body["error"]
        assert _http(base + "/feature-views/scored/1/vector", {"id": 1})[0] == 400
        assert _http(base + "/feature-views/scored/x/vector", {"entry": {"id": 1}})[0] == 400
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_new_feature_store_on_the_same_registry_reproduces_the_values(store):
    config, fs, _, fv = store
    with FeatureStore(load_config(config, environ={}), "tfs", spark=fs.spark) as again:
        view = again.get_feature_view("scored", 1)
        assert [tf.name for tf in view.transformation_functions] == [tf.name for tf in TRANSFORMS]
        assert frame_rows(view.get_training_data(1)[0]) == frame_rows(fv.get_training_data(1)[0])
        assert view.get_feature_vector({"id": 4}, as_dict=True) == fv.get_feature_vector({"id": 4}, as_dict=True)


def test_splits_fit_on_the_train_split(store):
    _, fs, fg, _ = store
    fv = fs.create_feature_view("split_view", query=fg.select(["id", "ts", "amount", "label"]), labels="label",
                                transformation_functions={"amount": min_max_scaler})  # hsfs's older dict shape
    # train: ids 1-3 (amounts 1, 2, 3: min 1, max 3); test: ids 4, 5, 6, 7
    x_train, x_test, _, _ = fv.train_test_split(train_end=T0 + dt.timedelta(hours=4),
                                                test_start=T0 + dt.timedelta(hours=4))
    want = {1: 0.0, 2: 0.5, 3: 1.0, 4: 1.5, 5: 2.0, 6: None, 7: 4.5}
    assert {r["id"]: r["amount"] for r in x_train.collect()} == {i: want[i] for i in (1, 2, 3)}
    assert {r["id"]: r["amount"] for r in x_test.collect()} == {i: want[i] for i in (4, 5, 6, 7)}
    version, _ = fv.create_train_test_split(train_end=T0 + dt.timedelta(hours=4),
                                            test_start=T0 + dt.timedelta(hours=4))
    assert fv.get_training_dataset(version).transformation_statistics == {"min_max_scaler:amount":
                                                                          {"min": 1.0, "max": 3.0}}
    x_train, x_test, y_train, _ = fv.get_train_test_split(version)
    assert {r["id"]: r["amount"] for r in x_test.collect()} == {i: want[i] for i in (4, 5, 6, 7)}
    assert y_train.columns == ["label"]
    assert fv.get_feature_vector({"id": 7}, as_dict=True)["amount"] == 4.5


def test_user_functions_registered_and_fetched_back_by_name_and_version(store):
    _, fs, fg, _ = store
    first = fs.create_transformation_function(plus, version=1)
    assert first.save() is first and first.version == 1
    second = fs.create_transformation_function(plus).save()
    assert second.version == 2
    fetched = fs.get_transformation_function("plus", 1)
    assert (fetched.name, fetched.version, fetched.return_type) == ("plus", 1, "double")
    assert fetched("amount", "n").call([1.5, 2]) == 3.5 and "amount + n" in fetched.source
    assert fs.get_transformation_function("plus").version == 2
    assert fs.get_transformation_function("min_max_scaler") is min_max_scaler
    names = [(tf.name, tf.version) for tf in fs.get_transformation_functions()]
    assert names[:5] == [(n, 1) for n in ("min_max_scaler", "standard_scaler", "robust_scaler", "label_encoder",
                                           "one_hot_encoder")]
    assert names[5:] == [("plus", 1), ("plus", 2)]
    with pytest.raises(TransformationError, match=r"transformation function 'plus' \(version 7\) not found"):
        fs.get_transformation_function("plus", 7)
    with pytest.raises(TransformationError, match="'nothing' .* not found"):
        fs.get_transformation_function("nothing")
    with pytest.raises(Exception, match="transformation function 'plus' version 1 already exists"):
        fs.create_transformation_function(plus, version=1).save()
    with pytest.raises(TransformationError, match="'min_max_scaler' is a built-in"):
        fs.create_transformation_function(min_max_scaler)
    # a fetched function attached to a view gives the decorated function's values
    fv = fs.create_feature_view("udf_view", query=fg.select(["id", "amount", "n"]),
                                transformation_functions=[fetched("amount", "n").alias("total")])
    rows = {r["id"]: r["total"] for r in fv.get_batch_data().collect()}  # no statistics needed: no dataset
    assert rows == {i: (None if r[0] is None else r[0] + r[3]) for i, r in ROWS.items()} | {7: 11.0}
    assert fv.get_feature_vector({"id": 2}, as_dict=True) == {"id": 2, "amount": 2.0, "n": 20, "total": 22.0}


def test_clear_errors(store):
    _, fs, fg, _ = store
    with pytest.raises(TransformationError, match="'min_max_scaler' reads 'amont', which is not a feature"):
        fs.create_feature_view("bad", query=fg.select(["id", "amount"]),
                               transformation_functions=[min_max_scaler("amont")])
    with pytest.raises(TransformationError, match="feature 'amount' is written by .* 'min_max_scaler' and "
                                                  "'standard_scaler'"):
        fs.create_feature_view("bad", query=fg.select(["id", "amount"]),
                               transformation_functions=[min_max_scaler("amount"), standard_scaler("amount")])
    with pytest.raises(TransformationError, match=r"is not bound to a feature: pass min_max_scaler\(\"<feature>\"\)"):
        fs.create_feature_view("bad", query=fg.select(["id", "amount"]), transformation_functions=[min_max_scaler])
    with pytest.raises(TransformationError, match="takes 2 feature"):
        plus("amount")
    text_view = fs.create_feature_view("text_scaled", query=fg.select(["id", "cat"]),
                                       transformation_functions=[min_max_scaler("cat")])
    with pytest.raises(TransformationError, match="'min_max_scaler' scales numbers, but feature 'cat' is string"):
        text_view.create_training_data()
    unfitted = fs.create_feature_view("unfitted", query=fg.select(["id", "amount"]),
                                      transformation_functions=[robust_scaler("amount")])
    for call in (unfitted.get_batch_data, lambda: unfitted.get_feature_vector({"id": 1})):
        with pytest.raises(TransformationError, match=r"feature view 'unfitted' v1 has no training dataset yet: .*"
                                                      r"robust_scaler\('amount'\)"):
            call()
    failing = fs.create_feature_view("failing", query=fg.select(["id", "amount"]), transformation_functions=[boom])
    with pytest.raises(TransformationError, match=r"'boom' failed on amount=1.0: ValueError: cannot take 1.0 ü"):
        failing.get_feature_vector({"id": 1})
    with pytest.raises(Exception, match="transformation function 'boom' failed on amount="):  # from the executor
        failing.get_batch_data().collect()
    with pytest.raises(TransformationError, match="unsupported return type"):
        udf(list)
    assert json_value([float("nan"), float("inf"), 1.5]) == [None, None, 1.5]
