"""TFRecord files of ``tf.train.Example`` protobufs, in pure Python (no TensorFlow, no Spark connector).

A record is: uint64 little-endian length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the
data. An Example is ``Features{map<string, Feature{BytesList=1 | FloatList=2 | Int64List=3}>}``; the
encoder and decoder below handle exactly that message family.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data``."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The CRC TFRecord stores: rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- protobuf wire format -----------------------------------------------------------------------
def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a message; value is bytes for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, pos = _read_varint(data, pos)
            yield number, wire, data[pos:pos + size]
            pos += size
        elif wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == 5:
            yield number, wire, data[pos:pos + 4]
            pos += 4
        elif wire == 1:
            yield number, wire, data[pos:pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def encode_example(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    """An Example from ``{name: (kind, values)}``; kind is ``bytes``, ``float`` or ``int64``."""
    entries = bytearray()
    for name, (kind, values) in features.items():
        if kind == "bytes":
            inner = _field(1, b"".join(_field(1, v) for v in values))
        elif kind == "float":
            inner = _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)) if values else b"")
        elif kind == "int64":
            inner = _field(3, _field(1, b"".join(_varint(v) for v in values)) if values else b"")
        else:
            raise ValueError(f"unknown feature kind {kind!r}")
        entries += _field(1, _field(1, name.encode("utf-8")) + _field(2, inner))
    return _field(1, bytes(entries))


def decode_example(data: bytes) -> dict[str, tuple[str, list[Any]]]:
    """``{name: (kind, values)}`` of a serialized Example."""
    out: dict[str, tuple[str, list[Any]]] = {}
    for number, _, features in _fields(data):
        if number != 1:
            continue
        for fnum, _, entry in _fields(features):
            if fnum != 1:
                continue
            name, feature = "", b""
            for enum, _, value in _fields(entry):
                if enum == 1:
                    name = value.decode("utf-8")
                elif enum == 2:
                    feature = value
            out[name] = _decode_feature(feature)
    return out


def _decode_feature(data: bytes) -> tuple[str, list[Any]]:
    for number, _, payload in _fields(data):
        values: list[Any] = []
        if number == 1:
            values = [v for n, _, v in _fields(payload) if n == 1]
            return "bytes", values
        if number == 2:
            for n, wire, v in _fields(payload):
                if n == 1:
                    values += list(struct.unpack(f"<{len(v) // 4}f", v)) if wire == 2 else list(struct.unpack("<f", v))
            return "float", values
        if number == 3:
            for n, wire, v in _fields(payload):
                if n != 1:
                    continue
                if wire == 0:
                    values.append(_signed(v))
                else:
                    pos = 0
                    while pos < len(v):
                        x, pos = _read_varint(v, pos)
                        values.append(_signed(x))
            return "int64", values
    return "bytes", []


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# -- record framing -----------------------------------------------------------------------------
def write_records(fh: BinaryIO, records: Iterable[bytes]) -> int:
    """Write framed records; returns how many."""
    n = 0
    for data in records:
        length = struct.pack("<Q", len(data))
        fh.write(length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data)))
        n += 1
    return n


def read_records(fh: BinaryIO, check_crc: bool = True) -> Iterator[bytes]:
    """The records of a TFRecord file; a corrupt record raises ValueError."""
    while True:
        header = fh.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError("truncated TFRecord header")
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if check_crc and masked_crc(length_bytes) != length_crc:
            raise ValueError("TFRecord length checksum mismatch")
        (length,) = struct.unpack("<Q", length_bytes)
        data = fh.read(length)
        footer = fh.read(4)
        if len(data) < length or len(footer) < 4:
            raise ValueError("truncated TFRecord record")
        if check_crc and masked_crc(data) != struct.unpack("<I", footer)[0]:
            raise ValueError("TFRecord data checksum mismatch")
        yield data
