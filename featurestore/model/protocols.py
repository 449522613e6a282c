"""What services need from the feature store, as a protocol (the facade implements it).

Services (online, quality, query, training, streaming, ingestion) take a :class:`StoreContext`
and :class:`~featurestore.model.records.FeatureGroupRecord` values; they never import the
facades, so an insert goes down the layers and never climbs back up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from featurestore.config import Config
from featurestore.model.records import FeatureGroupRecord

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class StoreContext(Protocol):
    """A named feature store as services see it: its registry, configuration, Spark session, online
    store, and lookups of its feature groups' records."""

    @property
    def name(self) -> str:
        """The feature store's name."""

    @property
    def id(self) -> int:
        """The feature store's registry id."""

    @property
    def config(self) -> Config:
        """The loaded configuration."""

    @property
    def registry(self) -> Any:
        """The :class:`~featurestore.registry.Registry` (typed loosely: the registry sits above the model)."""

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (built on first use)."""

    @property
    def location(self) -> Path:
        """Folder of this feature store's tables."""

    @property
    def online_store(self) -> Any:
        """The :class:`~featurestore.online.OnlineStore` of this feature store."""

    @property
    def online_server(self) -> Any:
        """The serving pool (:class:`~featurestore.online.Server`) of this feature store."""

    def feature_group_record(self, name: str, version: int | None = None) -> FeatureGroupRecord:
        """A feature group version's record (None = the latest); an error naming it if absent."""

    def feature_group_records(self, name: str | None = None) -> list[FeatureGroupRecord]:
        """Every feature group version's record (of one name if given), by name then version."""

    def refresh(self, record: FeatureGroupRecord) -> FeatureGroupRecord:
        """The registry's current record of the same feature group version."""
