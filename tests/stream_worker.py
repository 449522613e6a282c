"""Run by test_streaming.py in a subprocess: stream JSON files into a feature group until the input
is drained (availableNow). With ``--kill-after-commit-of-batch N`` the process SIGKILLs itself right
after micro-batch N reached the Hudi timeline, before Spark commits its checkpoint — the window in
which a replay would commit the batch twice without our batch-id check.

    python tests/stream_worker.py <warehouse> <input dir> <checkpoint> [--kill-after-commit-of-batch N]
"""

from __future__ import annotations

import argparse
import os
import signal

from featurestore import FeatureStore, ingestion
from featurestore.config import load_config
from featurestore.spark import get_session
from featurestore.streaming import BATCH_ID_KEY

SCHEMA = "user_id int, clicks long, ts timestamp"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("warehouse")
    parser.add_argument("input")
    parser.add_argument("checkpoint")
    parser.add_argument("--kill-after-commit-of-batch", type=int)
    args = parser.parse_args()
    if args.kill_after_commit_of_batch is not None:
        original = ingestion.insert

        def insert_then_die(*a, **kw):
            result = original(*a, **kw)
            batch = (kw.get("commit_metadata") or {}).get(BATCH_ID_KEY)
            if batch == str(args.kill_after_commit_of_batch):
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        # the streaming writer calls ingestion.insert through the module, so the patch reaches it
        ingestion.insert = insert_then_die
    spark = get_session(master="local[1]", config=load_config(environ={}),
                        conf={"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"})
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": args.warehouse}), spark=spark)
    fg = fs.get_feature_group("clicks_stream")
    source = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(args.input)
    query = fg.insert_stream(source, args.checkpoint, trigger={"availableNow": True})
    query.awaitTermination()
    print("stream drained", flush=True)


if __name__ == "__main__":
    main()
