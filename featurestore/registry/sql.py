"""The registry: feature-store metadata in a SQL database through SQLAlchemy 2.

SQLite by default (a file under the warehouse), MariaDB/MySQL by URL. Every value goes through
bound parameters; identifiers never come from users. Records come back as plain dicts.

Every write is one transaction (SQLite: ``BEGIN IMMEDIATE``, so it waits for the write lock instead of
failing on a stale read); a set-or-replace is one atomic upsert (``upsert.py``); a transaction a
MariaDB deadlock rolled back is retried. Deleting a record deletes what belongs to it
(``registry_schema.DEPENDENTS``) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Table, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from featurestore.registry import migrations
from featurestore.registry import schema as registry_schema
from featurestore.registry.errors import RegistryError
from featurestore.registry.upsert import is_retryable, is_sqlite_busy, upsert

T = TypeVar("T")
WRITE_ATTEMPTS = 5  # tries of a write transaction a MariaDB deadlock rolled back

__all__ = ["Registry", "RegistryError", "make_engine", "utcnow"]


def utcnow() -> dt.datetime:
    """Naive UTC now, second precision (what every backend stores the same way)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def make_engine(url: str, password: str | None = None) -> Engine:
    """A SQLAlchemy engine for ``url``; ``password`` fills in a URL that has none."""
    parsed = make_url(url)
    if password and not parsed.password:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            import os

            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy event signature
            # the driver's own implicit BEGIN comes late (before the first write, so earlier reads are
            # outside the transaction) and breaks savepoints: SQLAlchemy's begin emits it instead
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001 - SQLAlchemy event signature
            # writes take the write lock up front (waiting for it up to the busy timeout): a deferred
            # transaction that read first could only fail once another writer committed
            conn.exec_driver_sql(conn.get_execution_options().get("registry_sqlite_begin", "BEGIN"))

        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_recycle=3600)


class Registry:
    """Typed access to the registry tables."""

    def __init__(self, url: str, password: str | None = None,
                 migration_lock_timeout: float = migrations.DEFAULT_LOCK_TIMEOUT) -> None:
        """Connect and apply pending migrations. Processes opening the same registry at once wait
        for each other's migrations up to ``migration_lock_timeout`` seconds (then a
        :class:`~featurestore.registry.errors.MigrationLockTimeout`)."""
        self.url = url
        self.engine = make_engine(url, password)
        self.migration_lock_timeout = migration_lock_timeout
        try:
            self.migrate()
        except BaseException:
            self.engine.dispose()
            raise

    # -- schema ------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations under the database's migration lock; returns the schema version."""
        return migrations.migrate(self.engine, utcnow, self.migration_lock_timeout)

    def schema_version(self) -> int:
        """The newest applied migration."""
        with self.engine.connect() as conn:
            return migrations.applied_version(conn)

    # -- writing -----------------------------------------------------------------------------
    def _write(self, what: str, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one write transaction, retried when a MariaDB deadlock rolled it back;
        losing to concurrent writers every time, or SQLite's write lock never coming free, is a
        RegistryError naming ``what``."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(registry_sqlite_begin="BEGIN IMMEDIATE")
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if is_retryable(exc) and attempt < WRITE_ATTEMPTS:
                    time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not a secret
                    continue
                if is_retryable(exc) or is_sqlite_busy(exc):
                    raise RegistryError(f"{what} collided with concurrent writers and was not stored "
                                        f"({type(exc.orig).__name__}: {exc.orig})") from None
                raise
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _require(conn: Connection, table: Table, record_id: int | None, what: str) -> None:
        """Raise unless ``table`` has the row ``record_id``; the row is share-locked on MariaDB until the
        transaction ends, so a concurrent delete waits and nothing is written for a deleted record."""
        if record_id is None:
            return
        found = conn.execute(select(table.c.id).where(table.c.id == record_id).with_for_update(read=True)).first()
        if found is None:
            raise RegistryError(f"{what}: {table.name.rstrip('s').replace('_', ' ')} id {record_id} does not exist")

    # -- feature stores ------------------------------------------------------------------------
    def ensure_feature_store(self, name: str, description: str = "") -> int:
        """The id of the feature store ``name``, creating it if needed (an existing store is kept as it is)."""
        t = registry_schema.feature_stores
        with self.engine.connect() as conn:  # the usual case, without taking a write lock
            found = conn.execute(select(t.c.id).where(t.c.name == name)).scalar()
        if found is not None:
            return found

        def work(conn: Connection) -> int:
            upsert(conn, t, {"name": name}, {"description": description, "created_at": utcnow()}, replace=False)
            return conn.execute(select(t.c.id).where(t.c.name == name)).scalar_one()

        return self._write(f"feature store '{name}'", work)

    def list_feature_stores(self) -> dict[str, int]:
        """Every feature store's name with its number of feature group versions, by name."""
        stores, groups = registry_schema.feature_stores, registry_schema.feature_groups
        query = (select(stores.c.name, func.count(groups.c.id))
                 .select_from(stores.outerjoin(groups, groups.c.feature_store_id == stores.c.id))
                 .group_by(stores.c.name).order_by(stores.c.name))
        with self.engine.connect() as conn:
            return {name: count for name, count in conn.execute(query)}

    # -- feature groups ------------------------------------------------------------------------
    def create_feature_group(self, record: dict[str, Any], table_format: str = "HUDI",
                             engine: str = "native") -> dict[str, Any]:
        """Insert a feature group version (its offline ``table_format`` and ``engine`` recorded with it);
        a duplicate (store, name, version) is an error."""
        now = utcnow()
        values = {**record, "table_format": table_format, "engine": engine, "created_at": now, "updated_at": now}
        what = f"feature group '{record['name']}' version {record['version']}"

        def work(conn: Connection) -> int:
            self._require(conn, registry_schema.feature_stores, record["feature_store_id"], what)
            self._require(conn, registry_schema.connectors, record.get("connector_id"), what)
            return self._insert_new(conn, registry_schema.feature_groups, values, what)

        return self.feature_group_by_id(self._write(what, work))

    def _insert_new(self, conn: Connection, table: Table, values: dict[str, Any], what: str) -> int:
        """Insert a record keyed by (store, name[, version]); the id, or a RegistryError when it exists."""
        try:
            with conn.begin_nested():
                return conn.execute(insert(table).values(**values)).inserted_primary_key[0]
        except IntegrityError as exc:
            key = [table.c[k] == values[k] for k in ("feature_store_id", "name", "version") if k in table.c]
            if conn.execute(select(table.c.id).where(*key)).first() is not None:
                raise RegistryError(f"{what} already exists") from None
            raise RegistryError(f"{what} was not stored: {exc.orig}") from None

    def feature_group_by_id(self, fg_id: int) -> dict[str, Any]:
        """One feature group record by id."""
        with self.engine.connect() as conn:
            t = registry_schema.feature_groups
            row = conn.execute(select(t).where(t.c.id == fg_id)).mappings().first()
        if row is None:
            raise RegistryError(f"feature group id {fg_id} not found")
        return dict(row)

    def find_feature_group(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A feature group version (None = the latest), or None."""
        t = registry_schema.feature_groups
        query = select(t).where(and_(t.c.feature_store_id == fs_id, t.c.name == name))
        query = query.where(t.c.version == version) if version is not None else query.order_by(t.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return dict(row) if row else None

    def list_feature_groups(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every feature group version of a store (of one name if given), by name then version."""
        t = registry_schema.feature_groups
        query = select(t).where(t.c.feature_store_id == fs_id)
        if name is not None:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.name, t.c.version)).mappings()]

    def next_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a feature group name."""
        t = registry_schema.feature_groups
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(t.c.version)).where(
                and_(t.c.feature_store_id == fs_id, t.c.name == name))).scalar()
        return (top or 0) + 1

    def update_feature_group(self, fg_id: int, user: str, **values: Any) -> dict[str, Any]:
        """Change fields of a feature group (description, features, options, ...)."""
        t = registry_schema.feature_groups
        self._write(f"feature group id {fg_id}", lambda conn: conn.execute(
            update(t).where(t.c.id == fg_id).values(**values, updated_at=utcnow(), updated_by=user)))
        return self.feature_group_by_id(fg_id)

    def delete_feature_group(self, fg_id: int) -> None:
        """Remove a feature group and, in the same transaction, every row that belongs to it: tags,
        commit log, expectation suite, validation reports, metrics, statistics, online state and
        provenance (``registry_schema.DEPENDENTS``). Its id is never given out again."""
        self._write(f"deleting feature group id {fg_id}",
                    lambda conn: self._delete_with_dependents(conn, registry_schema.feature_groups, fg_id))

    @staticmethod
    def _delete_with_dependents(conn: Connection, parent: Table, record_id: int) -> None:
        # the parent row is locked first, the order the writers of dependent rows lock in (_require)
        conn.execute(select(parent.c.id).where(parent.c.id == record_id).with_for_update())
        for table, column, condition in registry_schema.dependents(parent):
            conn.execute(delete(table).where(column == record_id, condition))
        conn.execute(delete(parent).where(parent.c.id == record_id))

    # -- tags ----------------------------------------------------------------------------------
    def set_tag(self, entity_type: str, entity_id: int, name: str, value: Any) -> dict[str, Any]:
        """Add or replace a tag (JSON value) in one atomic upsert; returns the stored tag row. The
        entity (a feature group, training dataset or feature view) must exist."""
        t = registry_schema.tags
        key = {"entity_type": entity_type, "entity_id": entity_id, "name": name}
        what = f"tag '{name}' of {entity_type} id {entity_id}"

        def work(conn: Connection) -> dict[str, Any]:
            parent = registry_schema.TAGGED_TABLES.get(entity_type)
            if parent is not None:
                self._require(conn, registry_schema.metadata.tables[parent], entity_id, what)
            upsert(conn, t, key, {"value": value})
            return dict(conn.execute(select(t).where(*(t.c[k] == v for k, v in key.items()))).mappings().one())

        return self._write(what, work)

    def get_tags(self, entity_type: str, entity_id: int) -> dict[str, Any]:
        """All tags of an entity."""
        t = registry_schema.tags
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.name, t.c.value).where(
                and_(t.c.entity_type == entity_type, t.c.entity_id == entity_id)).order_by(t.c.name))
            return {r.name: r.value for r in rows}

    def delete_tag(self, entity_type: str, entity_id: int, name: str) -> bool:
        """Remove a tag; True if it existed."""
        t = registry_schema.tags
        res = self._write(f"tag '{name}' of {entity_type} id {entity_id}", lambda conn: conn.execute(
            delete(t).where(and_(t.c.entity_type == entity_type, t.c.entity_id == entity_id, t.c.name == name))))
        return res.rowcount > 0

    def all_tags(self, entity_type: str, entity_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Tags of many entities at once."""
        ids = list(entity_ids)
        if not ids:
            return {}
        t = registry_schema.tags
        out: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(t).where(and_(t.c.entity_type == entity_type, t.c.entity_id.in_(ids)))):
                out.setdefault(r.entity_id, {})[r.name] = r.value
        return out

    # -- commits -------------------------------------------------------------------------------
    def add_commit(self, fg_id: int, commit: dict[str, Any]) -> bool:
        """Record a commit of a feature group; False if it was already recorded (by this or another
        process, even at the same moment). A feature group that does not exist is a RegistryError."""
        t = registry_schema.commits
        what = f"commit '{commit['commit_id']}' of feature group id {fg_id}"

        def work(conn: Connection) -> bool:
            try:
                with conn.begin_nested():
                    conn.execute(insert(t).values(feature_group_id=fg_id, **commit))
                return True
            except IntegrityError as exc:
                stored = conn.execute(select(t.c.id).where(t.c.feature_group_id == fg_id,
                                                           t.c.commit_id == commit["commit_id"])).first()
                if stored is not None:
                    return False
                missing = conn.execute(select(registry_schema.feature_groups.c.id).where(
                    registry_schema.feature_groups.c.id == fg_id)).first() is None
                raise RegistryError(f"{what} was not recorded: " + (
                    "the feature group does not exist" if missing else str(exc.orig))) from None

        return self._write(what, work)

    def list_commits(self, fg_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits of a feature group, newest first."""
        t = registry_schema.commits
        query = select(t).where(t.c.feature_group_id == fg_id).order_by(t.c.commit_id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- connectors ----------------------------------------------------------------------------
    def create_connector(self, record: dict[str, Any]) -> dict[str, Any]:
        """Register a connector; a duplicate name is an error."""
        what = f"connector '{record['name']}'"

        def work(conn: Connection) -> int:
            self._require(conn, registry_schema.feature_stores, record["feature_store_id"], what)
            return self._insert_new(conn, registry_schema.connectors, {**record, "created_at": utcnow()}, what)

        return self.connector(record["feature_store_id"], connector_id=self._write(what, work))

    def connector(self, fs_id: int, name: str | None = None, connector_id: int | None = None) -> dict[str, Any]:
        """A connector by name or id."""
        t = registry_schema.connectors
        query = select(t).where(t.c.feature_store_id == fs_id)
        query = query.where(t.c.id == connector_id) if connector_id is not None else query.where(t.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise RegistryError(f"connector '{name or connector_id}' not found")
        return dict(row)

    # -- quality -------------------------------------------------------------------------------
    def set_expectation_suite(self, fg_id: int, suite: dict[str, Any], policy: str, user: str) -> dict[str, Any]:
        """Attach (or replace) the expectation suite of a feature group in one atomic upsert; returns
        the stored row."""
        t = registry_schema.expectation_suites
        values = {"suite": suite, "policy": policy, "updated_at": utcnow(), "updated_by": user}
        what = f"expectation suite of feature group id {fg_id}"

        def work(conn: Connection) -> dict[str, Any]:
            self._require(conn, registry_schema.feature_groups, fg_id, what)
            upsert(conn, t, {"feature_group_id": fg_id}, values)
            return dict(conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().one())

        return self._write(what, work)

    def get_expectation_suite(self, fg_id: int) -> dict[str, Any] | None:
        """``{"suite", "policy", "updated_at", "updated_by"}`` or None."""
        t = registry_schema.expectation_suites
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().first()
        return dict(row) if row else None

    def delete_expectation_suite(self, fg_id: int) -> bool:
        """Detach the suite; True if there was one."""
        t = registry_schema.expectation_suites
        res = self._write(f"expectation suite of feature group id {fg_id}",
                          lambda conn: conn.execute(delete(t).where(t.c.feature_group_id == fg_id)))
        return res.rowcount > 0

    def add_validation_report(self, fg_id: int, report: dict[str, Any], outcome: str, policy: str | None,
                              commit_id: str | None, metrics: dict[str, float | None]) -> int:
        """Store a validation report and, in the same transaction, its numeric metrics (the history
        anomaly checks compare against). Returns the report id."""
        now = utcnow()

        def work(conn: Connection) -> int:
            report_id = conn.execute(insert(registry_schema.validation_reports).values(
                feature_group_id=fg_id, commit_id=commit_id, outcome=outcome, status=report["status"],
                policy=policy, rows=report.get("rows"), report=report, validated_at=now)).inserted_primary_key[0]
            rows = [{"feature_group_id": fg_id, "report_id": report_id, "commit_id": commit_id, "analyzer": k,
                     "value": v, "recorded_at": now} for k, v in metrics.items()]
            if rows:
                conn.execute(insert(registry_schema.metric_history), rows)
            return report_id

        return self._write(f"validation report of feature group id {fg_id}", work)

    def list_validation_reports(self, fg_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Validation reports of a feature group, newest first."""
        t = registry_schema.validation_reports
        query = select(t).where(t.c.feature_group_id == fg_id).order_by(t.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def metric_history(self, fg_id: int, analyzer: str, accepted_only: bool = True) -> list[tuple[str | None, float]]:
        """``(commit_id, value)`` of a metric over earlier inserts, oldest first (accepted inserts only
        by default: rejected batches are not a baseline)."""
        t = registry_schema.metric_history
        query = select(t.c.commit_id, t.c.value).where(and_(t.c.feature_group_id == fg_id, t.c.analyzer == analyzer,
                                                           t.c.value.is_not(None)))
        if accepted_only:
            query = query.where(t.c.commit_id.is_not(None))
        with self.engine.connect() as conn:
            return [(r.commit_id, r.value) for r in conn.execute(query.order_by(t.c.id))]

    def add_statistics(self, fg_id: int, commit_id: str | None, kind: str, stats: dict[str, Any]) -> int:
        """Store statistics of a commit's data (``kind="commit"``) or of the whole table (``"table"``)."""
        return self._write(f"statistics of feature group id {fg_id}", lambda conn: conn.execute(
            insert(registry_schema.statistics).values(feature_group_id=fg_id, commit_id=commit_id, kind=kind,
                                                      computed_at=utcnow(), stats=stats)).inserted_primary_key[0])

    def list_statistics(self, fg_id: int, commit_id: str | None = None, kind: str | None = None
                        ) -> list[dict[str, Any]]:
        """Stored statistics, newest first (of one commit and/or kind if given)."""
        t = registry_schema.statistics
        query = select(t).where(t.c.feature_group_id == fg_id)
        if commit_id is not None:
            query = query.where(t.c.commit_id == commit_id)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.id.desc())).mappings()]

    def vacuum_rejected_reports(self, fg_ids: list[int], older_than_days: int) -> int:
        """Delete reports (and their metrics) of rejected batches older than ``older_than_days``."""
        if not fg_ids:
            return 0
        cutoff = utcnow() - dt.timedelta(days=older_than_days)
        t = registry_schema.validation_reports
        where = and_(t.c.feature_group_id.in_(fg_ids), t.c.outcome == "rejected", t.c.validated_at < cutoff)

        def work(conn: Connection) -> int:
            ids = [r.id for r in conn.execute(select(t.c.id).where(where))]
            if ids:
                conn.execute(delete(registry_schema.metric_history).where(
                    registry_schema.metric_history.c.report_id.in_(ids)))
                conn.execute(delete(t).where(t.c.id.in_(ids)))
            return len(ids)

        return self._write("vacuuming rejected validation reports", work)

    # -- online store --------------------------------------------------------------------------
    def online_state(self, fg_id: int) -> dict[str, Any] | None:
        """The materialization state of a feature group (last materialized commit, ...), or None."""
        t = registry_schema.online_state
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().first()
        return dict(row) if row else None

    def set_online_state(self, fg_id: int, last_commit: str | None, mode: str, rows_written: int = 0,
                         rows_deleted: int = 0) -> dict[str, Any]:
        """Record a finished materialization (called only after every online write succeeded) in one
        atomic upsert; returns the stored state. A deleted feature group is a RegistryError (its
        state would otherwise outlive it)."""
        t = registry_schema.online_state
        values = {"last_commit": last_commit, "mode": mode, "rows_written": rows_written,
                  "rows_deleted": rows_deleted, "materialized_at": utcnow()}
        what = f"online state of feature group id {fg_id}"

        def work(conn: Connection) -> dict[str, Any]:
            self._require(conn, registry_schema.feature_groups, fg_id, what)
            upsert(conn, t, {"feature_group_id": fg_id}, values)
            return dict(conn.execute(select(t).where(t.c.feature_group_id == fg_id)).mappings().one())

        return self._write(what, work)


    # -- versioned records of a store: training datasets, feature views ---------------------------
    # Both tables are keyed by (feature_store_id, name, version); what and t name the kind and its table.
    def _create_versioned(self, t: Any, what: str, record: dict[str, Any]) -> dict[str, Any]:
        what = f"{what} '{record['name']}' version {record['version']}"

        def work(conn: Connection) -> int:
            self._require(conn, registry_schema.feature_stores, record["feature_store_id"], what)
            return self._insert_new(conn, t, {**record, "created_at": utcnow()}, what)

        new_id = self._write(what, work)
        with self.engine.connect() as conn:
            return dict(conn.execute(select(t).where(t.c.id == new_id)).mappings().one())

    def _find_versioned(self, t: Any, fs_id: int, name: str, version: int | None) -> dict[str, Any] | None:
        query = select(t).where(and_(t.c.feature_store_id == fs_id, t.c.name == name))
        query = query.where(t.c.version == version) if version is not None else query.order_by(t.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return dict(row) if row else None

    def _list_versioned(self, t: Any, fs_id: int, name: str | None) -> list[dict[str, Any]]:
        query = select(t).where(t.c.feature_store_id == fs_id)
        if name is not None:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.name, t.c.version)).mappings()]

    def _next_version(self, t: Any, fs_id: int, name: str) -> int:
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(t.c.version)).where(
                and_(t.c.feature_store_id == fs_id, t.c.name == name))).scalar()
        return (top or 0) + 1

    def _delete_versioned(self, t: Any, record_id: int) -> None:
        self._write(f"deleting {t.name} id {record_id}", lambda conn: self._delete_with_dependents(conn, t, record_id))

    def create_training_dataset(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a training dataset version; a duplicate (store, name, version) is an error."""
        return self._create_versioned(registry_schema.training_datasets, "training dataset", record)

    def find_training_dataset(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A training dataset version (None = the latest), or None."""
        return self._find_versioned(registry_schema.training_datasets, fs_id, name, version)

    def list_training_datasets(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every training dataset version of a store (of one name if given), by name then version."""
        return self._list_versioned(registry_schema.training_datasets, fs_id, name)

    def next_training_dataset_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a training dataset name."""
        return self._next_version(registry_schema.training_datasets, fs_id, name)

    def delete_training_dataset(self, td_id: int) -> None:
        """Remove a training dataset record with its provenance and tags."""
        self._delete_versioned(registry_schema.training_datasets, td_id)

    def create_feature_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a feature view version; a duplicate (store, name, version) is an error."""
        return self._create_versioned(registry_schema.feature_views, "feature view", record)

    def find_feature_view(self, fs_id: int, name: str, version: int | None = None) -> dict[str, Any] | None:
        """A feature view version (None = the latest), or None."""
        return self._find_versioned(registry_schema.feature_views, fs_id, name, version)

    def list_feature_views(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every feature view version of a store (of one name if given), by name then version."""
        return self._list_versioned(registry_schema.feature_views, fs_id, name)

    def next_feature_view_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a feature view name."""
        return self._next_version(registry_schema.feature_views, fs_id, name)

    def delete_feature_view(self, fv_id: int) -> None:
        """Remove a feature view record with its tags."""
        self._delete_versioned(registry_schema.feature_views, fv_id)

    # -- transformation functions ----------------------------------------------------------------
    def create_transformation_function(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert a transformation function version; a duplicate (store, name, version) is an error."""
        return self._create_versioned(registry_schema.transformation_functions, "transformation function", record)

    def find_transformation_function(self, fs_id: int, name: str, version: int | None = None
                                     ) -> dict[str, Any] | None:
        """A transformation function version (None = the latest), or None."""
        return self._find_versioned(registry_schema.transformation_functions, fs_id, name, version)

    def list_transformation_functions(self, fs_id: int, name: str | None = None) -> list[dict[str, Any]]:
        """Every transformation function version of a store (of one name if given), by name then version."""
        return self._list_versioned(registry_schema.transformation_functions, fs_id, name)

    def next_transformation_function_version(self, fs_id: int, name: str) -> int:
        """The next free version number of a transformation function name."""
        return self._next_version(registry_schema.transformation_functions, fs_id, name)

    # -- code provenance -------------------------------------------------------------------------
    def add_provenance(self, record: dict[str, Any], content: bytes | None) -> int:
        """Store a provenance row; the code content is stored once per SHA-256 (an atomic
        insert-if-absent, so writers storing the same code at once all succeed). The feature group
        or training dataset it describes must exist."""
        now = utcnow()
        what = f"provenance of {record['entity_type']} " + (
            f"feature group id {record['feature_group_id']}" if record.get("feature_group_id") is not None
            else f"id {record.get('entity_id')}")

        def work(conn: Connection) -> int:
            self._require(conn, registry_schema.feature_groups, record.get("feature_group_id"), what)
            if record["entity_type"] == "training_dataset":
                self._require(conn, registry_schema.training_datasets, record.get("entity_id"), what)
            if record.get("sha256") and content is not None:
                upsert(conn, registry_schema.code_contents, {"sha256": record["sha256"]},
                       {"kind": record["kind"], "size": len(content), "content": content, "stored_at": now},
                       replace=False)
            return conn.execute(insert(registry_schema.provenance).values(**record)).inserted_primary_key[0]

        return self._write(what, work)

    def get_provenance(self, entity_type: str, feature_group_id: int | None = None, commit_id: str | None = None,
                       entity_id: int | None = None) -> list[dict[str, Any]]:
        """Provenance rows of a feature group (one commit if given) or of an entity, newest first."""
        t = registry_schema.provenance
        query = select(t).where(t.c.entity_type == entity_type)
        if feature_group_id is not None:
            query = query.where(t.c.feature_group_id == feature_group_id)
        if commit_id is not None:
            query = query.where(t.c.commit_id == commit_id)
        if entity_id is not None:
            query = query.where(t.c.entity_id == entity_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.id.desc())).mappings()]

    def get_code(self, sha256: str) -> bytes | None:
        """Stored code content by hash."""
        with self.engine.connect() as conn:
            t = registry_schema.code_contents
            return conn.execute(select(t.c.content).where(t.c.sha256 == sha256)).scalar()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
