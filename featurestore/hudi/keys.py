"""Record keys and partition paths, built as Spark column expressions exactly as Hudi's key
generators format them.

* Simple (one key field, one partition field): the key is the value as a string.
* Complex (several key or partition fields): the key is ``field1:value1,field2:value2`` with
  ``__null__`` / ``__empty__`` for null / empty parts (all parts null is an error).
* Non-partitioned: the key as for Simple (one field) or Complex (several); partition path ``""``.

Partition paths join the values of the partition fields with ``/``; hive style writes
``field=value``; a null or empty value becomes ``__HIVE_DEFAULT_PARTITION__``; with url-encoding the
characters Hive escapes in path names become ``%XX``.

Values become strings the way Hudi's key generators print them: numbers and strings as Spark casts
them, dates as ``yyyy-MM-dd``, timestamps as microseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, StructType, TimestampNTZType, TimestampType

SIMPLE = "org.apache.hudi.keygen.SimpleKeyGenerator"
COMPLEX = "org.apache.hudi.keygen.ComplexKeyGenerator"
NON_PARTITIONED = "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
NULL_PART = "__null__"
EMPTY_PART = "__empty__"

# Characters Hive (and Hudi's PartitionPathEncodeUtils) escape in partition path names.
_ESCAPED = set(range(0x01, 0x20)) | {ord(c) for c in "\"#%'*/:=?\\{[]^"} | {0x7F}


def escape_path_name(value: str) -> str:
    """Hive-style path escaping: each escaped character becomes ``%`` and two upper-case hex digits."""
    return "".join(f"%{ord(ch):02X}" if ord(ch) in _ESCAPED else ch for ch in value)


@dataclass(frozen=True)
class KeySpec:
    """How a table forms record keys and partition paths."""

    record_key_fields: tuple[str, ...]
    partition_fields: tuple[str, ...]
    hive_style: bool = False
    url_encode: bool = False

    @property
    def key_generator_class(self) -> str:
        """The Hudi key generator class recorded in ``hoodie.properties``."""
        if not self.partition_fields:
            return NON_PARTITIONED
        if len(self.record_key_fields) == 1 and len(self.partition_fields) == 1:
            return SIMPLE
        return COMPLEX

    @property
    def complex_keys(self) -> bool:
        """Whether keys are written as ``field:value`` pairs."""
        return self.key_generator_class == COMPLEX or len(self.record_key_fields) > 1

    @classmethod
    def from_key_generator(cls, keygen_class: str, record_key_fields: Sequence[str],
                           partition_fields: Sequence[str], hive_style: bool, url_encode: bool) -> KeySpec:
        """The spec of an existing table, from its ``hoodie.properties`` values."""
        return cls(tuple(record_key_fields), tuple(partition_fields), hive_style, url_encode)


def _as_key_string(col: Column, dtype: DataType) -> Column:
    if isinstance(dtype, TimestampType | TimestampNTZType):
        return F.unix_micros(col.cast(TimestampType())).cast("string")
    if isinstance(dtype, DateType):
        return F.date_format(col, "yyyy-MM-dd")
    return col.cast("string")


def record_key_column(spec: KeySpec, schema: StructType) -> Column:
    """The ``_hoodie_record_key`` value of each row; null where the key is null or empty."""
    fields = spec.record_key_fields
    if not spec.complex_keys:
        value = _as_key_string(F.col(f"`{fields[0]}`"), schema[fields[0]].dataType)
        return F.when(value.isNull() | (value == ""), F.lit(None)).otherwise(value)
    parts = []
    all_missing = None
    for name in fields:
        value = _as_key_string(F.col(f"`{name}`"), schema[name].dataType)
        part = F.when(value.isNull(), F.lit(NULL_PART)).when(value == "", F.lit(EMPTY_PART)).otherwise(value)
        parts.append(F.concat(F.lit(f"{name}:"), part))
        missing = value.isNull() | (value == "")
        all_missing = missing if all_missing is None else (all_missing & missing)
    key = F.concat_ws(",", *parts)
    return F.when(all_missing, F.lit(None)).otherwise(key)


def partition_path_column(spec: KeySpec, schema: StructType) -> Column:
    """The ``_hoodie_partition_path`` value of each row (``""`` for a non-partitioned table)."""
    if not spec.partition_fields:
        return F.lit("")
    parts = []
    for name in spec.partition_fields:
        value = _as_key_string(F.col(f"`{name}`"), schema[name].dataType)
        if spec.url_encode:
            value = _escape_column(value)
        value = F.when(value.isNull() | (value == ""), F.lit(DEFAULT_PARTITION)).otherwise(value)
        parts.append(F.concat(F.lit(f"{name}="), value) if spec.hive_style else value)
    return F.concat_ws("/", *parts)


def _escape_column(value: Column) -> Column:
    # '%' first, so that the escapes added afterwards are not escaped again.
    out = F.replace(value, F.lit("%"), F.lit("%25"))
    for code in sorted(_ESCAPED - {ord("%")}):
        out = F.replace(out, F.lit(chr(code)), F.lit(f"%{code:02X}"))
    return out


def file_id_of(file_name: Column) -> Column:
    """The file id of a base file name ``<fileId>_<writeToken>_<instant>.parquet``."""
    return F.regexp_extract(file_name, r"^(.*)_[0-9]+-[0-9]+-[0-9]+_[0-9]+\.[a-z]+$", 1)
