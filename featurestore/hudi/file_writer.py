"""Executor side of a write: merges incoming rows into file groups and writes new base files.

Runs inside ``DataFrame.mapInArrow``. Incoming rows arrive grouped (sorted) by target: an
existing file id, or ``new:<partition>`` for rows that start new file groups. For an existing
file group the task reads the current base file with pyarrow, merges the incoming rows into it by
record key (Hudi's merge handle: the incoming record replaces the stored one unless its ordering
value is lower; a delete drops it) and writes the next version with the same file id. New rows
go into new file groups, rolling over to another file at ``hoodie.parquet.max.file.size``.

Each file is ``<fileId>_<writeToken>_<instant>.parquet`` (the token is Hudi's
``<partitionId>-<stageId>-<attemptId>``); a marker under ``.hoodie/.temp/<instant>/`` is created
first so that an interrupted write can be rolled back. One statistics row per file goes back to
the driver, which builds the commit metadata from them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Row kinds in the _fs_kind column (incoming rows carry INSERT, UPDATE-candidate or DELETE).
COPY, INSERT, UPDATE, DELETE = 0, 1, 2, 3
GROUP, KIND, ORD = "_fs_group", "_fs_kind", "_fs_ord"
NEW_PREFIX = "new:"
META = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path",
        "_hoodie_file_name")
ROW_GROUP_ROWS = 131_072

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
    operation: str
    data_columns: tuple[str, ...]
    parquet_avro_schema: str
    max_file_size: int
    precombine_field: str | None = None
    compression: str = "snappy"
    # file id -> (relative path of its current base file, that file's instant)
    old_files: dict[str, tuple[str, str]] = field(default_factory=dict)


class _FileWriter:
    """Writes one base file; tracks the statistics Hudi records for it."""

    def __init__(self, ctx: WriteContext, file_id: str, partition: str, token: str, task_id: int,
                 schema: pa.Schema, prev: str) -> None:
        self.ctx = ctx
        self.file_id = file_id
        self.partition = partition
        self.prev = prev
        self.file_name = f"{file_id}_{token}_{ctx.instant}.parquet"
        folder = os.path.join(ctx.base_path, partition) if partition else ctx.base_path
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, self.file_name)
        marker_folder = os.path.join(ctx.base_path, ".hoodie", ".temp", ctx.instant, partition)
        os.makedirs(marker_folder, exist_ok=True)
        open(os.path.join(marker_folder, f"{self.file_name}.marker.{'MERGE' if prev != 'null' else 'CREATE'}"),
             "wb").close()
        self.seq_prefix = f"{ctx.instant}_{task_id}_"
        self.schema = schema
        self.writer = pq.ParquetWriter(self.path, schema, compression=ctx.compression, store_schema=False)
        self.rows = self.inserts = self.updates = self.deletes = 0
        self.min_key: str | None = None
        self.max_key: str | None = None
        self.started = time.monotonic()

    def write(self, table: pa.Table) -> None:
        """Write rows (with a _fs_kind column) as the next row group(s)."""
        n = table.num_rows
        if n == 0:
            return
        kinds = table.column(KIND)
        fresh = pc.is_in(kinds, pa.array([INSERT, UPDATE], pa.int32()))
        self.inserts += pc.sum(pc.equal(kinds, INSERT)).as_py() or 0
        self.updates += pc.sum(pc.equal(kinds, UPDATE)).as_py() or 0
        positions = pa.array(np.arange(self.rows, self.rows + n, dtype=np.int64)).cast(pa.string())
        new_seq = pc.binary_join_element_wise(pa.scalar(self.seq_prefix), positions, "")
        commit_time = pc.if_else(fresh, pa.scalar(self.ctx.instant), table.column("_hoodie_commit_time"))
        seqno = pc.if_else(fresh, new_seq, table.column("_hoodie_commit_seqno"))
        keys = table.column("_hoodie_record_key")
        columns = [commit_time, seqno, keys, table.column("_hoodie_partition_path"),
                   pa.repeat(pa.scalar(self.file_name), n)]
        columns += [table.column(c) for c in self.ctx.data_columns]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema), row_group_size=ROW_GROUP_ROWS)
        self.rows += n
        lo, hi = pc.min_max(keys).values()
        lo, hi = lo.as_py(), hi.as_py()
        if lo is not None and (self.min_key is None or lo < self.min_key):
            self.min_key = lo
        if hi is not None and (self.max_key is None or hi > self.max_key):
            self.max_key = hi

    def size(self) -> int:
        """Bytes on disk so far."""
        return os.path.getsize(self.path)

    def close(self) -> dict:
        """Finish the file (Hudi footer keys included) and return its statistics."""
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


def _file_schema(ctx: WriteContext, incoming: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in META] + [incoming.field(c) for c in ctx.data_columns])


def _conform_old(old: pa.Table, target: pa.Schema, ctx: WriteContext) -> pa.Table:
    """The stored rows in the incoming (table) schema: new columns as nulls, types cast."""
    n = old.num_rows
    arrays = []
    for name in META + ctx.data_columns:
        f = target.field(name) if name in target.names else pa.field(name, pa.string())
        if name in old.column_names:
            col = old.column(name)
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, names=list(META + ctx.data_columns))


def _merge(ctx: WriteContext, old: pa.Table, incoming: pa.Table) -> tuple[pa.Table, int]:
    """Merge incoming rows into a stored file group; returns the rows to write and the deletes."""
    old_keys = old.column("_hoodie_record_key").combine_chunks()
    inc_keys = incoming.column("_hoodie_record_key").combine_chunks()
    copy_kind = pa.array(np.full(old.num_rows, COPY, dtype=np.int32))
    if ctx.operation == "insert":
        kept, winners, deletes = old, incoming, 0
    elif ctx.operation == "delete":
        doomed = pc.is_in(old_keys, value_set=inc_keys)
        deletes = pc.sum(doomed).as_py() or 0
        kept, winners = old.filter(pc.invert(doomed)), incoming.slice(0, 0)
        copy_kind = copy_kind.filter(pc.invert(doomed))
    else:
        position = pc.index_in(inc_keys, value_set=old_keys)
        matched = pc.is_valid(position)
        if ctx.precombine_field and ctx.precombine_field in old.column_names:
            stored = old.column(ctx.precombine_field).combine_chunks().take(pc.fill_null(position, 0))
            new = incoming.column(ORD).combine_chunks()
            if stored.type != new.type:
                stored = stored.cast(new.type)
            # The incoming record loses only to a stored one with a higher ordering value (a null
            # ordering value sorts lowest), as Hudi's event-time ordering does.
            older = pc.or_(pc.fill_null(pc.less(new, stored), False),
                           pc.and_(pc.is_null(new), pc.is_valid(stored)))
            loses = pc.and_(matched, older)
        else:
            loses = pc.and_(matched, pa.scalar(False))
        winners = incoming.filter(pc.invert(loses))
        winner_matched = pc.and_(matched, pc.invert(loses)).filter(pc.invert(loses))
        kinds = pc.if_else(winner_matched, pa.scalar(UPDATE, pa.int32()), pa.scalar(INSERT, pa.int32()))
        winners = winners.set_column(winners.schema.get_field_index(KIND), KIND, kinds)
        replaced = pc.is_in(old_keys, value_set=winners.filter(winner_matched)
                            .column("_hoodie_record_key").combine_chunks())
        kept = old.filter(pc.invert(replaced))
        copy_kind = copy_kind.filter(pc.invert(replaced))
        deletes = 0
    if ctx.operation == "insert":
        winners = winners.set_column(winners.schema.get_field_index(KIND), KIND,
                                     pa.array(np.full(winners.num_rows, INSERT, dtype=np.int32)))
    kept = kept.append_column(KIND, copy_kind)
    columns = list(META + ctx.data_columns) + [KIND]
    # Stored rows keep their order and new versions follow, as Hudi's merge handle writes them; no
    # sort of the whole file group is needed (its key range, kept in the footer, is what matters).
    merged = pa.concat_tables([kept.select(columns), winners.select(columns)], promote_options="permissive")
    return merged, deletes


def _runs(column: pa.Array) -> Iterator[tuple[int, int]]:
    """``(start, length)`` of each run of equal values in a sorted column."""
    n = len(column)
    if n == 0:
        return
    change = pc.not_equal(column.slice(1), column.slice(0, n - 1))
    start = 0
    for i in pc.indices_nonzero(pc.fill_null(change, True)).to_pylist():
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
        stats: list[dict] = []
        state: dict = {"group": None, "pending": [], "buffered": 0, "writer": None}

        def write_new(final: bool) -> None:
            # Rows of new file groups are streamed in row groups and roll over by file size.
            if not state["pending"] or (not final and state["buffered"] < ROW_GROUP_ROWS):
                return
            table = pa.Table.from_batches(state["pending"])
            state["pending"], state["buffered"] = [], 0
            table = table.set_column(table.schema.get_field_index(KIND), KIND,
                                     pa.array(np.full(table.num_rows, INSERT, dtype=np.int32)))
            if state["writer"] is None:
                partition = state["group"][len(NEW_PREFIX):]
                state["writer"] = _FileWriter(ctx, f"{uuid.uuid4()}-0", partition, token, task_id,
                                              _file_schema(ctx, table.schema), "null")
            state["writer"].write(table)
            if state["writer"].size() >= ctx.max_file_size:
                stats.append(state["writer"].close())
                state["writer"] = None

        def finish_group() -> None:
            group = state["group"]
            if group is None:
                return
            if group.startswith(NEW_PREFIX):
                write_new(final=True)
                if state["writer"] is not None:
                    stats.append(state["writer"].close())
                    state["writer"] = None
                return
            table = pa.Table.from_batches(state["pending"])
            state["pending"] = []
            rel, prev = ctx.old_files[group]
            partition = rel.rsplit("/", 1)[0] if "/" in rel else ""
            old = _conform_old(pq.read_table(os.path.join(ctx.base_path, rel)), table.schema, ctx)
            merged, deletes = _merge(ctx, old, table)
            writer = _FileWriter(ctx, group, partition, token, task_id, _file_schema(ctx, table.schema), prev)
            writer.write(merged)
            writer.deletes = deletes
            stats.append(writer.close())

        for batch in batches:
            if batch.num_rows == 0:
                continue
            groups = batch.column(GROUP)
            for start, length in _runs(groups):
                key = groups[start].as_py()
                if key != state["group"]:
                    finish_group()
                    state["group"] = key
                piece = batch.slice(start, length)
                state["pending"].append(piece)
                state["buffered"] += length
                if key.startswith(NEW_PREFIX):
                    write_new(final=False)
        finish_group()
        if stats:
            yield pa.RecordBatch.from_pylist(stats, schema=_STATS_ARROW)

    return write_partition


_STATS_ARROW = pa.schema([
    ("partition", pa.string()), ("file_id", pa.string()), ("file_name", pa.string()),
    ("prev_commit", pa.string()), ("num_writes", pa.int64()), ("num_inserts", pa.int64()),
    ("num_updates", pa.int64()), ("num_deletes", pa.int64()), ("file_size", pa.int64()),
    ("min_key", pa.string()), ("max_key", pa.string()), ("write_ms", pa.int64()),
])
