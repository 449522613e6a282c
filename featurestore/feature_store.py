"""``featurestore.connect()`` and the :class:`FeatureStore`: the user's entry point."""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from featurestore.config import Config, load_config
from featurestore.errors import FeatureStoreError
from featurestore.feature_group import (
    ExternalFeatureGroup,
    Feature,
    FeatureGroup,
    FeatureGroupError,
    features_from_schema,
)
from featurestore.names import check_name
from featurestore.registry import Registry

JDBC_DRIVER = "org.mariadb.jdbc.Driver"


def connect(config: str | os.PathLike[str] | Config | None = None, name: str = "default",
            spark: SparkSession | None = None) -> FeatureStore:
    """Connect to the feature store ``name``.

    ``config`` is a :class:`Config`, a YAML path, or None (the usual lookup, falling back to
    built-in defaults: warehouse ``./warehouse`` with SQLite registry and online store inside).
    Several named feature stores share one registry and warehouse, isolated from each other.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    return FeatureStore(cfg, name, spark)


class FeatureStore:
    """A named feature store (a project): its feature groups, connectors and SQL."""

    def __init__(self, config: Config, name: str = "default", spark: SparkSession | None = None) -> None:
        self.name = check_name(name, "feature store")
        self.config = config
        self.registry = Registry(config.registry_url, config.get("registry.password"))
        self.id = self.registry.ensure_feature_store(name)
        self._spark = spark

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (built from the configuration on first use)."""
        if self._spark is None:
            from featurestore.spark import get_session

            self._spark = get_session(config=self.config)
        return self._spark

    @property
    def location(self) -> Path:
        """Folder of this feature store's tables."""
        return self.config.warehouse / self.name

    def __repr__(self) -> str:
        return f"FeatureStore({self.name!r}, warehouse={str(self.config.warehouse)!r})"

    # -- feature groups ----------------------------------------------------------------------
    def _wrap(self, record: dict[str, Any]) -> FeatureGroup:
        return (ExternalFeatureGroup if record["kind"] == "external" else FeatureGroup)(self, record)

    def create_feature_group(
        self,
        name: str,
        version: int | None = None,
        description: str = "",
        primary_key: list[str] | str | None = None,
        event_time: str | None = None,
        partition_key: list[str] | str | None = None,
        precombine_key: str | None = None,
        online_enabled: bool = False,
        features: list[Feature] | T.StructType | None = None,
        feature_descriptions: dict[str, str] | None = None,
        statistics_config: dict[str, Any] | None = None,
    ) -> FeatureGroup:
        """Register a new feature group version (``version=None``: the next free one).

        ``features`` declares the schema up front (a StructType or Features); otherwise the first
        insert defines it. The Hudi table is created by the first insert.
        """
        check_name(name, "feature group")
        pk = [primary_key] if isinstance(primary_key, str) else list(primary_key or [])
        partitions = [partition_key] if isinstance(partition_key, str) else list(partition_key or [])
        if not pk:
            raise FeatureGroupError(f"feature group '{name}' needs a primary_key (one or more columns)")
        if version is not None and (not isinstance(version, int) or version < 1):
            raise FeatureGroupError(f"version must be a positive integer, got {version!r}")
        feature_list: list[Feature] = []
        if isinstance(features, T.StructType):
            feature_list = features_from_schema(features, pk, partitions, feature_descriptions)
        elif features:
            feature_list = [Feature(f.name, f.type, f.description, f.name in pk, f.name in partitions)
                            for f in features]
        if feature_list:
            names = {f.name for f in feature_list}
            for role, cols in (("primary key", pk), ("partition key", partitions),
                               ("event time", [event_time] if event_time else []),
                               ("precombine key", [precombine_key] if precombine_key else [])):
                missing = [c for c in cols if c not in names]
                if missing:
                    raise FeatureGroupError(f"{role} column(s) {', '.join(map(repr, missing))} are not features of "
                                            f"'{name}' (features: {', '.join(sorted(names))})")
        version = version or self.registry.next_version(self.id, name)
        record = self._register(name, version, {
            "kind": "cached", "description": description, "primary_key": pk, "event_time": event_time,
            "partition_key": partitions, "precombine_key": precombine_key, "online_enabled": online_enabled,
            "location": str(self.location / f"{name}_{version}"),
            "features": [f.to_dict() for f in feature_list],
            "options": {"statistics_config": statistics_config or {},
                        "feature_descriptions": dict(feature_descriptions or {})},
            "connector_id": None,
        })
        return self._wrap(record)

    def _register(self, name: str, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Insert a feature group version record, stamped with this store and the current user."""
        user = getpass.getuser()
        return self.registry.create_feature_group({"feature_store_id": self.id, "name": name, "version": version,
                                                   **fields, "created_by": user, "updated_by": user})

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """A feature group version (None = the latest)."""
        record = self.registry.find_feature_group(self.id, name, version)
        if record is None:
            which = f"version {version}" if version is not None else "any version"
            raise FeatureGroupError(f"feature group '{name}' ({which}) not found in feature store '{self.name}'")
        return self._wrap(record)

    def get_or_create_feature_group(self, name: str, version: int | None = None, **kwargs: Any) -> FeatureGroup:
        """The feature group if it exists (that version, or the latest), else create it."""
        record = self.registry.find_feature_group(self.id, name, version)
        if record is not None:
            return self._wrap(record)
        return self.create_feature_group(name, version=version or 1, **kwargs)

    def get_feature_groups(self, name: str | None = None) -> list[FeatureGroup]:
        """Every feature group version (of one name if given)."""
        return [self._wrap(r) for r in self.registry.list_feature_groups(self.id, name)]

    def search(self, text: str) -> list[dict[str, Any]]:
        """Feature groups whose name, description, feature names/descriptions or tags contain ``text``."""
        needle = text.lower()
        records = self.registry.list_feature_groups(self.id)
        tags = self.registry.all_tags("feature_group", [r["id"] for r in records])
        hits = []
        for r in records:
            matched = []
            if needle in r["name"].lower():
                matched.append("name")
            if needle in (r["description"] or "").lower():
                matched.append("description")
            for f in r["features"]:
                if needle in f["name"].lower() or needle in (f.get("description") or "").lower():
                    matched.append(f"feature:{f['name']}")
            for k, v in tags.get(r["id"], {}).items():
                if needle in k.lower() or needle in str(v).lower():
                    matched.append(f"tag:{k}")
            if matched:
                hits.append({"name": r["name"], "version": r["version"], "description": r["description"],
                             "matched": matched})
        return hits

    def sql(self, query: str) -> DataFrame:
        """Run Spark SQL where every feature group version is a view ``<name>_<version>``."""
        for r in self.registry.list_feature_groups(self.id):
            view = f"{r['name']}_{r['version']}"
            if re.search(rf"\b{view}\b", query):
                self._wrap(r).read().createOrReplaceTempView(view)
        return self.spark.sql(query)

    # -- external data -------------------------------------------------------------------------
    def create_jdbc_connector(self, name: str, url: str, user: str | None = None,
                              password_env: str | None = None, options: dict[str, str] | None = None) -> dict:
        """Register a JDBC source. The password is read from the environment variable
        ``password_env`` at read time; it is never stored."""
        check_name(name, "connector")
        if not url.startswith("jdbc:"):
            raise FeatureGroupError(f"connector '{name}': url must be a JDBC URL (jdbc:mysql://...), got {url!r}")
        return self.registry.create_connector({"feature_store_id": self.id, "name": name, "kind": "jdbc",
                                               "url": url, "user": user, "password_env": password_env,
                                               "options": options or {}})

    def create_external_feature_group(self, name: str, version: int | None, query: str, connector: str,
                                      primary_key: list[str] | str, event_time: str | None = None,
                                      description: str = "") -> ExternalFeatureGroup:
        """Register a feature group whose data is the result of ``query`` on a JDBC connector."""
        check_name(name, "feature group")
        conn = self.registry.connector(self.id, name=connector)
        pk = [primary_key] if isinstance(primary_key, str) else list(primary_key)
        schema = self.read_jdbc(conn["id"], query).schema
        missing = [c for c in pk + ([event_time] if event_time else []) if c not in schema.fieldNames()]
        if missing:
            raise FeatureGroupError(f"column(s) {', '.join(map(repr, missing))} not in the result of the query of "
                                    f"external feature group '{name}'")
        version = version or self.registry.next_version(self.id, name)
        record = self._register(name, version, {
            "kind": "external", "description": description, "primary_key": pk, "event_time": event_time,
            "partition_key": [], "precombine_key": None, "online_enabled": False, "location": None,
            "features": [f.to_dict() for f in features_from_schema(schema, pk, [])],
            "options": {"query": query}, "connector_id": conn["id"],
        })
        return ExternalFeatureGroup(self, record)

    def read_jdbc(self, connector_id: int, query: str) -> DataFrame:
        """Run ``query`` on a registered JDBC connector through Spark JDBC."""
        conn = self.registry.connector(self.id, connector_id=connector_id)
        reader = (self.spark.read.format("jdbc").option("url", conn["url"]).option("query", query)
                  .option("driver", JDBC_DRIVER))
        if conn["user"]:
            reader = reader.option("user", conn["user"])
        if conn["password_env"]:
            password = os.environ.get(conn["password_env"])
            if password is None:
                raise FeatureStoreError(f"connector '{conn['name']}': environment variable {conn['password_env']} "
                                        "is not set")
            reader = reader.option("password", password)
        for k, v in (conn["options"] or {}).items():
            reader = reader.option(k, v)
        return reader.load()

    # -- quality -------------------------------------------------------------------------------

    # -- online store --------------------------------------------------------------------------

    # -- queries and training data ---------------------------------------------------------------
