"""A writer SIGKILLed at any stage leaves readers on the previous commit; the next write rolls
the unfinished instant back, as Hudi records it, and loses or duplicates nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hudi_helpers import hudi_rs, rows_of_arrow, rows_of_spark

from featurestore import hudi

SCHEMA = "id int, region string, v double, ts timestamp, name string"
OPTS = {"hoodie.table.name": "faults", "hoodie.datasource.write.recordkey.field": "id",
        "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts"}
COLS = ["id", "region", "v", "name"]
SCRIPT = Path(__file__).with_name("fault_writer.py")


@pytest.mark.parametrize("stage", ["files", "inflight", "commit"])
def test_killed_writer_leaves_previous_state_and_next_write_rolls_back(spark, tmp_path, stage):
    path = str(tmp_path / "faults")
    ts = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    seed = [(i, "a" if i % 2 else "b", float(i), ts, "seed") for i in range(6)]
    base = hudi.write(spark.createDataFrame(seed, SCHEMA), path, OPTS)
    before = rows_of_spark(hudi.read(spark, path), COLS)

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, str(SCRIPT), path, stage], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]
    hoodie = Path(path, ".hoodie")
    pending = [n for n in os.listdir(hoodie)
               if n.endswith((".inflight", ".requested")) and not n.startswith(base.instant_time)]
    assert pending, "the killed write should have left an unfinished instant"
    killed = pending[0].split(".")[0]
    if stage in ("files", "commit"):
        assert any(killed in n for _, _, names in os.walk(path) for n in names if n.endswith(".parquet"))

    # readers see exactly the previous commit
    assert rows_of_spark(hudi.read(spark, path), COLS) == before
    assert rows_of_arrow(hudi_rs(path), COLS) == before

    # the next write rolls the killed instant back and succeeds
    result = hudi.write(spark.createDataFrame([(1, "a", 11.0, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "next")],
                                              SCHEMA), path, OPTS)
    assert result.rolled_back == (killed,)
    assert not any(killed in n for _, _, names in os.walk(path) for n in names if n.endswith(".parquet"))
    names = os.listdir(hoodie)
    assert not any(n.startswith(killed) for n in names)
    assert any(n.endswith(".rollback") for n in names)
    expected = sorted([r for r in before if r[0] != 1] + [(1, "a", 11.0, "next")], key=repr)
    assert rows_of_spark(hudi.read(spark, path), COLS) == expected
    assert rows_of_arrow(hudi_rs(path), COLS) == expected
