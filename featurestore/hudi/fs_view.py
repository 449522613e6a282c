"""File-system view of a version-6 copy-on-write table: which base file of each file group is
current as of an instant.

A base file ``<fileId>_<writeToken>_<instant>.parquet`` is visible when its instant is a
completed commit on the timeline (or older than the timeline's first commit, i.e. archived), no
completed replacecommit up to the read instant replaced its file group, and it is the newest such
version of its file group. Partitions are the leaf folders below the table root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from featurestore.hudi.timeline import Timeline

PARTITION_METAFILE = ".hoodie_partition_metadata"


@dataclass(frozen=True)
class BaseFile:
    """One base file of a file group."""

    partition: str
    file_id: str
    write_token: str
    instant: str
    name: str
    size: int

    @property
    def relative_path(self) -> str:
        """Path below the table root, as write stats record it."""
        return f"{self.partition}/{self.name}" if self.partition else self.name


def parse_base_file_name(name: str) -> tuple[str, str, str] | None:
    """``(fileId, writeToken, instant)`` of a Hudi base file name, or None."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() != "parquet":
        return None
    parts = stem.split("_")
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], parts[2]


class FileSystemView:
    """The base files of a table as the timeline sees them."""

    def __init__(self, base_path: str, timeline: Timeline, partitioned: bool) -> None:
        self.base_path = str(base_path)
        self.timeline = timeline
        self.partitioned = partitioned

    @cached_property
    def _committed(self) -> set[str]:
        return {i.timestamp for i in self.timeline.completed_commits}

    @cached_property
    def _timeline_start(self) -> str | None:
        commits = [i.timestamp for i in self.timeline.instants if i.is_commit]
        return min(commits) if commits else None

    def is_committed(self, instant: str) -> bool:
        """Whether data written at ``instant`` is part of the table."""
        if instant in self._committed:
            return True
        # Instants older than the active timeline were archived after they completed.
        return self._timeline_start is not None and instant < self._timeline_start

    def partitions(self) -> list[str]:
        """Relative paths of every partition (leaf folder); ``[""]`` when non-partitioned."""
        if not self.partitioned:
            return [""]
        out: list[str] = []
        root = self.base_path

        def walk(rel: str) -> None:
            full = os.path.join(root, rel) if rel else root
            try:
                entries = list(os.scandir(full))
            except FileNotFoundError:
                return
            dirs = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
            if rel and not dirs:
                out.append(rel)
            for d in sorted(dirs):
                walk(f"{rel}/{d}" if rel else d)

        walk("")
        return out

    def list_files(self, partition: str) -> list[BaseFile]:
        """Every parseable base file in a partition, committed or not."""
        folder = os.path.join(self.base_path, partition) if partition else self.base_path
        files = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        for e in entries:
            if not e.is_file():
                continue
            parsed = parse_base_file_name(e.name)
            if parsed:
                files.append(BaseFile(partition, parsed[0], parsed[1], parsed[2], e.name, e.stat().st_size))
        return files

    def replaced_file_groups(self, as_of: str | None = None) -> set[tuple[str, str]]:
        """``(partition, fileId)`` of file groups replaced by completed replacecommits <= ``as_of``."""
        replaced: set[tuple[str, str]] = set()
        for inst in self.timeline.completed_commits:
            if inst.action != "replacecommit" or (as_of is not None and inst.timestamp > as_of):
                continue
            meta = self.timeline.read_metadata(inst)
            for partition, ids in (meta.get("partitionToReplaceFileIds") or {}).items():
                replaced.update((partition, fid) for fid in ids)
        return replaced

    def file_groups(self, partitions: Iterable[str] | None = None,
                    as_of: str | None = None) -> dict[tuple[str, str], list[BaseFile]]:
        """Committed versions (oldest first) of each live file group, up to ``as_of``."""
        replaced = self.replaced_file_groups(as_of)
        groups: dict[tuple[str, str], list[BaseFile]] = {}
        for partition in partitions if partitions is not None else self.partitions():
            for f in self.list_files(partition):
                if not self.is_committed(f.instant) or (as_of is not None and f.instant > as_of):
                    continue
                if (partition, f.file_id) in replaced:
                    continue
                groups.setdefault((partition, f.file_id), []).append(f)
        for versions in groups.values():
            versions.sort(key=lambda f: f.instant)
        return groups

    def latest_base_files(self, partitions: Iterable[str] | None = None, as_of: str | None = None) -> list[BaseFile]:
        """The current base file of every live file group as of ``as_of`` (default: latest)."""
        return [versions[-1] for versions in self.file_groups(partitions, as_of).values()]
