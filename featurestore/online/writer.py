"""Writes from Spark executors: batched upserts and deletes, at most ``max_connections`` at once.

Each task opens one connection, sends ``executemany`` batches of ``batch_size`` rows and commits
once per batch. Only per-task row counts come back to the driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from featurestore.online.store import Connection
from featurestore.online.types import OnlineStoreError, to_db


def run_statement(df: DataFrame, conn: Connection, sql: str, schema: T.StructType, batch_size: int,
                  max_connections: int, affected: bool = False) -> int:
    """Execute ``sql`` once per row of ``df`` (columns in statement order) from the executors.

    Returns the rows sent, or with ``affected`` the rows the database changed (for deletes).
    """
    converters = [to_db(f.dataType, conn.dialect) for f in schema.fields]
    parts = 1 if conn.dialect == "sqlite" else max_connections  # SQLite has one writer at a time anyway
    if df.rdd.getNumPartitions() > parts:
        df = df.coalesce(parts)

    def write(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        db = None
        done = 0
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if db is None:
                    db = conn.connect()
                columns = [[c(v) for v in col.to_pylist()] for c, col in zip(converters, batch.columns, strict=True)]
                rows = list(zip(*columns, strict=True))
                cur = db.cursor()
                for start in range(0, len(rows), batch_size):
                    chunk = rows[start:start + batch_size]
                    cur.executemany(sql, chunk)
                    db.commit()
                    done += max(cur.rowcount, 0) if affected else len(chunk)
                cur.close()
        except OnlineStoreError:
            raise
        except Exception as exc:  # a clean, credential-free reason for the driver
            raise OnlineStoreError(f"online write failed: {_reason(exc)}") from None
        finally:
            if db is not None:
                db.close()
        yield pa.RecordBatch.from_pydict({"n": [done]}, schema=pa.schema([("n", pa.int64())]))

    try:
        counts = df.mapInArrow(write, "n long").collect()
    except Exception as exc:
        raise OnlineStoreError(executor_reason(exc)) from None
    return sum(r.n for r in counts)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "msg", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def executor_reason(exc: BaseException) -> str:
    """The OnlineStoreError message raised in a task, out of Spark's wrapped traceback."""
    text = str(exc)
    found = re.findall(r"OnlineStoreError: (.+)", text)
    return found[-1].strip() if found else f"online write failed: {_reason(exc)}"
