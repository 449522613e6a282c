"""Acceptance: the Hopsworks fraud-batch tutorial pipeline, written with the hsfs calls that tutorial uses, runs
against our API, and its training rows are point-in-time correct (checked against rows worked out by hand).

Differences from the tutorial, on purpose: small hand-made data instead of its CSV files, ``online_enabled=True``
on both feature groups (the tutorial's batch pipeline has no online part; the acceptance asks for feature
vectors too) and no transformation functions (another piece of work). ``fs`` is ``featurestore.connect(...)``
where the tutorial has ``hopsworks.login().get_feature_store()``.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

import featurestore
from featurestore.config import load_config

T0 = dt.datetime(2024, 3, 1)


def h(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# transactions: several per card in one insert; with primary key cc_num the feature group keeps the newest
# event of each card (t2, t3, t4, t5, t6), as Hudi's upsert on the tutorial's key does
TRANSACTIONS = pd.DataFrame({
    "tid": ["t1", "t2", "t3", "t4", "t5", "t6"],
    "datetime": pd.to_datetime([h(1), h(5), h(3), h(2), h(6), h(4)]),
    "cc_num": [1001, 1001, 1002, 1003, 1004, 1005],
    "category": ["Grocery", "Electronics", "Restaurant", "Health/Beauty", "Clothing", None],
    "amount": [12.5, 900.0, 40.0, 7.0, 55.5, 3.0],
    "latitude": [0.85, 0.79, 1.04, 0.83, -0.41, 0.88],
    "longitude": [0.04, 0.08, 0.19, 0.15, -0.81, 0.53],
    "city": ["Paris", "Lyon", "Oslo", "Zürich", "São Paulo", "Kyiv"],
    "country": ["FR", "FR", "NO", "CH", "BR", "UA"],
    "fraud_label": [0, 1, 0, 0, 1, 0],
    "age_at_transaction": [31.5, 31.5, 45.0, 60.25, 22.0, 70.0],
    "days_until_card_expires": [400.0, 399.8, 20.0, 100.0, 5.0, 900.0],
    "loc_delta": [0.0, 0.07, 0.0, 0.01, 0.5, 0.0],
})
AGG_COLUMNS = ["datetime", "cc_num", "loc_delta_mavg", "trans_freq", "trans_volume_mavg", "trans_volume_mstd"]
# window aggregates: 1001's h0 row loses to its h4 row in the same batch; 1002's only row (h4) is newer than its
# transaction (h3); 1004's row is at exactly its transaction's time; 1005 has none; 1006 has no transaction
WINDOW_AGGS = pd.DataFrame([(h(0), 1001, 0.0, 1.0, 12.5, 0.0), (h(4), 1001, 0.03, 2.0, 456.25, 627.8),
                            (h(4), 1002, 0.0, 1.0, 40.0, 0.0), (h(1), 1003, 0.01, 1.0, 7.0, 0.0),
                            (h(6), 1004, 0.5, 1.0, 55.5, 0.0), (h(2), 1006, 0.2, 3.0, 10.0, 1.0)],
                           columns=AGG_COLUMNS)
# a later batch: 1001's window at h5 (exactly its transaction's time) replaces h4; a late h0 row of 1004 is
# older than the stored h6 one and changes nothing
LATER_AGGS = pd.DataFrame([(h(5), 1001, 0.05, 2.0, 456.25, 627.8), (h(0), 1004, 9.9, 9.0, 9.9, 9.9)],
                          columns=AGG_COLUMNS)

FEATURES = ["category", "amount", "age_at_transaction", "days_until_card_expires", "loc_delta", "datetime",
            "loc_delta_mavg", "trans_freq", "trans_volume_mavg", "trans_volume_mstd"]
# the training rows worked out by hand: each card's kept transaction with the card's window aggregate of the
# newest event time at or before the transaction's (None where there is none): features..., fraud_label
NO_AGGS = (None, None, None, None, None)
TRAINING = {
    900.0: ("Electronics", 900.0, 31.5, 399.8, 0.07, h(5), 0.05, 2.0, 456.25, 627.8, 1),   # 1001: h5 <= h5
    40.0: ("Restaurant", 40.0, 45.0, 20.0, 0.0, *NO_AGGS, 0),                              # 1002: h4 > h3
    7.0: ("Health/Beauty", 7.0, 60.25, 100.0, 0.01, h(1), 0.01, 1.0, 7.0, 0.0, 0),        # 1003: h1 <= h2
    55.5: ("Clothing", 55.5, 22.0, 5.0, 0.5, h(6), 0.5, 1.0, 55.5, 0.0, 1),               # 1004: h6 <= h6
    3.0: (None, 3.0, 70.0, 900.0, 0.0, *NO_AGGS, 0),                                      # 1005: no aggregates
}


def plain(value):
    """pandas' NaN/NaT as None and Timestamps as datetimes, for comparing with the hand-computed rows."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def training_rows(x: pd.DataFrame, y: pd.DataFrame) -> dict[float, tuple]:
    assert list(x.columns) == FEATURES and list(y.columns) == ["fraud_label"]
    got = {}
    for features, label in zip(x.itertuples(index=False), y.itertuples(index=False), strict=True):
        row = tuple(plain(v) for v in features) + (plain(label[0]),)
        got[row[1]] = row
    assert len(got) == len(x)  # amounts are distinct: no row was repeated
    return got


@pytest.fixture
def fs(spark, tmp_path):
    store = featurestore.connect(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}),
                                 spark=spark)
    yield store
    store.close()


def test_fraud_batch_tutorial(fs, capsys):
    # -- part 1: feature pipeline ----------------------------------------------------------------
    trans_fg = fs.get_or_create_feature_group(
        name="transactions_fraud_batch_fg",
        version=1,
        description="Transaction data",
        primary_key=["cc_num"],
        event_time="datetime",
        online_enabled=True,
    )
    trans_fg.insert(TRANSACTIONS)
    feature_descriptions = [
        {"name": "tid", "description": "Transaction id"},
        {"name": "datetime", "description": "Transaction time"},
        {"name": "loc_delta", "description": "Haversine distance to the previous transaction of the card"},
    ]
    for desc in feature_descriptions:
        trans_fg.update_feature_description(desc["name"], desc["description"])

    window_len = "4h"
    window_aggs_fg = fs.get_or_create_feature_group(
        name=f"transactions_{window_len}_aggs_fraud_batch_fg",
        version=1,
        description=f"Aggregate transaction data over {window_len} windows.",
        primary_key=["cc_num"],
        event_time="datetime",
        online_enabled=True,
    )
    window_aggs_fg.insert(WINDOW_AGGS)
    window_aggs_fg.insert(LATER_AGGS)

    # -- part 2: training pipeline ---------------------------------------------------------------
    trans_fg = fs.get_feature_group("transactions_fraud_batch_fg", version=1)
    window_aggs_fg = fs.get_feature_group("transactions_4h_aggs_fraud_batch_fg", version=1)
    assert trans_fg.get_feature("loc_delta").description.startswith("Haversine")
    query = trans_fg.select(["fraud_label", "category", "amount", "age_at_transaction", "days_until_card_expires",
                             "loc_delta"]).join(window_aggs_fg.select_except(["cc_num"]))
    query.show(5)
    assert "trans_volume_mstd" in capsys.readouterr().out
    feature_view = fs.get_or_create_feature_view(
        name="transactions_view_fraud_batch_fv",
        version=1,
        query=query,
        labels=["fraud_label"],
    )
    assert feature_view.features == FEATURES and feature_view.labels == ["fraud_label"]
    # the query itself: one row per kept transaction, point-in-time correct
    rows = {r["amount"]: tuple(r[c] for c in FEATURES) + (r["fraud_label"],) for r in query.read().collect()}
    assert rows == TRAINING

    # in memory: (X, y) and a split by fraction
    assert training_rows(*feature_view.training_data(dataframe_type="pandas")) == TRAINING
    X_train, X_test, y_train, y_test = feature_view.train_test_split(test_size=0.2)
    assert X_train.columns == FEATURES and y_train.columns == ["fraud_label"]
    assert X_train.count() + X_test.count() == len(TRAINING) == y_train.count() + y_test.count()
    X_train, X_test, y_train, y_test = feature_view.train_test_split(test_size=0.2, dataframe_type="pandas")
    train, test = training_rows(X_train, y_train), training_rows(X_test, y_test)
    assert {**train, **test} == TRAINING and not set(train) & set(test)

    # materialized, as the tutorial does it (csv; the Hopsworks job option is accepted and ignored)
    td_version, td_job = feature_view.create_train_test_split(
        description="transactions fraud batch training dataset",
        data_format="csv",
        test_size=0.2,
        write_options={"wait_for_job": True},
    )
    assert td_job is None
    X_train, X_test, y_train, y_test = feature_view.get_train_test_split(td_version)
    assert X_train.count() + X_test.count() == len(TRAINING)
    X_train, X_test, y_train, y_test = feature_view.get_train_test_split(td_version, dataframe_type="pandas")
    train, test = training_rows(X_train, y_train), training_rows(X_test, y_test)
    assert {**train, **test} == TRAINING and not set(train) & set(test)
    X_train = X_train.sort_values("datetime")
    y_train = y_train.reindex(X_train.index)
    X_train.drop(["datetime"], axis=1, inplace=True)
    assert "datetime" not in X_train.columns and len(y_train) == len(train)

    # -- part 3: batch inference and serving -----------------------------------------------------
    feature_view = fs.get_feature_view(name="transactions_view_fraud_batch_fv", version=1)
    feature_view.init_batch_scoring(1)
    batch_data = feature_view.get_batch_data(dataframe_type="pandas")
    batch_data.drop(["datetime"], axis=1, inplace=True)
    assert sorted(batch_data.amount) == sorted(TRAINING)

    feature_view.init_serving(1)
    # online: the newest row of each feature group for the key (serving has no point in time)
    vector = feature_view.get_feature_vector({"cc_num": 1002})
    assert vector == ["Restaurant", 40.0, 45.0, 20.0, 0.0, h(4), 0.0, 1.0, 40.0, 0.0]
    vectors = feature_view.get_feature_vectors(entry=[{"cc_num": 1001}, {"cc_num": 1006}, {"cc_num": 9999}])
    assert vectors == [["Electronics", 900.0, 31.5, 399.8, 0.07, h(5), 0.05, 2.0, 456.25, 627.8],
                       [None, None, None, None, None, h(2), 0.2, 3.0, 10.0, 1.0],
                       [None] * len(FEATURES)]

    # -- a card's transactions deleted ------------------------------------------------------------
    trans_fg.commit_delete(pd.DataFrame({"cc_num": [1003]}))
    without = {k: v for k, v in TRAINING.items() if k != 7.0}
    assert training_rows(*feature_view.training_data(dataframe_type="pandas")) == without
    assert feature_view.get_feature_vector({"cc_num": 1003}) == [None] * 5 + [h(1), 0.01, 1.0, 7.0, 0.0]
    # the materialized split keeps the rows it was made from
    X_train, X_test, y_train, y_test = feature_view.get_train_test_split(td_version, dataframe_type="pandas")
    assert {**training_rows(X_train, y_train), **training_rows(X_test, y_test)} == TRAINING
