"""Helpers shared by the Hudi tests: value normalisation and the hudi-rs oracle."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
from hudi import HudiQueryType, HudiReadOptions, HudiTableBuilder
from pyspark.sql import Row

META = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path",
        "_hoodie_file_name")


def norm(value: Any) -> Any:
    """A hashable, comparable form of a value from Spark or from pyarrow."""
    if isinstance(value, Row):
        value = value.asDict(recursive=True)
    if isinstance(value, dict):
        return tuple(sorted((str(k), norm(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value) and not isinstance(value, Row):
            # pyarrow maps come back as lists of (key, value) pairs
            return tuple(sorted((str(k), norm(v)) for k, v in value))
        return tuple(norm(v) for v in value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, Decimal):
        return value
    return value


def rows_of_spark(df, columns: list[str] | None = None) -> list[tuple]:
    """Sorted, normalised rows of a Spark DataFrame."""
    cols = columns or df.columns
    return sorted((tuple(norm(r[c]) for c in cols) for r in df.select(*cols).collect()), key=repr)


def rows_of_arrow(table: pa.Table, columns: list[str]) -> list[tuple]:
    """Sorted, normalised rows of a pyarrow table."""
    return sorted((tuple(norm(r[c]) for c in columns) for r in table.to_pylist()), key=repr)


def hudi_rs(path: str, as_of: str | None = None, begin: str | None = None, end: str | None = None) -> pa.Table:
    """Read a table with hudi-rs: snapshot, time travel or incremental (begin, end]."""
    table = HudiTableBuilder.from_base_uri(str(path)).build()
    opts = HudiReadOptions()
    if begin is not None:
        opts = opts.with_query_type(HudiQueryType.Incremental).with_start_timestamp(begin)
        if end is not None:
            opts = opts.with_end_timestamp(end)
    elif as_of is not None:
        opts = opts.with_as_of_timestamp(as_of)
    batches = table.read(opts)
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches)
