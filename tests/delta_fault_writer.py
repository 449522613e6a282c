"""Run by test_delta_faults.py in a subprocess: one upsert into the Delta feature group ``orders`` v1 of the
warehouse given, SIGKILLed (the JVM, then this process) at a chosen stage.

    python tests/delta_fault_writer.py <warehouse> <stage>

Stages: ``files`` (the MERGE has started writing data files into the table folder; its Delta log entry
is not written), ``commit`` (the log entry ``_delta_log/<version>.json`` is there; nothing after it ran:
no checksum file, no registry write, no statistics).

delta-spark runs in the JVM, so the kill cannot be placed by patching Python: a watcher thread polls the
table folder while the driver waits on the MERGE and kills the JVM the moment the marked file appears
(the local-mode JVM runs the driver and the executors; it would otherwise outlive this process and
finish the commit). Exit code 3 if the write finished without the fault.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.spark import get_session

#: the killed batch: ids KILLED_IDS (half of them stored), written at KILLED_DAY
KILLED_IDS = range(500, 1500)
KILLED_DAY = 20
POLL_SECONDS = 0.0005


def killed_batch(spark):
    """The batch the killed writer upserts (the test computes the same rows in Python)."""
    from pyspark.sql import functions as F

    return spark.range(KILLED_IDS.start, KILLED_IDS.stop).select(
        F.col("id").cast("int").alias("order_id"),
        (F.col("id") + 0.5).alias("amount"),
        F.concat(F.lit("killed ü "), F.col("id").cast("string")).alias("name"),
        F.make_timestamp(F.lit(2024), F.lit(1), F.lit(KILLED_DAY), F.lit(0), F.lit(0), F.lit(0)).alias("ts"))


def data_files(folder: str) -> set[str]:
    """Parquet files under ``folder`` outside the Delta log (relative paths; change-feed files included,
    checksum files not)."""
    found = set()
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "_delta_log"]
        found.update(os.path.relpath(os.path.join(dirpath, n), folder) for n in names if n.endswith(".parquet"))
    return found


def kill_all(jvm_pid: int) -> None:
    os.kill(jvm_pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def watch(jvm_pid: int, marked: Callable[[], bool]) -> None:
    """Poll until ``marked()`` holds, then kill the JVM and this process."""
    while not marked():
        time.sleep(POLL_SECONDS)
    kill_all(jvm_pid)


def main() -> None:
    warehouse, stage = sys.argv[1], sys.argv[2]
    # AQE off: the MERGE's shuffle keeps its 4 partitions, so its data files are written one after the other
    # (local[1]) and the first one appears well before the log entry
    spark = get_session(master="local[1]", config=load_config(environ={}),
                        conf={"spark.sql.shuffle.partitions": "4", "spark.sql.adaptive.enabled": "false",
                              "spark.ui.enabled": "false"})
    jvm_pid = spark.sparkContext._gateway.proc.pid
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": warehouse}), spark=spark)
    fg = fs.get_feature_group("orders", 1)
    table = Path(fg.location)
    batch = killed_batch(spark)
    if stage == "files":
        before = data_files(str(table))

        def marked() -> bool:
            return bool(data_files(str(table)) - before)
    elif stage == "commit":
        log = table / "_delta_log"
        version = max(int(p.name.split(".")[0]) for p in log.glob("*.json"))
        entry = log / f"{version + 1:020d}.json"

        def marked() -> bool:
            return entry.exists()
    else:
        raise SystemExit(f"unknown stage {stage!r}: files or commit")
    threading.Thread(target=watch, args=(jvm_pid, marked), daemon=True).start()
    fg.insert(batch)
    time.sleep(2)  # the watcher may still be about to fire on the file the write just made
    print("write finished: the fault was not injected", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
