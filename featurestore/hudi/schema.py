"""Spark schemas <-> the Avro schemas Hudi records, and the schema-evolution rules.

Hudi records the table schema as Avro JSON: the record ``<table>_record`` in namespace
``hoodie.<table>``; every field ``{"name", "type": ["null", T], "default": null}``; nested records
named after their field, in the namespace of the enclosing record's full name; decimals as
``fixed`` named ``fixed``. ``hoodie.table.create.schema`` puts ``"null"`` last and has no defaults.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import types as T

from featurestore.hudi.errors import HudiSchemaError

META_COLUMNS = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                "_hoodie_partition_path", "_hoodie_file_name")
META_SCHEMA = T.StructType([T.StructField(c, T.StringType(), True) for c in META_COLUMNS])


def decimal_fixed_size(precision: int) -> int:
    """Bytes of the smallest two's-complement fixed that holds ``precision`` decimal digits."""
    return math.ceil((math.log2(10**precision - 1) + 1) / 8) if precision > 0 else 1


def _avro_type(dtype: T.DataType, name: str, namespace: str, column: str, null_first: bool) -> Any:
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    if isinstance(dtype, T.ByteType | T.ShortType | T.IntegerType):
        return "int"
    if isinstance(dtype, T.LongType):
        return "long"
    if isinstance(dtype, T.FloatType):
        return "float"
    if isinstance(dtype, T.DoubleType):
        return "double"
    if isinstance(dtype, T.StringType | T.CharType | T.VarcharType):
        return "string"
    if isinstance(dtype, T.BinaryType):
        return "bytes"
    if isinstance(dtype, T.DecimalType):
        return {"type": "fixed", "name": "fixed", "namespace": f"{namespace}.{name}",
                "size": decimal_fixed_size(dtype.precision), "logicalType": "decimal",
                "precision": dtype.precision, "scale": dtype.scale}
    if isinstance(dtype, T.DateType):
        return {"type": "int", "logicalType": "date"}
    if isinstance(dtype, T.TimestampType):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if isinstance(dtype, T.TimestampNTZType):
        raise HudiSchemaError(
            f"column '{column}' is TIMESTAMP_NTZ, which Hudi readers cannot read back; cast it to TIMESTAMP"
        )
    if isinstance(dtype, T.ArrayType):
        return {"type": "array", "items": _nullable(_avro_type(dtype.elementType, name, namespace, column,
                                                               null_first), dtype.containsNull, null_first)}
    if isinstance(dtype, T.MapType):
        if not isinstance(dtype.keyType, T.StringType):
            raise HudiSchemaError(f"column '{column}' is a map with {dtype.keyType.simpleString()} keys; "
                                  "Hudi (Avro) maps need string keys")
        return {"type": "map", "values": _nullable(_avro_type(dtype.valueType, name, namespace, column,
                                                              null_first), dtype.valueContainsNull, null_first)}
    if isinstance(dtype, T.StructType):
        return _record(dtype, name, namespace, column, null_first)
    raise HudiSchemaError(f"column '{column}' has type {dtype.simpleString()}, which cannot be stored in Hudi")


def _nullable(avro: Any, nullable: bool, null_first: bool) -> Any:
    if not nullable:
        return avro
    return ["null", avro] if null_first else [avro, "null"]


def _record(struct: T.StructType, name: str, namespace: str, column: str, null_first: bool) -> dict:
    full = f"{namespace}.{name}" if namespace else name
    fields = []
    for f in struct.fields:
        col = f"{column}.{f.name}" if column else f.name
        avro = _nullable(_avro_type(f.dataType, f.name, full, col, null_first), True, null_first)
        entry: dict[str, Any] = {"name": f.name, "type": avro}
        if null_first:
            entry["default"] = None
        fields.append(entry)
    return {"type": "record", "name": name, "namespace": namespace, "fields": fields}


def to_avro_schema(schema: T.StructType, table_name: str, create_style: bool = False) -> dict:
    """The Avro schema Hudi records for ``schema`` (data columns only, no meta columns).

    ``create_style`` gives the ``hoodie.table.create.schema`` flavour (null last, no defaults).
    """
    data = T.StructType([f for f in schema.fields if f.name not in META_COLUMNS])
    return _record(data, f"{table_name}_record", f"hoodie.{table_name}", "", null_first=not create_style)


def with_meta_fields(avro: dict) -> dict:
    """The schema with the five meta fields first (what ``parquet.avro.schema`` holds)."""
    meta = [{"name": c, "type": ["null", "string"], "doc": "", "default": None} for c in META_COLUMNS]
    return {**avro, "fields": meta + list(avro["fields"])}


def _spark_type(avro: Any) -> tuple[T.DataType, bool]:
    nullable = False
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        nullable = len(branches) < len(avro)
        if len(branches) != 1:
            raise HudiSchemaError(f"unsupported Avro union {avro}")
        avro = branches[0]
    if isinstance(avro, str):
        simple = {"boolean": T.BooleanType(), "int": T.IntegerType(), "long": T.LongType(),
                  "float": T.FloatType(), "double": T.DoubleType(), "string": T.StringType(),
                  "bytes": T.BinaryType()}
        if avro not in simple:
            raise HudiSchemaError(f"unsupported Avro type {avro!r}")
        return simple[avro], nullable
    logical = avro.get("logicalType")
    kind = avro["type"]
    if logical == "decimal":
        return T.DecimalType(avro["precision"], avro.get("scale", 0)), nullable
    if logical == "date":
        return T.DateType(), nullable
    if logical in ("timestamp-micros", "timestamp-millis"):
        return T.TimestampType(), nullable
    if logical in ("local-timestamp-micros", "local-timestamp-millis"):
        return T.TimestampNTZType(), nullable
    if kind == "array":
        element, contains_null = _spark_type(avro["items"])
        return T.ArrayType(element, contains_null), nullable
    if kind == "map":
        value, contains_null = _spark_type(avro["values"])
        return T.MapType(T.StringType(), value, contains_null), nullable
    if kind == "record":
        return from_avro_schema(avro), nullable
    if kind == "fixed":
        return T.BinaryType(), nullable
    if kind == "enum":
        return T.StringType(), nullable
    return _spark_type(kind)[0], nullable


def from_avro_schema(avro: dict) -> T.StructType:
    """The Spark schema of an Avro record schema."""
    fields = []
    for f in avro["fields"]:
        dtype, nullable = _spark_type(f["type"])
        fields.append(T.StructField(f["name"], dtype, nullable))
    return T.StructType(fields)


def evolve_schema(table: T.StructType, incoming: T.StructType) -> T.StructType:
    """The table schema after writing ``incoming``: new nullable columns are appended.

    Raises :class:`HudiSchemaError` naming every dropped column and every changed type.
    """
    table_fields = {f.name: f for f in table.fields if f.name not in META_COLUMNS}
    incoming_fields = {f.name: f for f in incoming.fields if f.name not in META_COLUMNS}
    missing = [n for n in table_fields if n not in incoming_fields]
    retyped = [
        f"'{n}' ({table_fields[n].dataType.simpleString()} -> {f.dataType.simpleString()})"
        for n, f in incoming_fields.items()
        if n in table_fields and not _same_type(table_fields[n].dataType, f.dataType)
    ]
    problems = []
    if missing:
        problems.append("missing column(s) " + ", ".join(f"'{n}'" for n in missing)
                        + " (dropping a column is not allowed)")
    if retyped:
        problems.append("changed type of " + ", ".join(retyped))
    if problems:
        raise HudiSchemaError("incoming data does not match the table schema: " + "; ".join(problems))
    added = [T.StructField(n, f.dataType, True) for n, f in incoming_fields.items() if n not in table_fields]
    return T.StructType(list(table_fields.values()) + added)


def _same_type(a: T.DataType, b: T.DataType) -> bool:
    """Equal types, ignoring nullability (incoming frames often differ only in that)."""
    return _strip_nullability(a) == _strip_nullability(b)


def _strip_nullability(t: T.DataType) -> T.DataType:
    if isinstance(t, T.StructType):
        return T.StructType([T.StructField(f.name, _strip_nullability(f.dataType), True) for f in t.fields])
    if isinstance(t, T.ArrayType):
        return T.ArrayType(_strip_nullability(t.elementType), True)
    if isinstance(t, T.MapType):
        return T.MapType(_strip_nullability(t.keyType), _strip_nullability(t.valueType), True)
    return t
