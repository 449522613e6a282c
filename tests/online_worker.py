"""Run by test_online_kill.py in a subprocess: one ``fs.materialize(fg, mode)`` that stalls for good
right after its first online write batch of one kind (``INSERT``: the upsert, ``DELETE``: the key
deletes) was committed to the online database, so that the test can SIGKILL it with the online table
half-written and the registry mark not yet moved.

    python tests/online_worker.py <config> <feature store> <feature group> <mode> <marker>
                                  [--stall-on INSERT|DELETE] [--go FILE]

With ``--go`` the worker starts its Spark session, then waits until FILE exists before it touches the
feature store: the test starts it while it prepares the data. Its JVM runs with the C1 compiler only
(half the CPU of a default start on the 2-core test machine; nothing here runs long enough for C2).

How the stall reaches the writes: the online writes run in Spark's Python workers (``mapInArrow``), not
in this process, so patching a module here would not reach them. What does reach them is the task
closure, and it holds the feature store's ``Connection`` (the settings the task calls ``connect()`` on).
The store's connection is replaced by an instance of ``StallingConnection``, a subclass defined in this
``__main__`` module, which cloudpickle therefore ships *by value* with the closure. Its ``connect()``
returns the real DB-API connection wrapped so that the first ``commit()`` following an ``executemany``
of the chosen kind commits, writes ``<marker>`` (atomically, as JSON) and then sleeps forever: nothing
after that batch is ever sent, and ``materialize`` never gets to record its mark. ``local[1]`` runs one
task at a time, so the stalled task holds back every other one: exactly one batch is committed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.online.store import Connection
from featurestore.spark import get_session


class _Cursor:
    """A DB-API cursor that tells its connection which statement its last ``executemany`` ran."""

    def __init__(self, cursor: Any, owner: _StallingDb) -> None:
        self._cursor = cursor
        self._owner = owner

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        self._owner.pending = (sql.lstrip().split(None, 1)[0].upper(), len(rows))
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _StallingDb:
    """A DB-API connection whose first commit of a ``stall_on`` batch is the last thing it does."""

    def __init__(self, db: Any, marker: str, stall_on: str) -> None:
        self._db = db
        self._marker = marker
        self._stall_on = stall_on
        self.pending: tuple[str, int] | None = None

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self._db.cursor(*args, **kwargs), self)

    def commit(self) -> None:
        self._db.commit()
        pending, self.pending = self.pending, None
        if pending is None or pending[0] != self._stall_on:
            return
        tmp = f"{self._marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"pid": os.getpid(), "statement": pending[0], "rows": pending[1]}, fh)
        os.replace(tmp, self._marker)  # the test sees the marker whole or not at all
        while True:  # the batch is committed; stall until the test kills us
            time.sleep(3600)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class StallingConnection(Connection):
    """The store's connection settings, with connections that stall (class attributes travel with the
    class, which cloudpickle pickles by value because it is defined in ``__main__``)."""

    marker = ""
    stall_on = "INSERT"

    def connect(self, database: bool = True) -> Any:
        return _StallingDb(Connection.connect(self, database), type(self).marker, type(self).stall_on)


def wait_for(path: str) -> None:
    parent = os.getppid()
    while not os.path.exists(path):
        if os.getppid() != parent:  # the test is gone: do not linger
            sys.exit(4)
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("store")
    parser.add_argument("feature_group")
    parser.add_argument("mode", choices=["incremental", "full"])
    parser.add_argument("marker")
    parser.add_argument("--stall-on", default="INSERT", choices=["INSERT", "DELETE"])
    parser.add_argument("--go")
    args = parser.parse_args()
    config = load_config(args.config, environ={})
    spark = get_session(master="local[1]", config=config,
                        conf={"spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1",
                              "spark.ui.enabled": "false",
                              "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})
    if args.go:
        print("Spark is up, waiting for the go file", flush=True)
        wait_for(args.go)
    fs = FeatureStore(config, args.store, spark=spark)
    fg = fs.get_feature_group(args.feature_group)
    store = fs.online_store
    StallingConnection.marker = os.path.abspath(args.marker)
    StallingConnection.stall_on = args.stall_on
    store.conn = StallingConnection(**{f.name: getattr(store.conn, f.name) for f in dataclasses.fields(store.conn)})
    print(f"materializing {fg.name} v{fg.version} {args.mode}, stalling after the first {args.stall_on} batch",
          flush=True)
    report = fs.materialize(fg, args.mode)
    print(f"materialize finished without stalling: {report}", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
