"""Hudi's SIMPLE index for small batches: look incoming keys up row group by row group.

The general index joins the incoming keys with the record keys of every candidate base file, a
scan of the whole key column. A small batch (a streaming micro-batch, a correction of a few rows)
usually touches a few row groups: base files are written in record-key order, so each row group
covers a narrow key range, and its min/max statistics in the footer tell whether it can hold any
incoming key. Executors read only the key column of those row groups.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

RECORD_KEY = "_hoodie_record_key"
LOOKUP_SCHEMA = "_hoodie_record_key string, _hoodie_partition_path string, _fs_fid string"
FILES_SCHEMA = "path string, partition string, file_id string"
_LOOKUP_ARROW = pa.schema([(RECORD_KEY, pa.string()), ("_hoodie_partition_path", pa.string()),
                           ("_fs_fid", pa.string())])


def as_text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


# Footer key ranges kept by the driver (one entry per base file, ~200 bytes): enough for the current
# files of several large tables; the least recently used go first.
FOOTER_CACHE_ENTRIES = 20_000


class FooterKeyRanges:
    """``(min, max)`` record key of base files, read from their footers; a bounded LRU cache.

    Base files never change once written, so an entry stays right until the file is deleted; the
    cleaner and rollback call :meth:`forget` for the files they delete.
    """

    def __init__(self, max_entries: int = FOOTER_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._ranges: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ranges)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and os.path.normpath(path) in self._ranges

    def get(self, path: str) -> tuple[str | None, str | None]:
        """The key range of the base file at ``path`` (its footer is read on a miss)."""
        path = os.path.normpath(path)  # the writer and the cleaner spell paths differently
        with self._lock:
            if path in self._ranges:
                self._ranges.move_to_end(path)
                return self._ranges[path]
        meta = pq.read_metadata(path).metadata or {}
        lo, hi = meta.get(b"hoodie_min_record_key"), meta.get(b"hoodie_max_record_key")
        found = (lo.decode() if lo else None, hi.decode() if hi else None)
        with self._lock:
            self._ranges[path] = found
            self._ranges.move_to_end(path)
            while len(self._ranges) > self.max_entries:
                self._ranges.popitem(last=False)
        return found

    def forget(self, paths: Iterable[str]) -> None:
        """Drop deleted files (absolute paths)."""
        with self._lock:
            for path in paths:
                self._ranges.pop(os.path.normpath(str(path)), None)


FOOTER_KEY_RANGES = FooterKeyRanges()


def candidate_row_groups(metadata: pq.FileMetaData, column: int, keys: list[str]) -> list[int]:
    """Row groups whose record-key statistics admit one of ``keys`` (sorted); a row group without
    statistics always qualifies. String statistics order by UTF-8 bytes, which is code point order,
    the order Python compares ``str`` in."""
    out = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            out.append(i)
            continue
        at = bisect_left(keys, as_text(stats.min))
        if at < len(keys) and keys[at] <= as_text(stats.max):
            out.append(i)
    return out


def keys_held(path: str, keys: list[str], value_set: pa.Array, metadata: pq.FileMetaData | None = None,
              groups: list[int] | None = None) -> pa.Array:
    """The keys among ``keys`` (sorted; ``value_set`` the same as an array) that the base file holds,
    reading only the key column of the row groups whose statistics admit them."""
    stored_file = pq.ParquetFile(path, metadata=metadata)
    column = stored_file.schema_arrow.get_field_index(RECORD_KEY)
    if column < 0:
        raise ValueError(f"base file {path} has no {RECORD_KEY} column")
    if groups is None:
        groups = candidate_row_groups(stored_file.metadata, column, keys)
    if not groups:
        return pa.array([], pa.string())
    stored = stored_file.read_row_groups(groups, columns=[RECORD_KEY], use_threads=False).column(0)
    return pc.unique(stored.filter(pc.is_in(stored, value_set=value_set))).cast(pa.string())


def _found_batch(held: pa.Array, partition: str, file_id: str) -> pa.RecordBatch:
    n = len(held)
    return pa.RecordBatch.from_arrays([held, pa.array([partition] * n, pa.string()),
                                       pa.array([file_id] * n, pa.string())], schema=_LOOKUP_ARROW)


@lru_cache(maxsize=512)
def footer(path: str) -> pq.FileMetaData:
    """A base file's parquet footer (cached: base files never change once written)."""
    return pq.read_metadata(path)


def lookup_on_driver(files: list[tuple[str, str, str]], wanted: dict[str, list[str]],
                     max_row_groups: int) -> pa.Table | None:
    """The lookup done by the driver when the incoming keys fall in at most ``max_row_groups`` row
    groups overall (a bounded read, whatever the table's size); None when they fall in more."""
    plan = []
    for path, partition, file_id in files:
        keys = wanted.get(partition)
        if not keys:
            continue
        metadata = footer(path)
        column = metadata.schema.to_arrow_schema().get_field_index(RECORD_KEY)
        if column < 0:
            return None
        groups = candidate_row_groups(metadata, column, keys)
        if groups:
            plan.append((path, partition, file_id, metadata, groups))
    if sum(len(p[4]) for p in plan) > max_row_groups:
        return None
    value_sets = {p: pa.array(keys, pa.string()) for p, keys in wanted.items()}
    batches = [_found_batch(keys_held(path, wanted[partition], value_sets[partition], metadata, groups),
                            partition, file_id)
               for path, partition, file_id, metadata, groups in plan]
    return pa.Table.from_batches([b for b in batches if b.num_rows], schema=_LOOKUP_ARROW).combine_chunks()


def make_key_lookup(wanted: dict[str, list[str]]) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function over rows of (path, partition, file id): for each base file, the
    incoming keys of its partition (``wanted``, sorted) that it holds, with its file id."""

    def lookup(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        value_sets: dict[str, pa.Array] = {}
        for batch in batches:
            paths, partitions, file_ids = (batch.column(i).to_pylist() for i in range(3))
            for path, partition, file_id in zip(paths, partitions, file_ids, strict=True):
                keys = wanted.get(partition)
                if not keys:
                    continue
                if partition not in value_sets:
                    value_sets[partition] = pa.array(keys, pa.string())
                held = keys_held(path, keys, value_sets[partition])
                if len(held):
                    yield _found_batch(held, partition, file_id)

    return lookup
