"""Registry tables and their versioned migrations.

Each migration adds tables or columns and is applied once, in order; ``registry_schema_version``
records the newest applied migration. Later features (expectation suites, validation reports,
statistics, training datasets, materialization state) add migrations here without reshaping
the tables below.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

schema_version = Table(
    "registry_schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=False), nullable=False),
)

feature_stores = Table(
    "feature_stores", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
)

connectors = Table(
    "connectors", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_store_id", Integer, ForeignKey("feature_stores.id"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("user", String(255)),
    Column("password_env", String(255)),
    Column("options", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("feature_store_id", "name", name="uq_connector_name"),
)

feature_groups = Table(
    "feature_groups", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_store_id", Integer, ForeignKey("feature_stores.id"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # cached | external
    Column("description", Text, nullable=False),
    Column("primary_key", JSON, nullable=False),
    Column("event_time", String(255)),
    Column("partition_key", JSON, nullable=False),
    Column("precombine_key", String(255)),
    Column("online_enabled", Boolean, nullable=False),
    Column("location", Text),
    Column("features", JSON, nullable=False),  # [{"name", "type", "description"}]
    Column("options", JSON, nullable=False),   # statistics config, external query, ...
    Column("connector_id", Integer, ForeignKey("connectors.id")),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("feature_store_id", "name", "version", name="uq_feature_group_version"),
)

tags = Table(
    "tags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", JSON),
    UniqueConstraint("entity_type", "entity_id", "name", name="uq_tag"),
)

commits = Table(
    "commits", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id"), nullable=False),
    Column("commit_id", String(32), nullable=False),
    Column("committed_at", DateTime, nullable=False),
    Column("operation", String(32), nullable=False),
    Column("rows_inserted", BigInteger, nullable=False),
    Column("rows_updated", BigInteger, nullable=False),
    Column("rows_deleted", BigInteger, nullable=False),
    Column("details", JSON, nullable=False),
    UniqueConstraint("feature_group_id", "commit_id", name="uq_commit"),
)


def _create(*tables: Table) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        for t in tables:
            if t.name not in existing:
                t.create(conn)

    return run


# -- quality (migration 2): expectation suites, validation reports, metrics, statistics -------
QUALITY_TABLES: tuple[Table, ...] = ()

# -- online store (migration 3): materialization state --------------------------------------
ONLINE_TABLES: tuple[Table, ...] = ()

# -- training data (migration 4): training datasets, feature views --------------------------
TRAINING_TABLES: tuple[Table, ...] = ()


# (version, description, function): append only; never edit an applied migration.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "feature stores, connectors, feature groups, tags, commits",
     _create(feature_stores, connectors, feature_groups, tags, commits)),
    (2, "expectation suites, validation reports, metrics history, statistics", _create(*QUALITY_TABLES)),
    (3, "online store materialization state", _create(*ONLINE_TABLES)),
    (4, "training datasets and feature views", _create(*TRAINING_TABLES)),
]
