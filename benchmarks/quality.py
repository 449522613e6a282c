"""Benchmark of the validation engine against hand-written Spark aggregations of the same run.

One command::

    .venv/bin/python benchmarks/quality.py [--rows N] [--runs N]

Data (default 5,000,000 rows, generated with ``spark.range`` and written once to parquet so that
every measurement reads the same files): ``id`` (unique long), ``customer`` (string, 1,000
values), ``country`` (8 values), ``email`` (90% valid), ``amount`` (double, 5% null), ``quantity``
(int, a few negative). Measured, best of ``--runs``:

1. a 10-constraint suite (``verify``) vs ONE plain scan computing the same aggregates by hand
   (``df.agg`` of the same counts/min/max/mean/pattern sums + the same ``groupBy(id)`` for the
   uniqueness); goal <= 1.3x;
2. Deequ itself (``benchmarks/deequ_reference.py`` in ``.venv-reference``: Deequ 2.0.7 on Spark 3.5, the
   nearest served) running the same suite on the same files with the same master, best of ``--runs``;
   goal: ours <= 1.0x Deequ's time; and the suite on a 1,000-row micro-batch, as a streaming insert
   validates each batch, mean of ``--micro-batches``; goal: ours faster (``--no-deequ`` skips both);
3. Great Expectations running the equivalent expectations, if it imports (goal: slower than ours).
   It is not a dependency; to include it: ``pip install --target /tmp/ge great_expectations`` and
   ``--ge-path /tmp/ge``;
4. statistics with histograms and correlations (``compute_statistics``) vs the plain scan.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL_SUITE_RATIO = 1.3
GOAL_DEEQU_RATIO = 1.0
MICRO_ROWS = 1_000
COUNTRIES = ["DE", "FR", "US", "GB", "IN", "BR", "JP", "SE"]


def make_data(spark, rows: int, path: str) -> None:
    from pyspark.sql import functions as F

    df = spark.range(rows).select(
        F.col("id"),
        F.concat(F.lit("customer-"), (F.col("id") % 1000).cast("string")).alias("customer"),
        F.element_at(F.array(*[F.lit(c) for c in COUNTRIES]), (F.col("id") % 8 + 1).cast("int")).alias("country"),
        F.when(F.col("id") % 10 == 0, F.lit("no email")).otherwise(
            F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com"))).alias("email"),
        F.when(F.col("id") % 20 == 0, F.lit(None)).otherwise((F.col("id") * 7 % 1000) / 10.0).alias("amount"),
        F.when(F.col("id") % 997 == 0, F.lit(-1)).otherwise((F.col("id") % 50).cast("int")).alias("quantity"),
    )
    df.write.mode("overwrite").parquet(path)


def suite():
    from featurestore.quality import Check, CheckLevel

    return [Check(CheckLevel.Error, "orders")
            .isComplete("id").isUnique("id").hasCompleteness("amount", ">= 0.9").isNonNegative("quantity")
            .hasMin("amount", ">= 0").hasMax("amount", "<= 1000").hasMean("amount", "between 0 and 100")
            .isContainedIn("country", COUNTRIES).containsEmail("email", ">= 0.85").hasMaxLength("customer", "<= 20")]


def plain_scan(df) -> dict:
    """The same aggregates, written by hand: one scan plus the group-by for uniqueness."""
    from pyspark.sql import functions as F

    from featurestore.quality.checks import EMAIL_PATTERN

    row = df.agg(
        F.count(F.lit(1)), F.sum(F.col("id").isNotNull().cast("long")), F.sum(F.col("amount").isNotNull().cast("long")),
        F.sum(F.when(F.coalesce(F.col("quantity").cast("double"), F.lit(0.0)) >= 0, 1).otherwise(0)),
        F.min("amount"), F.max("amount"), F.avg("amount"),
        F.sum(F.when(F.col("country").isNull() | F.col("country").isin(COUNTRIES), 1).otherwise(0)),
        F.sum(F.when(F.regexp_extract("email", EMAIL_PATTERN, 0) != "", 1).otherwise(0)),
        F.max(F.length("customer")),
    ).collect()[0]
    uniq = df.where(F.col("id").isNotNull()).groupBy("id").count().agg(
        F.count(F.when(F.col("count") == 1, 1)), F.sum("count")).collect()[0]
    return {"scan": list(row), "unique": list(uniq)}


def run_great_expectations(df) -> tuple[float | None, str]:
    """Time GE's equivalent expectations on the same Spark DataFrame, if GE imports."""
    try:
        import great_expectations as gx  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import problem means "not available"
        return None, f"not available ({type(exc).__name__}: {str(exc)[:80]})"
    try:
        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_spark("bench")
        asset = source.add_dataframe_asset("orders")
        batch_def = asset.add_batch_definition_whole_dataframe("all")
        batch = batch_def.get_batch(batch_parameters={"dataframe": df})
        E = gx.expectations
        expectations = [
            E.ExpectColumnValuesToNotBeNull(column="id"), E.ExpectColumnValuesToBeUnique(column="id"),
            E.ExpectColumnValuesToNotBeNull(column="amount", mostly=0.9),
            E.ExpectColumnValuesToBeBetween(column="quantity", min_value=0),
            E.ExpectColumnMinToBeBetween(column="amount", min_value=0),
            E.ExpectColumnMaxToBeBetween(column="amount", max_value=1000),
            E.ExpectColumnMeanToBeBetween(column="amount", min_value=0, max_value=100),
            E.ExpectColumnValuesToBeInSet(column="country", value_set=COUNTRIES),
            E.ExpectColumnValuesToMatchRegex(column="email", regex=r"[A-Za-z0-9._%+-]+@", mostly=0.85),
            E.ExpectColumnValueLengthsToBeBetween(column="customer", max_value=20),
        ]
        suite_ = context.suites.add(gx.ExpectationSuite(name="orders", expectations=expectations))
        start = time.perf_counter()
        batch.validate(suite_)
        return time.perf_counter() - start, "ok"
    except Exception as exc:  # noqa: BLE001 - GE's API moves; report instead of failing the benchmark
        return None, f"failed ({type(exc).__name__}: {str(exc)[:120]})"


def run_deequ(path: str, micro_path: str, args) -> dict:
    """Deequ on the same files, in the reference environment (a separate process: Spark 3.5)."""
    python = ROOT / ".venv-reference" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"quality benchmark: {python} missing; run ./bootstrap.sh (or pass --no-deequ)")
    done = subprocess.run([str(python), str(ROOT / "benchmarks" / "deequ_reference.py"), "--path", path,
                           "--micro-path", micro_path, "--micro-batches", str(args.micro_batches),
                           "--runs", str(args.runs), "--master", args.master, "--driver-memory", args.driver_memory],
                          capture_output=True, text=True, env={**os.environ, "SPARK_VERSION": "3.5"})
    if done.returncode != 0:
        raise SystemExit(f"quality benchmark: Deequ failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--micro-batches", type=int, default=20)
    parser.add_argument("--no-deequ", action="store_true", help="skip Deequ (the reference environment)")
    parser.add_argument("--ge-path", help="a folder with Great Expectations installed (pip install --target), "
                                          "appended to sys.path so our pinned packages still win")
    args = parser.parse_args(argv)
    if args.ge_path:
        sys.path.append(args.ge_path)

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from featurestore.config import load_config
    from featurestore.quality import compute_statistics, verify
    from featurestore.spark import get_session

    spark = get_session(master=args.master, app_name="bench-quality", config=load_config(environ={}),
                        conf={"spark.driver.memory": args.driver_memory, "spark.sql.shuffle.partitions": "8"})
    work = tempfile.mkdtemp(prefix="fs-bench-quality-")
    try:
        path = os.path.join(work, "orders")
        make_data(spark, args.rows, path)
        df = spark.read.parquet(path)
        df.count()  # warm the file listing and the JVM
        t_plain = best_of(args.runs, lambda: plain_scan(df))
        report = None

        def run_suite():
            nonlocal report
            report = verify(df, suite())

        t_suite = best_of(args.runs, run_suite)
        t_stats = best_of(args.runs, lambda: compute_statistics(df, {"histograms": True, "correlations": True}))
        micro_path = os.path.join(work, "micro")
        make_data(spark, MICRO_ROWS, micro_path)
        micro = spark.read.parquet(micro_path).cache()
        micro.count()
        verify(micro, suite())  # the first batch of a stream pays the set-up; measure the steady state
        start = time.perf_counter()
        for _ in range(args.micro_batches):
            verify(micro, suite())
        t_micro = (time.perf_counter() - start) / args.micro_batches
        deequ = None if args.no_deequ else run_deequ(path, micro_path, args)
        t_ge, ge_note = run_great_expectations(df)
        load = os.getloadavg()[0]
        print(f"\nquality benchmark: {args.rows:,} rows, master {args.master}, best of {args.runs}, "
              f"load average {load:.1f}")
        print(f"suite status: {report.status}; failures: {[r.constraint for r in report.failures]}")
        rows = [
            ("10-constraint suite (verify)", t_suite, "plain scan, same aggregates", t_plain,
             f"<= {GOAL_SUITE_RATIO}x", t_suite / t_plain <= GOAL_SUITE_RATIO),
            ("statistics, histograms + correlations", t_stats, "plain scan, same aggregates", t_plain, "-", None),
        ]
        if deequ is not None:
            print(f"Deequ {deequ['spark']} (reference environment) suite status: {deequ['status']}")
            rows.append(("10-constraint suite (verify)", t_suite, "Deequ, same suite and files", deequ["suite_s"],
                         f"<= {GOAL_DEEQU_RATIO}x", t_suite / deequ["suite_s"] <= GOAL_DEEQU_RATIO))
            rows.append((f"suite on a {MICRO_ROWS:,}-row micro-batch", t_micro, "Deequ, same batch",
                         deequ["micro_s"], "faster", t_micro < deequ["micro_s"]))
        if t_ge is not None:
            rows.append(("10-constraint suite (verify)", t_suite, "Great Expectations, same suite", t_ge,
                         "faster", t_suite < t_ge))
        print(f"\n| {'measurement':<40} | {'ours (s)':>9} | {'baseline':<32} | {'baseline (s)':>12} | "
              f"{'ratio':>6} | {'goal':<7} | met |")
        print("|" + "|".join("-" * w for w in (42, 11, 34, 14, 8, 9, 5)) + "|")
        for name, ours, base_name, base, goal, met in rows:
            verdict = "-" if met is None else ("yes" if met else "no")
            print(f"| {name:<40} | {ours:>9.2f} | {base_name:<32} | {base:>12.2f} | {ours / base:>5.2f}x | "
                  f"{goal:<7} | {verdict:<3} |")
        if t_ge is None:
            print(f"\nGreat Expectations: {ge_note}")
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
