"""Training datasets: immutable, reproducible files cut from a query (optionally point-in-time joined
to a spine), recorded in the registry with the Hudi commit read from every feature group."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore import provenance
from featurestore.errors import FeatureStoreError
from featurestore.names import check_name
from featurestore.online.serving import normalize_target
from featurestore.query.planner import as_queries, point_in_time, resolve_commit, resolve_features
from featurestore.query.query import Query, QueryError
from featurestore.training import formats
from featurestore.training import splits as split_rules
from featurestore.transformation.apply import fit as fit_transformations
from featurestore.transformation.functions import from_definitions

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext
    from featurestore.transformation.functions import TransformationFunction

SPLIT_COL = "__td_split"


class TrainingDatasetError(FeatureStoreError, ValueError):
    """Bad input for a training dataset: names the dataset, column, split or option at fault."""


class TrainingDataset:
    """One version of a training dataset; its files never change once written."""

    def __init__(self, fs: StoreContext, record: dict[str, Any]) -> None:
        self._fs = fs
        self._record = record

    @property
    def id(self) -> int:
        """Registry id."""
        return self._record["id"]

    @property
    def name(self) -> str:
        """Training dataset name."""
        return self._record["name"]

    @property
    def version(self) -> int:
        """Version number."""
        return self._record["version"]

    @property
    def description(self) -> str:
        """Free-text description."""
        return self._record["description"]

    @property
    def data_format(self) -> str:
        """File format of the data."""
        return self._record["data_format"]

    @property
    def location(self) -> str:
        """Folder of the data: one sub-folder per split, or ``data/``."""
        return self._record["location"]

    @property
    def features(self) -> list[str]:
        """Feature names in the dataset's order (labels and spine columns excluded)."""
        return list(self._record["features"])

    @property
    def labels(self) -> list[str]:
        """Label columns (the same name as ``FeatureView.labels``)."""
        return list(self._record["label"])

    @property
    def label(self) -> list[str]:
        """Label columns: an alias of :attr:`labels`, kept for code written against earlier releases."""
        return self.labels

    @property
    def schema(self) -> T.StructType:
        """Spark schema of the rows."""
        return T.StructType.fromJson(self._record["columns"])

    @property
    def commits(self) -> dict[str, str | None]:
        """The Hudi commit read from each feature group (``<name>_<version>`` -> commit id)."""
        return dict(self._record["commits"])

    @property
    def splits(self) -> dict[str, Any] | None:
        """The split definition (with its seed), or None."""
        return self._record["splits"]

    @property
    def split_names(self) -> list[str]:
        """Names of the splits, in definition order (empty without splits)."""
        s = self.splits
        if not s:
            return []
        return list(s["fractions"] if s["type"] == "random" else s["ranges"])

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows per split (``{"all": n}`` without splits)."""
        return dict(self._record["row_counts"])

    @property
    def queries(self) -> list[Query]:
        """The queries the dataset was cut from (one, or one per feature group joined to a spine), pinned to
        the commits they read."""
        return [Query.from_dict(self._fs, d) for d in self._record["query"]]

    @property
    def feature_view(self) -> dict[str, Any] | None:
        """``{"name", "version"}`` of the feature view the dataset was cut from, or None."""
        return self._record["options"].get("feature_view")

    @property
    def transformation_statistics(self) -> dict[str, Any]:
        """The fitted statistics of the feature view's transformation functions (``{}`` without any)."""
        return dict(self._record["options"].get("transformation_statistics") or {})

    @property
    def spine(self) -> dict[str, Any] | None:
        """The spine definition (``kind`` stored or query, ``event_time``), or None."""
        return self._record["spine"]

    def __repr__(self) -> str:
        return f"TrainingDataset({self.name!r}, version={self.version}, format={self.data_format!r})"

    def read(self, split: str | None = None) -> DataFrame:
        """The rows (of one split, or all of them)."""
        names = self.split_names
        if split is not None and split not in names:
            raise TrainingDatasetError(f"training dataset '{self.name}' v{self.version} has no split {split!r} "
                                       f"(splits: {', '.join(names) or 'none'})")
        folders = [split] if split else (names or ["data"])
        frames = [formats.read(self._fs.spark, os.path.join(self.location, f), self.data_format, self.schema)
                  for f in folders]
        out = frames[0]
        for f in frames[1:]:
            out = out.unionByName(f)
        return out

    def recreate(self, version: int | None = None, description: str | None = None) -> TrainingDataset:
        """A new version with exactly the same rows: same spine, splits and seed, every feature group read as
        of the commit recorded here (an error if the cleaner has removed those file versions)."""
        spine: Query | DataFrame | None = None
        info = self.spine
        if info is not None:
            if info["kind"] == "stored":
                spine = self._fs.spark.read.parquet(_spine_files(os.path.join(self.location, "_spine")))
            else:
                spine = Query.from_dict(self._fs, info["query"])
        split_def = self.splits
        options = self._record["options"]
        split_arg, seed = None, None
        if split_def and split_def["type"] == "random":
            split_arg, seed = split_def["fractions"], split_def["seed"]
        elif split_def:
            split_arg = {n: {"start": s, "end": e} for n, (s, e) in split_def["ranges"].items()}
        ttl = dt.timedelta(microseconds=options["ttl_us"]) if options.get("ttl_us") is not None else None
        return create(self._fs, self.name, version, query=self.queries, spine=spine,
                      spine_event_time=info["event_time"] if info else None, label=self.labels,
                      data_format=self.data_format, splits=split_arg, seed=seed,
                      description=self.description if description is None else description, ttl=ttl,
                      as_known_at_spine_time=bool(options.get("as_known_at_spine_time")),
                      recreated_from=self.version, feature_view=options.get("feature_view"),
                      transformation_functions=self._view_transformations())

    def _view_transformations(self) -> list[TransformationFunction]:
        """The transformation functions of the feature view this dataset was cut from (refitted on recreate)."""
        view = self.feature_view
        record = self._fs.registry.find_feature_view(self._fs.id, view["name"], view["version"]) if view else None
        return from_definitions(record.get("transformation_functions")) if record else []

    def get_serving_vector(self, entry: dict[str, Any]) -> list[Any]:
        """The dataset's features for one key (``{"user_id": 7}``) from the online store, in feature order."""
        parts = [p for d in self._record["query"] for p in Query.from_dict(self._fs, _unpinned(d)).parts()]
        targets = [(p.feature_group, [src for src, _ in p.features], dict(p.features)) for p in parts if p.features]
        vector = self._fs.online_server.vectors(normalize_target(targets), [entry], "none")[0]
        missing = [f for f in self.features if f not in vector]
        if missing:
            raise TrainingDatasetError(f"the online store returned no value for feature(s) "
                                       f"{', '.join(map(repr, missing))} of training dataset '{self.name}'")
        return [vector[f] for f in self.features]

    def get_provenance(self) -> dict[str, Any] | None:
        """What created this dataset: script/notebook (with content), git commit, user, host, packages."""
        return provenance.load(self._fs.registry, "training_dataset", entity_id=self.id)

    def delete(self) -> None:
        """Remove the files and the registry record."""
        shutil.rmtree(self.location, ignore_errors=True)
        self._fs.registry.delete_training_dataset(self.id)


def _unpinned(query: dict[str, Any]) -> dict[str, Any]:
    return {**query, "as_of": None, "joins": [{**j, "query": _unpinned(j["query"])} for j in query["joins"]]}


def _pin(ctx: StoreContext, queries: list[Query]) -> tuple[list[Query], dict[str, str | None]]:
    commits = {p.feature_group.table_name: resolve_commit(ctx, p.feature_group, p.as_of)
               for qry in queries for p in qry.parts()}
    known = {k: v for k, v in commits.items() if v}
    return [qry.with_commits(known) for qry in queries], commits


def create(fs: StoreContext, name: str, version: int | None = None, *, query: Query | list[Query] | None = None,
           features: list[str] | None = None, spine: DataFrame | Query | None = None,
           spine_event_time: str | None = None, label: list[str] | str | None = None, data_format: str = "parquet",
           splits: dict[str, Any] | None = None, seed: int | None = None, description: str = "",
           ttl: dt.timedelta | None = None, as_known_at_spine_time: bool = False,
           recreated_from: int | None = None, feature_view: dict[str, Any] | None = None,
           transformation_functions: list[TransformationFunction] | None = None) -> TrainingDataset:
    """Materialize a training dataset version (see ``FeatureStore.create_training_dataset``).

    ``transformation_functions`` (a feature view's) are fitted on the written rows (the ``train`` split
    when there are splits) and their statistics stored with the dataset; the files hold the rows
    untransformed."""
    check_name(name, "training dataset")
    prov = provenance.capture()
    if (query is None) == (features is None):
        raise TrainingDatasetError(f"training dataset '{name}': pass exactly one of query= or features=")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise TrainingDatasetError(f"training dataset '{name}': version must be a positive integer, got {version!r}")
    if data_format not in formats.FORMATS:
        raise formats.FormatError(f"unknown data_format {data_format!r}; use one of {', '.join(formats.FORMATS)}")
    if spine is not None:
        queries = as_queries(fs, query if query is not None else features)
    elif features is not None:
        queries = [resolve_features(fs, features)]
    else:
        queries = as_queries(fs, query)
        if len(queries) != 1:
            raise TrainingDatasetError(f"training dataset '{name}': without a spine pass one query (join the "
                                       "feature groups with Query.join)")
    labels = [label] if isinstance(label, str) else list(label or [])
    version = version or fs.registry.next_training_dataset_version(fs.id, name)
    if fs.registry.find_training_dataset(fs.id, name, version) is not None:
        raise TrainingDatasetError(f"training dataset '{name}' version {version} already exists (datasets are "
                                   "immutable: create a new version)")
    location = str(fs.location / "training_datasets" / f"{name}_{version}")
    if os.path.exists(location):
        raise TrainingDatasetError(f"training dataset '{name}' version {version}: {location} already exists")
    pinned, commits = _pin(fs, queries)
    staging = f"{location}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(staging)
    persisted = None
    try:
        spine_info, spine_df = _prepare_spine(fs, spine, spine_event_time, staging, commits)
        if spine_df is None:
            data = pinned[0].read(ttl=ttl)
            time_column = pinned[0].feature_group.event_time
            if time_column not in data.columns:
                time_column = None
            feature_names = list(data.columns)
        else:
            data, _ = point_in_time(fs, spine_df, pinned, spine_info["event_time"], ttl, as_known_at_spine_time)
            time_column = spine_info["event_time"]
            feature_names = [c for c in data.columns if c not in spine_df.columns]
        missing = [c for c in labels if c not in data.columns]
        if missing:
            raise TrainingDatasetError(f"label column(s) {', '.join(map(repr, missing))} not in training dataset "
                                       f"'{name}' (columns: {', '.join(data.columns)})")
        formats.check_format(data_format, data.schema)
        split_def = splits_def(splits, seed, time_column)
        row_counts: dict[str, int] = {}
        if split_def is None:
            formats.write(data, os.path.join(staging, "data"), data_format)
            row_counts["all"] = formats.read(fs.spark, os.path.join(staging, "data"), data_format,
                                             data.schema).count()
        else:
            persisted = data.withColumn(SPLIT_COL, split_rules.split_column(data, split_def)).persist(
                StorageLevel.MEMORY_AND_DISK)
            counts = {r[0]: r[1] for r in persisted.groupBy(SPLIT_COL).count().collect()}
            for split_name in (split_def["fractions"] if split_def["type"] == "random" else split_def["ranges"]):
                part = persisted.where(F.col(SPLIT_COL) == split_name).drop(SPLIT_COL)
                formats.write(part, os.path.join(staging, split_name), data_format)
                row_counts[split_name] = int(counts.get(split_name, 0))
        fitted = _fit(fs, staging, data_format, data.schema, split_def, transformation_functions or [])
        os.rename(staging, location)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if persisted is not None:
            persisted.unpersist()
    record = {
        "feature_store_id": fs.id, "name": name, "version": version, "description": description,
        "data_format": data_format, "location": location, "query": [qry.to_dict() for qry in pinned],
        "features": [c for c in feature_names if c not in labels], "label": labels,
        "columns": data.schema.jsonValue(), "commits": commits, "spine": spine_info, "splits": split_def,
        "row_counts": row_counts, "created_by": getpass.getuser(),
        "options": {"ttl_us": ttl // dt.timedelta(microseconds=1) if ttl is not None else None,
                    "as_known_at_spine_time": bool(as_known_at_spine_time), "recreated_from": recreated_from,
                    "feature_view": feature_view, "transformation_statistics": fitted},
    }
    try:
        td = TrainingDataset(fs, fs.registry.create_training_dataset(record))
    except BaseException:
        shutil.rmtree(location, ignore_errors=True)
        raise
    try:
        provenance.record(fs.registry, prov, "training_dataset", entity_id=td.id)
    except Exception as exc:  # noqa: BLE001 - the dataset stands; provenance is best effort after it
        log.warning("provenance of training dataset %s v%s was not stored: %s", name, td.version, exc)
    return td


def _fit(fs: StoreContext, staging: str, data_format: str, schema: T.StructType, split_def: dict[str, Any] | None,
         tfs: list[TransformationFunction]) -> dict[str, Any]:
    """The statistics of the functions, from the rows as written (what every later read sees): the
    ``train`` split if there is one, else the first split, else all rows."""
    if not any(tf.needs_statistics for tf in tfs):
        return {}
    names = list((split_def["fractions"] if split_def["type"] == "random" else split_def["ranges"])
                 if split_def else [])
    folder = ("train" if "train" in names else names[0]) if names else "data"
    return fit_transformations(formats.read(fs.spark, os.path.join(staging, folder), data_format, schema), tfs)


def splits_def(value: dict[str, Any] | None, seed: int | None, time_column: str | None) -> dict[str, Any] | None:
    """Checked split definition (see :func:`featurestore.training.splits.normalize`)."""
    return split_rules.normalize(value, seed, time_column)


def _prepare_spine(fs: StoreContext, spine: DataFrame | Query | None, event_time: str | None, staging: str,
                   commits: dict[str, str | None]) -> tuple[dict[str, Any] | None, DataFrame | None]:
    """Freeze the spine: a DataFrame is copied next to the data; a query is pinned to its commits."""
    if spine is None:
        if event_time is not None:
            raise TrainingDatasetError("spine_event_time given without a spine")
        return None, None
    if isinstance(spine, Query):
        (pinned,), spine_commits = _pin(fs, [spine])
        for key, commit in spine_commits.items():
            commits.setdefault(key, commit)
        event_time = event_time or spine.feature_group.event_time
        if not event_time:
            raise QueryError(f"spine query on '{spine.feature_group.name}' has no event_time: pass spine_event_time")
        return {"kind": "query", "query": pinned.to_dict(), "event_time": event_time}, pinned.read()
    if not isinstance(spine, DataFrame):
        raise TrainingDatasetError(f"spine must be a Spark DataFrame or a Query, got {type(spine).__name__}")
    event_time = event_time or "ts"
    if event_time not in spine.columns:
        raise TrainingDatasetError(f"spine event time column '{event_time}' is not in the spine "
                                   f"(columns: {', '.join(spine.columns)}); pass spine_event_time=")
    path = os.path.join(staging, "_spine")
    spine.write.parquet(path)
    # read back what was stored: the dataset is built from exactly the rows recreate() will use
    return {"kind": "stored", "event_time": event_time, "columns": spine.columns}, fs.spark.read.parquet(
        _spine_files(path))


def _spine_files(folder: str) -> str:
    """The stored spine's files. The folder is named ``_spine`` so that reads of the dataset skip it;
    Spark would also skip it when given as the path itself (``All paths were ignored``), so its files
    are named by a glob."""
    return os.path.join(folder, "*.parquet")


def get_training_dataset(ctx: StoreContext, name: str, version: int | None = None) -> TrainingDataset:
    """A training dataset version (None = the latest); an error naming it if absent."""
    record = ctx.registry.find_training_dataset(ctx.id, name, version)
    if record is None:
        which = f"version {version}" if version is not None else "any version"
        raise TrainingDatasetError(f"training dataset '{name}' ({which}) not found in feature store '{ctx.name}'")
    return TrainingDataset(ctx, record)
