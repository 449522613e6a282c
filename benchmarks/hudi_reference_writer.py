"""Apache Hudi's own Spark writer on the data of ``benchmarks/hudi_upsert.py``: the peer the native engine
is measured against. Run by that benchmark in the reference environment (``.venv-reference``: pyspark 3.5
with Apache Hudi 1.2's Spark bundle from ``reference/jars``; no Hudi bundle for Spark 4.1 is served here),
not by hand::

    .venv-reference/bin/python benchmarks/hudi_reference_writer.py --work DIR [--master local[2]]

``DIR/inputs`` holds the benchmark's batches as parquet (``base``, ``batch``, ``small_0``...). For each table
type (copy-on-write, then merge-on-read) it bulk-inserts the base, upserts the big batch, upserts each
small batch and reads the snapshot (count + sum), with Hudi's default options otherwise (its default index,
its metadata table). The timings are printed as one JSON line at the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READ_RUNS = 3
SUM_COLUMN = "f_d0"


def session(master: str, driver_memory: str):
    """Spark 3.5 with Apache Hudi's bundle and the session settings Hudi's quick start asks for."""
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(str(ROOT / "reference" / "jars" / "*.jar")))
    if not any("hudi-spark3.5-bundle" in j for j in jars):
        raise SystemExit("no Apache Hudi bundle in reference/jars: run ./bootstrap.sh")
    return (SparkSession.builder.master(master).appName("hudi-reference-bench")
            .config("spark.jars", ",".join(jars))
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
            .config("spark.kryo.registrator", "org.apache.spark.HoodieSparkKryoRegistrar")
            .config("spark.sql.extensions", "org.apache.spark.sql.hudi.HoodieSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.hudi.catalog.HoodieCatalog")
            .getOrCreate())


def options(table_type: str, operation: str) -> dict[str, str]:
    """The benchmark table's keys, as the native run writes them; everything else Hudi's defaults."""
    return {"hoodie.table.name": "bench", "hoodie.datasource.write.table.type": table_type,
            "hoodie.datasource.write.recordkey.field": "id", "hoodie.datasource.write.partitionpath.field": "part",
            "hoodie.datasource.write.precombine.field": "ts", "hoodie.datasource.write.operation": operation}


def measure(spark, inputs: Path, table: Path, table_type: str) -> dict[str, object]:
    """Bulk insert, big upsert, small upserts and snapshot reads of one table type; seconds."""
    from pyspark.sql import functions as F

    def write(name: str, operation: str, mode: str) -> float:
        frame = spark.read.parquet(str(inputs / name))
        start = time.perf_counter()
        frame.write.format("hudi").options(**options(table_type, operation)).mode(mode).save(str(table))
        return time.perf_counter() - start

    out: dict[str, object] = {"bulk_insert_s": write("base", "bulk_insert", "overwrite"),
                              "upsert_s": write("batch", "upsert", "append")}
    smalls = sorted(p.name for p in inputs.glob("small_*"))
    out["small_upserts_s"] = [write(name, "upsert", "append") for name in smalls]
    reads, counts = [], set()
    for _ in range(READ_RUNS):
        start = time.perf_counter()
        row = spark.read.format("hudi").load(str(table)).agg(F.count(F.lit(1)), F.sum(SUM_COLUMN)).first()
        reads.append(time.perf_counter() - start)
        counts.add((row[0], round(row[1], 3)))
    out["read_s"] = statistics.median(reads)
    out["rows"] = sorted(c[0] for c in counts)
    out["sum"] = sorted(c[1] for c in counts)
    out["log_files"] = sum(1 for f in table.rglob("*.log.*") if ".hoodie" not in f.relative_to(table).parts)
    return out


def main() -> None:
    """Measure both table types and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="the benchmark's work folder (inputs/ inside)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--table-types", default="COPY_ON_WRITE,MERGE_ON_READ")
    args = parser.parse_args()
    work = Path(args.work)
    spark = session(args.master, args.driver_memory)
    spark.sparkContext.setLogLevel("ERROR")
    result: dict[str, object] = {"spark": spark.version, "hudi": next(
        (os.path.basename(j) for j in glob.glob(str(ROOT / "reference" / "jars" / "hudi-spark*.jar"))), "?")}
    try:
        for table_type in args.table_types.split(","):
            table = work / f"apache_hudi_{table_type.lower()}"
            result[table_type] = measure(spark, work / "inputs", table, table_type)
            shutil.rmtree(table, ignore_errors=True)
    finally:
        spark.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
