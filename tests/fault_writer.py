"""Run by test_hudi_faults.py in a subprocess: one upsert that is SIGKILLed at a chosen stage.

    python tests/fault_writer.py <table path> <stage>     stage: files | inflight | commit
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys

from featurestore import hudi
from featurestore.config import load_config
from featurestore.hudi import writer
from featurestore.spark import get_session


def kill_self(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    path, stage = sys.argv[1], sys.argv[2]
    driver = os.getpid()
    if stage == "files":
        original = writer.make_write_function

        def patched(ctx):
            fn = original(ctx)

            def wrapped(batches):
                for out in fn(batches):  # the task's files are on disk: kill the driver now
                    os.kill(driver, signal.SIGKILL)
                    yield out

            return wrapped

        writer.make_write_function = patched
    elif stage == "inflight":
        writer._Plan._rows = kill_self
    elif stage == "commit":
        writer.actions.complete_instant = kill_self
    spark = get_session(master="local[1]", config=load_config(environ={}),
                        conf={"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"})
    ts = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    rows = [(1, "a", 99.0, ts, "killed"), (500, "b", 5.0, ts, "killed")]
    df = spark.createDataFrame(rows, "id int, region string, v double, ts timestamp, name string")
    hudi.write(df, path, {"hoodie.table.name": "faults", "hoodie.datasource.write.recordkey.field": "id",
                          "hoodie.datasource.write.partitionpath.field": "region",
                          "hoodie.datasource.write.precombine.field": "ts"})
    print("write finished: the fault was not injected", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
