"""Executor side of a write: turns sorted rows into one new base file per file group.

Runs inside ``DataFrame.mapInArrow``. Rows arrive sorted by file id; each run of one file id
becomes ``<fileId>_<writeToken>_<instant>.parquet`` (the token is Hudi's
``<partitionId>-<stageId>-<attemptId>``). A marker under ``.hoodie/.temp/<instant>/`` is created
before each file so that an interrupted write can be rolled back. One statistics row per file is
returned to the driver, which builds the commit metadata from them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Row kinds carried in the _fs_kind column.
COPY, INSERT, UPDATE, DELETE = 0, 1, 2, 3
FID, KIND, PREV = "_fs_fid", "_fs_kind", "_fs_prev"
INTERNAL_COLUMNS = (FID, KIND, PREV, "_fs_ord", "_fs_src", "_fs_seq", "_fs_u")

STATS_SCHEMA = (
    "partition string, file_id string, file_name string, prev_commit string, num_writes long, "
    "num_inserts long, num_updates long, num_deletes long, file_size long, min_key string, "
    "max_key string, write_ms long"
)


@dataclass(frozen=True)
class WriteContext:
    """Everything a write task needs; shipped to executors with the function."""

    base_path: str
    instant: str
    data_columns: tuple[str, ...]
    parquet_avro_schema: str
    compression: str = "snappy"
    prev_commits: dict[str, str] = field(default_factory=dict)


class _FileGroupWriter:
    def __init__(self, ctx: WriteContext, file_id: str, partition: str, token: str, task_id: int) -> None:
        self.ctx = ctx
        self.file_id = file_id
        self.partition = partition
        self.file_name = f"{file_id}_{token}_{ctx.instant}.parquet"
        self.prev = ctx.prev_commits.get(file_id, "null")
        folder = os.path.join(ctx.base_path, partition) if partition else ctx.base_path
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, self.file_name)
        marker_folder = os.path.join(ctx.base_path, ".hoodie", ".temp", ctx.instant, partition)
        os.makedirs(marker_folder, exist_ok=True)
        kind = "MERGE" if self.prev != "null" else "CREATE"
        open(os.path.join(marker_folder, f"{self.file_name}.marker.{kind}"), "wb").close()
        self.seq_prefix = f"{ctx.instant}_{task_id}_"
        self.writer: pq.ParquetWriter | None = None
        self.rows = self.inserts = self.updates = self.deletes = 0
        self.min_key: str | None = None
        self.max_key: str | None = None
        self.started = time.monotonic()

    def add(self, batch: pa.RecordBatch) -> None:
        kinds = batch.column(KIND)
        deleted = pc.equal(kinds, DELETE)
        n_deleted = pc.sum(deleted).as_py() or 0
        self.deletes += n_deleted
        if n_deleted:
            batch = batch.filter(pc.invert(deleted))
        if self.writer is None:
            schema = self._file_schema(batch.schema)
            self.writer = pq.ParquetWriter(self.path, schema, compression=self.ctx.compression, store_schema=False)
        n = batch.num_rows
        if n == 0:
            return
        kinds = batch.column(KIND)
        fresh = pc.is_in(kinds, pa.array([INSERT, UPDATE], pa.int32()))
        self.inserts += pc.sum(pc.equal(kinds, INSERT)).as_py() or 0
        self.updates += pc.sum(pc.equal(kinds, UPDATE)).as_py() or 0
        positions = pa.array(range(self.rows, self.rows + n), pa.int64()).cast(pa.string())
        new_seq = pc.binary_join_element_wise(pa.scalar(self.seq_prefix), positions, "")
        commit_time = pc.if_else(fresh, pa.scalar(self.ctx.instant), batch.column("_hoodie_commit_time"))
        seqno = pc.if_else(fresh, new_seq, batch.column("_hoodie_commit_seqno"))
        keys = batch.column("_hoodie_record_key")
        columns = [
            commit_time, seqno, keys, batch.column("_hoodie_partition_path"),
            pa.array([self.file_name] * n, pa.string()),
        ] + [batch.column(c) for c in self.ctx.data_columns]
        out = pa.RecordBatch.from_arrays(columns, schema=self.writer.schema)
        self.writer.write_batch(out)
        self.rows += n
        lo, hi = pc.min_max(keys).values()
        lo, hi = lo.as_py(), hi.as_py()
        self.min_key = lo if self.min_key is None or (lo is not None and lo < self.min_key) else self.min_key
        self.max_key = hi if self.max_key is None or (hi is not None and hi > self.max_key) else self.max_key

    def _file_schema(self, batch_schema: pa.Schema) -> pa.Schema:
        meta = [pa.field(c, pa.string()) for c in
                ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                 "_hoodie_partition_path", "_hoodie_file_name")]
        return pa.schema(meta + [batch_schema.field(c) for c in self.ctx.data_columns])

    def close(self) -> dict:
        assert self.writer is not None
        footer = {"writer.model.name": "avro", "parquet.avro.schema": self.ctx.parquet_avro_schema}
        if self.min_key is not None:
            footer["hoodie_min_record_key"] = self.min_key
            footer["hoodie_max_record_key"] = self.max_key
        self.writer.add_key_value_metadata(footer)
        self.writer.close()
        return {
            "partition": self.partition, "file_id": self.file_id, "file_name": self.file_name,
            "prev_commit": self.prev, "num_writes": self.rows, "num_inserts": self.inserts,
            "num_updates": self.updates, "num_deletes": self.deletes,
            "file_size": os.path.getsize(self.path), "min_key": self.min_key, "max_key": self.max_key,
            "write_ms": int((time.monotonic() - self.started) * 1000),
        }


def _runs(column: pa.Array) -> Iterator[tuple[int, int]]:
    """``(start, length)`` of each run of equal values in a sorted column."""
    n = len(column)
    if n == 0:
        return
    values = column.to_pylist() if n < 64 else None
    if values is not None:
        start = 0
        for i in range(1, n):
            if values[i] != values[start]:
                yield start, i - start
                start = i
        yield start, n - start
        return
    change = pc.not_equal(column.slice(1), column.slice(0, n - 1))
    idx = pc.indices_nonzero(change).to_pylist()
    start = 0
    for i in idx:
        yield start, i + 1 - start
        start = i + 1
    yield start, n - start


def make_write_function(ctx: WriteContext):
    """The ``mapInArrow`` function that writes the file groups of one Spark partition."""

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        tc = TaskContext.get()
        task_id = tc.partitionId() if tc else 0
        token = f"{task_id}-{tc.stageId() if tc else 0}-{tc.taskAttemptId() if tc else 0}"
        current: _FileGroupWriter | None = None
        stats: list[dict] = []
        for batch in batches:
            if batch.num_rows == 0:
                continue
            fids = batch.column(FID)
            for start, length in _runs(fids):
                fid = fids[start].as_py()
                if current is None or current.file_id != fid:
                    if current is not None:
                        stats.append(current.close())
                    partition = batch.column("_hoodie_partition_path")[start].as_py() or ""
                    current = _FileGroupWriter(ctx, fid, partition, token, task_id)
                current.add(batch.slice(start, length))
        if current is not None:
            stats.append(current.close())
        if stats:
            yield pa.RecordBatch.from_pylist(stats, schema=_STATS_ARROW)

    return write_partition


_STATS_ARROW = pa.schema([
    ("partition", pa.string()), ("file_id", pa.string()), ("file_name", pa.string()),
    ("prev_commit", pa.string()), ("num_writes", pa.int64()), ("num_inserts", pa.int64()),
    ("num_updates", pa.int64()), ("num_deletes", pa.int64()), ("file_size", pa.int64()),
    ("min_key", pa.string()), ("max_key", pa.string()), ("write_ms", pa.int64()),
])
