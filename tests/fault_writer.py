"""Run by test_hudi_faults.py in a subprocess: one upsert that is SIGKILLed at a chosen stage.

    python tests/fault_writer.py <table path> <stage> [<commits retained>]

Stages of the commit: ``files`` (a task's files are written), ``inflight`` (the instant is
inflight, nothing written), ``commit`` (just before the commit point).

Stages of the clean that follows the commit (the commit completes): ``clean:requested`` (the plan
is written, not yet inflight), ``clean:inflight`` (inflight, no file deleted), ``clean:delete`` (one
planned file deleted), ``clean:complete`` (every planned file deleted, not completed).

Stage ``registry`` (the path is a feature store's warehouse): an insert into feature group
``orders`` v1 whose commit completes on the timeline and which is killed before any registry write
(commit row, provenance, validation report, statistics).

Stages of a rollback: the script first leaves an unfinished commit with its files (a write that
fails at its commit point and is not rolled back, as a killed writer leaves it), then upserts
again; that upsert rolls the unfinished commit back and is killed at ``rollback:requested``,
``rollback:inflight`` (nothing deleted), ``rollback:delete`` (the data files deleted, the instant's
files not), ``rollback:complete`` (everything removed, the rollback not completed).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import signal
import sys

from featurestore import hudi
from featurestore.config import load_config
from featurestore.hudi import actions, writer
from featurestore.spark import get_session

ROLLBACK_ROWS = [(2, "a", 77.0, "doomed"), (600, "b", 6.0, "doomed")]
KILLED_ROWS = [(1, "a", 99.0, "killed"), (500, "b", 5.0, "killed")]
ROW_TIME = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class _Interrupted(BaseException):
    """Stops the first write of a rollback stage at its commit point."""


def kill_self(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_when_writing(suffix: str) -> None:
    """SIGKILL just before ``actions.write_atomic`` writes a file whose name ends with ``suffix``."""
    original = actions.write_atomic

    def patched(path, data):
        if pathlib.Path(path).name.endswith(suffix):
            kill_self()
        return original(path, data)

    actions.write_atomic = patched


def _kill_inside(function_name: str, call: str, nth: int) -> None:
    """SIGKILL at the ``nth`` call of ``os.remove`` (``call="remove"``) or ``Path.unlink``
    (``call="unlink"``) made while ``actions.<function_name>`` runs."""
    inside = {"on": False, "calls": 0}
    original_function = getattr(actions, function_name)

    def wrapped(*args, **kwargs):
        inside["on"] = True
        try:
            return original_function(*args, **kwargs)
        finally:
            inside["on"] = False

    setattr(actions, function_name, wrapped)

    def counting(original):
        def patched(*args, **kwargs):
            if inside["on"]:
                inside["calls"] += 1
                if inside["calls"] == nth:
                    kill_self()
            return original(*args, **kwargs)

        return patched

    if call == "remove":
        os.remove = counting(os.remove)
    else:
        pathlib.Path.unlink = counting(pathlib.Path.unlink)


def _options(retained: str) -> dict[str, str]:
    return {"hoodie.table.name": "faults", "hoodie.datasource.write.recordkey.field": "id",
            "hoodie.datasource.write.partitionpath.field": "region",
            "hoodie.datasource.write.precombine.field": "ts", "hoodie.cleaner.commits.retained": retained,
            # archive soon (as test_hudi_faults.py's writes do), so a short history reaches archival
            "hoodie.keep.max.commits": str(int(retained) + 3)}


def _frame(spark, rows):
    return spark.createDataFrame([(i, region, v, ROW_TIME, name) for i, region, v, name in rows],
                                 "id int, region string, v double, ts timestamp, name string")


def _leave_unfinished_commit(spark, path: str, opts: dict[str, str]) -> None:
    """A commit whose files are written but which never completes and is not rolled back."""
    complete, rollback = actions.complete_instant, actions.rollback_pending

    def interrupt(*_args, **_kwargs):
        raise _Interrupted

    actions.complete_instant = interrupt
    actions.rollback_pending = lambda *_args, **_kwargs: []
    try:
        hudi.write(_frame(spark, ROLLBACK_ROWS), path, opts)
    except _Interrupted:
        pass
    finally:
        actions.complete_instant, actions.rollback_pending = complete, rollback


REGISTRY_ROWS = [(10, "ann", 10.0), (11, "bob", 30.0), (12, "ann", 20.0), (11, "bob", 35.0)]


def _insert_killed_before_registry(spark, warehouse: str) -> None:
    """``orders`` rows (id 11 twice: the later one is kept) written, then SIGKILL before the registry."""
    from featurestore import FeatureStore, ingestion

    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": warehouse}), spark=spark)
    fg = fs.get_feature_group("orders", 1)
    ingestion.sync_commits = kill_self
    base = dt.datetime(2024, 5, 1)
    df = spark.createDataFrame([(i, c, a, base + dt.timedelta(minutes=n)) for n, (i, c, a) in enumerate(REGISTRY_ROWS)],
                               "order_id int, customer string, amount double, ts timestamp")
    fg.insert(df)


def main() -> None:
    path, stage = sys.argv[1], sys.argv[2]
    retained = sys.argv[3] if len(sys.argv) > 3 else "10"
    driver = os.getpid()
    if stage == "files":
        original = writer.make_write_function

        def patched(ctx):
            fn = original(ctx)

            def wrapped(batches):
                for out in fn(batches):  # the task's files are on disk: kill the driver now
                    os.kill(driver, signal.SIGKILL)
                    yield out

            return wrapped

        writer.make_write_function = patched
    elif stage == "inflight":
        writer.WritePlan._rows = kill_self
    elif stage == "commit":
        writer.actions.complete_instant = kill_self
    spark = get_session(master="local[1]", config=load_config(environ={}),
                        conf={"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false"})
    if stage == "registry":
        _insert_killed_before_registry(spark, path)
        print("insert finished: the fault was not injected", flush=True)
        sys.exit(3)
    opts = _options(retained)
    if stage.startswith("rollback:"):
        _leave_unfinished_commit(spark, path, opts)
    injections = {
        "clean:requested": lambda: _kill_when_writing(".clean.inflight"),
        "clean:inflight": lambda: _kill_inside("_execute_clean", "remove", 1),
        "clean:delete": lambda: _kill_inside("_execute_clean", "remove", 2),
        "clean:complete": lambda: _kill_when_writing(".clean"),
        "rollback:requested": lambda: _kill_when_writing(".rollback.inflight"),
        "rollback:inflight": lambda: _kill_inside("_execute_rollback", "remove", 1),
        "rollback:delete": lambda: _kill_inside("_execute_rollback", "unlink", 1),
        "rollback:complete": lambda: _kill_when_writing(".rollback"),
    }
    if stage in injections:
        injections[stage]()
    hudi.write(_frame(spark, KILLED_ROWS), path, opts)
    print("write finished: the fault was not injected", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
