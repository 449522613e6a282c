"""Assemble a parquet file from column chunks of other parquet files, without re-encoding them.

Copy-on-write must write a whole new base file even when an upsert changes a handful of its rows.
Decoding and re-encoding every row of a 120 MB file costs seconds of CPU; copying the encoded
column chunks of the row groups that did not change costs milliseconds. A parquet file is
``PAR1``, then column chunks, then a Thrift (compact protocol) ``FileMetaData`` footer whose only
absolute positions are the chunks' page offsets, so a chunk can be moved to another position of
another file by rewriting those offsets in the footer. This module reads and writes that footer
(a minimal generic Thrift compact codec: no generated classes, every field kept as read) and
splices files together from ``(file, row group, column)`` chunk references.

Only files with the same schema can be spliced (the caller checks :func:`same_schema`); the
sources' page indexes and parquet's own per-column bloom filters are dropped (this project's writer
writes neither). The key-value metadata is the template's: Hudi's record-key bloom filter
(``org.apache.hudi.bloomfilter``) there is the one the caller built for all the spliced rows
(featurestore/hudi/file_writer.py), so Hudi's ``BLOOM`` index finds every key of a spliced file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAGIC = b"PAR1"

# Thrift compact protocol wire types.
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
BOOL = TRUE  # how booleans are kept in a parsed struct (the wire type carries the value)

# Field ids of the parquet.thrift structures this module touches.
FMD_SCHEMA, FMD_NUM_ROWS, FMD_ROW_GROUPS, FMD_ENCRYPTION = 2, 3, 4, 8
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_FILE_OFFSET, RG_TOTAL_COMPRESSED, RG_ORDINAL = 1, 2, 3, 5, 6, 7
CC_FILE_PATH, CC_FILE_OFFSET, CC_META = 1, 2, 3
CC_PAGE_INDEX_FIELDS = (4, 5, 6, 7)  # offset/column index offsets and lengths
CC_CRYPTO_FIELDS = (8, 9)
CMD_UNCOMPRESSED, CMD_COMPRESSED = 6, 7
CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE = 9, 10, 11
CMD_BLOOM_FIELDS = (14, 15)

Struct = dict[int, tuple[int, Any]]


class SpliceError(ValueError):
    """A file cannot take part in a splice (encrypted, unexpected layout, bad footer)."""


# -- Thrift compact protocol ----------------------------------------------------------------------

class _Decoder:
    def __init__(self, buf: bytes) -> None:
        self.buf = memoryview(buf)
        self.pos = 0

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, wire: int) -> Any:
        if wire in (TRUE, FALSE):  # only inside containers: one byte per element
            return self.byte() == TRUE
        if wire == BYTE:
            return self.byte()
        if wire in (I16, I32, I64):
            return self.zigzag()
        if wire == DOUBLE:
            raw = bytes(self.buf[self.pos:self.pos + 8])
            self.pos += 8
            return raw
        if wire == BINARY:
            n = self.varint()
            raw = bytes(self.buf[self.pos:self.pos + n])
            self.pos += n
            return raw
        if wire in (LIST, SET):
            header = self.byte()
            size, elem = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return elem, [self.value(elem) for _ in range(size)]
        if wire == MAP:
            size = self.varint()
            if size == 0:
                return 0, 0, []
            kinds = self.byte()
            kt, vt = kinds >> 4, kinds & 0x0F
            return kt, vt, [(self.value(kt), self.value(vt)) for _ in range(size)]
        if wire == STRUCT:
            return self.struct()
        raise SpliceError(f"unknown Thrift compact type {wire} at byte {self.pos}")

    def struct(self) -> Struct:
        fields: Struct = {}
        last = 0
        while True:
            header = self.byte()
            if header == STOP:
                return fields
            wire, delta = header & 0x0F, header >> 4
            fid = last + delta if delta else self.zigzag()
            if wire in (TRUE, FALSE):
                fields[fid] = (BOOL, wire == TRUE)
            else:
                fields[fid] = (wire, self.value(wire))
            last = fid


def _varint(out: bytearray, n: int) -> None:
    while True:
        if n < 0x80:
            out.append(n)
            return
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(out: bytearray, n: int) -> None:
    _varint(out, (n << 1) ^ (n >> 63))


def _encode_value(out: bytearray, wire: int, value: Any) -> None:
    if wire in (TRUE, FALSE):
        out.append(TRUE if value else FALSE)
    elif wire == BYTE:
        out.append(value & 0xFF)
    elif wire in (I16, I32, I64):
        _zigzag(out, value)
    elif wire == DOUBLE:
        out += value
    elif wire == BINARY:
        _varint(out, len(value))
        out += value
    elif wire in (LIST, SET):
        elem, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _varint(out, len(items))
        for item in items:
            _encode_value(out, elem, item)
    elif wire == MAP:
        kt, vt, items = value
        _varint(out, len(items))
        if items:
            out.append(kt << 4 | vt)
            for k, v in items:
                _encode_value(out, kt, k)
                _encode_value(out, vt, v)
    elif wire == STRUCT:
        encode_struct(out, value)
    else:
        raise SpliceError(f"cannot encode Thrift compact type {wire}")


def encode_struct(out: bytearray, fields: Struct) -> None:
    """Append ``fields`` as a compact-protocol struct (fields in ascending id order)."""
    last = 0
    for fid in sorted(fields):
        wire, value = fields[fid]
        on_wire = (TRUE if value else FALSE) if wire == BOOL else wire
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | on_wire)
        else:
            out.append(on_wire)
            _zigzag(out, fid)
        if wire != BOOL:
            _encode_value(out, wire, value)
        last = fid
    out.append(STOP)


# -- parquet footers ------------------------------------------------------------------------------

@dataclass
class Footer:
    """A parsed ``FileMetaData`` and where it came from (a path, or bytes held in memory)."""

    metadata: Struct
    source: str | bytes

    @property
    def row_groups(self) -> list[Struct]:
        return self.metadata[FMD_ROW_GROUPS][1][1]

    def row_group_rows(self, index: int) -> int:
        return self.row_groups[index][RG_NUM_ROWS][1]


def read_footer(source: str | bytes) -> Footer:
    """Parse the footer of a parquet file (a path) or of parquet bytes."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 12:
                raise SpliceError(f"{source}: too small to be parquet")
            f.seek(size - 8)
            tail = f.read(8)
            length = struct.unpack("<I", tail[:4])[0]
            f.seek(size - 8 - length)
            raw = f.read(length)
            f.seek(0)
            head = f.read(4)
    else:
        tail, length = source[-8:], struct.unpack("<I", source[-8:-4])[0]
        raw, head = source[-8 - length:-8], source[:4]
    if head != MAGIC or tail[4:] != MAGIC:
        raise SpliceError("not a plain (unencrypted) parquet file")
    metadata = _Decoder(raw).struct()
    if FMD_ENCRYPTION in metadata:
        raise SpliceError("encrypted parquet files are not spliced")
    return Footer(metadata, source)


def same_schema(a: Footer, b: Footer, leaves: Sequence[int] | None = None) -> bool:
    """Whether two files have byte-identical schemas (or, with ``leaves``, whether ``b`` is a
    one-column file whose leaf equals ``a``'s leaf at each of those schema positions)."""
    sa, sb = a.metadata[FMD_SCHEMA][1][1], b.metadata[FMD_SCHEMA][1][1]
    if leaves is None:
        return _encoded(sa) == _encoded(sb)
    return len(sb) == 1 + len(leaves) and all(_encoded(sa[i]) == _encoded(sb[1 + k])
                                               for k, i in enumerate(leaves))


def _encoded(value: Any) -> bytes:
    out = bytearray()
    if isinstance(value, dict):
        encode_struct(out, value)
    else:
        _encode_value(out, LIST, (STRUCT, value))
    return bytes(out)


def _chunk_range(chunk: Struct) -> tuple[int, int]:
    meta = chunk[CC_META][1]
    start = meta[CMD_DATA_PAGE][1]
    if CMD_DICT_PAGE in meta and 0 < meta[CMD_DICT_PAGE][1] < start:
        start = meta[CMD_DICT_PAGE][1]
    return start, meta[CMD_COMPRESSED][1]


def _moved(chunk: Struct, delta: int) -> Struct:
    # Shallow copies of the two structs whose fields change; everything else is shared, unchanged.
    chunk = dict(chunk)
    if CC_FILE_PATH in chunk or any(f in chunk for f in CC_CRYPTO_FIELDS):
        raise SpliceError("column chunks in other files or encrypted columns are not spliced")
    for fid in CC_PAGE_INDEX_FIELDS:
        chunk.pop(fid, None)
    if CC_FILE_OFFSET in chunk and chunk[CC_FILE_OFFSET][1] > 0:
        chunk[CC_FILE_OFFSET] = (I64, chunk[CC_FILE_OFFSET][1] + delta)
    meta = dict(chunk[CC_META][1])
    chunk[CC_META] = (STRUCT, meta)
    for fid in CMD_BLOOM_FIELDS:
        meta.pop(fid, None)
    for fid in (CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE):
        if fid in meta and meta[fid][1] > 0:
            meta[fid] = (I64, meta[fid][1] + delta)
    return chunk


@dataclass(frozen=True)
class ChunkRef:
    """Column ``column`` of row group ``row_group`` of ``footer``'s file."""

    footer: Footer
    row_group: int
    column: int


def splice(path: str, template: Footer, row_groups: Sequence[Sequence[ChunkRef]]) -> int:
    """Write a parquet file at ``path`` whose row groups are made of the given chunks, in order.

    Each row group lists one chunk per schema leaf, all of the same row count. The footer is
    ``template``'s (schema, key-value metadata, created_by, column orders) with the new row groups.
    Returns the size of the written file.
    """
    handles: dict[int, Any] = {}
    new_groups: list[tuple[int, Any]] = []
    total_rows = 0
    try:
        with open(path, "wb") as out:
            out.write(MAGIC)
            pos = len(MAGIC)
            for ordinal, refs in enumerate(row_groups):
                base = dict(refs[0].footer.row_groups[refs[0].row_group])
                chunks, compressed, uncompressed = [], 0, 0
                for ref in refs:
                    chunk = ref.footer.row_groups[ref.row_group][RG_COLUMNS][1][1][ref.column]
                    start, length = _chunk_range(chunk)
                    data = _chunk_bytes(ref.footer, start, length, handles)
                    out.write(data)
                    chunks.append(_moved(chunk, pos - start))
                    compressed += length
                    uncompressed += chunk[CC_META][1][CMD_UNCOMPRESSED][1]
                    pos += length
                rows = {r.footer.row_group_rows(r.row_group) for r in refs}
                if len(rows) != 1:
                    raise SpliceError(f"row group {ordinal}: its chunks hold different row counts {sorted(rows)}")
                base[RG_COLUMNS] = (LIST, (STRUCT, chunks))
                base[RG_TOTAL_BYTE_SIZE] = (I64, uncompressed)
                base[RG_FILE_OFFSET] = (I64, _chunk_range(chunks[0])[0])
                base[RG_TOTAL_COMPRESSED] = (I64, compressed)
                base[RG_ORDINAL] = (I16, ordinal)
                new_groups.append(base)
                total_rows += rows.pop()
            metadata = dict(template.metadata)
            metadata[FMD_NUM_ROWS] = (I64, total_rows)
            metadata[FMD_ROW_GROUPS] = (LIST, (STRUCT, new_groups))
            footer = bytearray()
            encode_struct(footer, metadata)
            out.write(footer)
            out.write(struct.pack("<I", len(footer)))
            out.write(MAGIC)
            return out.tell()
    finally:
        for handle in handles.values():
            handle.close()


def _chunk_bytes(footer: Footer, start: int, length: int, handles: dict[int, Any]) -> bytes | memoryview:
    if isinstance(footer.source, bytes):
        return memoryview(footer.source)[start:start + length]
    handle = handles.get(id(footer))
    if handle is None:
        handle = handles[id(footer)] = open(footer.source, "rb")  # noqa: SIM115 - closed by splice()
    handle.seek(start)
    data = handle.read(length)
    if len(data) != length:
        raise SpliceError(f"{footer.source}: column chunk at {start} is cut short")
    return data
