"""Registry tables and their versioned migrations.

Each migration adds tables or columns and is applied once, in order; ``registry_schema_version``
records the newest applied migration. Later features (expectation suites, validation reports,
statistics, training datasets, materialization state) add migrations here without reshaping
the tables below. ``featurestore.registry.migrations`` applies them under a database lock.

Ids are never reused: every table with an integer id is ``AUTOINCREMENT`` on SQLite (migration 8
rebuilds the tables of older registries), InnoDB's counter never goes back on MariaDB. Rows that
point at a record without a foreign key (``DEPENDENTS``) are deleted with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from featurestore.names import check_name, quote_identifier

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
    sqlite_autoincrement=True,
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
    sqlite_autoincrement=True,
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
    # migration 7: the offline table's format and the engine that writes it (HUDI/native before)
    Column("table_format", String(16), nullable=False, server_default="HUDI"),
    Column("engine", String(16), nullable=False, server_default="native"),
    UniqueConstraint("feature_store_id", "name", "version", name="uq_feature_group_version"),
    sqlite_autoincrement=True,
)

tags = Table(
    "tags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", JSON),
    UniqueConstraint("entity_type", "entity_id", "name", name="uq_tag"),
    sqlite_autoincrement=True,
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
    sqlite_autoincrement=True,
)


def _create(*tables: Table) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        for t in tables:
            if t.name not in existing:
                t.create(conn)

    return run


# -- quality (migration 2): expectation suites, validation reports, metrics, statistics -------
expectation_suites = Table(
    "expectation_suites", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id"), nullable=False, unique=True),
    Column("suite", JSON, nullable=False),  # ExpectationSuite.to_data()
    Column("policy", String(16), nullable=False),  # STRICT | ALWAYS
    Column("updated_at", DateTime, nullable=False),
    Column("updated_by", String(255), nullable=False),
    sqlite_autoincrement=True,
)

validation_reports = Table(
    "validation_reports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id"), nullable=False),
    Column("commit_id", String(32)),  # null when rejected or a dry run
    Column("outcome", String(16), nullable=False),  # accepted | rejected | dry_run
    Column("status", String(16), nullable=False),  # Success | Warning | Error
    Column("policy", String(16)),
    Column("rows", BigInteger),
    Column("report", JSON, nullable=False),
    Column("validated_at", DateTime, nullable=False),
    Index("ix_validation_reports_fg", "feature_group_id", "id"),
    sqlite_autoincrement=True,
)

metric_history = Table(
    "metric_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id"), nullable=False),
    Column("report_id", Integer, ForeignKey("validation_reports.id"), nullable=False),
    Column("commit_id", String(32)),
    Column("analyzer", String(512), nullable=False),
    Column("value", Double),  # null for NaN/infinity, which not every backend stores
    Column("recorded_at", DateTime, nullable=False),
    Index("ix_metric_history_fg_analyzer", "feature_group_id", "analyzer"),
    sqlite_autoincrement=True,
)

statistics = Table(
    "statistics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id"), nullable=False),
    Column("commit_id", String(32)),
    Column("kind", String(16), nullable=False),  # commit (the inserted data) | table (the whole snapshot)
    Column("computed_at", DateTime, nullable=False),
    Column("stats", JSON, nullable=False),
    Index("ix_statistics_fg", "feature_group_id", "id"),
    sqlite_autoincrement=True,
)

QUALITY_TABLES: tuple[Table, ...] = (expectation_suites, validation_reports, metric_history, statistics)

# -- online store (migration 3): materialization state --------------------------------------
# No foreign key: deleting a feature group must not depend on this table (its row is dropped too).
online_state = Table(
    "online_state", metadata,
    Column("feature_group_id", Integer, primary_key=True, autoincrement=False),
    Column("last_commit", String(32)),        # last Hudi commit fully written online
    Column("mode", String(16), nullable=False),
    Column("rows_written", BigInteger, nullable=False),
    Column("rows_deleted", BigInteger, nullable=False),
    Column("materialized_at", DateTime, nullable=False),
)
ONLINE_TABLES: tuple[Table, ...] = (online_state,)

# -- training data (migration 4): training datasets -----------------------------------------
training_datasets = Table(
    "training_datasets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_store_id", Integer, ForeignKey("feature_stores.id"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("data_format", String(16), nullable=False),
    Column("location", Text, nullable=False),
    Column("query", JSON, nullable=False),        # Query.to_dict()
    Column("features", JSON, nullable=False),     # feature order (output names, labels excluded)
    Column("label", JSON, nullable=False),
    Column("columns", JSON, nullable=False),      # Spark schema JSON of the written rows
    Column("commits", JSON, nullable=False),      # {"<fg>_<version>": commit id read}
    Column("spine", JSON),                        # spine definition, or null (no point-in-time join)
    Column("splits", JSON),                       # split definition with the seed, or null
    Column("row_counts", JSON, nullable=False),   # {split or "all": rows}
    Column("options", JSON, nullable=False),      # ttl, as_known_at_spine_time, recreated_from ...
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("feature_store_id", "name", "version", name="uq_training_dataset_version"),
    sqlite_autoincrement=True,
)

TRAINING_TABLES: tuple[Table, ...] = (training_datasets,)

# -- feature views (migration 6) ----------------------------------------------------------------
feature_views = Table(
    "feature_views", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_store_id", Integer, ForeignKey("feature_stores.id"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("query", JSON, nullable=False),        # Query.to_dict()
    Column("features", JSON, nullable=False),     # output columns in order (labels included)
    Column("labels", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    # migration 9: the view's transformation functions, bound to features ([TransformationFunction.to_dict()])
    Column("transformation_functions", JSON),
    UniqueConstraint("feature_store_id", "name", "version", name="uq_feature_view_version"),
    sqlite_autoincrement=True,
)

# -- transformation functions (migration 9) -------------------------------------------------------
# User-defined functions by store, name and version; the fitted statistics of a view's functions live
# in the options of each training dataset (``options["transformation_statistics"]``).
transformation_functions = Table(
    "transformation_functions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_store_id", Integer, ForeignKey("feature_stores.id"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSON, nullable=False),   # TransformationFunction.to_dict() (the function pickled)
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("feature_store_id", "name", "version", name="uq_transformation_function_version"),
    sqlite_autoincrement=True,
)


# -- code provenance (migration 5) ------------------------------------------------------------
_LONG_BLOB = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

code_contents = Table(
    "code_contents", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # script | notebook
    Column("size", BigInteger, nullable=False),
    Column("content", _LONG_BLOB),
    Column("stored_at", DateTime, nullable=False),
)

provenance = Table(
    "provenance", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(32), nullable=False),  # commit | training_dataset
    Column("feature_group_id", Integer),
    Column("commit_id", String(32)),
    Column("entity_id", Integer),
    Column("kind", String(16), nullable=False),  # script | notebook | interactive
    Column("path", Text),
    Column("sha256", String(64)),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("user", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("python", String(32), nullable=False),
    Column("argv", JSON, nullable=False),
    Column("packages", JSON, nullable=False),
    Column("captured_at", DateTime, nullable=False),
    Index("ix_provenance_fg_commit", "feature_group_id", "commit_id"),
    sqlite_autoincrement=True,
)

PROVENANCE_TABLES: tuple[Table, ...] = (code_contents, provenance)


def sql_dialect(conn: Connection) -> str:
    """The dialect name ``quote_identifier`` knows for ``conn``: ``sqlite`` or ``mysql`` (MariaDB too)."""
    return "sqlite" if conn.dialect.name == "sqlite" else "mysql"


def _add_offline_format_columns(conn: Connection) -> None:
    """Migration 7: ``table_format`` and ``engine`` of every feature group; existing rows are the
    native Hudi engine's (the only one before). A fresh database has them from migration 1."""
    existing = {c["name"] for c in inspect(conn).get_columns(feature_groups.name)}
    dialect = sql_dialect(conn)
    for column in (feature_groups.c.table_format, feature_groups.c.engine):
        if column.name not in existing:
            default = column.server_default.arg
            # constant identifiers and literals of this module, never user input (DDL takes no parameters)
            conn.execute(text(f"ALTER TABLE {quote_identifier(feature_groups.name, dialect)} "  # noqa: S608
                              f"ADD COLUMN {quote_identifier(column.name, dialect)} "
                              f"VARCHAR(16) NOT NULL DEFAULT '{default}'"))


# -- what goes with a record (migration 8) -----------------------------------------------------
# Rows that point at a record of the parent table, as (table, column, {column: value} the row also
# has); children before parents where a foreign key orders them. Deleting the record deletes them in
# the same transaction. Tables with a foreign key to the parent are listed too (no ON DELETE CASCADE:
# the registry deletes them itself, the same way on every backend).
DEPENDENTS: dict[str, tuple[tuple[Table, str, dict[str, str]], ...]] = {
    "feature_groups": (
        (metric_history, "feature_group_id", {}),  # before validation_reports (report_id)
        (validation_reports, "feature_group_id", {}),
        (statistics, "feature_group_id", {}),
        (expectation_suites, "feature_group_id", {}),
        (commits, "feature_group_id", {}),
        (online_state, "feature_group_id", {}),
        (provenance, "feature_group_id", {}),
        (tags, "entity_id", {"entity_type": "feature_group"}),
    ),
    "training_datasets": (
        (provenance, "entity_id", {"entity_type": "training_dataset"}),
        (tags, "entity_id", {"entity_type": "training_dataset"}),
    ),
    "feature_views": ((tags, "entity_id", {"entity_type": "feature_view"}),),
}
# tags.entity_type -> the table of the entity
TAGGED_TABLES: dict[str, str] = {"feature_group": "feature_groups", "training_dataset": "training_datasets",
                                 "feature_view": "feature_views"}


def dependents(parent: Table) -> list[tuple[Table, Column[Any], ColumnElement[bool]]]:
    """(table, column holding the parent's id, condition the row also meets) of every dependent of ``parent``."""
    out = []
    for table, column, match in DEPENDENTS.get(parent.name, ()):
        condition = and_(*(table.c[k] == v for k, v in match.items())) if match else true()
        out.append((table, table.c[column], condition))
    return out


def _has_autoincrement(conn: Connection, table: Table) -> bool:
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                       {"name": table.name}).scalar()
    return sql is not None and "AUTOINCREMENT" in sql.upper()


def _rebuild_sqlite_table(conn: Connection, table: Table) -> None:
    """Re-create ``table`` as its definition says (AUTOINCREMENT) with its rows, the way SQLite's ALTER
    TABLE documentation describes: new table, copy, drop the old, rename, indexes. The runner has
    switched foreign keys off for the transaction and checks them before it commits."""
    scratch = MetaData()
    for other in metadata.sorted_tables:
        if other is not table:
            other.to_metadata(scratch)  # so the copy's foreign keys resolve
    rebuilt_name = check_name(f"{table.name}_rebuild", "registry table")
    rebuilt = table.to_metadata(scratch, name=rebuilt_name)
    conn.execute(CreateTable(rebuilt))  # the table only: its index names are still the old table's
    names = [c.name for c in table.columns]
    conn.execute(insert(rebuilt).from_select(names, select(*(table.c[n] for n in names))))
    table.drop(conn)
    conn.execute(text(f"ALTER TABLE {quote_identifier(rebuilt_name, 'sqlite')} "
                      f"RENAME TO {quote_identifier(check_name(table.name, 'registry table'), 'sqlite')}"))
    for index in table.indexes:
        index.create(conn)


def _raise_sqlite_sequence(conn: Connection, table: Table, floor: int) -> None:
    """Make SQLite hand out ids above ``floor`` for ``table``."""
    params = {"name": table.name, "floor": floor}
    if conn.execute(text("SELECT count(*) FROM sqlite_sequence WHERE name = :name"), params).scalar():
        conn.execute(text("UPDATE sqlite_sequence SET seq = :floor WHERE name = :name AND seq < :floor"), params)
    else:
        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :floor)"), params)


def _never_reuse_ids(conn: Connection) -> None:
    """Migration 8: ids are never reused, and rows left behind by records deleted before are gone.

    SQLite without AUTOINCREMENT hands out max(id) + 1, so a group created after deleting the newest
    one got its id, and with it the online mark and provenance the old delete left behind. On SQLite
    every table is rebuilt with AUTOINCREMENT and its counter starts above every id still referenced
    anywhere; on both backends rows pointing at a record that no longer exists are deleted.
    """
    parents = [metadata.tables[name] for name in DEPENDENTS]
    if conn.dialect.name == "sqlite":
        # tables of later migrations do not exist yet: they are created with AUTOINCREMENT by their own
        existing = set(inspect(conn).get_table_names())
        for table in metadata.sorted_tables:  # parents before children
            if (table.name in existing and table.dialect_options["sqlite"]["autoincrement"]
                    and not _has_autoincrement(conn, table)):
                _rebuild_sqlite_table(conn, table)
        for parent in parents:
            floors = [conn.execute(select(func.max(parent.c.id))).scalar() or 0]
            floors += [conn.execute(select(func.max(column)).where(condition)).scalar() or 0
                       for table, column, condition in dependents(parent)]
            if max(floors):
                _raise_sqlite_sequence(conn, parent, max(floors))
    for parent in parents:
        for table, column, condition in dependents(parent):
            conn.execute(delete(table).where(column.is_not(None), condition, column.not_in(select(parent.c.id))))


def _add_transformation_functions(conn: Connection) -> None:
    """Migration 9: the ``transformation_functions`` table and the feature views' column of attached
    functions (null for the views made before: they have none). A fresh database has the column from
    migration 6."""
    _create(transformation_functions)(conn)
    existing = {c["name"] for c in inspect(conn).get_columns(feature_views.name)}
    column = feature_views.c.transformation_functions
    if column.name not in existing:
        dialect = sql_dialect(conn)
        kind = column.type.compile(dialect=conn.dialect)
        # constant identifiers and a type of this module, never user input (DDL takes no parameters)
        conn.execute(text(f"ALTER TABLE {quote_identifier(feature_views.name, dialect)} "  # noqa: S608
                          f"ADD COLUMN {quote_identifier(column.name, dialect)} {kind} NULL"))


# (version, description, function): append only; never edit an applied migration.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "feature stores, connectors, feature groups, tags, commits",
     _create(feature_stores, connectors, feature_groups, tags, commits)),
    (2, "expectation suites, validation reports, metrics history, statistics", _create(*QUALITY_TABLES)),
    (3, "online store materialization state", _create(*ONLINE_TABLES)),
    (4, "training datasets and feature views", _create(*TRAINING_TABLES)),
    (5, "code provenance of commits and training datasets", _create(*PROVENANCE_TABLES)),
    (6, "feature views", _create(feature_views)),
    (7, "offline table format and engine of feature groups", _add_offline_format_columns),
    (8, "ids never reused (SQLite AUTOINCREMENT); rows of deleted records removed", _never_reuse_ids),
    (9, "transformation functions; feature views' attached transformation functions",
     _add_transformation_functions),
]
