"""Hudi tables written and read by jobs on the standalone cluster (executors in their own JVMs)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from hudi_helpers import hudi_rs, rows_of_arrow, rows_of_spark

from featurestore import hudi

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "id int, region string, v double, ts timestamp, name string"
OPTS = {"hoodie.table.name": "clustered", "hoodie.datasource.write.recordkey.field": "id",
        "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts"}


def submit(cluster, job: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(REPO_ROOT / "spark-submit.sh"), "--master", cluster.master_url,
                           str(REPO_ROOT / "jobs" / job), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.cluster
def test_cluster_jobs_write_and_read_hudi(spark, cluster, tmp_path):
    table = str(tmp_path / "table")
    ts = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    hudi.write(spark.createDataFrame([(i, f"r{i % 2}", float(i), ts, "local") for i in range(8)], SCHEMA), table, OPTS)
    source = str(tmp_path / "batch")
    spark.createDataFrame([(1, "r1", 10.0, ts + dt.timedelta(days=1), "cluster"),
                           (50, "r0", 5.0, ts, "cluster")], SCHEMA).write.parquet(source)
    opts = [f"--option={k}={v}" for k, v in OPTS.items()]
    done = submit(cluster, "hudi_write.py", "--source", source, "--table", table, *opts)
    commit = json.loads(done.stdout.strip().splitlines()[-1])
    assert (commit["inserted"], commit["updated"]) == (1, 1)

    expected = sorted([(i, f"r{i % 2}", float(i), "local") for i in range(8) if i != 1]
                      + [(1, "r1", 10.0, "cluster"), (50, "r0", 5.0, "cluster")], key=repr)
    cols = ["id", "region", "v", "name"]
    assert rows_of_spark(hudi.read(spark, table), cols) == expected
    assert rows_of_arrow(hudi_rs(table), cols) == expected

    out = str(tmp_path / "export")
    submit(cluster, "hudi_read.py", "--table", table, "--output", out, "--format", "json", "--no-meta")
    assert rows_of_spark(spark.read.json(out), cols) == expected
