"""The online database: connection settings, one table per feature group version, and the SQL.

MariaDB/MySQL: a database ``<url database>_<feature store>`` per feature store, one table
``<name>_<version>`` per online-enabled feature group version. SQLite: one file, tables named
``<feature store>__<name>_<version>``. Every table has one row per primary key, one typed column
per feature and ``_fs_commit_time``, the Hudi commit that wrote the row.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from featurestore.names import check_name, quote_identifier
from featurestore.online.types import OnlineStoreError, key_lengths, sql_type

if TYPE_CHECKING:
    from pyspark.sql import types as T

    from featurestore.model.records import FeatureGroupRecord

COMMIT_COL = "_fs_commit_time"
COLUMN_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_column(name: str) -> str:
    """``name`` if it is a safe SQL column identifier, else an error naming it."""
    if not isinstance(name, str) or not COLUMN_PATTERN.fullmatch(name) or name == COMMIT_COL:
        raise OnlineStoreError(f"column name {name!r} cannot be stored online: use letters, digits and '_' "
                               f"(at most 64, not starting with a digit, not {COMMIT_COL!r})")
    return name


def now_instant() -> str:
    """The current time as a 17-digit Hudi instant (commit time of online-only writes)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")[:17]


DRIVERS = ("auto", "mariadb", "mysql-connector")
# every session: UTC, byte-exact utf8mb4, and strict mode, so a value that does not fit is an error, never truncated
SESSION_SQL = ("SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_bin, "
               "sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
               "ERROR_FOR_DIVISION_BY_ZERO'")


def resolve_driver(driver: str) -> str:
    """``mariadb`` or ``mysql-connector``: ``auto`` takes MariaDB Connector/Python when it is installed."""
    if driver not in DRIVERS:
        raise OnlineStoreError(f"online.driver: unknown driver {driver!r}; use one of {', '.join(DRIVERS)}")
    if driver != "auto":
        return driver
    try:
        import mariadb  # noqa: F401
    except ImportError:
        return "mysql-connector"
    return "mariadb"


@dataclass(frozen=True)
class Connection:
    """Picklable connection settings (sent to executors; the password is never logged or printed)."""

    dialect: str  # mysql | sqlite
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    driver: str = "mysql-connector"  # for mysql: mariadb (C, MariaDB Connector/Python) | mysql-connector (pure)

    def __repr__(self) -> str:
        return f"Connection({self.dialect!r}, {self.path or f'{self.user}@{self.host}:{self.port}/{self.database}'})"

    def cursor(self, conn: Any) -> Any:
        """A cursor of ``conn`` that sends parameters bound, never substituted into the statement text
        (MariaDB Connector/Python substitutes them client-side unless asked for the binary protocol)."""
        return conn.cursor(binary=True) if self.dialect == "mysql" and self.driver == "mariadb" else conn.cursor()

    def connect(self, database: bool = True) -> Any:
        """A new DB-API connection (autocommit off)."""
        if self.dialect == "sqlite":
            import sqlite3

            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        if self.driver == "mariadb":
            import mariadb

            kwargs: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.user,
                                      "password": self.password or "", "autocommit": False,
                                      "init_command": SESSION_SQL}
            if database:
                kwargs["database"] = self.database
            try:
                return mariadb.connect(**kwargs)
            except mariadb.Error as exc:
                raise OnlineStoreError(f"cannot connect to the online store {self!r}: {_reason(exc)}") from None
        import mysql.connector

        kwargs = {"host": self.host, "port": self.port, "user": self.user, "password": self.password or "",
                  "charset": "utf8mb4", "collation": "utf8mb4_bin", "autocommit": False, "time_zone": "+00:00",
                  "sql_mode": SESSION_SQL.split("sql_mode = ")[1].strip("'"), "use_pure": True}
        if database:
            kwargs["database"] = self.database
        try:
            return mysql.connector.connect(**kwargs)
        except mysql.connector.Error as exc:
            raise OnlineStoreError(f"cannot connect to the online store {self!r}: {exc.msg}") from None


class OnlineStore:
    """The online store of one feature store: table names, DDL and statements."""

    def __init__(self, url: str, password: str | None, store: str, batch_size: int = 1000,
                 max_connections: int = 4, driver: str = "auto") -> None:
        check_name(store, "feature store")
        if batch_size < 1 or max_connections < 1:
            raise OnlineStoreError("online.batch_size and online.max_connections must be at least 1")
        self.batch_size = batch_size
        self.max_connections = max_connections
        self.store = store
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise OnlineStoreError("online.url: an SQLite online store needs a file (sqlite:///path/online.db)")
            self.conn = Connection("sqlite", path=os.path.abspath(parsed.database))
        elif backend in ("mysql", "mariadb"):
            if not parsed.database:
                raise OnlineStoreError("online.url: name a database (mysql+mysqlconnector://user@host:3306/online)")
            database = f"{parsed.database}_{store}"
            if not COLUMN_PATTERN.fullmatch(database):
                raise OnlineStoreError(f"online database name {database!r} is invalid or longer than 64 characters")
            self.conn = Connection("mysql", host=parsed.host or "127.0.0.1", port=parsed.port or 3306,
                                   user=parsed.username, password=parsed.password or password, database=database,
                                   driver=resolve_driver(driver))
        else:
            raise OnlineStoreError(f"online.url: unsupported backend {backend!r}; use mysql/mariadb or sqlite")
        self._ready: set[str] = set()

    @property
    def dialect(self) -> str:
        """``mysql`` or ``sqlite``."""
        return self.conn.dialect

    def q(self, name: str) -> str:
        """A quoted identifier (names are validated before they get here)."""
        return quote_identifier(name, self.dialect)

    def table_name(self, fg: FeatureGroupRecord) -> str:
        """Unquoted table name of a feature group version."""
        name = f"{fg.name}_{fg.version}" if self.dialect == "mysql" else f"{self.store}__{fg.name}_{fg.version}"
        if not COLUMN_PATTERN.fullmatch(name):
            raise OnlineStoreError(f"online table name {name!r} is longer than 64 characters")
        return name

    def table(self, fg: FeatureGroupRecord) -> str:
        """Quoted, qualified table of a feature group version."""
        if self.dialect == "mysql":
            return f"{self.q(self.conn.database)}.{self.q(self.table_name(fg))}"
        return self.q(self.table_name(fg))

    def jdbc_url(self) -> str:
        """JDBC URL of the feature store's database (MariaDB Connector/J)."""
        if self.dialect != "mysql":
            raise OnlineStoreError("Spark JDBC reads need a MariaDB/MySQL online store")
        return f"jdbc:mysql://{self.conn.host}:{self.conn.port}/{self.conn.database}?permitMysqlScheme"

    def key_limits(self, key_types: dict[str, T.DataType]) -> dict[str, int]:
        """The longest value each variable-length primary-key column holds (characters for strings, bytes
        for binaries), by column; the same lengths :meth:`ensure_table` declares. SQLite keys have no
        limit (empty)."""
        if self.dialect != "mysql":
            return {}
        lengths = key_lengths(list(key_types.values()))
        return {name: n for name, n in zip(key_types, lengths, strict=True) if n is not None}

    # -- DDL -------------------------------------------------------------------------------------
    def ensure_table(self, fg: FeatureGroupRecord) -> None:
        """Create the database and table if missing and add columns of features added since."""
        if not fg.features:
            raise OnlineStoreError(f"feature group '{fg.name}' v{fg.version} has no schema yet: insert data first")
        cols = [(check_column(f.name), f.data_type, f.name in fg.primary_key) for f in fg.features]
        key = self.table(fg) + "|" + ",".join(c for c, _, _ in cols)
        if key in self._ready:
            return
        conn = self.conn.connect(database=False)
        try:
            cur = conn.cursor()
            if self.dialect == "mysql":
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.q(self.conn.database)} "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            lengths = dict(zip(fg.primary_key, key_lengths([fg.schema[k].dataType for k in fg.primary_key]),
                               strict=True))
            defs = [f"{self.q(c)} {sql_type(t, self.dialect, pk, lengths.get(c))}{' NOT NULL' if pk else ''}"
                    for c, t, pk in cols]
            defs.append(f"{self.q(COMMIT_COL)} VARCHAR(32) NOT NULL")
            defs.append(f"PRIMARY KEY ({', '.join(self.q(k) for k in fg.primary_key)})")
            suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if self.dialect == "mysql" else ""
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table(fg)} ({', '.join(defs)}){suffix}")
            existing = {c.lower() for c in self._columns(conn, fg)}
            for c, t, _ in cols:
                if c.lower() not in existing:  # a nullable feature added by schema evolution
                    cur.execute(f"ALTER TABLE {self.table(fg)} ADD COLUMN {self.q(c)} {sql_type(t, self.dialect)}")
            conn.commit()
        except Exception as exc:
            raise OnlineStoreError(f"cannot create online table {self.table_name(fg)}: {_reason(exc)}") from None
        finally:
            conn.close()
        self._ready.add(key)

    def _columns(self, conn: Any, fg: FeatureGroupRecord) -> list[str]:
        cur = self.conn.cursor(conn)
        if self.dialect == "mysql":
            cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                        "AND TABLE_NAME = %s", (self.conn.database, self.table_name(fg)))
        else:
            cur.execute("SELECT name FROM pragma_table_info(?)", (self.table_name(fg),))
        return [r[0] if isinstance(r[0], str) else bytes(r[0]).decode() for r in cur.fetchall()]

    def table_exists(self, fg: FeatureGroupRecord) -> bool:
        """Whether the online table of ``fg`` exists."""
        conn = self.conn.connect(database=False)
        try:
            return bool(self._columns(conn, fg))
        finally:
            conn.close()

    def drop_table(self, fg: FeatureGroupRecord) -> None:
        """Drop the online table of ``fg`` (if any)."""
        conn = self.conn.connect(database=False)
        try:
            conn.cursor().execute(f"DROP TABLE IF EXISTS {self.table(fg)}")
            conn.commit()
        finally:
            conn.close()
        self._ready = {k for k in self._ready if not k.startswith(self.table(fg) + "|")}

    # -- statements ------------------------------------------------------------------------------
    def param(self) -> str:
        """The DB-API parameter marker."""
        return "%s" if self.dialect == "mysql" else "?"

    def upsert_sql(self, fg: FeatureGroupRecord, columns: list[str]) -> str:
        """Batched upsert of ``columns`` + commit time that never lets an older row replace a newer one.

        Newer = higher ordering value (precombine key, else event time; NULL lowest), ties broken by
        the Hudi commit time, so replays are idempotent and match Hudi's own merge.
        """
        q, t = self.q, self.table(fg)
        order = fg.ordering_key if fg.ordering_key in columns else None
        all_cols = columns + [COMMIT_COL]
        values = ", ".join([self.param()] * len(all_cols))
        head = f"INSERT INTO {t} ({', '.join(q(c) for c in all_cols)}) VALUES ({values})"  # noqa: S608 - identifiers checked and quoted
        keys = set(fg.primary_key)
        if self.dialect == "mysql":
            new = lambda c: f"VALUES({q(c)})"  # noqa: E731
            old = q
        else:
            new = lambda c: f"excluded.{q(c)}"  # noqa: E731
            old = lambda c: f"{t}.{q(c)}"  # noqa: E731
        ct = f"{new(COMMIT_COL)} >= {old(COMMIT_COL)}"
        if order:
            o_new, o_old = new(order), old(order)
            same = f"{o_new} <=> {o_old}" if self.dialect == "mysql" else f"{o_new} IS {o_old}"
            newer = (f"({o_new} > {o_old} OR ({same} AND {ct}) OR ({o_old} IS NULL AND {o_new} IS NOT NULL))")
        else:
            newer = f"({ct})"
        # MySQL evaluates assignments left to right against the updated row: the columns the guard
        # reads go last, the commit time before the ordering column (see upsert_sql tests).
        updates = [c for c in columns if c not in keys and c != order] + [COMMIT_COL] + ([order] if order else [])
        if self.dialect == "mysql":
            sets = ", ".join(f"{q(c)} = IF({newer}, {new(c)}, {q(c)})" for c in updates)
            return f"{head} ON DUPLICATE KEY UPDATE {sets}"
        sets = ", ".join(f"{q(c)} = {new(c)}" for c in updates)
        return f"{head} ON CONFLICT({', '.join(q(k) for k in fg.primary_key)}) DO UPDATE SET {sets} WHERE {newer}"

    def delete_sql(self, fg: FeatureGroupRecord) -> str:
        """Delete one primary key."""
        where = " AND ".join(f"{self.q(k)} = {self.param()}" for k in fg.primary_key)
        return f"DELETE FROM {self.table(fg)} WHERE {where}"  # noqa: S608 - identifiers checked and quoted

    def select_sql(self, fg: FeatureGroupRecord, columns: list[str], n_keys: int) -> str:
        """Select ``columns`` of ``n_keys`` primary keys in one statement."""
        p, pk = self.param(), fg.primary_key
        cols = ", ".join(self.q(c) for c in columns)
        if len(pk) == 1:
            where = f"{self.q(pk[0])} IN ({', '.join([p] * n_keys)})"
        else:
            row = "(" + ", ".join([p] * len(pk)) + ")"
            rows = ", ".join([row] * n_keys)
            keys = "(" + ", ".join(self.q(k) for k in pk) + ")"
            where = f"{keys} IN ({rows})" if self.dialect == "mysql" else f"{keys} IN (VALUES {rows})"
        return f"SELECT {cols} FROM {self.table(fg)} WHERE {where}"  # noqa: S608 - identifiers checked and quoted


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "msg", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
