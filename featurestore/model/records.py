"""Records: a feature group version as registered, its features, one commit of its table, one write.

These are immutable values. A change to a feature group (a new feature, a new description) makes a
new :class:`FeatureGroupRecord` from the registry's answer; nothing edits one in place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import types as T

from featurestore.errors import FeatureGroupError

EVENT_TIME_TYPES = (T.TimestampType, T.DateType, T.LongType, T.IntegerType)
TABLE_FORMATS = ("HUDI", "DELTA")
ENGINES = ("native", "hudi", "delta")


@dataclass(frozen=True)
class Feature:
    """One feature (column) of a feature group.

    ``type`` is the Spark type as people write it (``double``, ``decimal(10,2)``, ``array<string>``);
    a JSON type (the registry's form) or a DDL string are both accepted. ``type_json`` is the exact
    Spark type JSON the registry keeps.
    """

    name: str
    type: str
    description: str = ""
    primary: bool = False
    partition: bool = False
    type_json: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.type_json:
            return
        text = self.type.strip()
        if text.startswith(("{", '"')):  # Spark's JSON form
            data_type = T._parse_datatype_json_string(text)
        else:  # DDL; parsing it needs the JVM of an active Spark session
            data_type = T._parse_datatype_string(text)
        object.__setattr__(self, "type_json", data_type.json())
        object.__setattr__(self, "type", data_type.simpleString())

    @property
    def data_type(self) -> T.DataType:
        """The Spark type."""
        return T._parse_datatype_json_string(self.type_json)

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored in the registry (the type as Spark's JSON)."""
        return {"name": self.name, "type": self.type_json, "description": self.description,
                "primary": self.primary, "partition": self.partition}


def features_from_schema(schema: T.StructType, primary_key: list[str] | tuple[str, ...],
                         partition_key: list[str] | tuple[str, ...],
                         descriptions: Mapping[str, str] | None = None) -> list[Feature]:
    """Features for every column of ``schema``."""
    descriptions = descriptions or {}
    return [Feature(f.name, f.dataType.json(), descriptions.get(f.name, ""), f.name in primary_key,
                    f.name in partition_key) for f in schema.fields]


def thawed(value: Any) -> Any:
    """A deep copy of registry JSON (dicts and lists), safe to change without touching a record."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class FeatureGroupRecord:
    """A feature group version as the registry holds it.

    ``kind`` is ``cached`` (a table in the offline store) or ``external`` (a JDBC query);
    ``table_format`` (``HUDI`` | ``DELTA``) and ``engine`` (``native`` | ``hudi`` | ``delta``) say how
    the offline table is stored and which writer keeps it.
    """

    id: int
    feature_store_id: int
    name: str
    version: int
    kind: str = "cached"
    description: str = ""
    primary_key: list[str] = field(default_factory=list)
    event_time: str | None = None
    partition_key: list[str] = field(default_factory=list)
    precombine_key: str | None = None
    online_enabled: bool = False
    location: str | None = None
    features: list[Feature] = field(default_factory=list)
    # Lists and registry JSON kept as plain lists and dicts (records travel to executors in closures
    # and must pickle; messages show keys as lists): never change them in place, use thawed() for a copy.
    options: Mapping[str, Any] = field(default_factory=dict)
    connector_id: int | None = None
    table_format: str = "HUDI"
    engine: str = "native"
    created_at: dt.datetime | None = None
    created_by: str | None = None
    updated_at: dt.datetime | None = None
    updated_by: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FeatureGroupRecord:
        """The record of a registry row (a mapping of the ``feature_groups`` columns)."""
        return cls(
            id=int(row["id"]), feature_store_id=int(row["feature_store_id"]), name=row["name"],
            version=int(row["version"]), kind=row.get("kind") or "cached", description=row.get("description") or "",
            primary_key=list(row.get("primary_key") or ()), event_time=row.get("event_time"),
            partition_key=list(row.get("partition_key") or ()), precombine_key=row.get("precombine_key"),
            online_enabled=bool(row.get("online_enabled")), location=row.get("location"),
            features=[Feature(**f) for f in row.get("features") or ()],
            options=thawed(row.get("options") or {}), connector_id=row.get("connector_id"),
            table_format=row.get("table_format") or "HUDI", engine=row.get("engine") or "native",
            created_at=row.get("created_at"), created_by=row.get("created_by"),
            updated_at=row.get("updated_at"), updated_by=row.get("updated_by"),
        )

    # -- derived facts ------------------------------------------------------------------------
    @property
    def ordering_key(self) -> str | None:
        """Ordering column of upserts: the precombine key, else the event time, else none (commit order)."""
        return self.precombine_key or self.event_time

    @property
    def table_name(self) -> str:
        """``<name>_<version>``: the offline table's name and the SQL view of ``fs.sql``."""
        return f"{self.name}_{self.version}"

    @property
    def label(self) -> str:
        """``'<name>' v<version>`` for messages."""
        return f"'{self.name}' v{self.version}"

    @property
    def feature_names(self) -> list[str]:
        """Feature names in column order."""
        return [f.name for f in self.features]

    @property
    def schema(self) -> T.StructType:
        """Spark schema of the features (empty until the first insert if none were declared)."""
        return T.StructType([T.StructField(f.name, f.data_type, True) for f in self.features])

    @property
    def online_ttl(self) -> int | None:
        """Online TTL in seconds: older rows (by event time) are not served and are purged."""
        return self.options.get("online_ttl_seconds")

    @property
    def statistics_options(self) -> dict[str, Any]:
        """The stored ``statistics_config`` option, as plain JSON."""
        return thawed(self.options.get("statistics_config") or {})

    def get_feature(self, name: str) -> Feature:
        """One feature by name; an error naming it if the feature group has none such."""
        for f in self.features:
            if f.name == name:
                return f
        raise FeatureGroupError(f"feature group '{self.name}' has no feature '{name}'")


@dataclass(frozen=True)
class CommitInfo:
    """One completed commit of an offline table, as plain data (the commit log's entries).

    ``commit_id`` is the table format's own id (a Hudi instant, a Delta version as text);
    ``committed_at`` is the UTC time the commit was made.
    """

    commit_id: str
    action: str
    operation: str
    committed_at: dt.datetime
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    files: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def removes_rows(self) -> bool:
        """Whether the commit may have removed keys (a delete, an overwrite, a replace)."""
        return (self.action == "replacecommit" or self.rows_deleted > 0
                or self.operation in ("delete", "insert_overwrite", "insert_overwrite_table", "delete_partition"))


#: commit metadata of a streaming micro-batch: the stream (Spark's query id) and the micro-batch id. A format
#: with idempotent writes uses them as the transaction's application id and version (Delta's txnAppId and
#: txnVersion), so the table itself refuses a batch committed before.
STREAM_ID_KEY = "stream.id"
BATCH_ID_KEY = "stream.batch_id"


@dataclass(frozen=True)
class CommitOutcome:
    """What one write to an offline table did. ``commit_id`` is None when there was nothing to write."""

    commit_id: str | None
    operation: str
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    files_written: int = 0
    partitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteResult:
    """What ``insert`` or ``delete_records`` did: the commit id, row counts, where it was written and
    the validation report."""

    commit_id: str | None
    operation: str
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    storage: str = "offline"
    validation: Any = None  # the ValidationReport of the batch, if the feature group has a suite
    details: dict[str, Any] = field(default_factory=dict)
