"""The record-key bloom filter Apache Hudi keeps in every base file's footer.

Hudi's ``BLOOM`` and ``GLOBAL_BLOOM`` indexes read the filter from the footer key
``org.apache.hudi.bloomfilter`` (its type under ``hoodie_bloom_filter_type_code``) to decide which
files may hold an incoming key; a file without one is of no use to them. This module builds that
filter, bit for bit what Hudi's writer builds for the same keys in the same order:

* sizes: ``bits = ceil(n * -ln(fpp) / ln(2)^2)`` and ``hashes = ceil(ln(2) * bits / n)`` for
  ``n = hoodie.index.bloom.num_entries`` and ``fpp = hoodie.index.bloom.fpp``;
* a key's positions: MurmurHash2 (32 bit, Hadoop's variant) of its UTF-8 bytes, chained (the first
  with seed 0, each next one seeded with the previous hash), each taken as ``|h % bits|`` with Java's
  signed remainder;
* ``DYNAMIC_V0`` (Hudi's default, a bounded dynamic filter): a matrix of such filters; keys go to the
  last row until it holds ``n`` keys, then a new row starts, until ``rows * n`` reaches
  ``hoodie.bloom.index.filter.dynamic.max.entries``; from then on keys go to the rows in turn (the
  first row twice at the switch, as Hudi does);
* ``SIMPLE``: one such filter, no type-code footer key;
* the string: Base64 of Java ``DataOutput`` bytes (big-endian ints): per filter ``-1`` (format
  version), hashes, hash type (a byte, 1 = Murmur), bits, then the bit vector with bit ``i`` in byte
  ``i // 8`` at ``1 << (i % 8)``; the dynamic filter writes its own such header, then ``n``, the
  key count of its active row, the number of rows and each row.

Adding keys is vectorised: keys are grouped by byte length and each group is hashed as numpy
``uint32`` columns (the seed-independent block mixing once, then only the chained part per hash),
so a million keys take a fraction of a second rather than a Python loop per key.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.hudi.errors import HudiOptionError

FOOTER_KEY = "org.apache.hudi.bloomfilter"
TYPE_CODE_KEY = "hoodie_bloom_filter_type_code"

NUM_ENTRIES = "hoodie.index.bloom.num_entries"
FPP = "hoodie.index.bloom.fpp"
MAX_ENTRIES = "hoodie.bloom.index.filter.dynamic.max.entries"
FILTER_TYPE = "hoodie.bloom.index.filter.type"
OPTION_KEYS = (NUM_ENTRIES, FPP, MAX_ENTRIES, FILTER_TYPE)

DYNAMIC = "DYNAMIC_V0"
SIMPLE = "SIMPLE"
TYPES = (DYNAMIC, SIMPLE)
DEFAULT_NUM_ENTRIES = 60_000
DEFAULT_FPP = 0.000000001
DEFAULT_MAX_ENTRIES = 100_000

FORMAT_VERSION = -1  # Hadoop's versioned filter format (a positive first int is the old, unversioned one)
MURMUR = 1  # Hadoop's/Hudi's Hash.MURMUR_HASH
_M = np.uint32(0x5BD1E995)
_INT_MAX = 2**31 - 1
# Keys hashed per numpy pass: bounds the (hashes x keys) position matrix to a few tens of MB.
_SLICE = 1 << 17
_HEADER = struct.Struct(">ibi")  # hashes, hash type, bits (after the version int)


@dataclass(frozen=True)
class BloomSettings:
    """How the filter of each base file is sized (Hudi's option names and defaults)."""

    num_entries: int = DEFAULT_NUM_ENTRIES
    fpp: float = DEFAULT_FPP
    max_entries: int = DEFAULT_MAX_ENTRIES
    type_code: str = DYNAMIC

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BloomSettings:
        """The settings from write options; a bad value is a :class:`HudiOptionError` naming the option."""
        def integer(key: str, default: int) -> int:
            try:
                value = int(str(options.get(key, default)).strip())
            except ValueError:
                raise HudiOptionError(f"option {key} must be an integer, got {options[key]!r}") from None
            if not 0 < value <= _INT_MAX:
                raise HudiOptionError(f"option {key} must be between 1 and {_INT_MAX}, got {value}")
            return value

        try:
            fpp = float(str(options.get(FPP, DEFAULT_FPP)).strip())
        except ValueError:
            raise HudiOptionError(f"option {FPP} must be a number, got {options[FPP]!r}") from None
        if not 0.0 < fpp < 1.0:
            raise HudiOptionError(f"option {FPP} must be between 0 and 1 (exclusive), got {fpp}")
        # Hudi compares the type case-insensitively
        type_code = str(options.get(FILTER_TYPE, DYNAMIC)).strip().upper()
        if type_code not in TYPES:
            raise HudiOptionError(f"option {FILTER_TYPE}: unknown bloom filter type {type_code!r}; "
                                  f"use one of {', '.join(TYPES)}")
        settings = cls(integer(NUM_ENTRIES, DEFAULT_NUM_ENTRIES), fpp, integer(MAX_ENTRIES, DEFAULT_MAX_ENTRIES),
                       type_code)
        settings.shape()  # fail now, on the driver, not in every write task
        return settings

    def shape(self) -> tuple[int, int]:
        """``(bits, hashes)`` of one filter, computed in Java's order of double operations."""
        ln2 = math.log(2)
        bits = math.ceil(self.num_entries * (-math.log(self.fpp) / (ln2 * ln2)))
        if bits > _INT_MAX:
            raise HudiOptionError(f"options {NUM_ENTRIES}={self.num_entries} and {FPP}={self.fpp} ask for a bloom "
                                  f"filter of {bits} bits; Hudi's filters hold at most {_INT_MAX}")
        hashes = math.ceil(ln2 * bits / self.num_entries)
        return bits, hashes


def _java_int(n: int) -> int:
    """``n`` wrapped to a Java int, as Java's counters overflow."""
    return (n + 2**31) % 2**32 - 2**31


def _binary(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The keys as one Arrow large_binary array of their UTF-8 bytes (Arrow strings already are)."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type)
            or pa.types.is_binary(keys.type) or pa.types.is_large_binary(keys.type)):
        keys = keys.cast(pa.string())
    if keys.null_count:
        raise ValueError("a bloom filter key cannot be null")
    return keys.cast(pa.large_binary())


def _positions(keys: pa.Array, bits: int, hashes: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(key indices, positions)`` covering all keys: positions has shape (hashes, len(indices))."""
    lengths = pc.binary_length(keys).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(lengths) and lengths.min() == 0:
        raise ValueError("a bloom filter key cannot be empty (Hudi's filter refuses empty keys)")
    single = len(lengths) and lengths.min() == lengths.max()
    order = np.arange(len(lengths)) if single else np.argsort(lengths, kind="stable")
    bounds = [] if single else np.flatnonzero(np.diff(lengths[order])) + 1
    for group in np.split(order, bounds):
        if not len(group):
            continue
        length = int(lengths[group[0]])
        for start in range(0, len(group), _SLICE):
            idx = group[start:start + _SLICE]
            # Arrow gathers the keys of one length into one contiguous buffer: an (n, length) matrix.
            part = keys.slice(int(idx[0]), len(idx)) if single else keys.take(pa.array(idx))
            part = pa.concat_arrays([part]) if part.offset else part
            first = np.frombuffer(part.buffers()[1], dtype=np.int64, count=1)[0]
            matrix = np.frombuffer(part.buffers()[2], dtype=np.uint8, count=len(idx) * length,
                                   offset=int(first)).reshape(len(idx), length)
            yield idx, _murmur_chain(matrix, bits, hashes)


def _murmur_chain(keys: np.ndarray, bits: int, hashes: int) -> np.ndarray:
    """Hudi's chained MurmurHash2 positions of equal-length keys (rows of a uint8 matrix)."""
    n, length = keys.shape
    nblocks = length // 4
    with np.errstate(over="ignore"):
        # Block mixing does not depend on the seed: once per key, column-major for the chained loop.
        blocks = np.ascontiguousarray(keys[:, :nblocks * 4]).view("<u4").astype(np.uint32).T.copy()
        blocks *= _M
        blocks ^= blocks >> np.uint32(24)
        blocks *= _M
        left = length - nblocks * 4
        tail = None
        if left:
            # Java reads the tail bytes as signed: a byte >= 0x80 sign-extends before the shift.
            signed = keys[:, nblocks * 4:].view(np.int8).astype(np.int32)
            t = np.zeros(n, dtype=np.int32)
            for j in range(left):  # the last byte unshifted, the one before it << 8, then << 16
                t ^= np.left_shift(signed[:, j], np.int32(8 * (left - 1 - j)))
            tail = t.view(np.uint32)
        out = np.empty((hashes, n), dtype=np.int32)
        h = np.empty(n, dtype=np.uint32)
        seed = np.zeros(n, dtype=np.uint32)
        for i in range(hashes):
            np.bitwise_xor(seed, np.uint32(length), out=h)
            for b in range(nblocks):
                h *= _M
                h ^= blocks[b]
            if tail is not None:
                h ^= tail
                h *= _M
            h ^= h >> np.uint32(13)
            h *= _M
            h ^= h >> np.uint32(15)
            seed[:] = h
            # Java: Math.abs(h % bits) with a signed h and a remainder of the dividend's sign
            out[i] = np.abs(np.fmod(h.view(np.int32), np.int32(bits)))
    return out


class BloomFilter:
    """A Hudi ``DYNAMIC_V0`` or ``SIMPLE`` bloom filter of record keys."""

    def __init__(self, settings: BloomSettings | None = None) -> None:
        self.settings = settings or BloomSettings()
        self.bits, self.hashes = self.settings.shape()
        self.dynamic = self.settings.type_code == DYNAMIC
        self.rows = np.zeros((1, self.bits), dtype=bool)
        # The dynamic filter's state, named after Hudi's: keys in the active row, and the round robin
        # over the rows once they are at their bound.
        self.active_count = 0
        self.reached_max = False
        self.next_row = 0

    def _rows_of(self, n: int) -> np.ndarray:
        """The row each of ``n`` next keys goes to (advancing the dynamic state as Hudi's add does)."""
        if not self.dynamic:
            return np.zeros(n, dtype=np.int64)
        nr, bound = self.settings.num_entries, self.settings.max_entries
        out = np.empty(n, dtype=np.int64)
        done = 0
        while done < n:
            if self.reached_max:
                k = n - done
                out[done:] = (self.next_row + np.arange(k)) % len(self.rows)
                self.next_row += k
                self.active_count += k
                done = n
            elif self.active_count >= nr and len(self.rows) * nr < bound:
                self.rows = np.vstack([self.rows, np.zeros((1, self.bits), dtype=bool)])
                self.active_count = 0
            elif self.active_count >= nr:
                # The key that finds the bound goes to row 0 without moving the round robin on.
                self.reached_max = True
                out[done] = 0
                self.active_count += 1
                done += 1
            else:
                k = min(n - done, nr - self.active_count)
                out[done:done + k] = len(self.rows) - 1
                self.active_count += k
                done += k
        return out

    def add(self, keys: pa.Array | pa.ChunkedArray) -> None:
        """Add keys (strings, in order: the order decides the dynamic filter's rows)."""
        binary = _binary(keys)
        if len(binary) == 0:
            return
        rows = self._rows_of(len(binary))
        flat = self.rows.reshape(-1)  # a view: setting flat positions sets the rows' bits
        for idx, positions in _positions(binary, self.bits, self.hashes):
            base = rows[idx] * self.bits
            for i in range(self.hashes):
                flat[base + positions[i]] = True

    def might_contain(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Per key: whether the filter may hold it (False: it certainly does not)."""
        binary = _binary(keys)
        found = np.zeros(len(binary), dtype=bool)
        for idx, positions in _positions(binary, self.bits, self.hashes):
            for row in self.rows:
                found[idx] |= np.logical_and.reduce(row[positions], axis=0)
        return found

    def _filter_bytes(self, row: np.ndarray) -> bytes:
        return (struct.pack(">i", FORMAT_VERSION) + _HEADER.pack(self.hashes, MURMUR, self.bits)
                + np.packbits(row, bitorder="little").tobytes())

    def to_bytes(self) -> bytes:
        """The bytes Hudi's ``write(DataOutput)`` writes for this filter."""
        if not self.dynamic:
            return self._filter_bytes(self.rows[0])
        head = struct.pack(">i", FORMAT_VERSION) + _HEADER.pack(self.hashes, MURMUR, self.bits)
        head += struct.pack(">iii", self.settings.num_entries, _java_int(self.active_count), len(self.rows))
        return head + b"".join(self._filter_bytes(row) for row in self.rows)

    def serialize(self) -> str:
        """The footer string: what Hudi's ``serializeToString()`` returns (Base64, ASCII)."""
        return base64.b64encode(self.to_bytes()).decode("ascii")

    def footer(self) -> dict[str, str]:
        """The footer key-value metadata Hudi's writer adds for the filter (no type code for SIMPLE)."""
        out = {FOOTER_KEY: self.serialize()}
        if self.dynamic:
            out[TYPE_CODE_KEY] = DYNAMIC
        return out

    @classmethod
    def from_footer(cls, metadata: Mapping[str, str] | Mapping[bytes, bytes],
                    settings: BloomSettings) -> BloomFilter | None:
        """The filter stored in a base file's footer, to add more keys to, if it has the shape
        ``settings`` give (type, bits, hashes, Murmur, rows of ``num_entries``); otherwise None."""
        def get(key: str) -> str | None:
            value = metadata.get(key, metadata.get(key.encode()))  # type: ignore[call-overload]
            return value.decode() if isinstance(value, bytes) else value

        text = get(FOOTER_KEY)
        if text is None or (get(TYPE_CODE_KEY) or SIMPLE).upper() != settings.type_code:
            return None
        try:
            raw = base64.b64decode(text, validate=True)
            return cls._parse(raw, settings)
        except (ValueError, struct.error):
            return None

    @classmethod
    def _parse(cls, raw: bytes, settings: BloomSettings) -> BloomFilter | None:
        bloom = cls(settings)
        nbytes = (bloom.bits + 7) // 8

        def header(pos: int) -> int:
            version, = struct.unpack_from(">i", raw, pos)
            if version != FORMAT_VERSION or _HEADER.unpack_from(raw, pos + 4) != (bloom.hashes, MURMUR, bloom.bits):
                raise ValueError("another filter shape")
            return pos + 4 + _HEADER.size

        def row(pos: int) -> tuple[np.ndarray, int]:
            pos = header(pos)
            if len(raw) < pos + nbytes:
                raise ValueError("cut short")
            bits = np.unpackbits(np.frombuffer(raw, np.uint8, nbytes, pos), bitorder="little")[:bloom.bits]
            return bits.astype(bool), pos + nbytes

        if not bloom.dynamic:
            bits, end = row(0)
            bloom.rows = bits[None, :]
        else:
            pos = header(0)
            nr, count, n_rows = struct.unpack_from(">iii", raw, pos)
            if nr != settings.num_entries or n_rows < 1:
                return None
            pos += 12
            rows = []
            for _ in range(n_rows):
                bits, pos = row(pos)
                rows.append(bits)
            end = pos
            bloom.rows = np.vstack(rows)
            # Hudi reads back neither the bound flag nor the round-robin position: neither do we.
            bloom.active_count = count
        if end != len(raw):
            return None
        return bloom
