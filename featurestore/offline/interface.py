"""The offline-storage interface: everything a feature group does to its table.

One :class:`OfflineTable` per feature group version. Implementations: the native Hudi engine
(:mod:`featurestore.offline.native_hudi`); Apache Hudi's Spark datasource and Delta Lake plug in
behind the same methods. Services and facades reach a table format only through this interface,
so the same scenario runs against every implementation (tests/test_offline_scenarios.py).

Commit ids are the format's own (a Hudi instant ``yyyyMMddHHmmssSSS``; a Delta version), always
as text; :meth:`OfflineTable.commit_id` turns a user's commit id or time into one.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from featurestore.model.records import CommitInfo, CommitOutcome, FeatureGroupRecord

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from featurestore.model.protocols import StoreContext

WRITE_OPERATIONS = ("upsert", "insert", "bulk_insert", "insert_overwrite", "insert_overwrite_table", "delete")


class OfflineTable(ABC):
    """The offline table of one feature group version.

    Reads with ``include_meta`` carry the format's meta columns: :attr:`commit_column` (the commit
    that wrote each row) and :attr:`row_id_columns` (what identifies a stored row across commits).
    """

    #: meta column naming the commit that wrote a row (reads with ``include_meta``)
    commit_column: str
    #: meta columns identifying a stored row across commits (reads with ``include_meta``)
    row_id_columns: tuple[str, ...]
    #: prefix of every meta column of the format
    meta_prefix: str

    def __init__(self, ctx: StoreContext, record: FeatureGroupRecord) -> None:
        self.ctx = ctx
        self.record = record

    @property
    def location(self) -> str:
        """Folder of the table."""
        return str(self.record.location)

    # -- state -------------------------------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """Whether the table has been created (the first write creates it)."""

    @abstractmethod
    def commits(self) -> list[CommitInfo]:
        """The completed data commits, oldest first, with their row counts and metadata."""

    @abstractmethod
    def commit_id(self, value: str | int | dt.datetime) -> str:
        """A commit id or a time (datetime, timestamp text, epoch) as this format's commit id text."""

    @abstractmethod
    def commit_time(self, commit_id: str) -> dt.datetime:
        """The UTC time of a commit id (naive)."""

    def commit_at_or_before(self, value: str | int | dt.datetime) -> str | None:
        """The newest data commit at or before a commit id or a time (what a read as of ``value`` sees);
        None when the table has no commit that early (or none at all)."""
        limit = self.commit_id(value)
        earlier = [c.commit_id for c in self.commits() if c.commit_id <= limit]
        return earlier[-1] if earlier else None

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def write(self, df: DataFrame, operation: str, commit_metadata: Mapping[str, str] | None = None,
              write_options: Mapping[str, Any] | None = None) -> CommitOutcome:
        """Write ``df`` as one commit. ``operation``: one of :data:`WRITE_OPERATIONS` (``delete`` takes
        the key columns only). Upserts are keyed by primary key (+ partition key) and ordered by the
        record's ordering key: an older event never replaces a newer one. ``commit_metadata`` is kept
        with the commit (:attr:`CommitInfo.metadata`); ``write_options`` are the format's own keys."""

    @abstractmethod
    def clean(self, commits_retained: int | None = None) -> int:
        """Remove files no longer needed by the newest ``commits_retained`` commits; files removed."""

    def optimize(self) -> int | None:
        """Compact small data files into larger ones (one commit that changes no data); the files compacted,
        or None when the format or engine has no such action (the default)."""
        return None

    @abstractmethod
    def drop(self) -> None:
        """Delete the table and its files."""

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def read(self, as_of: str | None = None, include_meta: bool = False) -> DataFrame:
        """The snapshot, or the state as of a commit id (already normalised by :meth:`commit_id`)."""

    @abstractmethod
    def read_changes(self, start: str, end: str | None = None, include_meta: bool = False) -> DataFrame:
        """Rows written by the commits after ``start`` up to ``end`` (inclusive)."""

    def conform(self, df: DataFrame) -> DataFrame:
        """``df`` with every feature of the record: a feature added by ``fg.append_features`` that no write
        has stored yet reads as null (the table's own schema learns it with the first write holding it)."""
        from pyspark.sql import functions as F

        present = set(df.columns)
        missing = [f for f in self.record.schema.fields if f.name not in present]
        if not missing:
            return df
        return df.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in missing])

    def drop_meta(self, df: DataFrame) -> DataFrame:
        """``df`` without the format's meta columns."""
        return df.drop(*[c for c in df.columns if c.startswith(self.meta_prefix)])

    def empty(self, include_meta: bool = False) -> DataFrame:
        """An empty frame of the feature group's schema (a table without any commit yet)."""
        from pyspark.sql import types as T

        spark = self.ctx.spark
        fields = list(self.record.schema.fields)
        if include_meta:
            meta = [self.commit_column, *self.row_id_columns]
            fields = [T.StructField(c, T.StringType(), True) for c in meta] + fields
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), T.StructType(fields))
