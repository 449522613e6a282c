"""The Hudi timeline as plain data: instants, their states, and commit metadata.

Table version 6 (layout 1) keeps instants directly in ``.hoodie/``: ``<t>.<action>`` when
completed, ``<t>.<action>.requested`` / ``<t>.<action>.inflight`` while pending (a commit's
inflight file is plain ``<t>.inflight``), commit metadata as JSON. Versions 8 and 9 (layout 2)
keep them in ``.hoodie/timeline/``, completed ones named ``<requested>_<completed>.<action>``
(a completed file without the completion time is a "legacy" instant, e.g. from before an upgrade:
Hudi takes its completion time from the file's modification time), commit metadata as Avro, and
archived instants in the LSM timeline under ``.hoodie/timeline/history/``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestore.hudi.errors import HudiInstantNotReadable

REQUESTED, INFLIGHT, COMPLETED = "REQUESTED", "INFLIGHT", "COMPLETED"
COMMIT_ACTIONS = ("commit", "deltacommit", "replacecommit")
ACTIONS = ("commit", "deltacommit", "replacecommit", "clean", "rollback", "savepoint", "compaction",
           "restore", "indexing", "logcompaction", "clustering")
_V1_NAME = re.compile(r"^(\d{14}|\d{17})\.([a-z]+)(?:\.(requested|inflight))?$")
_V2_COMPLETED = re.compile(r"^(\d{14}|\d{17})_(\d{14}|\d{17})\.([a-z]+)$")
_LSM_FILE = re.compile(r"^(\d{14}|\d{17})_(\d{14}|\d{17})_\d+\.parquet$")
INSTANT_FORMAT = "%Y%m%d%H%M%S"


@dataclass(frozen=True, order=True)
class Instant:
    """One instant: its (requested) time, action and state; completion time for layout 2."""

    timestamp: str
    action: str = field(compare=False)
    state: str = field(compare=False)
    file_name: str = field(compare=False)
    completion_time: str | None = field(default=None, compare=False)

    @property
    def is_completed(self) -> bool:
        """Whether the instant completed."""
        return self.state == COMPLETED

    @property
    def is_commit(self) -> bool:
        """Whether the instant writes data (commit, deltacommit, replacecommit)."""
        return self.action in COMMIT_ACTIONS


def instant_to_datetime(ts: str) -> datetime:
    """A ``yyyyMMddHHmmss[SSS]`` instant as a UTC datetime."""
    base = datetime.strptime(ts[:14], INSTANT_FORMAT).replace(tzinfo=UTC)
    return base + timedelta(milliseconds=int(ts[14:17] or 0))


def datetime_to_instant(dt: datetime) -> str:
    """A datetime (naive = UTC) as a 17-digit instant."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime(INSTANT_FORMAT) + f"{dt.microsecond // 1000:03d}"


def normalize_instant(value: str | int | datetime) -> str:
    """Turn an instant, epoch number, datetime or timestamp string into a 17-digit UTC instant.

    Accepted: ``yyyyMMddHHmmss[SSS]``; ``yyyy-MM-dd[ HH:mm[:ss[.fff]]]`` (UTC unless an offset
    is given, ``T`` or space); a datetime; an epoch in seconds, milliseconds or microseconds.
    """
    if isinstance(value, datetime):
        return datetime_to_instant(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{17}", text):
        return text
    if re.fullmatch(r"\d{14}", text):
        return text + "000"
    if re.fullmatch(r"\d{1,13}|\d{16}", text) and not re.fullmatch(r"\d{8}", text):
        number = int(text)
        seconds = number / 1_000_000 if len(text) == 16 else number / 1000 if len(text) > 10 else number
        return datetime_to_instant(datetime.fromtimestamp(seconds, UTC))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HudiInstantNotReadable(
            f"cannot read {value!r} as a commit time: use an instant yyyyMMddHHmmssSSS or a timestamp "
            "such as '2024-01-31 12:00:00' (UTC)"
        ) from None
    return datetime_to_instant(parsed)


def _parse_v1(name: str) -> Instant | None:
    m = _V1_NAME.match(name)
    if not m:
        return None
    ts, action, state = m.group(1), m.group(2), m.group(3)
    if action == "inflight" and state is None:
        return Instant(ts, "commit", INFLIGHT, name)
    if action not in ACTIONS:
        return None
    return Instant(ts, action, {None: COMPLETED, "requested": REQUESTED, "inflight": INFLIGHT}[state], name)


def _parse_v2(name: str) -> Instant | None:
    m = _V2_COMPLETED.match(name)
    if m:
        if m.group(3) not in ACTIONS:
            return None
        return Instant(m.group(1), m.group(3), COMPLETED, name, completion_time=m.group(2))
    return _parse_v1(name)


@dataclass
class Timeline:
    """All instants of a table, oldest first."""

    base_path: str
    layout: int
    instants: list[Instant]

    @classmethod
    def load(cls, base_path: str, table_version: int | None = None) -> Timeline:
        """List the active timeline of the table at ``base_path`` (``table_version`` None: the one
        ``hoodie.properties`` names; a table that does not exist yet has an empty timeline)."""
        if table_version is None:
            table_version = table_version_of(base_path)
        layout = layout_of(table_version)
        folder = timeline_dir(base_path, layout)
        names = os.listdir(folder) if folder.is_dir() else []
        parse = _parse_v2 if layout == 2 else _parse_v1
        by_key: dict[tuple[str, str], Instant] = {}
        rank = {REQUESTED: 0, INFLIGHT: 1, COMPLETED: 2}
        for name in names:
            inst = parse(name)
            if inst is None:
                continue
            key = (inst.timestamp, inst.action)
            if key not in by_key or rank[inst.state] > rank[by_key[key].state]:
                by_key[key] = inst
        return cls(str(base_path), layout, sorted(by_key.values()))

    @property
    def completed(self) -> list[Instant]:
        """Completed instants of every action."""
        return [i for i in self.instants if i.is_completed]

    @property
    def completed_commits(self) -> list[Instant]:
        """Completed commit, deltacommit and replacecommit instants, oldest first."""
        return [i for i in self.instants if i.is_completed and i.is_commit]

    @property
    def pending(self) -> list[Instant]:
        """Requested or inflight instants."""
        return [i for i in self.instants if not i.is_completed]

    def latest_commit(self) -> Instant | None:
        """The newest completed commit, or None for an empty table."""
        commits = self.completed_commits
        return commits[-1] if commits else None

    def commit_at_or_before(self, instant: str) -> Instant | None:
        """The newest completed commit whose time is <= ``instant``."""
        found = None
        for inst in self.completed_commits:
            if inst.timestamp <= instant:
                found = inst
        return found

    def commits_between(self, begin: str | None, end: str | None) -> list[Instant]:
        """Completed commits in ``(begin, end]``; layout 2 compares completion times, as Hudi does."""
        out = []
        for inst in self.completed_commits:
            t = inst.completion_time or inst.timestamp
            if (begin is None or t > begin) and (end is None or t <= end):
                out.append(inst)
        return out

    def read_metadata(self, inst: Instant) -> dict[str, Any]:
        """Commit metadata of an instant as a dict (JSON for layout 1, Avro for layout 2)."""
        path = timeline_dir(self.base_path, self.layout) / inst.file_name
        data = path.read_bytes()
        if not data:
            return {}
        if data[:4] == b"Obj\x01":
            import fastavro

            with path.open("rb") as fh:
                records = list(fastavro.reader(fh))
            return records[0] if records else {}
        return json.loads(data.decode("utf-8"))

    def latest_schema(self) -> dict | None:
        """The Avro schema (without meta fields) recorded by the newest completed commit."""
        for inst in reversed(self.completed_commits):
            meta = self.read_metadata(inst)
            schema = (meta.get("extraMetadata") or {}).get("schema")
            if schema:
                return json.loads(schema)
        return None

    def new_instant_time(self) -> str:
        """A fresh instant, strictly after every instant on the timeline, requested or completed
        (and now, in UTC): Hudi 1.x draws requested and completion times from one clock."""
        now = datetime_to_instant(datetime.now(UTC))
        newest = max((t for i in self.instants for t in (i.timestamp, i.completion_time or "")), default="")
        archived = _newest_archived(self.base_path)
        floor = max(newest, archived)
        if floor and now <= floor:
            now = datetime_to_instant(instant_to_datetime(floor) + timedelta(milliseconds=1))
        return now

    def completion_time_of(self, instant: str) -> str | None:
        """The completion time of a completed commit (its instant time on layout 1); None if unknown."""
        for inst in self.completed_commits:
            if inst.timestamp == instant:
                return inst.completion_time or inst.timestamp
        return None


def _newest_archived(base_path: str) -> str:
    """The newest instant time in the archived timeline (layout 1 files, or the LSM history's names)."""
    stamps = []
    folder = Path(base_path) / ".hoodie" / "archived"
    stamps += [m.group(1) for n in (os.listdir(folder) if folder.is_dir() else []) if (m := _V1_NAME.match(n))]
    history = Path(base_path) / ".hoodie" / "timeline" / "history"
    stamps += [m.group(2) for n in (os.listdir(history) if history.is_dir() else []) if (m := _LSM_FILE.match(n))]
    return max(stamps, default="")


def layout_of(table_version: int) -> int:
    """The timeline layout of a table version: 2 from version 8 on, else 1."""
    return 2 if table_version >= 8 else 1


def table_version_of(base_path: str) -> int:
    """``hoodie.table.version`` of the table at ``base_path``; 6 (layout 1) when there is no table."""
    path = Path(base_path) / ".hoodie" / "hoodie.properties"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 6
    m = re.search(r"^\s*hoodie\.table\.version\s*[=:]\s*(\d+)\s*$", text, re.MULTILINE)
    return int(m.group(1)) if m else 6


def timeline_dir(base_path: str, layout: int = 1) -> Path:
    """The folder that holds the active timeline."""
    root = Path(base_path) / ".hoodie"
    return root / "timeline" if layout == 2 else root


# -- Jackson-style JSON, as Hudi's Java writer pretty-prints commit metadata --------------------

def jackson_dumps(obj: Any) -> str:
    """Serialise like Jackson's DefaultPrettyPrinter: ``"k" : v``, 2-space indent, inline arrays."""
    return _pretty(obj, 0)


def _pretty(obj: Any, level: int) -> str:
    pad = "  " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{ }"
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)} : {_pretty(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[ ]"
        return "[ " + ", ".join(_pretty(v, level) for v in obj) + " ]"
    return json.dumps(obj, ensure_ascii=False)
