"""Deequ itself on the quality benchmark's data: run by ``benchmarks/quality.py`` in the reference
environment (``.venv-reference``: pyspark 3.5 with Deequ 2.0.7, the nearest Deequ served for a Spark we
can run; see docs/offline-store.md), never imported by the feature store.

    .venv-reference/bin/python benchmarks/deequ_reference.py --path P [--micro-path M] [--runs N] [--master local[2]]

Reads the parquet files ``benchmarks/quality.py`` wrote, runs the same 10-constraint suite through
Deequ's VerificationSuite (built with pydeequ) best of ``--runs``, and the suite on the micro-batch
files ``--micro-batches`` times; prints one JSON line with the times and Deequ's status.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COUNTRIES = ["DE", "FR", "US", "GB", "IN", "BR", "JP", "SE"]


def session(master: str, driver_memory: str):
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(os.path.join(HERE, "..", "reference", "jars", "*.jar")))
    if not any("deequ" in j for j in jars):
        raise SystemExit("deequ_reference: no Deequ jar in reference/jars; run ./bootstrap.sh")
    spark = (SparkSession.builder.master(master).appName("bench-deequ").config("spark.jars", ",".join(jars))
             .config("spark.driver.memory", driver_memory).config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "8").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def check(spark):
    """The benchmark's suite in Deequ's API (the same constraints and thresholds as ``quality.suite``)."""
    from pydeequ.checks import Check, CheckLevel

    return (Check(spark, CheckLevel.Error, "orders")
            .isComplete("id").isUnique("id").hasCompleteness("amount", lambda v: v >= 0.9)
            .isNonNegative("quantity").hasMin("amount", lambda v: v >= 0).hasMax("amount", lambda v: v <= 1000)
            .hasMean("amount", lambda v: 0 <= v <= 100).isContainedIn("country", COUNTRIES)
            .containsEmail("email", lambda v: v >= 0.85).hasMaxLength("customer", lambda v: v <= 20))


def verify(spark, df) -> str:
    from pydeequ.verification import VerificationSuite

    return VerificationSuite(spark).onData(df).addCheck(check(spark)).run().status


def main() -> int:
    os.environ.setdefault("SPARK_VERSION", "3.5")
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--micro-path")
    parser.add_argument("--micro-batches", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    args = parser.parse_args()
    spark = session(args.master, args.driver_memory)
    out = sys.stdout
    sys.stdout = sys.stderr  # only the JSON line goes to stdout
    df = spark.read.parquet(args.path)
    df.count()  # warm the file listing and the JVM, as the caller does for ours
    times, status = [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        status = verify(spark, df)
        times.append(time.perf_counter() - start)
    result = {"suite_s": min(times), "status": status, "spark": spark.version}
    if args.micro_path:
        micro = spark.read.parquet(args.micro_path).cache()
        micro.count()
        verify(spark, micro)  # the first call pays pydeequ's set-up, as a stream's first batch does
        start = time.perf_counter()
        for _ in range(args.micro_batches):
            verify(spark, micro)
        result["micro_s"] = (time.perf_counter() - start) / args.micro_batches
    spark.stop()
    out.write(json.dumps(result) + "\n")
    out.flush()
    # pydeequ's assertions started py4j's callback server, whose thread would keep the process alive
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
