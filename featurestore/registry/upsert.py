"""Atomic writes of the registry: one-statement upserts and the errors concurrent writers meet.

A select-then-insert lets two processes both see no row and both insert: one of them then fails
with a raw IntegrityError. The upserts here are one statement the database runs atomically
(SQLite ``INSERT ... ON CONFLICT``, MariaDB/MySQL ``INSERT ... ON DUPLICATE KEY UPDATE``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

# MariaDB/MySQL: deadlock found (the server rolled the transaction back), lock wait timeout
RETRYABLE_MYSQL_ERRORS = {1213, 1205}


def upsert(conn: Connection, table: Table, key: dict[str, Any], values: dict[str, Any], replace: bool = True) -> None:
    """Insert the row ``key`` + ``values``; when a row with ``key`` exists, set its ``values`` instead
    (``replace=False``: leave it as it is). One atomic statement.

    ``key`` names the columns of one unique constraint of ``table`` (on MariaDB the statement reacts
    to any unique key: the registry's tables have one besides the generated id).
    """
    row = {**key, **values}
    changed = list(values) if replace else []
    if conn.dialect.name == "sqlite":
        statement = sqlite_insert(table).values(**row)
        index = [table.c[k] for k in key]
        statement = (statement.on_conflict_do_update(index_elements=index,
                                                     set_={k: statement.excluded[k] for k in changed})
                     if changed else statement.on_conflict_do_nothing(index_elements=index))
    else:
        statement = mysql_insert(table).values(**row)
        # with nothing to change, "key = the inserted key" is a no-op update that keeps the stored row
        statement = statement.on_duplicate_key_update({k: statement.inserted[k] for k in (changed or key)})
    conn.execute(statement)


def _mysql_errno(exc: DBAPIError) -> int | None:
    errno = getattr(exc.orig, "errno", None)
    if errno is None and getattr(exc.orig, "args", None) and isinstance(exc.orig.args[0], int):
        errno = exc.orig.args[0]
    return errno


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` says a concurrent writer won a lock (the whole transaction may be retried)."""
    return isinstance(exc, DBAPIError) and _mysql_errno(exc) in RETRYABLE_MYSQL_ERRORS


def is_sqlite_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on another connection's write lock (after the busy timeout)."""
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message
