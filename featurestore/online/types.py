"""Spark -> online SQL type mapping and the value conversions both ways.

=====================  ===============================  ==========================
Spark type             MariaDB / MySQL                  SQLite
=====================  ===============================  ==========================
boolean                BOOLEAN (TINYINT(1))             INTEGER 0/1
byte, short, int       TINYINT, SMALLINT, INT           INTEGER
long                   BIGINT                           INTEGER
float, double          FLOAT, DOUBLE (NaN/inf -> NULL)  REAL (NaN/inf -> NULL)
decimal(p,s)           DECIMAL(p,s) (exact)             TEXT (exact decimal string)
string                 LONGTEXT / key: VARCHAR(n)       TEXT
binary                 LONGBLOB / key: VARBINARY(n)     BLOB
date                   DATE                             TEXT yyyy-mm-dd
timestamp(_ntz)        DATETIME(6), UTC                 INTEGER microseconds since epoch, UTC
array, map, struct     LONGTEXT JSON                    TEXT JSON
=====================  ===============================  ==========================

Key columns of variable length share InnoDB's 3,072-byte limit of an index: after the fixed-size key
columns, the rest is split evenly between the string (4 bytes per utf8mb4 character) and binary key
columns, e.g. one string key holds up to 768 characters (see :func:`key_lengths`).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import struct
from collections.abc import Callable
from typing import Any

from pyspark.sql import types as T

from featurestore.errors import FeatureStoreError

EPOCH = dt.datetime(1970, 1, 1)
_WIDE = decimal.Context(prec=100)  # Spark decimals have up to 38 digits; the default context keeps 28
_FLOAT32 = struct.Struct("<f")
_INTS = {T.ByteType: "TINYINT", T.ShortType: "SMALLINT", T.IntegerType: "INT", T.LongType: "BIGINT"}


class OnlineStoreError(FeatureStoreError):
    """The online store refused an operation or its input; names the table, column or key at fault."""


def kind_of(dtype: T.DataType) -> str:
    """Conversion family of a Spark type."""
    if isinstance(dtype, T.BooleanType):
        return "bool"
    if isinstance(dtype, tuple(_INTS)):
        return "int"
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return "float"
    if isinstance(dtype, T.DecimalType):
        return "decimal"
    if isinstance(dtype, T.StringType):
        return "string"
    if isinstance(dtype, T.BinaryType):
        return "binary"
    if isinstance(dtype, T.DateType):
        return "date"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return "timestamp"
    if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType)):
        return "json"
    raise OnlineStoreError(f"type {dtype.simpleString()} is not supported by the online store")


INDEX_BYTES = 3072  # InnoDB's largest index key (DYNAMIC row format, 16 KiB pages)
_FIXED_KEY_BYTES = {"bool": 1, "int": 8, "float": 8, "date": 3, "timestamp": 8}


def key_lengths(key_types: list[T.DataType]) -> list[int | None]:
    """Per primary-key column, the length of its VARCHAR (characters) / VARBINARY (bytes), None if fixed-size.

    The variable-length key columns share what the fixed-size ones leave of :data:`INDEX_BYTES`.
    """
    kinds = [kind_of(t) for t in key_types]
    if "json" in kinds:
        raise OnlineStoreError("arrays, maps and structs cannot be primary-key columns of the online store")
    fixed = sum(_FIXED_KEY_BYTES.get(k, 0) + (t.precision // 2 + 1 if k == "decimal" else 0)
                for k, t in zip(kinds, key_types, strict=True))
    variable = [k for k in kinds if k in ("string", "binary")]
    share = (INDEX_BYTES - fixed) // len(variable) if variable else 0
    return [share // 4 if k == "string" else share if k == "binary" else None for k in kinds]


def sql_type(dtype: T.DataType, dialect: str, key: bool = False, key_length: int | None = None) -> str:
    """Column type of ``dtype`` in ``dialect`` (``mysql`` or ``sqlite``); ``key`` for primary-key columns,
    whose strings/binaries are ``VARCHAR/VARBINARY(key_length)`` (default 255)."""
    kind = kind_of(dtype)
    if dialect == "sqlite":
        return {"bool": "INTEGER", "int": "INTEGER", "float": "REAL", "decimal": "TEXT", "string": "TEXT",
                "binary": "BLOB", "date": "TEXT", "timestamp": "INTEGER", "json": "TEXT"}[kind]
    if kind == "int":
        return _INTS[type(dtype)]
    if kind == "float":
        return "FLOAT" if isinstance(dtype, T.FloatType) else "DOUBLE"
    if kind == "decimal":
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if kind == "string":
        # nopad_bin: keys compare byte for byte ('a' != 'A', 'a' != 'a '), as they do offline
        return ((f"VARCHAR({key_length or 255})" if key else "LONGTEXT")
                + " CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    if kind == "binary":
        return f"VARBINARY({key_length or 255})" if key else "LONGBLOB"
    return {"bool": "BOOLEAN", "date": "DATE", "timestamp": "DATETIME(6)",
            "json": "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"}[kind]


# -- Python values -> JSON (nested types) ---------------------------------------------------------
def to_json_value(value: Any, dtype: T.DataType) -> Any:
    """A JSON-serialisable form of a nested value (maps -> objects, decimals -> strings, ...)."""
    if value is None:
        return None
    if isinstance(dtype, T.ArrayType):
        return [to_json_value(v, dtype.elementType) for v in value]
    if isinstance(dtype, T.MapType):
        items = value.items() if isinstance(value, dict) else value
        return {_json_key(k): to_json_value(v, dtype.valueType) for k, v in items}
    if isinstance(dtype, T.StructType):
        get = value.get if isinstance(value, dict) else (lambda n: getattr(value, n))
        return {f.name: to_json_value(get(f.name), f.dataType) for f in dtype.fields}
    kind = kind_of(dtype)
    if kind == "float":
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if kind == "decimal":
        return str(value)
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "date":
        return value.isoformat()
    if kind == "timestamp":
        return _naive_utc(value).isoformat()
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, (dt.date, dt.datetime)):
        return key.isoformat()
    return str(key)


def from_json_value(value: Any, dtype: T.DataType) -> Any:
    """The inverse of :func:`to_json_value`: Python values of the offline schema (structs as dicts)."""
    if value is None:
        return None
    if isinstance(dtype, T.ArrayType):
        return [from_json_value(v, dtype.elementType) for v in value]
    if isinstance(dtype, T.MapType):
        return {from_json_value(k, dtype.keyType): from_json_value(v, dtype.valueType) for k, v in value.items()}
    if isinstance(dtype, T.StructType):
        return {f.name: from_json_value(value.get(f.name), f.dataType) for f in dtype.fields}
    kind = kind_of(dtype)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "decimal":
        return decimal.Decimal(value)
    if kind == "binary":
        return base64.b64decode(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "timestamp":
        return dt.datetime.fromisoformat(value)
    return value


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


# -- Python values -> database parameters -------------------------------------------------------
def to_db(dtype: T.DataType, dialect: str) -> Callable[[Any], Any]:
    """A function turning one Python value of ``dtype`` into a bound parameter for ``dialect``."""
    kind = kind_of(dtype)
    sqlite = dialect == "sqlite"

    def conv(v: Any) -> Any:
        if v is None:
            return None
        if kind == "float":
            # MariaDB DOUBLE has no NaN/Infinity: both backends store them as NULL (documented)
            return None if math.isnan(v) or math.isinf(v) else float(v)
        if kind == "bool":
            return int(bool(v)) if sqlite else bool(v)
        if kind == "int":
            return int(v)
        if kind == "decimal":
            return str(v) if sqlite else decimal.Decimal(v)
        if kind == "date":
            return v.isoformat() if sqlite else v
        if kind == "timestamp":
            naive = _naive_utc(v)
            if sqlite:
                delta = naive - EPOCH
                return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
            return naive
        if kind == "json":
            return json.dumps(to_json_value(v, dtype), ensure_ascii=False, separators=(",", ":"))
        if kind == "binary":
            return bytes(v)
        return v

    return conv


def from_db(dtype: T.DataType, dialect: str) -> Callable[[Any], Any]:
    """A function turning one fetched value back into the Python value of the offline schema.

    Timestamps come back as naive UTC datetimes, as ``fg.read().collect()`` gives them in a UTC session.
    """
    kind = kind_of(dtype)
    single = isinstance(dtype, T.FloatType)

    def conv(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, (bytes, bytearray)) and kind not in ("binary",):
            v = bytes(v).decode("utf-8")
        if kind == "bool":
            return bool(int(v))
        if kind == "int":
            return int(v)
        if kind == "float":
            # a FLOAT comes back as the shortest decimal of the float32 from some drivers: the offline value
            # is the float32 itself, widened
            return _FLOAT32.unpack(_FLOAT32.pack(float(v)))[0] if single else float(v)
        if kind == "decimal":
            return decimal.Decimal(str(v)).quantize(decimal.Decimal(1).scaleb(-dtype.scale), context=_WIDE)
        if kind == "date":
            return dt.date.fromisoformat(v) if isinstance(v, str) else v
        if kind == "timestamp":
            if isinstance(v, int):
                return EPOCH + dt.timedelta(microseconds=v)
            return v.replace(tzinfo=None) if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))
        if kind == "json":
            return from_json_value(json.loads(v), dtype)
        if kind == "binary":
            return bytes(v)
        return v

    return conv


# what MariaDB Connector/Python already returns as the offline Python value (no conversion needed)
_NATIVE_MARIADB = {"int", "decimal", "string", "binary", "date", "timestamp"}


def fetch_converter(dtype: T.DataType, dialect: str, driver: str | None) -> Callable[[Any], Any] | None:
    """:func:`from_db` for one fetched column, or None where the driver already returns the right value
    (the serving hot path skips those)."""
    kind = kind_of(dtype)
    if driver == "mariadb" and (kind in _NATIVE_MARIADB or isinstance(dtype, T.DoubleType)):
        return None
    return from_db(dtype, dialect)


def key_param(name: str, dtype: T.DataType, dialect: str) -> Callable[[Any], Any]:
    """A function turning a lookup key value into a bound parameter; a wrong type is an error naming the column.

    Built once per feature group and reused for every key (serving converts keys on every call).
    """
    kind = kind_of(dtype)
    to_param = to_db(dtype, dialect)

    def bad(value: Any) -> OnlineStoreError:
        return OnlineStoreError(f"key column '{name}' expects {dtype.simpleString()}, got {value!r}")

    if kind == "int":
        def int_param(value: Any) -> Any:
            if value.__class__ is not int:
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    raise bad(value)
                try:
                    value = int(value)
                except ValueError:
                    raise bad(value) from None
            if not -(2**63) <= value < 2**63:  # no SQL integer holds it (the client would fail obscurely)
                raise bad(value)
            return value
        return int_param
    if kind == "string":
        def string_param(value: Any) -> Any:
            if not isinstance(value, str):
                raise bad(value)
            return value
        return string_param

    def param(value: Any) -> Any:
        try:
            if kind == "date" and isinstance(value, str):
                value = dt.date.fromisoformat(value)
            elif kind == "timestamp" and isinstance(value, str):
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif kind == "decimal":
                value = decimal.Decimal(str(value))
            return to_param(value)
        except (ValueError, TypeError, ArithmeticError, AttributeError):
            raise bad(value) from None
    return param


def key_to_db(name: str, dtype: T.DataType, dialect: str, value: Any) -> Any:
    """A lookup key value as a bound parameter; wrong types are an error naming the key column."""
    return key_param(name, dtype, dialect)(value)
