"""Benchmark of the point-in-time join against a naive range join + window, in the same run.

One command::

    .venv/bin/python benchmarks/pit_join.py [--spine 1000000] [--keys 1000000] [--versions 3] [--large 10000000]

Default scale (the spec): a spine of 1,000,000 rows and 3 feature groups of keys x versions = 3,000,000 rows
each (1,000,000 keys, 3 versions per key), then a spine of ``--large`` rows (10,000,000) with the sort-and-
carry-forward join only, to show how it scales. Data comes from ``spark.range`` and is written once as
parquet under a temporary folder (removed at the end); each measurement runs in its own Spark session
(a fresh process: the peak memory is that run's alone) and forces the whole result with the ``noop`` sink,
twice: *cold* is the first query of the fresh JVM (it pays class loading, JIT and code generation, several
seconds that do not grow with the data), *warm* the same join again in that process.

* ``pit``: :func:`featurestore.query.pit.pit_join`, the algorithm behind ``fs.get_training_data``
  (run on the parquet files directly, so the figure is the join, not the Hudi read);
* ``naive``: per feature group, ``spine LEFT JOIN features ON key = key AND f.ts <= s.ts`` followed by
  ``row_number() OVER (PARTITION BY spine row ORDER BY f.ts DESC) = 1``.

Both results are checked equal (an order-independent checksum of every row). Peak memory is the
peak resident set (VmHWM) of the Spark JVM plus the Python driver of each run.
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

GOAL_SPEEDUP = 3.0
GROUPS = 3


def session(driver_memory: str):
    """A local Spark session for one measurement."""
    from featurestore.config import load_config
    from featurestore.spark import get_session

    return get_session(master=os.environ.get("BENCH_MASTER", "local[*]"), app_name="pit-bench",
                       config=load_config(environ={}),
                       conf={"spark.driver.memory": driver_memory, "spark.sql.shuffle.partitions": "64"})


def generate(folder: str, spine_rows: int, keys: int, versions: int, large: int, driver_memory: str) -> None:
    """Write the feature groups and spines as parquet."""
    spark = session(driver_memory)
    write_data(spark, folder, spine_rows, keys, versions, large)
    spark.stop()


def write_data(spark, folder: str, spine_rows: int, keys: int, versions: int, large: int) -> None:
    """The feature groups ``fg<g>`` and the spines of one data set under ``folder``."""
    from pyspark.sql import functions as F

    base = 1_700_000_000
    for g in range(GROUPS):
        # version v of key k: an event every ~10 days, jittered per key and group
        df = spark.range(keys * versions).select(
            (F.col("id") % keys).alias("key"),
            F.timestamp_seconds(F.lit(base) + (F.col("id") / keys).cast("long") * 864_000
                                + F.pmod(F.xxhash64("id", F.lit(g)), F.lit(800_000))).alias("ts"),
            (F.rand(seed=g) * 100).alias(f"f{g}_a"), F.pmod(F.col("id"), F.lit(97)).alias(f"f{g}_b"))
        df.write.parquet(f"{folder}/fg{g}")
    for name, n in (("spine", spine_rows), ("spine_large", large)):
        if n <= 0:
            continue
        spark.range(n).select(
            F.col("id").alias("rid"), F.pmod(F.xxhash64("id", F.lit(99)), F.lit(keys)).alias("key"),
            F.timestamp_seconds(F.lit(base) + F.pmod(F.xxhash64("id", F.lit(7)), F.lit(864_000 * (versions + 1))))
            .alias("ts"), (F.col("id") % 2).cast("int").alias("label")).write.parquet(f"{folder}/{name}")


def run_one(folder: str, method: str, spine_name: str, driver_memory: str) -> dict:
    """One measurement in this process: wall time, peak memory, checksum."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from featurestore.query.pit import FeatureSource, pit_join

    spark = session(driver_memory)
    spine = spark.read.parquet(f"{folder}/{spine_name}")
    groups = [spark.read.parquet(f"{folder}/fg{g}") for g in range(GROUPS)]

    def build():
        if method == "floor":
            # the floor of any sort-based point-in-time join of these rows: spine and feature rows
            # together, shuffled and sorted by entity key and time (no carry-forward, no output shape)
            parts = [spine.select("key", "ts", F.lit(-1).alias("src"))]
            parts += [df.select("key", "ts", F.lit(g).alias("src")) for g, df in enumerate(groups)]
            union = parts[0]
            for part in parts[1:]:
                union = union.unionByName(part)
            return union.repartition("key").sortWithinPartitions("key", "ts", "src")
        if method == "pit":
            sources = [FeatureSource(f"fg{g}", df, ("key",), "ts",
                                     ((f"f{g}_a", f"f{g}_a"), (f"f{g}_b", f"f{g}_b")))
                       for g, df in enumerate(groups)]
            return pit_join(spine, "ts", sources)
        out = spine
        for g, df in enumerate(groups):
            f = df.select(F.col("key").alias("fkey"), F.col("ts").alias("fts"), f"f{g}_a", f"f{g}_b")
            joined = out.join(f, (out.key == f.fkey) & (f.fts <= out.ts), "left")
            w = Window.partitionBy("rid").orderBy(F.col("fts").desc_nulls_last())
            out = (joined.withColumn("rn", F.row_number().over(w)).where("rn = 1")
                   .drop("rn", "fkey", "fts"))
        return out

    walls = []
    for _ in range(2):  # cold: the first query of a fresh JVM (class loading, JIT); warm: the same again
        start = time.perf_counter()
        out = build()
        out.write.format("noop").mode("overwrite").save()
        walls.append(time.perf_counter() - start)
    cols = list(out.columns)
    checksum = out.select(F.sum(F.xxhash64(*[F.col(c) for c in cols]) % 1_000_003).alias("s"),
                          F.count("*").alias("n")).first()
    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    peak = _vm_hwm(jvm_pid) + _vm_hwm(os.getpid())
    spark.stop()
    return {"wall_s": walls[0], "warm_s": walls[1], "peak_mb": peak / 1024, "checksum": int(checksum.s or 0),
            "rows": int(checksum.n)}


def _vm_hwm(pid: int) -> int:
    """Peak resident set of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _pair(m: dict) -> str:
    return f"{m['wall_s']:.1f} / {m['warm_s']:.1f}"


def _ratios(naive: dict, pit: dict) -> str:
    return f"{naive['wall_s'] / pit['wall_s']:.2f}x / {naive['warm_s'] / pit['warm_s']:.2f}x"


def measure(folder: str, method: str, spine_name: str, driver_memory: str) -> dict:
    """Run one measurement in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--run", method, "--folder", folder, "--spine-name", spine_name,
                           "--driver-memory", driver_memory], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} on {spine_name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate, measure, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spine", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--versions", type=int, default=3)
    p.add_argument("--large", type=int, default=10_000_000, help="large spine, pit only (0: skip)")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--dense", default="200000,2000,100",
                   help="spine rows,keys,versions of a second data set with many spine rows and versions per key "
                        "(where a range join multiplies rows); 'none' to skip")
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--spine-name", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        print(json.dumps(run_one(args.folder, args.run, args.spine_name, args.driver_memory)))
        return
    folder = tempfile.mkdtemp(prefix="pit-bench-")
    dense = None if args.dense == "none" else [int(x) for x in args.dense.split(",")]
    try:
        t = time.perf_counter()
        generate(folder, args.spine, args.keys, args.versions, args.large, args.driver_memory)
        if dense:
            spark = session(args.driver_memory)
            write_data(spark, f"{folder}/dense", dense[0], dense[1], dense[2], 0)
            spark.stop()
        print(f"data: spine {args.spine:,} rows, {GROUPS} feature groups x {args.keys * args.versions:,} rows "
              f"({args.keys:,} keys x {args.versions} versions), large spine {args.large:,}; generated in "
              f"{time.perf_counter() - t:.0f}s; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus")
        naive = measure(folder, "naive", "spine", args.driver_memory)
        pit = measure(folder, "pit", "spine", args.driver_memory)
        floor = measure(folder, "floor", "spine", args.driver_memory)
        same = (naive["checksum"], naive["rows"]) == (pit["checksum"], pit["rows"])
        print()
        print("| spec shape | pit_join warm (s) | floor warm (s): shuffle + sort of spine and feature rows by key | "
              "ratio (goal <= 1.3x) |")
        print("|---|---|---|---|")
        verdict = "met" if pit["warm_s"] <= 1.3 * floor["warm_s"] else "not met"
        print(f"| {args.spine:,} spine rows | {pit['warm_s']:.1f} | {floor['warm_s']:.1f} | "
              f"{pit['warm_s'] / floor['warm_s']:.2f}x: {verdict} |")
        print()
        print("| run | spine rows | pit_join wall cold / warm (s) | naive wall cold / warm (s) | "
              "speed-up cold / warm (goal: >= 3x warm on the dense shape) | pit peak MB | naive peak MB | "
              "results equal |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| 1 | {args.spine:,} | {_pair(pit)} | {_pair(naive)} | {_ratios(naive, pit)} | "
              f"{pit['peak_mb']:.0f} | {naive['peak_mb']:.0f} | {same} |")
        if args.large > 0:
            big = measure(folder, "pit", "spine_large", args.driver_memory)
            print(f"| 2 | {args.large:,} | {_pair(big)} | - (baseline: run 1 pit, "
                  f"x{big['warm_s'] / pit['warm_s']:.2f} warm time for x{args.large / args.spine:.0f} spine) | - | "
                  f"{big['peak_mb']:.0f} | - | rows {big['rows']:,} |")
        if dense:
            d_naive = measure(f"{folder}/dense", "naive", "spine", args.driver_memory)
            d_pit = measure(f"{folder}/dense", "pit", "spine", args.driver_memory)
            d_same = (d_naive["checksum"], d_naive["rows"]) == (d_pit["checksum"], d_pit["rows"])
            same = same and d_same
            print(f"| 3 (dense: {dense[1]:,} keys x {dense[2]} versions, {dense[0] // dense[1]:,} spine rows/key) | "
                  f"{dense[0]:,} | {_pair(d_pit)} | {_pair(d_naive)} | {_ratios(d_naive, d_pit)} | "
                  f"{d_pit['peak_mb']:.0f} | {d_naive['peak_mb']:.0f} | {d_same} |")
        if not same:
            raise SystemExit("the two joins disagree")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
