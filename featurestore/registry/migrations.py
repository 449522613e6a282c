"""Applying the registry's migrations (``registry_schema.MIGRATIONS``): once, in order, under a lock.

Several processes may open a fresh or older registry at the same moment (jobs starting together).
Only one migrates; the others wait for the lock and then see the migrations done:

- MariaDB/MySQL: a named user lock (``GET_LOCK``) per database, held by the migrating connection
  (the server releases it if that process dies). DDL commits implicitly there, so each migration is
  written to be re-run safely after a crash.
- SQLite: one ``BEGIN IMMEDIATE`` transaction (the database's write lock) around every pending
  migration: they apply together or not at all.

A registry already at the newest version is only read, never locked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable

from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from featurestore.registry import schema as registry_schema
from featurestore.registry.errors import MigrationLockTimeout, RegistryError

DEFAULT_LOCK_TIMEOUT = 120.0  # seconds a process waits for another one's migrations
SQLITE_BUSY_TIMEOUT_MS = 30_000  # what make_engine sets for every SQLite connection (timeout=30)
Clock = Callable[[], dt.datetime]


def newest_version() -> int:
    """The newest migration this code knows."""
    return registry_schema.MIGRATIONS[-1][0]


def applied_version(conn: Connection) -> int:
    """The newest migration applied to the database of ``conn`` (0 for an empty database)."""
    if not inspect(conn).has_table(registry_schema.schema_version.name):
        return 0
    return conn.execute(select(func.max(registry_schema.schema_version.c.version))).scalar() or 0


def migration_lock_name(database: str) -> str:
    """The MariaDB/MySQL user lock that serialises migrations of ``database``. Lock names are
    server-wide and at most 64 characters, hence the database name's hash."""
    return "featurestore.registry.migrate." + hashlib.sha256(database.encode("utf-8")).hexdigest()[:32]


def migrate(engine: Engine, now: Clock, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> int:
    """Apply pending migrations under the database's lock; returns the schema version.

    ``lock_timeout``: seconds to wait for another process's migrations, then
    :class:`MigrationLockTimeout` naming the lock. ``now`` gives the applied-at time.
    """
    with engine.connect() as conn:
        current = applied_version(conn)
    if current >= newest_version():
        return current
    if engine.dialect.name == "sqlite":
        return _migrate_sqlite(engine, lock_timeout, now)
    return _migrate_mysql(engine, lock_timeout, now)


def _apply_pending(conn: Connection, now: Clock) -> int:
    """Create the version table if needed and apply what is still pending; the caller holds the lock.
    SQLite: everything in the caller's one transaction. MariaDB/MySQL: DDL commits implicitly, so each
    migration is committed with its version row as soon as it is done (and is safe to re-run)."""
    registry_schema.schema_version.create(conn, checkfirst=True)
    current = applied_version(conn)
    for version, _description, run in registry_schema.MIGRATIONS:
        if version <= current:
            continue
        run(conn)
        conn.execute(insert(registry_schema.schema_version).values(version=version, applied_at=now()))
        if conn.dialect.name != "sqlite":
            conn.commit()
        current = version
    return current


def _migrate_mysql(engine: Engine, lock_timeout: float, now: Clock) -> int:
    with engine.connect() as conn:
        database = conn.execute(text("SELECT DATABASE()")).scalar() or ""
        name = migration_lock_name(database)
        got = conn.execute(text("SELECT GET_LOCK(:name, :timeout)"),
                           {"name": name, "timeout": max(1, math.ceil(lock_timeout))}).scalar()
        conn.commit()  # what is read next is read after the lock (REPEATABLE READ keeps a snapshot)
        if got != 1:
            raise MigrationLockTimeout(
                f"registry migration lock '{name}' of database '{database}' not obtained within "
                f"{lock_timeout:g} s: another process is migrating this registry (or holds the lock); "
                "retry, or give the registry a longer migration_lock_timeout")
        try:
            version = _apply_pending(conn, now)
            conn.commit()
            return version
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            conn.commit()


def _migrate_sqlite(engine: Engine, lock_timeout: float, now: Clock) -> int:
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        # Both pragmas work only outside a transaction. Rebuilding a table (migration 8) drops a parent
        # of foreign keys: they are checked once, before the commit, instead.
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")  # a number, not text
        try:
            conn.execution_options(registry_sqlite_begin="BEGIN IMMEDIATE")
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                    raise
                raise MigrationLockTimeout(
                    f"registry migration lock (BEGIN IMMEDIATE on SQLite database {engine.url.database}) "
                    f"not obtained within {lock_timeout:g} s: another connection holds its write lock; "
                    "retry, or give the registry a longer migration_lock_timeout") from None
            with transaction:
                version = _apply_pending(conn, now)
                broken = conn.execute(text("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RegistryError(f"registry migration left rows without their parent: {broken[:5]}")
            return version
        finally:
            driver.execute("PRAGMA foreign_keys=ON")
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
