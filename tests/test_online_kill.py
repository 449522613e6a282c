"""A materialization SIGKILLed halfway through its online writes, on the test MariaDB, then rerun.

One feature group (string keys with unicode, nulls and NaN in features, ten column types) is fully
materialized at its first commit, then gets three offline commits: updates (one key twice in the
batch), late events Hudi ignores and new keys; a ``delete_records``; an offline-only delete. Per
variant a worker (tests/online_worker.py: its own OS process and Spark) materializes, commits exactly
one online batch and stalls; the test checks that the online table is half-written and the registry
mark did not move, SIGKILLs the worker's whole session, reruns ``materialize`` here and requires the
online table to be exactly the latest offline snapshot (keys, values, commit times) and the mark to be
the newest commit. Variants: incremental killed in its upsert, incremental killed in its deletes, full
killed in its upsert. Between variants the online table and the mark are put back as they were before
the first worker ran (the offline table is only read), so the data is written once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.ingestion import sync_commits
from featurestore.offline import open_table

pytestmark = pytest.mark.mariadb

WORKER = Path(__file__).resolve().parent / "online_worker.py"
REPO = WORKER.parent.parent
BATCH = 25  # online.batch_size: the worker commits exactly one batch of this many rows
N = 3000  # keys of the first commit
NEW = 400  # keys the second commit adds
T0 = dt.datetime(2024, 3, 1)
D = decimal.Decimal
SCHEMA = ("user string, name string, score double, clicks long, n int, flag boolean, amount decimal(12,4), "
          "day date, ts timestamp, tags array<string>")
COLUMNS = [c.split(" ")[0] for c in SCHEMA.split(", ")]
SPECIAL = ["a", "A", "a ", "' OR 1=1 --", "日本語", "ä€😀", "Zoé"]  # distinct keys online too (nopad_bin)


def key(i: int) -> str:
    return SPECIAL[i] if i < len(SPECIAL) else f"ключ-{i:05d}-ü😀"


def make_row(i: int, version: int, ts: dt.datetime) -> tuple:
    """One input row; ``version`` changes every value and which features are null."""
    v = version
    return (
        key(i),
        None if (i + v) % 11 == 0 else f"名前 {i} v{v} é",
        None if (i + v) % 13 == 0 else (float("nan") if i % 97 == 0 else i * 0.5 + v),
        2**40 + i * 1000 + v,
        None if (i + v) % 7 == 0 else i - 1500 + v,
        None if (i + v) % 17 == 0 else (i + v) % 2 == 0,
        None if (i + v) % 19 == 0 else D(i) / 16 + v,
        None if (i + v) % 23 == 0 else dt.date(2024, 1, 1) + dt.timedelta(days=(i + v) % 400),
        ts,
        None if (i + v) % 29 == 0 else [f"t{i % 5}", None, "ü"][: 1 + (i + v) % 3],
    )


UPDATED = [i for i in range(N) if i % 5 == 0]  # a newer event in the second commit
TWICE = [i for i in UPDATED if i % 50 == 0]  # ... twice in that batch: the later event wins
LATE = [i for i in range(N) if i % 10 == 3]  # an older event in the second commit: Hudi keeps the row
ADDED = list(range(N, N + NEW))
DELETED_THROUGH = [i for i in range(N + NEW) if i % 9 == 4]  # fg.delete_records (offline + online)
DELETED_OFFLINE = [i for i in range(N + NEW) if i % 8 == 6 and i % 9 != 4]  # an offline-only delete commit


def second_commit_rows() -> list[tuple]:
    rows = [make_row(i, 2, T0 + dt.timedelta(days=1, seconds=i)) for i in UPDATED]
    rows += [make_row(i, 3, T0 + dt.timedelta(days=1, seconds=i, hours=1)) for i in TWICE]
    rows += [make_row(i, 9, T0 - dt.timedelta(days=1)) for i in LATE]
    rows += [make_row(i, 2, T0 + dt.timedelta(days=2, seconds=i)) for i in ADDED]
    return rows


def model() -> dict[str, tuple]:
    """The offline snapshot after all commits, from the input alone."""
    rows = {key(i): make_row(i, 1, T0 + dt.timedelta(seconds=i)) for i in range(N)}
    for i in UPDATED:
        rows[key(i)] = make_row(i, 3 if i in TWICE else 2,
                                T0 + dt.timedelta(days=1, seconds=i, hours=1 if i in TWICE else 0))
    for i in ADDED:
        rows[key(i)] = make_row(i, 2, T0 + dt.timedelta(days=2, seconds=i))
    for i in DELETED_THROUGH + DELETED_OFFLINE:
        rows.pop(key(i), None)
    return rows


def plain(values: dict, nan=None) -> dict:
    """Comparable values: NaN as ``nan`` (the online store serves NaN as None), decimals at scale 4."""
    out = dict(values)
    if out["score"] is not None and math.isnan(out["score"]):
        out["score"] = nan
    if out["amount"] is not None:
        out["amount"] = D(out["amount"]).quantize(D("1e-4"))
    return out


def online_rows(fs: FeatureStore, fg, columns: str = "`user`, `_fs_commit_time`") -> list[tuple]:
    """Rows of the online table by a direct SELECT, sorted by key (strings decoded whatever the driver)."""
    store = fs.online_store
    conn = store.conn.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT {columns} FROM {store.table(fg)}")  # noqa: S608 - test identifiers
        rows = cur.fetchall()
    finally:
        conn.close()
    return sorted((tuple(v.decode() if isinstance(v, (bytes, bytearray)) else v for v in r) for r in rows),
                  key=lambda r: r[0])


def online_commits(fs: FeatureStore, fg) -> dict[str, str]:
    """``{key: _fs_commit_time}`` of every row of the online table."""
    rows = online_rows(fs, fg)
    out = dict(rows)
    assert len(out) == len(rows)
    return out


def session_members(sid: int) -> list[int]:
    """Live processes of a session (pyspark's daemon and its Python workers leave the worker's process
    group with setpgid, but not its session)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


class Worker:
    """tests/online_worker.py in its own session: started early (its Spark starts while the test writes
    the data, then it waits for its go file), told to materialize, and killed."""

    def __init__(self, folder: Path, config: Path, store: str, fg_name: str, mode: str, stall_on: str) -> None:
        folder.mkdir()
        self.marker, self.go_file, self.log = folder / "stalled.json", folder / "go", folder / "worker.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(config), store, fg_name, mode, str(self.marker),
                 "--stall-on", stall_on, "--go", str(self.go_file)],
                cwd=REPO, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def go_and_wait_until_stalled(self) -> dict:
        """Let it materialize; returns the marker it writes once its one batch is committed."""
        self.go_file.write_text("go")
        for _ in range(6000):  # a hang guard only (10 minutes), never a timing assertion
            if self.marker.exists():
                return json.loads(self.marker.read_text())
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the worker did not stall (exit {self.proc.returncode}): {self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the worker's process group, then whatever else is left in its session."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        for _ in range(600):
            left = session_members(self.proc.pid)
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"processes of the killed worker still alive: {session_members(self.proc.pid)}")


VARIANTS = [("incremental", "INSERT"), ("incremental", "DELETE"), ("full", "INSERT")]
ALL_COLUMNS = ", ".join(f"`{c}`" for c in COLUMNS + ["_fs_commit_time"])


class Prepared:
    """The feature group after its commits, the online table and mark as they were before any worker
    ran, the offline snapshot, and one waiting worker per variant."""

    def __init__(self, spark, tmp: Path, mariadb) -> None:
        config = tmp / "fs.yaml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the online password
        with os.fdopen(fd, "w") as fh:
            json.dump({"warehouse": str(tmp / "warehouse"),
                       "online": {"url": mariadb.url(), "batch_size": BATCH}}, fh)  # JSON is YAML
        self.fs = FeatureStore(load_config(config, environ={}), "kill_test", spark=spark)
        self.workers: dict[tuple[str, str], Worker] = {}
        try:
            for mode, stall_on in VARIANTS:
                self.workers[mode, stall_on] = Worker(tmp / f"{mode}-{stall_on}", config, self.fs.name, "kill_me",
                                                      mode, stall_on)
            self._prepare(spark)
        except BaseException:
            self.close()
            raise

    def _prepare(self, spark) -> None:
        fs = self.fs
        fg = self.fg = fs.create_feature_group("kill_me", primary_key="user", event_time="ts", online_enabled=True)
        self.first = fg.insert(spark.createDataFrame([make_row(i, 1, T0 + dt.timedelta(seconds=i)) for i in range(N)],
                                                     SCHEMA), storage="offline").commit_id
        report = fs.materialize(fg, "full")
        assert (report["rows"], report["end"]) == (N, self.first)
        self.second = fg.insert(spark.createDataFrame(second_commit_rows(), SCHEMA), storage="offline").commit_id
        through = fg.delete_records(spark.createDataFrame([(key(i),) for i in DELETED_THROUGH], "user string"))
        assert through.details["online"]["deleted"] == len([i for i in DELETED_THROUGH if i < N])
        offline_only = spark.createDataFrame([(key(i),) for i in DELETED_OFFLINE], "user string")
        # offline only: straight through the offline interface, then the registry's commit log
        self.last = open_table(fs, fg.record).write(offline_only, "delete").commit_id
        sync_commits(fs, fg.record)
        assert self.first < self.second < through.commit_id < self.last

        # the offline snapshot, checked against the input (so the reference of the online checks is not circular)
        self.offline = [r.asDict(recursive=True) for r in fg.read(include_meta=True).collect()]
        snapshot = {r["user"]: plain({c: r[c] for c in COLUMNS}, "NaN") for r in self.offline}
        assert snapshot == {k: plain(dict(zip(COLUMNS, r, strict=True)), "NaN") for k, r in model().items()}
        self.second_keys = {r["user"] for r in self.offline if r["_hoodie_commit_time"] == self.second}

        # before any worker: the first commit online minus the write-through deletes, the mark at the first commit
        self.state = fs.registry.online_state(fg.id)
        assert self.state["last_commit"] == self.first
        self.table = online_rows(fs, fg, ALL_COLUMNS)
        self.before = online_commits(fs, fg)
        assert set(self.before.values()) == {self.first}
        assert len(self.before) == N - len([i for i in DELETED_THROUGH if i < N])
        self.pending_deletes = {key(i) for i in DELETED_OFFLINE if i < N}  # deleted offline only: still online
        assert self.pending_deletes <= set(self.before)

    def reset(self) -> None:
        """Back to the state before any worker ran: the same online rows, the mark at the first commit."""
        fs, fg, store = self.fs, self.fg, self.fs.online_store
        conn = store.conn.connect()
        try:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM {store.table(fg)}")  # noqa: S608 - test identifiers
            cur.executemany(f"INSERT INTO {store.table(fg)} ({ALL_COLUMNS}) "  # noqa: S608 - test identifiers
                            f"VALUES ({', '.join(['%s'] * (len(COLUMNS) + 1))})", self.table)
            conn.commit()
        finally:
            conn.close()
        fs.registry.set_online_state(fg.id, last_commit=self.first, mode=self.state["mode"],
                                     rows_written=self.state["rows_written"], rows_deleted=self.state["rows_deleted"])
        assert online_rows(fs, fg, ALL_COLUMNS) == self.table
        assert fs.registry.online_state(fg.id)["last_commit"] == self.first

    def assert_online_equals_offline(self) -> None:
        """The online table is the latest offline snapshot, row for row and value for value."""
        fs, fg = self.fs, self.fg
        # the same keys, each written by the commit that wrote it offline (a direct SELECT)
        assert online_commits(fs, fg) == {r["user"]: r["_hoodie_commit_time"] for r in self.offline}
        # the same values, as served; keys deleted offline are not found
        snapshot = {r["user"]: {c: r[c] for c in COLUMNS} for r in self.offline}
        gone = [key(i) for i in DELETED_THROUGH + DELETED_OFFLINE]
        got = fs.get_feature_vectors(fg, [{"user": k} for k in sorted(snapshot) + gone])
        assert [plain(v) for v in got] == [plain(snapshot[k]) for k in sorted(snapshot)] + \
            [{c: (k if c == "user" else None) for c in COLUMNS} for k in gone]

    def close(self) -> None:
        for worker in self.workers.values():
            worker.kill()


@pytest.fixture(scope="module")
def prepared(spark, mariadb, tmp_path_factory):
    p = Prepared(spark, tmp_path_factory.mktemp("online-kill"), mariadb)
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize(("mode", "stall_on"), VARIANTS)
def test_killed_materialization_keeps_mark_and_rerun_converges(prepared, mode, stall_on):
    fs, fg, first, second, last = prepared.fs, prepared.fg, prepared.first, prepared.second, prepared.last
    prepared.reset()
    before, pending = prepared.before, prepared.pending_deletes

    worker = prepared.workers[mode, stall_on]
    try:
        stalled = worker.go_and_wait_until_stalled()
        assert stalled["statement"] == stall_on and stalled["rows"] == BATCH
        # half-written: the one committed batch is visible, the rest of the work is not
        during = online_commits(fs, fg)
        written = {k for k, c in during.items() if c == second}
        if stall_on == "INSERT":
            assert len(written) <= BATCH < len(prepared.second_keys) and written <= prepared.second_keys
            if mode == "incremental":
                assert written  # its changes are all rows of the second commit
        else:
            assert not written  # incremental deletes before it upserts
            assert set(before) - set(during) <= pending
        if mode == "full" or stall_on == "DELETE":  # full deletes after it upserts
            assert len(pending & set(during)) >= len(pending) - BATCH > 0
        assert fs.registry.online_state(fg.id)["last_commit"] == first
    finally:
        worker.kill()
    # killed: the mark did not move, and nothing of the worker is left to write
    assert fs.registry.online_state(fg.id)["last_commit"] == first
    assert online_commits(fs, fg) == during

    report = fs.materialize(fg, mode)
    assert (report["mode"], report["begin"], report["end"]) == (mode, first, last)
    assert fs.registry.online_state(fg.id)["last_commit"] == last
    prepared.assert_online_equals_offline()
    converged = online_rows(fs, fg, ALL_COLUMNS)
    again = fs.materialize(fg)  # and nothing is left to do
    assert (again["begin"], again["end"], again["rows"], again["deleted"]) == (last, last, 0, 0)
    assert online_rows(fs, fg, ALL_COLUMNS) == converged
