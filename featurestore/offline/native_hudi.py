"""The native Hudi engine behind the offline interface: our PySpark + pyarrow copy-on-write writer
(:mod:`featurestore.hudi`), executors writing the files and the driver committing."""

from __future__ import annotations

import datetime as dt
import getpass
import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from featurestore import hudi
from featurestore.errors import OfflineStoreError
from featurestore.hudi.table import table_exists
from featurestore.hudi.timeline import Timeline, instant_to_datetime, normalize_instant
from featurestore.model.records import CommitInfo, CommitOutcome
from featurestore.offline.interface import WRITE_OPERATIONS, OfflineTable

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

COMMIT_METADATA_PREFIX = "featurestore.commit.metadata."
_WRAPPED: dict[type, type] = {}


def offline_error(exc: hudi.HudiError) -> OfflineStoreError:
    """``exc`` as an :class:`OfflineStoreError` that is still an instance of its Hudi error class, so
    callers of the interface catch one type and callers that know Hudi keep theirs."""
    cls = _WRAPPED.get(type(exc))
    if cls is None:
        cls = _WRAPPED[type(exc)] = type(type(exc).__name__, (OfflineStoreError, type(exc)), {})
    return cls(*exc.args)


class NativeHudiTable(OfflineTable):
    """A Hudi copy-on-write table written by the native engine."""

    commit_column = "_hoodie_commit_time"
    row_id_columns = ("_hoodie_record_key", "_hoodie_partition_path")
    meta_prefix = "_hoodie_"

    def exists(self) -> bool:
        """Whether ``.hoodie/hoodie.properties`` is there."""
        return table_exists(self.location)

    def commits(self) -> list[CommitInfo]:
        """Completed ``commit`` and ``replacecommit`` instants of the active timeline, oldest first."""
        if not self.exists():
            return []
        return [CommitInfo(
            commit_id=e["instant"], action=e["action"], operation=e.get("operation") or "unknown",
            committed_at=instant_to_datetime(e["instant"]).replace(tzinfo=None),
            rows_inserted=e.get("rows_inserted") or 0, rows_updated=e.get("rows_updated") or 0,
            rows_deleted=e.get("rows_deleted") or 0, files=e.get("files") or 0,
            metadata=dict(e.get("extra_metadata") or {}),
        ) for e in hudi.timeline(self.location) if e["action"] in ("commit", "replacecommit")]

    def commit_id(self, value: str | int | dt.datetime) -> str:
        """A 17-digit Hudi instant."""
        try:
            return normalize_instant(value)
        except hudi.HudiError as exc:
            raise offline_error(exc) from None

    def commit_time(self, commit_id: str) -> dt.datetime:
        """The instant as a naive UTC datetime."""
        return instant_to_datetime(commit_id).replace(tzinfo=None)

    def hudi_options(self, operation: str, commit_metadata: Mapping[str, str] | None,
                     write_options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Hudi write options of the feature group (keys, ordering, cleaning, lock) for one write."""
        record, config = self.record, self.ctx.config
        opts: dict[str, Any] = {
            "hoodie.table.name": record.table_name,
            "hoodie.datasource.write.recordkey.field": ",".join(record.primary_key),
            "hoodie.datasource.write.partitionpath.field": ",".join(record.partition_key),
            "hoodie.datasource.write.operation": operation,
            "hoodie.datasource.write.hive_style_partitioning": "true",
            "hoodie.cleaner.commits.retained": str(config.get("hudi.cleaner_commits_retained")),
            "featurestore.lock.timeout.seconds": str(config.get("hudi.lock_timeout_seconds")),
            f"{COMMIT_METADATA_PREFIX}user": getpass.getuser(),
        }
        if record.ordering_key:
            opts["hoodie.datasource.write.precombine.field"] = record.ordering_key
        for key, value in (commit_metadata or {}).items():
            opts[f"{COMMIT_METADATA_PREFIX}{key}"] = str(value)
        opts.update(write_options or {})
        return opts

    def write(self, df: DataFrame, operation: str, commit_metadata: Mapping[str, str] | None = None,
              write_options: Mapping[str, Any] | None = None) -> CommitOutcome:
        """One Hudi commit through :func:`featurestore.hudi.write`."""
        if operation not in WRITE_OPERATIONS:
            raise OfflineStoreError(f"unknown write operation {operation!r}; use {', '.join(WRITE_OPERATIONS)}")
        try:
            result = hudi.write(df, self.location, self.hudi_options(operation, commit_metadata, write_options))
        except hudi.HudiError as exc:
            raise offline_error(exc) from exc
        return CommitOutcome(result.instant_time, result.operation, result.rows_inserted, result.rows_updated,
                             result.rows_deleted, result.files_written, tuple(result.partitions))

    def clean(self, commits_retained: int | None = None) -> int:
        """Hudi cleaning, keeping the newest ``commits_retained`` commits (default from the configuration)."""
        if not self.exists():
            return 0
        keep = commits_retained
        if keep is None:
            keep = self.ctx.config.get("hudi.cleaner_commits_retained")
        return hudi.clean(self.location, int(keep), float(self.ctx.config.get("hudi.lock_timeout_seconds")))

    def drop(self) -> None:
        """Remove the table folder."""
        shutil.rmtree(self.location, ignore_errors=True)

    def read(self, as_of: str | None = None, include_meta: bool = False) -> DataFrame:
        """Snapshot (or time-travel) read through :func:`featurestore.hudi.read`."""
        if not self.exists():
            return self.empty(include_meta)
        options = {"as.of.instant": as_of} if as_of is not None else {}
        try:
            df = hudi.read(self.ctx.spark, self.location, options)
        except hudi.HudiError as exc:
            raise offline_error(exc) from exc
        return self.conform(df if include_meta else self.drop_meta(df))

    def read_changes(self, start: str, end: str | None = None, include_meta: bool = False) -> DataFrame:
        """Incremental read of the commits in (start, end].

        ``start`` and ``end`` are commit ids (instant times) or times. On table version 9 Hudi's
        incremental window compares completion times, so a commit id becomes its commit's
        completion time (the commit ``start`` itself stays out of the window, ``end`` in it).
        """
        if not self.exists():
            return self.empty(include_meta)
        timeline = Timeline.load(self.location)
        if timeline.layout == 2:
            start = timeline.completion_time_of(start) or start
            end = (timeline.completion_time_of(end) or end) if end is not None else None
        options = {"hoodie.datasource.query.type": "incremental",
                   "hoodie.datasource.read.begin.instanttime": start}
        if end is not None:
            options["hoodie.datasource.read.end.instanttime"] = end
        try:
            df = hudi.read(self.ctx.spark, self.location, options)
        except hudi.HudiError as exc:
            raise offline_error(exc) from exc
        return self.conform(df if include_meta else self.drop_meta(df))
