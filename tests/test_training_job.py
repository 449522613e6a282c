"""jobs/create_training_dataset.py on the standalone cluster, from the YAML definition in conf/."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config

T0 = dt.datetime(2024, 3, 1)


@pytest.mark.cluster
def test_create_training_dataset_job_on_cluster(spark, tmp_path, cluster):
    repo = Path(__file__).resolve().parent.parent
    config = tmp_path / "fs.yaml"
    config.write_text(f"warehouse: {tmp_path / 'warehouse'}\n")
    fs = FeatureStore(load_config(config, environ={}), spark=spark)
    fg = fs.create_feature_group("user_clicks", version=1, primary_key=["user_id"], event_time="ts")
    fg.insert(spark.createDataFrame([(u, "eu", u * 10, u / 10, T0) for u in range(1, 11)],
                                    "user_id int, region string, clicks long, score double, ts timestamp"))
    spine_path = tmp_path / "spine"
    spine = [(u, T0 + dt.timedelta(days=1), u % 2) for u in range(1, 13)] + [(1, T0 - dt.timedelta(days=1), 0)]
    spark.createDataFrame(spine, "user_id int, ts timestamp, churned int").write.parquet(str(spine_path))

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(repo / "spark-submit.sh"), "--master", cluster.master_url,
                               str(repo / "jobs" / "create_training_dataset.py"), "--config", str(config), *extra],
                              capture_output=True, text=True, timeout=600, cwd=repo)

    done = run("--definition", "conf/training_datasets/churn.yaml", "--spine", str(spine_path))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    name, version, location = done.stdout.strip().splitlines()[-1].split(" ", 2)
    assert (name, version) == ("churn", "1")
    td = fs.get_training_dataset("churn", 1)
    assert td.location == location and td.label == ["churned"] and td.features == ["clicks", "score"]
    assert td.commits == {"user_clicks_1": next(iter(fg.commit_details()))}
    got = sorted((r.user_id, r.ts, r.churned, r.clicks) for r in td.read().collect())
    expected = sorted([(u, T0 + dt.timedelta(days=1), u % 2, u * 10 if u <= 10 else None) for u in range(1, 13)]
                      + [(1, T0 - dt.timedelta(days=1), 0, None)])
    assert got == expected
    assert td.row_counts["train"] + td.row_counts["test"] == 13
    # the same version again: refused, nothing changed
    again = run("--definition", "conf/training_datasets/churn.yaml", "--spine", str(spine_path))
    assert again.returncode == 1
    assert "create_training_dataset: error: training dataset 'churn' version 1 already exists" in (
        again.stdout + again.stderr)
    # from a feature view: the view gives the name, the features and the labels
    fs.create_feature_view("churn", query=fg.select(["clicks", "score"]), labels="churned")
    from_view = run("--definition", "conf/training_datasets/churn_view.yaml", "--spine", str(spine_path))
    assert from_view.returncode == 0, (from_view.stdout + from_view.stderr)[-3000:]
    assert from_view.stdout.strip().splitlines()[-1].split(" ")[:2] == ["churn_v1", "1"]
    view_td = fs.get_training_dataset("churn_v1", 1)
    assert view_td.feature_view == {"name": "churn", "version": 1} and view_td.label == ["churned"]
    assert view_td.features == ["clicks", "score"]
    assert sorted((r.user_id, r.ts, r.churned, r.clicks) for r in view_td.read().collect()) == expected  # no ttl
    missing = run("--definition", "conf/training_datasets/nope.yaml")
    assert missing.returncode == 1 and "no training dataset definition at conf/training_datasets/nope.yaml" in (
        missing.stdout + missing.stderr)
