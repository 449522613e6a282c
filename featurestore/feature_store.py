"""``featurestore.connect()`` and the :class:`FeatureStore`: the user's entry point."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from featurestore import sources
from featurestore.config import Config, load_config
from featurestore.errors import FeatureGroupError
from featurestore.feature_group import ExternalFeatureGroup, FeatureGroup
from featurestore.model.records import ENGINES, TABLE_FORMATS, Feature, FeatureGroupRecord, features_from_schema
from featurestore.names import check_name
from featurestore.offline import DEFAULT_ENGINES, IMPLEMENTATIONS
from featurestore.online import OnlineStore, Server
from featurestore.online import sync as online_sync
from featurestore.online.serving import normalize_target
from featurestore.quality import gate
from featurestore.quality.statistics import statistics_config as check_statistics_config
from featurestore.quality.suite import as_suite
from featurestore.query import Query, point_in_time, resolve_features
from featurestore.query.planner import as_queries
from featurestore.registry import Registry
from featurestore.training import FeatureView, FeatureViewError, TrainingDataset
from featurestore.training import create as create_training_dataset
from featurestore.training.dataset import get_training_dataset
from featurestore.training.feature_view import create as create_feature_view
from featurestore.transformation import TransformationFunction
from featurestore.transformation import catalog as transformation_catalog

JDBC_DRIVER = sources.JDBC_DRIVER


def connect(config: str | os.PathLike[str] | Config | None = None, name: str | None = None,
            spark: SparkSession | None = None) -> FeatureStore:
    """Connect to the feature store ``name`` (None = the configuration's ``store``, ``default`` unless set).

    ``config`` is a :class:`Config`, a YAML path, or None (the usual lookup, falling back to
    built-in defaults: warehouse ``./warehouse`` with SQLite registry and online store inside).
    Several named feature stores share one registry and warehouse, isolated from each other.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    return FeatureStore(cfg, name, spark)


class FeatureStore:
    """A named feature store (a project): its feature groups, connectors and SQL.

    It is the :class:`~featurestore.model.StoreContext` the services work with. ``close()`` (or a
    ``with`` block) disposes the registry's connections and the serving pool.
    """

    def __init__(self, config: Config, name: str | None = None, spark: SparkSession | None = None) -> None:
        name = config.get("store") if name is None else name
        self.name = check_name(name, "feature store")
        self.config = config
        self.registry = Registry(config.registry_url, config.get("registry.password"))
        self.id = self.registry.ensure_feature_store(name)
        self._spark = spark
        self._online_store: OnlineStore | None = None
        self._online_srv: Server | None = None

    def close(self) -> None:
        """Dispose the registry engine and the serving pool (the Spark session is left to its owner)."""
        if self._online_srv is not None:
            self._online_srv.close()
            self._online_srv = None
        self.registry.engine.dispose()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the StoreContext lookups services use -----------------------------------------------------
    def feature_group_record(self, name: str, version: int | None = None) -> FeatureGroupRecord:
        """A feature group version's record (None = the latest); an error naming it if absent."""
        row = self.registry.find_feature_group(self.id, name, version)
        if row is None:
            which = f"version {version}" if version is not None else "any version"
            raise FeatureGroupError(f"feature group '{name}' ({which}) not found in feature store '{self.name}'")
        return FeatureGroupRecord.from_row(row)

    def feature_group_records(self, name: str | None = None) -> list[FeatureGroupRecord]:
        """Every feature group version's record (of one name if given), by name then version."""
        return [FeatureGroupRecord.from_row(r) for r in self.registry.list_feature_groups(self.id, name)]

    def refresh(self, record: FeatureGroupRecord) -> FeatureGroupRecord:
        """The registry's current record of the same feature group version."""
        return FeatureGroupRecord.from_row(self.registry.feature_group_by_id(record.id))

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
    def _wrap(self, row: dict[str, Any] | FeatureGroupRecord) -> FeatureGroup | ExternalFeatureGroup:
        record = row if isinstance(row, FeatureGroupRecord) else FeatureGroupRecord.from_row(row)
        return (ExternalFeatureGroup if record.kind == "external" else FeatureGroup)(self, record)

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
        statistics_config: dict[str, Any] | bool | None = None,
        expectation_suite: Any = None,
        validation_policy: str = "STRICT",
        online_ttl: int | float | dt.timedelta | None = None,
        time_travel_format: str | None = None,
        engine: str | None = None,
    ) -> FeatureGroup:
        """Register a new feature group version (``version=None``: the next free one).

        ``features`` declares the schema up front (a StructType or Features); otherwise the first
        insert defines it. The Hudi table is created by the first insert. ``expectation_suite`` (a
        suite, Check(s) or a YAML/JSON path) validates every insert under ``validation_policy``
        (STRICT rejects a failing batch, ALWAYS writes it and records the report);
        ``statistics_config`` (``{"enabled", "histograms", "correlations", "exact_uniqueness",
        "columns"}``, or False) controls the statistics stored for every commit.
        ``time_travel_format`` (hsfs's name: ``HUDI`` or ``DELTA``; default ``offline.format`` of the
        configuration) and ``engine`` (``native`` for Hudi, ``delta`` for Delta Lake; default: the
        format's own) choose the offline table; a version never changes format.
        """
        check_name(name, "feature group")
        table_format, table_engine = self._offline_choice(name, time_travel_format, engine)
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
            feature_list = [Feature(f.name, f.type, f.description, f.name in pk, f.name in partitions, f.type_json)
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
        # Suite, policy and statistics config are checked before anything is registered.
        check_statistics_config(statistics_config)
        policy = gate.check_policy(validation_policy)
        made_suite = as_suite(expectation_suite)
        suite_data = made_suite.to_data() if made_suite is not None else None
        version = version or self.registry.next_version(self.id, name)
        record = self._register(name, version, {
            "kind": "cached", "description": description, "primary_key": pk, "event_time": event_time,
            "partition_key": partitions, "precombine_key": precombine_key, "online_enabled": online_enabled,
            "location": str(self.location / f"{name}_{version}"),
            "features": [f.to_dict() for f in feature_list],
            "options": {"statistics_config": ({"enabled": False} if statistics_config is False
                                              else dict(statistics_config or {})),
                        "feature_descriptions": dict(feature_descriptions or {}),
                        **self._online_ttl_option(online_ttl, event_time)},
            "connector_id": None,
        }, table_format, table_engine)
        fg = self._wrap(record)
        if suite_data is not None:
            self.registry.set_expectation_suite(fg.id, suite_data, policy, getpass.getuser())
        return fg

    def _offline_choice(self, name: str, table_format: str | None, engine: str | None) -> tuple[str, str]:
        """The (format, engine) of a new feature group, checked against what this build can open."""
        fmt = str(table_format or self.config.get("offline.format") or "HUDI").upper()
        eng = str(engine or DEFAULT_ENGINES.get(fmt, "native")).lower()
        if fmt not in TABLE_FORMATS:
            raise FeatureGroupError(f"feature group '{name}': time_travel_format must be one of "
                                    f"{', '.join(TABLE_FORMATS)}, got {table_format!r}")
        if eng not in ENGINES:
            raise FeatureGroupError(f"feature group '{name}': engine must be one of {', '.join(ENGINES)}, "
                                    f"got {engine!r}")
        if (fmt, eng) not in IMPLEMENTATIONS:
            known = ", ".join(f"{f}/{e}" for f, e in IMPLEMENTATIONS)
            raise FeatureGroupError(f"feature group '{name}': no offline engine for {fmt} with engine {eng!r} in "
                                    f"this build (available: {known})")
        return fmt, eng

    def _register(self, name: str, version: int, fields: dict[str, Any], table_format: str = "HUDI",
                  engine: str = "native") -> dict[str, Any]:
        """Insert a feature group version record, stamped with this store and the current user."""
        user = getpass.getuser()
        return self.registry.create_feature_group({"feature_store_id": self.id, "name": name, "version": version,
                                                   **fields, "created_by": user, "updated_by": user},
                                                  table_format=table_format, engine=engine)

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """A feature group version (None = the latest)."""
        return self._wrap(self.feature_group_record(name, version))

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
        return sources.read_jdbc(self, connector_id, query)

    # -- online store --------------------------------------------------------------------------
    @staticmethod
    def _online_ttl_option(ttl: int | float | dt.timedelta | None, event_time: str | None) -> dict[str, Any]:
        """``{"online_ttl_seconds": n}`` for a TTL (seconds or timedelta), checked."""
        if ttl is None:
            return {}
        seconds = ttl.total_seconds() if isinstance(ttl, dt.timedelta) else ttl
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise FeatureGroupError(f"online_ttl must be a positive number of seconds or a timedelta, got {ttl!r}")
        if not event_time:
            raise FeatureGroupError("online_ttl needs an event_time column to age rows by")
        return {"online_ttl_seconds": int(seconds)}


    @property
    def online_store(self) -> OnlineStore:
        """The :class:`~featurestore.online.OnlineStore` of this feature store (``online.*`` settings)."""
        if self._online_store is None:
            self._online_store = OnlineStore(self.config.online_url, self.config.get("online.password"), self.name,
                                             self.config.get("online.batch_size"),
                                             self.config.get("online.max_connections"),
                                             self.config.get("online.driver"))
        return self._online_store

    @property
    def online_server(self) -> Server:
        """The serving pool of this feature store (``online.pool_size`` connections), made on first use."""
        if self._online_srv is None:
            self._online_srv = Server(self.online_store, self.config.get("online.pool_size"))
        return self._online_srv

    def materialize(self, fg: FeatureGroup, mode: str = "incremental") -> dict[str, Any]:
        """Sync the online table of ``fg`` from its offline commits (``incremental`` or ``full``).

        Returns ``{"mode", "begin", "end", "rows", "deleted", "expired", ...}``; the last
        materialized commit is recorded only after every online write succeeded.
        """
        return online_sync.materialize(self, self.refresh(fg.record), mode)

    def get_feature_vector(self, target: Any, entry: dict[str, Any], features: list[str] | None = None,
                           on_missing: str = "none") -> dict[str, Any]:
        """The latest feature values of one primary key: ``{feature: value}``.

        ``target``: a feature group, or a list of feature groups (or ``(feature group, features)``
        pairs) joined by key. A missing key gives None values (``on_missing="raise"``: KeyError).
        """
        return self.get_feature_vectors(target, [entry], features, on_missing)[0]

    def get_feature_vectors(self, target: Any, entries: list[dict[str, Any]], features: list[str] | None = None,
                            on_missing: str = "none") -> list[dict[str, Any]]:
        """Feature vectors of many keys: one batched lookup per feature group."""
        return self.online_server.vectors(normalize_target(target, features), entries, on_missing)


    # -- queries and training data ---------------------------------------------------------------
    def get_features(self, features: list[str]) -> Query:
        """A :class:`~featurestore.query.Query` of features by name (``"f"`` or ``"fg_name.f"``): each is found
        in the latest version of the feature group holding it (ambiguity is an error listing the
        candidates) and the feature groups are joined on the primary-key columns they share."""
        return resolve_features(self, features)

    def get_training_data(self, spine: DataFrame, features_or_query: Any, spine_event_time: str = "ts",
                          ttl: Any = None, as_known_at_spine_time: bool = False) -> DataFrame:
        """Point-in-time correct features for every spine row (keys + time + labels).

        ``features_or_query``: a Query, a list of Queries or feature names (feature groups need not share
        keys: each joins the spine on its own). For each feature group, the latest row
        whose event time is <= the spine time (and newer than ``ttl``, a ``datetime.timedelta``) joins on
        the feature group's primary key minus its event time; no match gives nulls. With
        ``as_known_at_spine_time`` a row version also needs its commit time <= the spine time.
        """
        queries = as_queries(self, features_or_query)
        return point_in_time(self, spine, queries, spine_event_time, ttl, as_known_at_spine_time)[0]

    def create_training_dataset(self, name: str, version: int | None = None, query: Any = None,
                                features: list[str] | None = None, spine: Any = None,
                                spine_event_time: str | None = None, label: list[str] | str | None = None,
                                data_format: str = "parquet", splits: dict[str, Any] | None = None,
                                seed: int | None = None, description: str = "", ttl: Any = None,
                                as_known_at_spine_time: bool = False) -> TrainingDataset:
        """Materialize a training dataset version under ``<warehouse>/<store>/training_datasets/<name>_<version>``.

        Rows: ``query`` (or ``features`` by name) read as of the current commits, or point-in-time joined to
        ``spine`` (a DataFrame, stored with the dataset, or a Query) on ``spine_event_time`` (default: the
        spine query's event time, else ``ts``). ``splits``: ``{"train": 0.8, "test": 0.2}`` (seeded hash of
        the row) or ``{"train": {"end": t}, "test": {"start": t}}`` (time ranges). The registry records the
        commit read from every feature group, the feature order, the spine and the splits.
        """
        return create_training_dataset(self, name, version, query=query, features=features, spine=spine,
                      spine_event_time=spine_event_time, label=label, data_format=data_format, splits=splits,
                      seed=seed, description=description, ttl=ttl, as_known_at_spine_time=as_known_at_spine_time)

    def get_training_dataset(self, name: str, version: int | None = None) -> TrainingDataset:
        """A training dataset version (None = the latest)."""
        return get_training_dataset(self, name, version)

    def get_training_datasets(self, name: str | None = None) -> list[TrainingDataset]:
        """Every training dataset version (of one name if given)."""
        return [TrainingDataset(self, r) for r in self.registry.list_training_datasets(self.id, name)]

    def create_feature_view(self, name: str, version: int | None = None, query: Any = None,
                            features: list[str] | None = None, labels: list[str] | str | None = None,
                            description: str = "", transformation_functions: Any = None) -> FeatureView:
        """Register a feature view: a named, versioned ``query`` (or ``features`` by name, as
        :meth:`get_features`) plus ``labels`` (columns of the query or of the spines joined to it), from which
        training datasets are cut (``fv.create_training_dataset(spine=...)``) and serving vectors read
        (``fv.get_feature_vector(entry)``, labels left out).

        ``transformation_functions``: hsfs's list of functions bound to features
        (``[min_max_scaler("amount"), label_encoder("category")]``) or its older dict
        ``{"amount": min_max_scaler}``; fitted on each training dataset and applied to training data,
        batch data and serving vectors."""
        return create_feature_view(self, name, version, query=query, features=features, labels=labels,
                                   description=description, transformation_functions=transformation_functions)

    # -- transformation functions ----------------------------------------------------------------
    def create_transformation_function(self, transformation_function: Any,
                                       version: int | None = None) -> TransformationFunction:
        """An unsaved transformation function of this store (hsfs's call): a ``@udf`` function at
        ``version`` (None: the next free one); ``.save()`` registers it."""
        return transformation_catalog.prepare(self, transformation_function, version)

    def get_transformation_function(self, name: str, version: int | None = None) -> TransformationFunction:
        """A registered transformation function version (None = the latest), or a built-in by name."""
        return transformation_catalog.get(self, name, version)

    def get_transformation_functions(self) -> list[TransformationFunction]:
        """The built-ins and every registered transformation function version."""
        return transformation_catalog.list_all(self)

    def get_or_create_feature_view(self, name: str, version: int | None = None, query: Any = None,
                                   labels: list[str] | str | None = None, description: str = "",
                                   transformation_functions: Any = None) -> FeatureView:
        """hsfs's call: the feature view ``name`` version ``version`` if it exists (None: the latest), else
        :meth:`create_feature_view` with these arguments (version 1 when None). An existing view is returned
        as it is: its query and labels are not compared with the ones given."""
        record = self.registry.find_feature_view(self.id, name, version)
        if record is not None:
            return FeatureView(self, record)
        extra = {} if transformation_functions is None else {"transformation_functions": transformation_functions}
        return self.create_feature_view(name, version=version or 1, query=query, labels=labels,
                                        description=description, **extra)

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """A feature view version (None = the latest)."""
        record = self.registry.find_feature_view(self.id, name, version)
        if record is None:
            which = f"version {version}" if version is not None else "any version"
            raise FeatureViewError(f"feature view '{name}' ({which}) not found in feature store '{self.name}'")
        return FeatureView(self, record)

    def get_feature_views(self, name: str | None = None) -> list[FeatureView]:
        """Every feature view version (of one name if given)."""
        return [FeatureView(self, r) for r in self.registry.list_feature_views(self.id, name)]
