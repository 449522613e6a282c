"""Timeline actions run by the driver: the table lock, instant transitions, rollback of
unfinished instants, cleaning of old file versions, and archival of old instants.

A clean or a rollback writes its whole plan (``<t>.<action>.requested``) before it acts, and every
step after that can run twice: a writer killed halfway leaves a plan that the next writer (or
:func:`featurestore.hudi.clean`) runs again to completion (:func:`recover`), as Hudi does.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from featurestore.hudi import avro_models
from featurestore.hudi.errors import HudiError, HudiInstantNotReadable, HudiLockTimeout
from featurestore.hudi.fs_view import PARTITION_METAFILE, FileSystemView
from featurestore.hudi.index import FOOTER_KEY_RANGES
from featurestore.hudi.timeline import Instant, Timeline, jackson_dumps, timeline_dir

MARKER_DIR = ".temp"
# Completed instants kept on the active timeline before older ones move to .hoodie/archived
# (Hudi's hoodie.keep.max.commits default).
KEEP_MAX_COMMITS = 30


@contextmanager
def table_lock(base_path: str, timeout: float) -> Iterator[None]:
    """Exclusive per-table lock (``flock`` on ``.hoodie/.aux/featurestore.lock``).

    Waits up to ``timeout`` seconds, then raises :class:`HudiLockTimeout`. The operating system
    releases the lock if the holder dies, so a killed writer never blocks the next one.
    """
    aux = Path(base_path) / ".hoodie" / ".aux"
    aux.mkdir(parents=True, exist_ok=True)
    fd = os.open(aux / "featurestore.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HudiLockTimeout(
                        f"another writer holds the lock on {base_path} for more than {timeout:g}s "
                        "(option featurestore.lock.timeout.seconds)"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see either nothing or all of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def instant_path(base_path: str, ts: str, action: str, state: str, layout: int = 1,
                 completion_time: str | None = None) -> Path:
    """File of an instant in a given state. Layout 2 names a completed instant
    ``<requested>_<completed>.<action>`` (``completion_time`` required), in ``.hoodie/timeline/``."""
    folder = timeline_dir(base_path, layout)
    if state == "REQUESTED":
        return folder / f"{ts}.{action}.requested"
    if state == "INFLIGHT":
        return folder / (f"{ts}.inflight" if action == "commit" else f"{ts}.{action}.inflight")
    if layout == 2:
        if not completion_time:
            raise ValueError(f"a completed layout-2 instant needs its completion time ({ts}.{action})")
        return folder / f"{ts}_{completion_time}.{action}"
    return folder / f"{ts}.{action}"


def complete_path(base_path: str, ts: str, action: str, layout: int) -> Path:
    """Where instant ``ts`` completes now: on layout 2 with a completion time after every instant of
    the timeline (the pending one included), as Hudi 1.x draws it at the commit point."""
    completion = Timeline.load(base_path, 9).new_instant_time() if layout == 2 else None
    return instant_path(base_path, ts, action, "COMPLETED", layout, completion)


def commit_payload(metadata: dict[str, Any], layout: int) -> bytes:
    """Commit metadata bytes: Jackson-style JSON on layout 1, Hudi's Avro records on layout 2."""
    return avro_models.commit_metadata_avro(metadata) if layout == 2 else jackson_dumps(metadata).encode()


def request_instant(base_path: str, ts: str, action: str, inflight_metadata: dict[str, Any],
                    layout: int = 1) -> None:
    """Create ``<t>.<action>.requested`` then the inflight file (the workload's commit metadata)."""
    # Empty for commits, as Hudi writes them; for a replacecommit an empty file means to Hudi's
    # readers what the empty HoodieRequestedReplaceMetadata of insert_overwrite means: "not clustering".
    write_atomic(instant_path(base_path, ts, action, "REQUESTED", layout), b"")
    write_atomic(instant_path(base_path, ts, action, "INFLIGHT", layout), commit_payload(inflight_metadata, layout))


def complete_instant(base_path: str, ts: str, action: str, metadata: dict[str, Any], layout: int = 1) -> Path:
    """Write the completed instant file: from this moment readers see the commit. Returns its path."""
    target = complete_path(base_path, ts, action, layout)
    write_atomic(target, commit_payload(metadata, layout))
    return target


def marker_dir(base_path: str, ts: str) -> Path:
    """Folder of the marker files of an instant (one per data file it started to write)."""
    return Path(base_path) / ".hoodie" / MARKER_DIR / ts


def marked_files(base_path: str, ts: str) -> list[str]:
    """Relative paths of the data files an instant started to write (from its markers)."""
    root = marker_dir(base_path, ts)
    out = []
    if root.is_dir():
        for dirpath, _, names in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            for name in names:
                data_name = name.split(".marker.")[0]
                out.append(data_name if rel_dir == "." else f"{rel_dir}/{data_name}")
    return out


def files_of_instant(view: FileSystemView, ts: str) -> list[str]:
    """Relative paths of every base file named with instant ``ts`` (a full listing)."""
    return [f.relative_path for p in view.partitions() for f in view.list_files(p) if f.instant == ts]


def write_partition_metadata(base_path: str, partition: str, ts: str) -> None:
    """``.hoodie_partition_metadata`` in a partition folder, if missing (Java needs it)."""
    folder = Path(base_path) / partition if partition else Path(base_path)
    target = folder / PARTITION_METAFILE
    if target.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    depth = len(partition.split("/")) if partition else 0
    now = datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    text = f"#partition metadata\n#{now}\ncommitTime={ts}\npartitionDepth={depth}\n"
    write_atomic(target, text.encode())


def rollback_pending(base_path: str, timeline: Timeline, view: FileSystemView, new_ts: str) -> list[str]:
    """Roll back every unfinished commit instant, recording a rollback instant for each.

    Deletes the data files the instant wrote (markers, else a listing), then its instant files;
    readers never saw any of it. Returns the rolled-back instant times. Pending rollbacks are
    finished first (:func:`finish_pending_rollbacks`), so that no commit gets two rollbacks.
    """
    rolled = []
    pending = [i for i in timeline.pending if i.is_commit]
    for offset, inst in enumerate(pending):
        rollback_ts = _bump(new_ts, offset)
        if timeline.layout == 2 and offset:
            # after the completion time of the rollback before it: one clock for both kinds of time
            rollback_ts = max(rollback_ts, Timeline.load(base_path).new_instant_time())
        files = sorted(set(marked_files(base_path, inst.timestamp)) | set(files_of_instant(view, inst.timestamp)))
        by_partition: dict[str, list[str]] = {}
        for rel in files:
            partition = rel.rsplit("/", 1)[0] if "/" in rel else ""
            by_partition.setdefault(partition, []).append(rel)
        plan = {
            "instantToRollback": {"commitTime": inst.timestamp, "action": inst.action},
            "RollbackRequests": [
                {"partitionPath": p, "fileId": None, "latestBaseInstant": None,
                 "filesToBeDeleted": [str(Path(base_path) / r) for r in rels], "logBlocksToBeDeleted": None}
                for p, rels in by_partition.items()
            ],
            "version": 1,
        }
        write_atomic(instant_path(base_path, rollback_ts, "rollback", "REQUESTED", timeline.layout),
                     avro_models.serialize(avro_models.ROLLBACK_PLAN, plan))
        _execute_rollback(base_path, rollback_ts, plan, view)
        rolled.append(inst.timestamp)
    return rolled


def _execute_rollback(base_path: str, rollback_ts: str, plan: dict[str, Any], view: FileSystemView) -> None:
    """Carry out a requested rollback: ``.rollback.inflight``, delete the planned files (and any other
    file of the instant), remove the instant's files and markers, then ``<t>.rollback``.

    Every step may already have happened (a writer killed halfway): a missing file counts as deleted,
    so the same plan can run again until it completes.
    """
    started = time.monotonic()
    layout = view.timeline.layout
    target = plan.get("instantToRollback") or {}
    ts, action = target.get("commitTime"), target.get("action") or "commit"
    inflight = instant_path(base_path, rollback_ts, "rollback", "INFLIGHT", layout)
    if not inflight.exists():
        write_atomic(inflight, b"")
    planned: dict[str, list[str]] = {}
    for request in plan.get("RollbackRequests") or []:
        planned.setdefault(request.get("partitionPath") or "", []).extend(request.get("filesToBeDeleted") or [])
    if ts:
        # Files the plan did not know of (a task still writing when the plan was made).
        known = {p for paths in planned.values() for p in paths}
        for rel in set(marked_files(base_path, ts)) | set(files_of_instant(view, ts)):
            absolute = str(Path(base_path) / rel)
            if absolute not in known:
                planned.setdefault(rel.rsplit("/", 1)[0] if "/" in rel else "", []).append(absolute)
    deleted: dict[str, list[str]] = {}
    failed: dict[str, list[str]] = {}
    for partition, paths in planned.items():
        for absolute in paths:
            try:
                os.remove(absolute)
            except FileNotFoundError:
                pass  # deleted by the run that was killed
            except OSError:
                failed.setdefault(partition, []).append(absolute)
                continue
            deleted.setdefault(partition, []).append(absolute)
    FOOTER_KEY_RANGES.forget(p for paths in deleted.values() for p in paths)
    if failed:
        raise HudiError(f"rollback {rollback_ts} of instant {ts} could not delete "
                        f"{sum(len(v) for v in failed.values())} file(s), e.g. {next(iter(failed.values()))[0]}; "
                        "the next writer retries it")
    if ts:
        for state in ("INFLIGHT", "REQUESTED"):
            instant_path(base_path, ts, action, state, layout).unlink(missing_ok=True)
        shutil.rmtree(marker_dir(base_path, ts), ignore_errors=True)
    meta = {
        "startRollbackTime": rollback_ts,
        "timeTakenInMillis": int((time.monotonic() - started) * 1000),
        "totalFilesDeleted": sum(len(v) for v in deleted.values()),
        "commitsRollback": [ts] if ts else [],
        "partitionMetadata": {
            p: {"partitionPath": p, "successDeleteFiles": deleted.get(p, []), "failedDeleteFiles": [],
                "rollbackLogFiles": None}
            for p in planned
        },
        "version": 1,
        "instantsRollback": [{"commitTime": ts, "action": action}] if ts else [],
    }
    write_atomic(complete_path(base_path, rollback_ts, "rollback", layout),
                 avro_models.serialize(avro_models.ROLLBACK_METADATA, meta))


def _pending_plan(base_path: str, inst: Instant, layout: int) -> dict[str, Any] | None:
    """The plan in a pending clean's or rollback's ``.requested`` file, or None if it cannot be read."""
    try:
        return avro_models.deserialize(
            instant_path(base_path, inst.timestamp, inst.action, "REQUESTED", layout).read_bytes())
    except (OSError, ValueError, EOFError):
        return None


def _drop_pending(base_path: str, inst: Instant, layout: int) -> None:
    """Remove the files of a pending instant whose plan is unreadable (nothing of it ran: a plan is
    written whole before any step acts on it)."""
    for state in ("INFLIGHT", "REQUESTED"):
        instant_path(base_path, inst.timestamp, inst.action, state, layout).unlink(missing_ok=True)


def finish_pending_rollbacks(base_path: str, timeline: Timeline, view: FileSystemView) -> list[str]:
    """Complete every rollback a killed writer left requested or inflight, oldest first, by running its
    plan again (as Hudi does). Returns the instant times of the rolled-back commits."""
    done = []
    for inst in [i for i in timeline.pending if i.action == "rollback"]:
        plan = _pending_plan(base_path, inst, timeline.layout)
        if not plan:
            _drop_pending(base_path, inst, timeline.layout)
            continue
        _execute_rollback(base_path, inst.timestamp, plan, view)
        done.append((plan.get("instantToRollback") or {}).get("commitTime") or inst.timestamp)
    return done


def finish_pending_cleans(base_path: str, timeline: Timeline) -> int:
    """Complete every clean a killed writer left requested or inflight by running its plan again;
    returns the number of files deleted."""
    total = 0
    for inst in [i for i in timeline.pending if i.action == "clean"]:
        plan = _pending_plan(base_path, inst, timeline.layout)
        if not plan:
            _drop_pending(base_path, inst, timeline.layout)
            continue
        total += _execute_clean(base_path, inst.timestamp, plan, timeline.layout)
    return total


def remove_stale_markers(base_path: str, timeline: Timeline) -> list[str]:
    """Delete ``.hoodie/.temp/<instant>`` folders of instants that are no longer pending (a writer
    killed between its commit and the removal of its markers leaves them)."""
    root = Path(base_path) / ".hoodie" / MARKER_DIR
    pending = {i.timestamp for i in timeline.pending if i.is_commit}
    removed = []
    for entry in (os.scandir(root) if root.is_dir() else []):
        if entry.is_dir() and entry.name not in pending:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` finished of what killed writers left."""

    rolled_back: tuple[str, ...] = ()
    cleans_finished: int = 0
    files_cleaned: int = 0
    markers_removed: tuple[str, ...] = ()


def recover(base_path: str, timeline: Timeline, partitioned: bool, new_ts: str) -> Recovery:
    """Finish what killed writers left, under the table lock: pending rollbacks, then unfinished
    commits (rolled back), then pending cleans, then marker folders of finished instants."""
    view = FileSystemView(base_path, timeline, partitioned)
    rolled = finish_pending_rollbacks(base_path, timeline, view)
    if rolled:
        timeline = Timeline.load(base_path)
        view = FileSystemView(base_path, timeline, partitioned)
    rolled += rollback_pending(base_path, timeline, view, max(new_ts, timeline.new_instant_time()))
    pending_cleans = [i for i in timeline.pending if i.action == "clean"]
    cleaned = finish_pending_cleans(base_path, timeline) if pending_cleans else 0
    # The timeline as loaded: a commit rolled back above removed its own markers.
    markers = remove_stale_markers(base_path, timeline)
    return Recovery(tuple(rolled), len(pending_cleans), cleaned, tuple(markers))


def _bump(ts: str, offset: int) -> str:
    from datetime import timedelta

    from featurestore.hudi.timeline import datetime_to_instant, instant_to_datetime

    return datetime_to_instant(instant_to_datetime(ts) + timedelta(milliseconds=offset)) if offset else ts


def earliest_retained_commit(timeline: Timeline) -> str | None:
    """The oldest commit still readable by time travel, per the newest completed clean."""
    cleans = [i for i in timeline.completed if i.action == "clean"]
    if not cleans:
        return None
    data = (timeline_dir(timeline.base_path, timeline.layout) / cleans[-1].file_name).read_bytes()
    meta = avro_models.deserialize(data)
    return meta.get("earliestCommitToRetain") or None


def check_readable(timeline: Timeline, instant: str, what: str = "time travel") -> None:
    """Raise :class:`HudiInstantNotReadable` if the cleaner removed the files of ``instant``."""
    earliest = earliest_retained_commit(timeline)
    if earliest is not None and instant < earliest:
        raise HudiInstantNotReadable(
            f"{what} to {instant} is not possible: the cleaner removed those file versions; "
            f"the oldest readable commit is {earliest}"
        )


def clean(base_path: str, timeline: Timeline, view: FileSystemView, retained: int, clean_ts: str) -> int:
    """Keep the file versions the last ``retained`` commits need; delete older ones.

    Records ``<t>.clean.requested`` / ``.clean.inflight`` (the plan) and ``<t>.clean`` (what was
    deleted), as Hudi's KEEP_LATEST_COMMITS cleaner does. Returns the number of files deleted.
    """
    commits = timeline.completed_commits
    if len(commits) <= retained:
        return 0
    earliest = commits[-retained]
    previous = earliest_retained_commit(timeline)
    if previous is not None and earliest.timestamp <= previous:
        return 0
    to_delete: dict[str, list[str]] = {}
    replaced_before = FileSystemView(base_path, timeline, view.partitioned).replaced_file_groups(
        as_of=_before(earliest.timestamp))
    for partition in view.partitions():
        groups: dict[str, list] = {}
        for f in view.list_files(partition):
            if view.is_committed(f.instant):
                groups.setdefault(f.file_id, []).append(f)
        for file_id, versions in groups.items():
            versions.sort(key=lambda f: f.instant)
            if (partition, file_id) in replaced_before:
                doomed = versions
            else:
                floor = [v for v in versions if v.instant <= earliest.timestamp]
                keep_from = floor[-1].instant if floor else versions[0].instant
                doomed = [v for v in versions if v.instant < keep_from]
            for v in doomed:
                to_delete.setdefault(partition, []).append(v.name)
    if not to_delete:
        return 0
    started = time.monotonic()
    plan = {
        "earliestInstantToRetain": {"timestamp": earliest.timestamp, "action": earliest.action, "state": "COMPLETED"},
        "lastCompletedCommitTimestamp": commits[-1].timestamp,
        "policy": "KEEP_LATEST_COMMITS",
        "filesToBeDeletedPerPartition": {},
        "version": 2,
        "filePathsToBeDeletedPerPartition": {
            p: [{"filePath": str(Path(base_path) / p / n) if p else str(Path(base_path) / n),
                 "isBootstrapBaseFile": False} for n in names]
            for p, names in to_delete.items()
        },
        "partitionsToBeDeleted": [],
        "extraMetadata": None,
    }
    write_atomic(instant_path(base_path, clean_ts, "clean", "REQUESTED", timeline.layout),
                 avro_models.serialize(avro_models.CLEANER_PLAN, plan))
    return _execute_clean(base_path, clean_ts, plan, timeline.layout, started)


def _execute_clean(base_path: str, clean_ts: str, plan: dict[str, Any], layout: int,
                   started: float | None = None) -> int:
    """Carry out a requested clean: ``.clean.inflight`` (the plan again), delete the planned files, then
    ``<t>.clean``. A file already gone counts as deleted, so a killed clean's plan can run again."""
    started = time.monotonic() if started is None else started
    inflight = instant_path(base_path, clean_ts, "clean", "INFLIGHT", layout)
    if not inflight.exists():
        write_atomic(inflight, avro_models.serialize(avro_models.CLEANER_PLAN, plan))
    to_delete: dict[str, list[str]] = {}
    for partition, infos in (plan.get("filePathsToBeDeletedPerPartition") or {}).items():
        to_delete[partition] = [info["filePath"] for info in infos or [] if info.get("filePath")]
    deleted: dict[str, list[str]] = {}
    failed: dict[str, list[str]] = {}
    for partition, paths in to_delete.items():
        for absolute in paths:
            try:
                os.remove(absolute)
            except FileNotFoundError:
                pass  # deleted by a clean that was killed before it completed
            except OSError:
                failed.setdefault(partition, []).append(os.path.basename(absolute))
                continue
            deleted.setdefault(partition, []).append(os.path.basename(absolute))
    FOOTER_KEY_RANGES.forget(p for paths in to_delete.values() for p in paths)
    earliest = (plan.get("earliestInstantToRetain") or {}).get("timestamp") or ""
    meta = {
        "startCleanTime": clean_ts,
        "timeTakenInMillis": int((time.monotonic() - started) * 1000),
        "totalFilesDeleted": sum(len(v) for v in deleted.values()),
        "earliestCommitToRetain": earliest,
        "lastCompletedCommitTimestamp": plan.get("lastCompletedCommitTimestamp") or "",
        "partitionMetadata": {
            p: {"partitionPath": p, "policy": plan.get("policy") or "KEEP_LATEST_COMMITS",
                "deletePathPatterns": [os.path.basename(x) for x in paths],
                "successDeleteFiles": deleted.get(p, []), "failedDeleteFiles": failed.get(p, []),
                "isPartitionDeleted": False}
            for p, paths in to_delete.items()
        },
        "version": 2,
        "bootstrapPartitionMetadata": None,
        "extraMetadata": None,
    }
    write_atomic(complete_path(base_path, clean_ts, "clean", layout),
                 avro_models.serialize(avro_models.CLEAN_METADATA, meta))
    return meta["totalFilesDeleted"]


def _before(ts: str) -> str:
    """The largest instant string strictly smaller than ``ts`` for ``<=`` comparisons."""
    return str(int(ts) - 1).zfill(len(ts))


def archive(base_path: str, timeline: Timeline, keep: int = KEEP_MAX_COMMITS) -> list[Instant]:
    """Move the files of old completed instants to ``.hoodie/archived`` to bound the timeline.

    Only instants older than the earliest retained commit move (their file versions are already
    cleaned), and the newest ``keep`` commits always stay. Files written by an archived commit
    stay visible: readers treat instants older than the active timeline as committed.

    Layout 1 (table version 6) only: layout 2 archives into Hudi's LSM timeline
    (``.hoodie/timeline/history``), which this engine does not write; it leaves the archival of
    those tables to Apache Hudi and keeps their instants active.
    """
    if timeline.layout != 1:
        return []
    commits = timeline.completed_commits
    earliest = earliest_retained_commit(timeline)
    if len(commits) <= keep or earliest is None:
        return []
    cutoff = min(commits[-keep].timestamp, earliest)
    pending = [i.timestamp for i in timeline.pending]
    if pending:
        cutoff = min(cutoff, min(pending))
    moved = []
    target = Path(base_path) / ".hoodie" / "archived"
    target.mkdir(exist_ok=True)
    latest_clean = max((i.timestamp for i in timeline.completed if i.action == "clean"), default=None)
    for inst in timeline.completed:
        # The newest clean instant stays: it records the earliest commit readers may ask for.
        if inst.timestamp >= cutoff or inst.timestamp == latest_clean:
            continue
        for state in ("REQUESTED", "INFLIGHT", "COMPLETED"):
            src = instant_path(base_path, inst.timestamp, inst.action, state)
            if src.exists():
                os.replace(src, target / src.name)
        moved.append(inst)
    return moved


def read_avro_instant(timeline: Timeline, inst: Instant) -> dict:
    """The Avro payload of a clean or rollback instant."""
    return avro_models.deserialize((timeline_dir(timeline.base_path, timeline.layout) / inst.file_name).read_bytes())


def raise_if_missing(paths: list[str], what: str) -> None:
    """Raise a clear error when a file the timeline promises is gone."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise HudiInstantNotReadable(f"{what}: {len(missing)} file(s) are missing, e.g. {missing[0]}")
