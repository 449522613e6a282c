"""Writing and reading training data files: Spark's built-in formats, and Avro and TFRecord files
written and read by the executors in Python (no Spark connector jar is needed for either).

Executor-written files are first written under a per-attempt name and renamed when complete; the
driver then keeps exactly the files the successful task attempts reported, so a retried task leaves
no partial or duplicate file behind.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from featurestore.errors import FeatureStoreError

FORMATS = ("parquet", "csv", "tsv", "json", "avro", "orc", "tfrecord")
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NULL_TEXT = "\\N"  # CSV/TSV null marker (as MySQL and Hive write it): keeps null apart from the empty string


class FormatError(FeatureStoreError, ValueError):
    """A data format that is unknown or cannot hold a column's type."""


def check_format(data_format: str, schema: T.StructType) -> None:
    """Raise naming the format or the column if ``schema`` cannot be written as ``data_format``."""
    if data_format not in FORMATS:
        raise FormatError(f"unknown data_format {data_format!r}; use one of {', '.join(FORMATS)}")
    flat = (T.AtomicType,)
    for f in schema.fields:
        t = f.dataType
        if data_format in ("csv", "tsv") and (not isinstance(t, flat) or isinstance(t, T.BinaryType)):
            raise FormatError(f"column '{f.name}' ({t.simpleString()}) cannot be written as {data_format}: "
                              "use parquet, orc, json or avro for nested or binary columns")
        if data_format == "avro":
            _avro_type(t, f.name)
        if data_format == "tfrecord":
            inner = t.elementType if isinstance(t, T.ArrayType) else t
            if not isinstance(inner, _TF_TYPES):
                raise FormatError(f"column '{f.name}' ({t.simpleString()}) cannot be written as tfrecord: "
                                  "use numbers, booleans, strings, binary, dates, timestamps or arrays of those")


def write(df: DataFrame, path: str, data_format: str) -> None:
    """Write ``df`` as files of ``data_format`` into the new folder ``path``."""
    check_format(data_format, df.schema)
    if data_format in ("parquet", "orc"):
        df.write.format(data_format).save(path)
    elif data_format == "json":  # microseconds kept: the default pattern stops at milliseconds
        df.write.option("timestampFormat", TIMESTAMP_FORMAT).json(path)
    elif data_format in ("csv", "tsv"):
        (df.write.option("header", "true").option("sep", "\t" if data_format == "tsv" else ",")
         .option("timestampFormat", TIMESTAMP_FORMAT).option("nullValue", NULL_TEXT).csv(path))
    else:
        _write_with_executors(df, path, data_format)


def read(spark: SparkSession, path: str, data_format: str, schema: T.StructType) -> DataFrame:
    """Read files written by :func:`write` with their recorded ``schema``."""
    if data_format in ("parquet", "orc"):
        return spark.read.schema(schema).format(data_format).load(path)
    if data_format == "json":
        return spark.read.schema(schema).option("timestampFormat", TIMESTAMP_FORMAT).json(path)
    if data_format in ("csv", "tsv"):
        return (spark.read.schema(schema).option("header", "true").option("sep", "\t" if data_format == "tsv" else ",")
                .option("timestampFormat", TIMESTAMP_FORMAT).option("nullValue", NULL_TEXT).csv(path))
    if data_format not in FORMATS:
        raise FormatError(f"unknown data_format {data_format!r}; use one of {', '.join(FORMATS)}")
    files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith("." + data_format))
    if not files:
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), schema)
    tasks = spark.createDataFrame([(f,) for f in files], "file string").repartition(
        min(len(files), max(1, spark.sparkContext.defaultParallelism)))
    reader = _avro_reader if data_format == "avro" else _tfrecord_reader
    return tasks.mapInArrow(reader(schema), schema)


# -- executor-written formats --------------------------------------------------------------------
def _write_with_executors(df: DataFrame, path: str, data_format: str) -> None:
    os.makedirs(path, exist_ok=False)
    writer = _avro_writer(df.schema) if data_format == "avro" else _tfrecord_writer(df.schema)
    run = uuid.uuid4().hex[:8]
    done = df.mapInArrow(_file_task(path, data_format, run, writer), "file string, rows long").collect()
    keep = {r.file for r in done}
    for name in os.listdir(path):  # leftovers of failed attempts
        if os.path.join(path, name) not in keep:
            os.remove(os.path.join(path, name))


def _file_task(path: str, ext: str, run: str, writer: Callable[[Any, Iterator[pa.RecordBatch]], int]):
    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part, attempt = (ctx.partitionId(), ctx.attemptNumber()) if ctx else (0, 0)
        final = os.path.join(path, f"part-{part:05d}-{run}.{ext}")
        tmp = os.path.join(path, f".part-{part:05d}-{run}-{attempt}.tmp")
        with open(tmp, "wb") as fh:
            rows = writer(fh, batches)
        if rows == 0:
            os.remove(tmp)
            return
        os.replace(tmp, final)
        yield pa.RecordBatch.from_pydict({"file": [final], "rows": [rows]},
                                         schema=pa.schema([("file", pa.string()), ("rows", pa.int64())]))

    return task


# -- Avro ---------------------------------------------------------------------------------------
def _avro_type(t: T.DataType, name: str) -> Any:
    simple = {T.BooleanType: "boolean", T.ByteType: "int", T.ShortType: "int", T.IntegerType: "int",
              T.LongType: "long", T.FloatType: "float", T.DoubleType: "double", T.StringType: "string",
              T.BinaryType: "bytes"}
    for cls, avro in simple.items():
        if isinstance(t, cls):
            return avro
    if isinstance(t, T.DateType):
        return {"type": "int", "logicalType": "date"}
    if isinstance(t, T.TimestampType | T.TimestampNTZType):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if isinstance(t, T.DecimalType):
        return {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
    if isinstance(t, T.ArrayType):
        return {"type": "array", "items": ["null", _avro_type(t.elementType, name)]}
    raise FormatError(f"column '{name}' ({t.simpleString()}) cannot be written as avro here: use parquet or orc "
                      "for structs and maps")


def avro_schema(schema: T.StructType) -> dict[str, Any]:
    """The Avro record schema of a Spark schema (every field nullable)."""
    return {"type": "record", "name": "training_row", "namespace": "featurestore",
            "fields": [{"name": f.name, "type": ["null", _avro_type(f.dataType, f.name)], "default": None}
                       for f in schema.fields]}


def _avro_writer(schema: T.StructType) -> Callable[[Any, Iterator[pa.RecordBatch]], int]:
    parsed = avro_schema(schema)
    ntz = {f.name for f in schema.fields if isinstance(f.dataType, T.TimestampNTZType)}

    def write_file(fh: Any, batches: Iterator[pa.RecordBatch]) -> int:
        import fastavro

        count = [0]

        def records() -> Iterator[dict[str, Any]]:
            for batch in batches:
                for row in batch.to_pylist():
                    for c in ntz:  # naive values: keep the wall-clock time
                        if row[c] is not None:
                            row[c] = row[c].replace(tzinfo=dt.UTC)
                    count[0] += 1
                    yield row

        fastavro.writer(fh, fastavro.parse_schema(parsed), records(), codec="deflate")
        return count[0]

    return write_file


def _avro_reader(schema: T.StructType):
    arrow_schema = to_arrow_schema(schema)
    ntz = {f.name for f in schema.fields if isinstance(f.dataType, T.TimestampNTZType)}

    def read_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import fastavro

        for batch in batches:
            for file in batch.column("file").to_pylist():
                with open(file, "rb") as fh:
                    rows = []
                    for rec in fastavro.reader(fh):
                        for c in ntz:
                            if rec[c] is not None:
                                rec[c] = rec[c].replace(tzinfo=None)
                        rows.append(rec)
                        if len(rows) == 10_000:
                            yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)
                            rows = []
                    if rows:
                        yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    return read_files


# -- TFRecord -----------------------------------------------------------------------------------
_TF_TYPES = (T.BooleanType, T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType,
             T.StringType, T.BinaryType, T.DateType, T.TimestampType, T.TimestampNTZType, T.DecimalType)


def _tf_kind(t: T.DataType) -> str:
    if isinstance(t, T.FloatType | T.DoubleType):
        return "float"
    if isinstance(t, T.StringType | T.BinaryType | T.DecimalType):
        return "bytes"
    return "int64"


def _to_tf(value: Any, t: T.DataType) -> Any:
    """A Python value as a TFRecord list item: timestamps as epoch microseconds, dates as epoch days."""
    if isinstance(t, T.StringType):
        return value.encode("utf-8")
    if isinstance(t, T.DecimalType):
        return str(value).encode("ascii")
    if isinstance(t, T.TimestampType | T.TimestampNTZType):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (aware - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(t, T.DateType):
        return (value - EPOCH.date()).days
    if isinstance(t, T.BooleanType):
        return int(value)
    return value


def _check_float32(name: str, values: list[float]) -> None:
    """tf.train.Example's FloatList holds float32: doubles are rounded, and one beyond its range is an error."""
    for v in values:
        try:
            struct.pack("<f", v)
        except OverflowError:
            raise FormatError(f"column '{name}': {v!r} is beyond float32's range (about ±3.4e38), and tfrecord "
                              "stores floating-point features as float32; scale the column or use another "
                              "data_format") from None


def _from_tf(value: Any, t: T.DataType) -> Any:
    if isinstance(t, T.StringType):
        return value.decode("utf-8")
    if isinstance(t, T.DecimalType):
        return Decimal(value.decode("ascii"))
    if isinstance(t, T.TimestampType):
        return EPOCH + dt.timedelta(microseconds=value)
    if isinstance(t, T.TimestampNTZType):
        return (EPOCH + dt.timedelta(microseconds=value)).replace(tzinfo=None)
    if isinstance(t, T.DateType):
        return EPOCH.date() + dt.timedelta(days=value)
    if isinstance(t, T.BooleanType):
        return bool(value)
    return value


def _tfrecord_writer(schema: T.StructType) -> Callable[[Any, Iterator[pa.RecordBatch]], int]:
    fields = [(f.name, f.dataType) for f in schema.fields]

    def write_file(fh: Any, batches: Iterator[pa.RecordBatch]) -> int:
        from featurestore.training.tfrecord import encode_example, write_records

        def examples() -> Iterator[bytes]:
            for batch in batches:
                for row in batch.to_pylist():
                    feats = {}
                    for name, t in fields:
                        value = row[name]
                        if value is None:
                            continue  # a missing feature is TFRecord's null
                        if isinstance(t, T.ArrayType):
                            items = [_to_tf(v, t.elementType) for v in value if v is not None]
                            feats[name] = (_tf_kind(t.elementType), items)
                        else:
                            feats[name] = (_tf_kind(t), [_to_tf(value, t)])
                        if feats[name][0] == "float":
                            _check_float32(name, feats[name][1])
                    yield encode_example(feats)

        return write_records(fh, examples())

    return write_file


def _tfrecord_reader(schema: T.StructType):
    arrow_schema = to_arrow_schema(schema)
    fields = [(f.name, f.dataType) for f in schema.fields]

    def read_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from featurestore.training.tfrecord import decode_example, read_records

        for batch in batches:
            for file in batch.column("file").to_pylist():
                rows = []
                with open(file, "rb") as fh:
                    for data in read_records(fh):
                        ex = decode_example(data)
                        row = {}
                        for name, t in fields:
                            values = ex.get(name, (None, None))[1]
                            if values is None:
                                row[name] = None
                            elif isinstance(t, T.ArrayType):
                                row[name] = [_from_tf(v, t.elementType) for v in values]
                            else:
                                row[name] = _from_tf(values[0], t) if values else None
                        rows.append(row)
                        if len(rows) == 10_000:
                            yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)
                            rows = []
                if rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    return read_files
