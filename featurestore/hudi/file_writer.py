"""Executor side of a write: merges incoming rows into file groups and writes new base files.

Runs inside ``DataFrame.mapInArrow``. Incoming rows arrive grouped (sorted) by target: an
existing file id, or ``new:<partition>`` for rows that start new file groups. For an existing
file group the task reads the current base file with pyarrow, merges the incoming rows into it by
record key (Hudi's merge handle: the incoming record replaces the stored one unless its ordering
value is lower; a delete drops it) and writes the next version with the same file id. New rows
go into new file groups, rolling over to another file at ``hoodie.parquet.max.file.size``.

Each file is ``<fileId>_<writeToken>_<instant>.parquet`` (the token is Hudi's
``<partitionId>-<stageId>-<attemptId>``); a marker under ``.hoodie/.temp/<instant>/`` is created
first so that an interrupted write can be rolled back. The footer carries what Hudi's writer puts
there: the Avro schema, the min/max record key and the bloom filter of the file's record keys
(featurestore/hudi/bloom.py), which Hudi's ``BLOOM`` index reads. One statistics row per file goes
back to the driver, which builds the commit metadata from them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.hudi import index, parquet_splice
from featurestore.hudi.bloom import BloomFilter, BloomSettings
from featurestore.hudi.schema import META_COLUMNS

# Row kinds in the _fs_kind column (incoming rows carry INSERT, UPDATE-candidate or DELETE).
COPY, INSERT, UPDATE, DELETE = 0, 1, 2, 3
GROUP, KIND, ORD = "_fs_group", "_fs_kind", "_fs_ord"
NEW_PREFIX = "new:"
# Dictionary pages are capped at 64 KiB (pyarrow's default is 1 MiB): a high-cardinality column then
# falls back to plain encoding after a few thousand values instead of hashing a whole row group
# first, which halves the encoding time of typical feature data and makes files no larger.
DICTIONARY_PAGE_LIMIT = 64 * 1024
# Position of _hoodie_file_name among the columns (leaves) and among the schema elements (after the
# root); the meta columns come first and are flat, so both are fixed.
FILE_NAME_COLUMN = META_COLUMNS.index("_hoodie_file_name")
FILE_NAME_ELEMENT = FILE_NAME_COLUMN + 1
KEY_COLUMN = META_COLUMNS.index("_hoodie_record_key")

# The statistics row each task returns per file written: one definition, as an Arrow schema (what the
# tasks yield) and the same as a Spark DDL string (what mapInArrow declares).
STATS_FIELDS: tuple[tuple[str, str], ...] = (
    ("partition", "string"), ("file_id", "string"), ("file_name", "string"), ("prev_commit", "string"),
    ("num_writes", "long"), ("num_inserts", "long"), ("num_updates", "long"), ("num_deletes", "long"),
    ("file_size", "long"), ("min_key", "string"), ("max_key", "string"), ("write_ms", "long"),
)
STATS_ARROW = pa.schema([(name, pa.string() if kind == "string" else pa.int64()) for name, kind in STATS_FIELDS])
STATS_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in STATS_FIELDS)


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
    row_group_rows: int = 131_072
    # file id -> (relative path of its current base file, that file's instant)
    old_files: dict[str, tuple[str, str]] = field(default_factory=dict)
    bloom: BloomSettings = BloomSettings()


class _FileWriter:
    """Writes one base file; tracks the statistics Hudi records for it."""

    def __init__(self, ctx: WriteContext, file_id: str, partition: str, token: str, task_id: int,
                 schema: pa.Schema, prev: str, sink: pa.BufferOutputStream | None = None) -> None:
        """A writer of the base file; with ``sink`` the parquet bytes go there instead of the file
        (to be spliced into it)."""
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
        self.sink = sink
        self.writer = pq.ParquetWriter(self.path if sink is None else sink, schema, compression=ctx.compression,
                                       store_schema=False, dictionary_pagesize_limit=DICTIONARY_PAGE_LIMIT)
        self.rows = self.inserts = self.updates = self.deletes = 0
        self.min_key: str | None = None
        self.max_key: str | None = None
        # Every key of the file goes into the footer's bloom filter; a splice that starts from the
        # stored file's filter (which holds the stored keys) adds only the inserted ones.
        self.bloom = BloomFilter(ctx.bloom)
        self.bloom_inserts_only = False
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
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema),
                                row_group_size=self.ctx.row_group_rows)
        self.rows += n
        self.bloom.add(pc.filter(keys, pc.equal(kinds, INSERT)) if self.bloom_inserts_only else keys)
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
        footer.update(self.bloom.footer())
        self.writer.add_key_value_metadata(footer)
        self.writer.close()
        return {
            "partition": self.partition, "file_id": self.file_id, "file_name": self.file_name,
            "prev_commit": self.prev, "num_writes": self.rows, "num_inserts": self.inserts,
            "num_updates": self.updates, "num_deletes": self.deletes,
            "file_size": os.path.getsize(self.path) if self.sink is None else 0,
            "min_key": self.min_key, "max_key": self.max_key,
            "write_ms": int((time.monotonic() - self.started) * 1000),
        }


def _file_schema(ctx: WriteContext, incoming: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in META_COLUMNS] + [incoming.field(c) for c in ctx.data_columns])


def _conform_old(old: pa.Table, target: pa.Schema, ctx: WriteContext) -> pa.Table:
    """The stored rows in the incoming (table) schema: new columns as nulls, types cast."""
    n = old.num_rows
    arrays = []
    for name in META_COLUMNS + ctx.data_columns:
        f = target.field(name) if name in target.names else pa.field(name, pa.string())
        if name in old.column_names:
            col = old.column(name)
            arrays.append(col if col.type == f.type else col.cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, names=list(META_COLUMNS + ctx.data_columns))


def _resolve(ctx: WriteContext, old_keys: pa.Array, old_ordering: pa.Array | None,
             incoming: pa.Table) -> tuple[pa.Table, np.ndarray, int]:
    """Hudi's merge decision for one file group: the incoming rows to write (``_fs_kind`` set to
    INSERT or UPDATE), a mask of the stored rows they replace or delete, and the number of deletes."""
    inc_keys = incoming.column("_hoodie_record_key").combine_chunks()
    if ctx.operation == "insert" or (len(old_keys) == 0 and ctx.operation != "delete"):
        kinds = pa.array(np.full(incoming.num_rows, INSERT, dtype=np.int32))
        winners = incoming.set_column(incoming.schema.get_field_index(KIND), KIND, kinds)
        return winners, np.zeros(len(old_keys), dtype=bool), 0
    if ctx.operation == "delete":
        doomed = pc.is_in(old_keys, value_set=inc_keys).to_numpy(zero_copy_only=False)
        return incoming.slice(0, 0), doomed, int(doomed.sum())
    # Hash the few incoming keys, not the stored ones: find the stored rows holding an incoming key,
    # then the position of each incoming key among just those.
    holders = np.flatnonzero(pc.is_in(old_keys, value_set=inc_keys).to_numpy(zero_copy_only=False))
    local = pc.index_in(inc_keys, value_set=old_keys.take(pa.array(holders)))
    position = pc.take(pa.array(holders), local)
    matched = pc.is_valid(position)
    if old_ordering is not None:
        stored = old_ordering.take(pc.fill_null(position, 0))
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
    replaced = pc.is_in(old_keys, value_set=winners.filter(winner_matched).column("_hoodie_record_key")
                        .combine_chunks()).to_numpy(zero_copy_only=False)
    return winners, replaced, 0


def _old_ordering(ctx: WriteContext, old: pa.Table) -> pa.Array | None:
    if ctx.precombine_field and ctx.precombine_field in old.column_names:
        return old.column(ctx.precombine_field).combine_chunks()
    return None


def _with_copy_kind(rows: pa.Table) -> pa.Table:
    return rows.append_column(KIND, pa.array(np.full(rows.num_rows, COPY, dtype=np.int32)))


def _merge(ctx: WriteContext, old: pa.Table, incoming: pa.Table) -> tuple[pa.Table, int]:
    """Merge incoming rows into a stored file group; returns the rows to write and the deletes."""
    old_keys = old.column("_hoodie_record_key").combine_chunks()
    winners, drop, deletes = _resolve(ctx, old_keys, _old_ordering(ctx, old), incoming)
    kept = _with_copy_kind(old.filter(pa.array(~drop)))
    columns = list(META_COLUMNS + ctx.data_columns) + [KIND]
    # Stored rows keep their order and new versions follow, as Hudi's merge handle writes them; no
    # sort of the whole file group is needed (its key range, kept in the footer, is what matters).
    merged = pa.concat_tables([kept.select(columns), winners.select(columns)], promote_options="permissive")
    return merged, deletes


def _key_bounds(stored: pq.ParquetFile, groups: list[int]) -> list[str]:
    """The smallest and largest record key of the given row groups (from their statistics, else
    from their key column)."""
    out: list[str] = []
    for i in groups:
        stats = stored.metadata.row_group(i).column(KEY_COLUMN).statistics
        if stats is not None and stats.has_min_max:
            out += [index.as_text(stats.min), index.as_text(stats.max)]
        elif stored.metadata.row_group(i).num_rows:
            keys = stored.read_row_group(i, columns=["_hoodie_record_key"], use_threads=False).column(0)
            out += [v.as_py() for v in pc.min_max(keys).values()]
    return out


def _copied_keys(stored: pq.ParquetFile, candidates: list[int], starts: np.ndarray, candidate_keys: pa.Array,
                 copied: list[int]) -> pa.ChunkedArray:
    """The record keys of the row groups a splice copies: sliced from the keys the index read
    (``candidate_keys``, the ``candidates`` row groups' keys one after another, row group ``j``
    from ``starts[j]``), the other row groups' key column read."""
    where = {g: j for j, g in enumerate(candidates)}
    parts = [candidate_keys.slice(int(starts[where[g]]), int(starts[where[g] + 1] - starts[where[g]]))
             for g in copied if g in where]
    unread = [g for g in copied if g not in where]
    if unread:
        parts += stored.read_row_groups(unread, columns=["_hoodie_record_key"], use_threads=False).column(0).chunks
    return pa.chunked_array([p.cast(pa.string()) for p in parts], pa.string())


def _merge_by_splice(ctx: WriteContext, old_path: str, incoming: pa.Table, new_file: Callable[..., _FileWriter],
                     schema: pa.Schema) -> dict | None:
    """Merge into a stored file group re-encoding only the row groups that change.

    Row groups without a replaced or deleted row are copied as encoded bytes (their
    ``_hoodie_file_name`` chunk is re-encoded: Hudi names the new file in every copied record);
    changed row groups and the new rows are encoded anew. The bloom filter is the stored file's plus
    the inserted keys when the stored one has the configured shape, else it is built from the keys
    of every row of the new file. Returns the file's statistics, or None
    when the stored file cannot be spliced (another schema, e.g. after schema evolution, or another
    writer's encoding); the caller then rewrites the whole file.
    """
    try:
        old_footer = parquet_splice.read_footer(old_path)
    except parquet_splice.SpliceError:
        return None
    stored = pq.ParquetFile(old_path)
    if stored.schema_arrow.names != list(META_COLUMNS + ctx.data_columns):
        return None
    key_columns = ["_hoodie_record_key"]
    if ctx.precombine_field and ctx.precombine_field in stored.schema_arrow.names:
        key_columns.append(ctx.precombine_field)
    metadata = stored.metadata
    group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    # Only row groups whose key statistics admit an incoming key can hold one: read just their keys.
    wanted = sorted(set(incoming.column("_hoodie_record_key").to_pylist()))
    candidates = [] if ctx.operation == "insert" else index.candidate_row_groups(metadata, KEY_COLUMN, wanted)
    old_index = (stored.read_row_groups(candidates, columns=key_columns, use_threads=False) if candidates
                 else pa.table({c: pa.array([], stored.schema_arrow.field(c).type) for c in key_columns}))
    old_keys = old_index.column("_hoodie_record_key").combine_chunks()
    winners, drop, deletes = _resolve(ctx, old_keys, _old_ordering(ctx, old_index), incoming)

    starts = np.concatenate([[0], np.cumsum([group_rows[i] for i in candidates])]).astype(np.int64)
    hit = np.unique(np.searchsorted(starts, np.flatnonzero(drop), side="right") - 1).tolist()
    touched: dict[int, np.ndarray | None] = {candidates[j]: drop[starts[j]:starts[j + 1]] for j in hit}
    if len(touched) * 2 > len(group_rows):
        return None  # most row groups change: re-encoding the whole file is as cheap and simpler
    # New rows join the last row group when it is not full (it is re-encoded with them), so that
    # repeated small upserts do not leave a trail of tiny row groups.
    last = len(group_rows) - 1
    tail = last if winners.num_rows and last >= 0 and group_rows[last] < ctx.row_group_rows else None
    if tail is not None:
        touched.setdefault(tail, None)
    columns = list(META_COLUMNS + ctx.data_columns) + [KIND]
    writer = new_file(pa.BufferOutputStream())
    # The stored file's bloom filter already holds every stored key (those of the copied row groups
    # included): start from it and add the inserted keys only. Keys deleted since stay in it, which
    # a bloom filter allows (a false positive the index then rules out by reading the keys).
    stored_bloom = BloomFilter.from_footer(metadata.metadata or {}, ctx.bloom)
    if stored_bloom is not None:
        writer.bloom, writer.bloom_inserts_only = stored_bloom, True
    encoded_groups: dict[int, int] = {}  # touched row group -> how many row groups its kept rows became
    trailing = winners.select(columns)
    for i, dropped in sorted(touched.items()):
        rows = _conform_old(stored.read_row_group(i, use_threads=False), schema, ctx)
        kept = _with_copy_kind(rows if dropped is None else rows.filter(pa.array(~dropped))).select(columns)
        if i == tail:
            trailing = pa.concat_tables([kept, trailing], promote_options="permissive")
            encoded_groups[i] = 0
            continue
        writer.write(kept)
        encoded_groups[i] = -(-kept.num_rows // ctx.row_group_rows)
    kept_total = int(metadata.num_rows - drop.sum())
    # Sequence numbers of the new rows continue after every kept row.
    writer.rows = kept_total - (trailing.num_rows - winners.num_rows)
    writer.write(trailing)
    if stored_bloom is None:  # another writer's file, other filter settings, or none: hash the copied keys
        writer.bloom.add(_copied_keys(stored, candidates, starts, old_keys,
                                      [i for i in range(len(group_rows)) if i not in touched]))
    bounds = _key_bounds(stored, [i for i in range(len(group_rows)) if i not in candidates])
    survivors = old_keys.filter(pa.array(~drop))
    if len(survivors):
        bounds += [v.as_py() for v in pc.min_max(survivors).values()]
    if bounds:
        writer.min_key = min(bounds + ([writer.min_key] if writer.min_key is not None else []))
        writer.max_key = max(bounds + ([writer.max_key] if writer.max_key is not None else []))
    stats = writer.close()
    encoded = parquet_splice.read_footer(writer.sink.getvalue().to_pybytes())
    if not parquet_splice.same_schema(old_footer, encoded):
        return None

    untouched_sizes = sorted({group_rows[i] for i in range(len(group_rows)) if i not in touched})
    names = pa.BufferOutputStream()
    with pq.ParquetWriter(names, pa.schema([schema.field("_hoodie_file_name")]), compression=ctx.compression,
                          store_schema=False) as name_writer:
        for n in untouched_sizes:
            name_writer.write_table(pa.table({"_hoodie_file_name": pa.repeat(pa.scalar(writer.file_name), n)}),
                                    row_group_size=n)
    name_footer = parquet_splice.read_footer(names.getvalue().to_pybytes())
    if untouched_sizes and not parquet_splice.same_schema(old_footer, name_footer, leaves=[FILE_NAME_ELEMENT]):
        return None

    width = metadata.num_columns  # leaf columns: a struct, list or map has one chunk per leaf
    plan: list[list[parquet_splice.ChunkRef]] = []
    next_encoded = 0
    for i, n in enumerate(group_rows):
        if i in touched:
            for _ in range(encoded_groups[i]):
                plan.append([parquet_splice.ChunkRef(encoded, next_encoded, c) for c in range(width)])
                next_encoded += 1
            continue
        refs = [parquet_splice.ChunkRef(old_footer, i, c) for c in range(width)]
        refs[FILE_NAME_COLUMN] = parquet_splice.ChunkRef(name_footer, untouched_sizes.index(n), 0)
        plan.append(refs)
    plan += [[parquet_splice.ChunkRef(encoded, g, c) for c in range(width)]
             for g in range(next_encoded, len(encoded.row_groups))]
    size = parquet_splice.splice(writer.path, encoded, plan)
    stats.update(num_writes=kept_total + winners.num_rows, num_deletes=deletes, file_size=size)
    return stats


def _latest_per_key(table: pa.Table, previous_key: str | None = None) -> pa.Table:
    """Hudi's pre-combine of a batch: one row per record key, the one with the highest ordering
    value (then the latest to arrive). The write job sorts each task's rows by file group, record key,
    ordering value descending and arrival descending, so the first row of each key is that one;
    ``previous_key`` is the last key of the chunk before, when a file group's rows arrive in chunks."""
    keys = table.column("_hoodie_record_key").combine_chunks()
    n = len(keys)
    if n == 0:
        return table
    first = np.ones(n, dtype=bool)
    first[0] = previous_key is None or keys[0].as_py() != previous_key
    if n > 1:
        first[1:] = pc.not_equal(keys.slice(1), keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return table if first.all() else table.filter(pa.array(first))


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
        state: dict = {"group": None, "pending": [], "buffered": 0, "writer": None, "last_key": None}
        combine = ctx.operation in ("upsert", "delete")

        def write_new(final: bool) -> None:
            # Rows of new file groups are streamed in row groups and roll over by file size.
            if not state["pending"] or (not final and state["buffered"] < ctx.row_group_rows):
                return
            table = pa.Table.from_batches(state["pending"])
            state["pending"], state["buffered"] = [], 0
            if combine:
                last = table.column("_hoodie_record_key")[-1].as_py() if table.num_rows else state["last_key"]
                table = _latest_per_key(table, state["last_key"])
                state["last_key"] = last
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
            if combine:
                table = _latest_per_key(table)
            rel, prev = ctx.old_files[group]
            partition = rel.rsplit("/", 1)[0] if "/" in rel else ""
            schema = _file_schema(ctx, table.schema)

            def new_file(sink: pa.BufferOutputStream | None = None) -> _FileWriter:
                return _FileWriter(ctx, group, partition, token, task_id, schema, prev, sink=sink)

            old_path = os.path.join(ctx.base_path, rel)
            stat = _merge_by_splice(ctx, old_path, table, new_file, schema)
            if stat is None:
                old = _conform_old(pq.read_table(old_path), table.schema, ctx)
                merged, deletes = _merge(ctx, old, table)
                writer = new_file()
                writer.write(merged)
                writer.deletes = deletes
                stat = writer.close()
            stats.append(stat)

        for batch in batches:
            if batch.num_rows == 0:
                continue
            groups = batch.column(GROUP)
            for start, length in _runs(groups):
                key = groups[start].as_py()
                if key != state["group"]:
                    finish_group()
                    state["group"], state["last_key"] = key, None
                piece = batch.slice(start, length)
                state["pending"].append(piece)
                state["buffered"] += length
                if key.startswith(NEW_PREFIX):
                    write_new(final=False)
        finish_group()
        if stats:
            yield pa.RecordBatch.from_pylist(stats, schema=STATS_ARROW)

    return write_partition

