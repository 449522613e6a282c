"""Benchmark of the Hudi copy-on-write engine against plain Spark parquet baselines of the same run.

One command::

    .venv/bin/python benchmarks/hudi_upsert.py [--rows N] [--batch N] [--no-apache-hudi]

Default scale (the spec): a base table of 5,000,000 rows x 12 columns in 3 partitions and an upsert
batch of 500,000 rows, half updates of existing keys (spread over the whole key space) and half new
keys. All data comes from ``spark.range`` (nothing is built on the driver). Measured, each beside
its same-run baseline:

1. bulk insert of the base (``hudi.write``, ``bulk_insert``) vs ``df.write.partitionBy("part").parquet``;
2. the upsert vs the copy-on-write floor: Spark finds the plain-parquet files of step 1's baseline
   that hold updated keys, reads them, full-outer-joins the batch on the key (the incoming row
   wins) and rewrites them as plain parquet;
3. a 1,000-row upsert end to end, three times (goal < 3 s): 500 new keys and 500 updates of the
   newest contiguous block of keys (``--small-keys spread`` spreads them over the table instead);
4. a snapshot read (count + sum of one column) via ``hudi.read`` vs ``spark.read.parquet`` of the
   same files;
5. Apache Hudi's own Spark writer (copy-on-write with its default index, and merge-on-read) on the same
   batches, written out as parquet first: ``benchmarks/hudi_reference_writer.py`` in the reference
   environment (Spark 3.5 + Hudi 1.2's bundle; no bundle for Spark 4.1 is served here), same master.

Besides the table it prints where the upserts spend their time: the engine's phases (timed by
wrapping the writer's methods for the duration of the run, nothing is changed on disk) and the
Spark stages of the big upsert (from the Spark UI's REST API). Everything is written below a
temporary folder under /tmp that is removed at the end.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL_UPSERT_RATIO = 1.5
GOAL_READ_RATIO = 1.2
GOAL_SMALL_UPSERT_S = 3.0
GOAL_PEER_UPSERT_SPEEDUP = 2.0  # the native engine vs Apache Hudi's copy-on-write writer, big upsert
GOAL_PEER_SMALL_SPEEDUP = 5.0   # and on the 1,000-row upserts
SMALL_BATCH = 1_000
SMALL_RUNS = 3
READ_RUNS = 3
SUM_COLUMN = "f_d0"


# -- data -------------------------------------------------------------------------------------------

def feature_rows(ids, ts: int):
    """12 columns for the ids in ``ids`` (one long column ``id``); values depend on id and ts."""
    from pyspark.sql import functions as F

    def h(k: int):
        return F.xxhash64(F.col("id"), F.lit(ts), F.lit(k))

    return ids.select(
        F.col("id").cast("long").alias("id"),
        F.concat(F.lit("p"), F.pmod(F.col("id"), F.lit(3)).cast("string")).alias("part"),
        F.lit(ts).cast("long").alias("ts"),
        *[(F.pmod(h(k), F.lit(1_000_000)) / F.lit(1000.0)).alias(f"f_d{k}") for k in range(4)],
        F.pmod(h(4), F.lit(1_000_000_000)).alias("f_l0"),
        F.pmod(h(5), F.lit(1_000_000_000)).alias("f_l1"),
        F.pmod(h(6), F.lit(100_000)).cast("int").alias("f_i0"),
        F.concat(F.lit("cat_"), F.pmod(h(7), F.lit(1000)).cast("string")).alias("f_s0"),
        F.concat(F.lit("user_"), F.col("id").cast("string"), F.lit("_"), F.lit(str(ts))).alias("f_s1"),
    )


def base_df(spark, rows: int):
    return feature_rows(spark.range(rows), ts=1)


def batch_df(spark, table_rows: int, batch: int, ts: int, offset: int, new_start: int, spread: bool = True):
    """``batch`` rows, the second half new keys from ``new_start`` on, the first half updates of
    existing keys: spread evenly over [0, table_rows) (stride, plus ``offset`` < stride) or, with
    ``spread=False``, the contiguous block of the newest keys ending ``offset`` blocks before the end."""
    from pyspark.sql import functions as F

    half = batch // 2
    if spread:
        stride = max(1, table_rows // max(1, half))
        first, step = offset % stride, stride
    else:
        first, step = max(0, table_rows - half * (offset + 1)), 1
    ids = spark.range(batch).select(
        F.when(F.col("id") < half, F.col("id") * step + first)
        .otherwise(F.col("id") - half + new_start).alias("id"))
    return feature_rows(ids, ts=ts)


def hudi_options(operation: str) -> dict[str, str]:
    return {
        "hoodie.table.name": "bench",
        "hoodie.datasource.write.recordkey.field": "id",
        "hoodie.datasource.write.partitionpath.field": "part",
        "hoodie.datasource.write.precombine.field": "ts",
        "hoodie.datasource.write.operation": operation,
    }


# -- timing helpers ------------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class PhaseRecorder:
    """Times the engine's phases by wrapping writer methods while a write runs (restored after)."""

    # (module attribute path, label); wrapped only if present, so a refactor does not break the run.
    TARGETS = (
        ("writer.WritePlan._rows", "plan: dedupe, index lookup, tag (cached) + counts job"),
        ("writer.WritePlan._run", "merge + write job (shuffle, window, mapInArrow parquet)"),
        ("writer.WritePlan._remove_failed_attempts", "remove files of failed attempts"),
        ("actions.write_partition_metadata", "partition metadata"),
        ("writer.WritePlan._commit_metadata", "build commit metadata"),
        ("actions.complete_instant", "complete instant (commit point)"),
        ("writer._maintain", "clean + archive"),
    )

    def __init__(self) -> None:
        self.events: list[tuple[str, float, float]] = []

    @contextmanager
    def active(self) -> Iterator[None]:
        from featurestore.hudi import actions, writer

        modules = {"writer": writer, "actions": actions}
        restore = []
        for target, label in self.TARGETS:
            mod_name, *attrs = target.split(".")
            owner = modules[mod_name]
            for a in attrs[:-1]:
                owner = getattr(owner, a, None)
            original = getattr(owner, attrs[-1], None) if owner is not None else None
            if original is None:
                continue
            setattr(owner, attrs[-1], self._wrap(original, label))
            restore.append((owner, attrs[-1], original))
        try:
            yield
        finally:
            for owner, name, original in reversed(restore):
                setattr(owner, name, original)

    def _wrap(self, fn: Callable, label: str) -> Callable:
        events = self.events

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                events.append((label, t0, time.perf_counter()))

        return wrapper

    def breakdown(self, start: float, end: float) -> list[tuple[str, float]]:
        """Seconds per phase between ``start`` and ``end``; the rest is 'other'."""
        inside = [e for e in self.events if e[1] >= start and e[2] <= end]
        totals: dict[str, float] = {}
        first = min((e[1] for e in inside), default=end)
        totals["validate, lock, cache incoming + summary job, rollback check"] = first - start
        for label, t0, t1 in inside:
            totals[label] = totals.get(label, 0.0) + (t1 - t0)
        accounted = sum(totals.values())
        totals["other (driver glue)"] = max(0.0, (end - start) - accounted)
        return list(totals.items())


def _parse_spark_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def spark_stages(spark, since: float, until: float) -> list[dict] | None:
    """Completed stages submitted in [since, until] (epoch seconds), from the UI REST API."""
    sc = spark.sparkContext
    url = sc.uiWebUrl
    if not url:
        return None
    api = f"{url}/api/v1/applications/{sc.applicationId}/stages"
    try:
        stages = []
        for _ in range(20):  # the listener bus is asynchronous: wait until the stages have landed
            with urllib.request.urlopen(api, timeout=10) as resp:
                stages = json.load(resp)
            if not any(s.get("status") == "ACTIVE" for s in stages):
                break
            time.sleep(0.25)
    except OSError:
        return None
    out = []
    for s in stages:
        submitted = _parse_spark_time(s.get("submissionTime"))
        completed = _parse_spark_time(s.get("completionTime"))
        if submitted is None or not (since - 0.5 <= submitted <= until + 0.5) or s.get("status") == "SKIPPED":
            continue
        out.append({
            "id": s["stageId"], "name": s.get("name", ""), "tasks": s.get("numTasks", 0),
            "wall": (completed - submitted) if completed else float("nan"),
            "run": s.get("executorRunTime", 0) / 1000.0,
            "input": s.get("inputBytes", 0), "shuffle_read": s.get("shuffleReadBytes", 0),
            "shuffle_write": s.get("shuffleWriteBytes", 0), "spill": s.get("diskBytesSpilled", 0),
        })
    return sorted(out, key=lambda s: s["id"])


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def dir_stats(path: str) -> tuple[int, int]:
    """(number of parquet files, bytes) below ``path``."""
    files = size = 0
    for dirpath, _, names in os.walk(path):
        if "/.hoodie" in dirpath:
            continue
        for name in names:
            if name.endswith(".parquet"):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


# -- environment ---------------------------------------------------------------------------------

def describe_machine(spark) -> list[str]:
    import pyarrow
    import pyspark

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        mem = f"{mem_kb / 1024 / 1024:.1f} GB"
    except (OSError, StopIteration):
        mem = "?"
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        java = "?"
    conf = spark.sparkContext.getConf()
    return [
        f"machine : {platform.node()}  {os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.platform()}",
        f"versions: python {platform.python_version()}, pyspark {pyspark.__version__}, "
        f"pyarrow {pyarrow.__version__}, {java}",
        f"spark   : master {spark.sparkContext.master}, driver memory {conf.get('spark.driver.memory', '?')}, "
        f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}, "
        f"AQE {spark.conf.get('spark.sql.adaptive.enabled')}",
    ]


def load_average() -> str:
    """The 1/5/15-minute load average: other processes on the box skew every figure."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


# -- the benchmark -------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from pyspark.sql import functions as F

    from featurestore import hudi
    from featurestore.config import load_config
    from featurestore.spark import get_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    work = tempfile.mkdtemp(prefix="hudi-upsert-bench-", dir="/tmp")
    conf = {
        "spark.driver.memory": args.driver_memory,
        "spark.ui.enabled": "true",  # for the per-stage breakdown (REST API); port chosen by Spark
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": os.path.join(work, "spark-local"),
    }
    spark = get_session(master=args.master, app_name="hudi-upsert-bench", config=load_config(environ={}), conf=conf)
    spark.sparkContext.setLogLevel("WARN")
    n, b = args.rows, args.batch
    hudi_dir = os.path.join(work, "hudi")
    plain_dir = os.path.join(work, "plain")
    floor_dir = os.path.join(work, "floor")
    lines: list[str] = []
    recorder = PhaseRecorder()
    try:
        header = describe_machine(spark)
        load_start = load_average()
        for line in header:
            print(line, flush=True)
        print(f"load avg: {load_start} (1/5/15 min) at start", flush=True)
        print(f"scale   : base {n:,} rows x 12 columns in 3 partitions; upsert batch {b:,} rows "
              f"({b // 2:,} updates + {b - b // 2:,} inserts); work dir {work}", flush=True)

        # Warm-up: JIT and Python workers, so the first measured job does not pay for them.
        base_df(spark, 50_000).write.mode("overwrite").partitionBy("part").parquet(os.path.join(work, "warmup"))
        hudi.write(base_df(spark, 50_000), os.path.join(work, "warmup_hudi"), hudi_options("bulk_insert"))

        # 1. bulk insert vs plain parquet ------------------------------------------------------------
        print("\n[1] bulk insert ...", flush=True)
        t_plain, _ = timed(lambda: base_df(spark, n).write.partitionBy("part").parquet(plain_dir))
        t_bulk, bulk = timed(lambda: hudi.write(base_df(spark, n), hudi_dir, hudi_options("bulk_insert")))
        plain_files, plain_bytes = dir_stats(plain_dir)
        hudi_files, hudi_bytes = dir_stats(hudi_dir)
        print(f"    plain parquet {t_plain:.1f} s ({plain_files} files, {mb(plain_bytes)} MB); "
              f"hudi bulk_insert {t_bulk:.1f} s ({bulk.files_written} files, {mb(hudi_bytes)} MB, "
              f"{bulk.rows_inserted:,} rows inserted)", flush=True)

        # 2. upsert vs copy-on-write floor ---------------------------------------------------------
        print("\n[2] upsert vs copy-on-write floor ...", flush=True)
        new_start = n

        def floor(batch, out_dir: str) -> int:
            hit = (spark.read.parquet(plain_dir).select("id").withColumn("_file", F.input_file_name())
                   .join(batch.select("id"), "id").select("_file").distinct().collect())
            files = sorted(r[0] for r in hit)
            old = spark.read.option("basePath", plain_dir).parquet(*files) if files else None
            incoming = batch.withColumn("_in", F.lit(True))
            if old is None:
                merged = batch
            else:
                j = old.alias("o").join(incoming.alias("n"), "id", "full_outer")
                merged = j.select("id", *[F.when(F.col("n._in"), F.col(f"n.{c}")).otherwise(F.col(f"o.{c}")).alias(c)
                                          for c in batch.columns if c != "id"])
            merged.write.partitionBy("part").parquet(out_dir)
            return len(files)

        t_floor_start = time.time()
        t_floor, floor_files_read = timed(
            lambda: floor(batch_df(spark, n, b, ts=2, offset=0, new_start=new_start), floor_dir))
        floor_files, floor_bytes = dir_stats(floor_dir)
        print(f"    floor {t_floor:.1f} s (read {floor_files_read} of {plain_files} files, wrote {floor_files} "
              f"files, {mb(floor_bytes)} MB)", flush=True)
        floor_stages = spark_stages(spark, t_floor_start, time.time())

        t_up_start = time.time()
        with recorder.active():
            p0 = time.perf_counter()
            upsert = hudi.write(batch_df(spark, n, b, ts=2, offset=0, new_start=new_start), hudi_dir,
                                hudi_options("upsert"))
            p1 = time.perf_counter()
        t_upsert = p1 - p0
        upsert_stages = spark_stages(spark, t_up_start, time.time())
        upsert_phases = recorder.breakdown(p0, p1)
        print(f"    hudi upsert {t_upsert:.1f} s ({upsert.rows_updated:,} updated, {upsert.rows_inserted:,} "
              f"inserted, {upsert.files_written} files written)", flush=True)

        # 3. small upserts -------------------------------------------------------------------------
        print(f"\n[3] {SMALL_BATCH:,}-row upsert x {SMALL_RUNS} ({args.small_keys} update keys) ...", flush=True)
        small_times: list[float] = []
        small_results = []
        small_phases = []
        small_batches = []
        for r in range(SMALL_RUNS):
            small_df = df = batch_df(spark, n, SMALL_BATCH, ts=3 + r,
                                     offset=r + 1 if args.small_keys == "spread" else r,
                                     new_start=n + (b - b // 2) + r * SMALL_BATCH,
                                     spread=args.small_keys == "spread")
            with recorder.active():
                p0 = time.perf_counter()
                res = hudi.write(df, hudi_dir, hudi_options("upsert"))
                p1 = time.perf_counter()
            small_times.append(p1 - p0)
            small_batches.append(small_df)
            small_results.append(res)
            small_phases.append(recorder.breakdown(p0, p1))
            print(f"    run {r + 1}: {p1 - p0:.2f} s ({res.rows_updated} updated, {res.rows_inserted} inserted, "
                  f"{res.files_written} files written)", flush=True)

        # The same copy-on-write floor for the last small batch (plain Spark, same files).
        t_small_floor, _ = timed(lambda: floor(small_df, os.path.join(work, "floor_small")))
        print(f"    copy-on-write floor for the same {SMALL_BATCH:,} rows: {t_small_floor:.2f} s", flush=True)

        # 4. snapshot read -------------------------------------------------------------------------
        print("\n[4] snapshot read ...", flush=True)
        files = hudi.read(spark, hudi_dir).inputFiles()
        read_hudi: list[float] = []
        read_plain: list[float] = []
        counts = set()
        for _ in range(READ_RUNS):
            t, row = timed(lambda: hudi.read(spark, hudi_dir).agg(F.count(F.lit(1)), F.sum(SUM_COLUMN)).first())
            read_hudi.append(t)
            counts.add((row[0], round(row[1], 3)))
            t, row = timed(lambda: spark.read.parquet(*files).agg(F.count(F.lit(1)), F.sum(SUM_COLUMN)).first())
            read_plain.append(t)
            counts.add((row[0], round(row[1], 3)))
        expected = n + (b - b // 2) + SMALL_RUNS * (SMALL_BATCH - SMALL_BATCH // 2)
        got = {c[0] for c in counts}
        print(f"    {len(files)} files; hudi {', '.join(f'{t:.2f}' for t in read_hudi)} s; "
              f"plain {', '.join(f'{t:.2f}' for t in read_plain)} s; rows {sorted(got)} (expected {expected:,})",
              flush=True)
        checks_ok = got == {expected} and len(counts) == 1

        # 5. Apache Hudi's own writer on the same batches --------------------------------------------
        peer = None
        if not args.no_apache_hudi:
            print("\n[5] Apache Hudi's writer (reference JVM, Spark 3.5) on the same batches ...",
                  flush=True)
            inputs = os.path.join(work, "inputs")
            base_df(spark, n).write.parquet(os.path.join(inputs, "base"))
            batch_df(spark, n, b, ts=2, offset=0, new_start=new_start).write.parquet(os.path.join(inputs, "batch"))
            for r, small in enumerate(small_batches):
                small.write.parquet(os.path.join(inputs, f"small_{r}"))
            peer = apache_hudi(work, args)
            for kind in ("COPY_ON_WRITE", "MERGE_ON_READ"):
                m = peer[kind]
                print(f"    {kind}: bulk insert {m['bulk_insert_s']:.1f} s, upsert {m['upsert_s']:.1f} s, small "
                      + " / ".join(f"{t:.2f}" for t in m["small_upserts_s"])
                      + f" s, read {m['read_s']:.2f} s, rows {m['rows']}, log files {m['log_files']}", flush=True)

        # -- report -------------------------------------------------------------------------------
        t_read_h, t_read_p = statistics.median(read_hudi), statistics.median(read_plain)
        t_small = statistics.median(small_times)

        def verdict(ok: bool) -> str:
            return "PASS" if ok else "MISS"

        rows_out = [
            ("1 bulk insert base", f"{t_bulk:.1f} s", "plain parquet write", f"{t_plain:.1f} s",
             f"{t_bulk / t_plain:.2f}x", "-"),
            (f"2 upsert {b:,} rows", f"{t_upsert:.1f} s", "CoW floor (join+rewrite)", f"{t_floor:.1f} s",
             f"{t_upsert / t_floor:.2f}x",
             f"<= {GOAL_UPSERT_RATIO}x {verdict(t_upsert <= GOAL_UPSERT_RATIO * t_floor)}"),
            (f"3 upsert {SMALL_BATCH:,} rows (median, {args.small_keys})", f"{t_small:.2f} s",
             "CoW floor, same rows (join+rewrite)", f"{t_small_floor:.2f} s", f"{t_small / t_small_floor:.2f}x",
             f"< {GOAL_SMALL_UPSERT_S:g} s {verdict(t_small < GOAL_SMALL_UPSERT_S)}"),
            ("4 snapshot read count+sum (median)", f"{t_read_h:.2f} s", "spark.read.parquet same files",
             f"{t_read_p:.2f} s", f"{t_read_h / t_read_p:.2f}x",
             f"<= {GOAL_READ_RATIO}x {verdict(t_read_h <= GOAL_READ_RATIO * t_read_p)}"),
        ]
        heads = ("step", "hudi", "baseline", "baseline time", "ratio", "goal")
        widths = [max(len(h), *(len(r[i]) for r in rows_out)) for i, h in enumerate(heads)]
        fmt = "  ".join(f"{{:{'<' if i in (0, 2) else '>'}{w}}}" for i, w in enumerate(widths))
        lines.append("")
        lines.append(f"Hudi copy-on-write benchmark: base {n:,} rows x 12 cols / 3 partitions, "
                     f"upsert batch {b:,} (50% updates, 50% inserts)")
        lines.extend(header)
        lines.append(f"load avg: {load_start} at start, {load_average()} at end (1/5/15 min; "
                     f"{os.cpu_count()} cores; other processes on the box inflate all timings)")
        lines.append(fmt.format(*heads))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(fmt.format(*r) for r in rows_out)
        lines.append(f"files: plain {plain_files} ({mb(plain_bytes)} MB), hudi after bulk insert {bulk.files_written} "
                     f"({mb(hudi_bytes)} MB); upsert rewrote {upsert.files_written} files "
                     f"({upsert.rows_updated:,} updated, {upsert.rows_inserted:,} inserted); floor read "
                     f"{floor_files_read} files, wrote {floor_files}; small upserts rewrote "
                     + "/".join(str(r.files_written) for r in small_results) + " files")
        lines.append("small upsert runs: " + " / ".join(f"{t:.2f}" for t in small_times) + " s")
        lines.append(f"row-count check after all writes: {'OK' if checks_ok else 'MISMATCH'} "
                     f"({sorted(got)} vs expected {expected:,})")
        if peer is not None:
            cow, mor = peer["COPY_ON_WRITE"], peer["MERGE_ON_READ"]
            peer_rows = {tuple(cow["rows"]), tuple(mor["rows"])}
            checks_ok = checks_ok and peer_rows == {(expected,)}
            cow_small, mor_small = statistics.median(cow["small_upserts_s"]), statistics.median(mor["small_upserts_s"])
            lines.append("")
            lines.append(f"Apache Hudi's own writer on the same batches ({peer['hudi']}, Spark {peer['spark']} in "
                         f"the reference JVM, {args.master}, default index and metadata table):")
            peer_rows_out = [
                (f"upsert {b:,} rows", f"{t_upsert:.1f} s", f"{cow['upsert_s']:.1f} s",
                 f"{cow['upsert_s'] / t_upsert:.2f}x", f"{mor['upsert_s']:.1f} s",
                 f">= {GOAL_PEER_UPSERT_SPEEDUP:g}x {verdict(cow['upsert_s'] >= GOAL_PEER_UPSERT_SPEEDUP * t_upsert)}"),
                (f"upsert {SMALL_BATCH:,} rows (median)", f"{t_small:.2f} s", f"{cow_small:.2f} s",
                 f"{cow_small / t_small:.2f}x", f"{mor_small:.2f} s",
                 f">= {GOAL_PEER_SMALL_SPEEDUP:g}x {verdict(cow_small >= GOAL_PEER_SMALL_SPEEDUP * t_small)}"),
                ("bulk insert base", f"{t_bulk:.1f} s", f"{cow['bulk_insert_s']:.1f} s",
                 f"{cow['bulk_insert_s'] / t_bulk:.2f}x", f"{mor['bulk_insert_s']:.1f} s", "-"),
                ("snapshot read count+sum (median)", f"{t_read_h:.2f} s", f"{cow['read_s']:.2f} s",
                 f"{cow['read_s'] / t_read_h:.2f}x", f"{mor['read_s']:.2f} s", "-"),
            ]
            heads = ("step", "native", "Apache Hudi CoW", "native speed-up", "Apache Hudi MoR", "goal")
            widths = [max(len(h), *(len(r[i]) for r in peer_rows_out)) for i, h in enumerate(heads)]
            fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
            lines.append(fmt.format(*heads))
            lines.append("  ".join("-" * w for w in widths))
            lines.extend(fmt.format(*r) for r in peer_rows_out)
            lines.append(f"Apache Hudi rows after all writes: CoW {cow['rows']}, MoR {mor['rows']} (log files "
                         f"{mor['log_files']}); expected {expected:,}")

        lines.append("")
        lines.append(f"upsert {b:,} rows, engine phases (wall, total {t_upsert:.1f} s):")
        lines.extend(f"  {sec:8.2f} s  {label}" for label, sec in upsert_phases if sec >= 0.005)
        lines.append(f"upsert {SMALL_BATCH:,} rows, engine phases (median of {SMALL_RUNS} runs):")
        labels = [label for label, _ in small_phases[0]]
        for label in labels:
            vals = [dict(p).get(label, 0.0) for p in small_phases]
            if max(vals) >= 0.005:
                lines.append(f"  {statistics.median(vals):8.2f} s  {label}")
        for title, stages in ((f"upsert {b:,} rows", upsert_stages), ("copy-on-write floor", floor_stages)):
            lines.append("")
            if stages is None:
                lines.append(f"{title}: Spark stages not available (UI REST API unreachable)")
                continue
            lines.append(f"{title}, Spark stages (wall s / executor run s / tasks / input MB / shuffle read MB "
                         f"/ shuffle write MB / spill MB):")
            for s in stages:
                lines.append(f"  {s['id']:4d} {s['wall']:7.2f} {s['run']:8.2f} {s['tasks']:5d} {mb(s['input']):>9} "
                             f"{mb(s['shuffle_read']):>9} {mb(s['shuffle_write']):>9} {mb(s['spill']):>8}  "
                             f"{s['name'][:70]}")
        print("\n".join(lines), flush=True)
        return 0 if checks_ok else 1
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


def apache_hudi(work: str, args: argparse.Namespace) -> dict:
    """Run benchmarks/hudi_reference_writer.py in the reference environment on ``work``/inputs."""
    python = ROOT / ".venv-reference" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} missing: run ./bootstrap.sh (or pass --no-apache-hudi)")
    done = subprocess.run([str(python), str(ROOT / "benchmarks" / "hudi_reference_writer.py"), "--work", work,
                           "--master", args.master, "--driver-memory", args.driver_memory],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"Apache Hudi's writer failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="base table rows (default 5,000,000)")
    parser.add_argument("--batch", type=int, default=500_000, help="upsert batch rows (default 500,000)")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--small-keys", choices=("contiguous", "spread"), default="contiguous",
                        help="keys the 1,000-row upserts update: the newest contiguous block of keys "
                             "(default) or keys spread over the whole table")
    parser.add_argument("--driver-memory", default="4g", help="spark.driver.memory (default 4g)")
    parser.add_argument("--no-apache-hudi", action="store_true",
                        help="skip step 5, Apache Hudi's own writer (reference JVM) on the same batches")
    args = parser.parse_args(argv)
    if args.rows < 3 or args.batch < 2:
        parser.error("--rows must be >= 3 and --batch >= 2")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
