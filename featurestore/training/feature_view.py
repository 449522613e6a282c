"""Feature views: a named, versioned selection of features (a query over feature groups) plus the label
columns, from which training data is cut and serving vectors are read.

A view stores the query, not data: it always reads the feature groups as they are now (or as of the commit
the query pins with ``as_of``), and every training dataset cut from it records the commits it read, so the
dataset stays reproducible while the view moves on. Labels may be columns of the query or of the spine a
training dataset is joined to; they are left out of serving vectors.
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from featurestore.errors import FeatureStoreError
from featurestore.names import check_name
from featurestore.online.serving import normalize_target
from featurestore.query.planner import point_in_time, resolve_features
from featurestore.query.query import Query
from featurestore.training.dataset import TrainingDataset, get_training_dataset
from featurestore.training.dataset import create as create_dataset
from featurestore.training.feature_view_hsfs import HsfsFeatureViewCalls, _check_type, _frame_out
from featurestore.transformation import apply as transforms
from featurestore.transformation.functions import TransformationError, bind_all, from_definitions

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext
    from featurestore.transformation.functions import TransformationFunction


class FeatureViewError(FeatureStoreError, ValueError):
    """Bad input for a feature view: names the view, feature or label at fault."""


class FeatureView(HsfsFeatureViewCalls):
    """One version of a feature view (immutable: a changed query is a new version).

    hsfs's calls (``training_data``, ``train_test_split``, ``create_train_test_split``, ...) come from
    :class:`~featurestore.training.feature_view_hsfs.HsfsFeatureViewCalls`.
    """

    def __init__(self, fs: StoreContext, record: dict[str, Any]) -> None:
        self._fs = fs
        self._record = record
        self._targets: list[tuple[Any, list[str], dict[str, str]]] | None = None  # serving lookups, built once
        self._tfs: list[TransformationFunction] | None = None
        self._serving_version: int | None = None  # init_serving's training dataset version (None: the latest)
        self._batch_version: int | None = None  # init_batch_scoring's
        self._serving_stats: dict[str, Any] | None = None  # the serving statistics, read once

    # -- description -------------------------------------------------------------------------
    @property
    def id(self) -> int:
        """Registry id."""
        return self._record["id"]

    @property
    def name(self) -> str:
        """View name."""
        return self._record["name"]

    @property
    def version(self) -> int:
        """View version."""
        return self._record["version"]

    @property
    def description(self) -> str:
        """Free text."""
        return self._record["description"]

    @property
    def labels(self) -> list[str]:
        """Label columns (from the query or from a spine)."""
        return list(self._record["labels"])

    @property
    def query(self) -> Query:
        """The view's query, rebuilt against the registry (feature groups by name and version)."""
        return Query.from_dict(self._fs, self._record["query"])

    @property
    def features(self) -> list[str]:
        """Output feature names in order, labels excluded: the order of serving vectors."""
        return [f for f in self._record["features"] if f not in self.labels]

    @property
    def transformation_functions(self) -> list[TransformationFunction]:
        """The view's transformation functions, each bound to the feature(s) it reads."""
        if self._tfs is None:
            self._tfs = from_definitions(self._record.get("transformation_functions"))
        return list(self._tfs)

    # -- transformations ---------------------------------------------------------------------
    def _statistics(self, version: int | None) -> dict[str, Any]:
        """The fitted statistics of training dataset ``version`` (None: the latest of this view)."""
        tfs = self.transformation_functions
        if not any(tf.needs_statistics for tf in tfs):
            return {}
        record = self._fs.registry.find_training_dataset(self._fs.id, self.dataset_name, version)
        if record is None:
            fitted = ", ".join(f"{tf.name}({tf.features[0]!r})" for tf in tfs if tf.needs_statistics)
            which = f"version {version}" if version is not None else "yet"
            raise TransformationError(f"feature view '{self.name}' v{self.version} has no training dataset {which}: "
                                      f"its transformation functions {fitted} are fitted on one; create it "
                                      "first (fv.create_training_data() or a split)")
        return dict(record["options"].get("transformation_statistics") or {})

    def _fit_apply(self, df: DataFrame) -> DataFrame:
        """``df`` transformed with statistics fitted on ``df`` itself (training rows in memory)."""
        tfs = self.transformation_functions
        return transforms.apply_frame(df, tfs, transforms.fit(df, tfs)) if tfs else df

    def _apply(self, df: DataFrame, version: int | None) -> DataFrame:
        """``df`` transformed with the statistics of training dataset ``version`` (None: the latest)."""
        tfs = self.transformation_functions
        return transforms.apply_frame(df, tfs, self._statistics(version)) if tfs else df

    def __repr__(self) -> str:
        return f"FeatureView({self.name!r}, version={self.version}, features={self.features}, labels={self.labels})"

    # -- offline -----------------------------------------------------------------------------
    def get_batch_data(self, start_time: Any = None, end_time: Any = None, ttl: dt.timedelta | None = None,
                       dataframe_type: str = "default", transformed: bool = True, **_read_options: Any) -> Any:
        """The query's rows as of now (labels included when the query holds them); joins of event-timed
        feature groups are point-in-time on the left feature group's event time (``ttl`` as in
        ``Query.read``). ``start_time``/``end_time`` keep the left rows with event time in [start, end).
        The transformation functions are applied (unless ``transformed=False``) with the statistics of
        the training dataset of :meth:`init_batch_scoring` (default: the latest)."""
        _check_type(dataframe_type)
        df = self._time_query(start_time, end_time).read(ttl=ttl)
        return _frame_out(self._apply(df, self._batch_version) if transformed else df, dataframe_type)

    def init_batch_scoring(self, training_dataset_version: int | None = None) -> None:
        """Use the statistics of this training dataset version for :meth:`get_batch_data` (hsfs's call)."""
        if training_dataset_version is not None:
            self.get_training_dataset(training_dataset_version)
        self._batch_version = training_dataset_version

    def get_training_data(self, spine: DataFrame | int | None = None, spine_event_time: str = "ts",
                          ttl: dt.timedelta | None = None, as_known_at_spine_time: bool = False,
                          training_dataset_version: int | None = None, dataframe_type: str = "default",
                          **_read_options: Any) -> Any:
        """Training rows without writing them: the query's rows (its joins point-in-time), or with
        ``spine`` its point-in-time join (see ``FeatureStore.get_training_data``).

        hsfs's form, ``get_training_data(training_dataset_version)`` (a version number), reads that
        materialized training dataset instead and returns ``(X, y)`` as hsfs does."""
        if training_dataset_version is not None or (isinstance(spine, int) and not isinstance(spine, bool)):
            version = training_dataset_version if training_dataset_version is not None else spine
            _check_type(dataframe_type)
            return self._x_y(self._apply(self.get_training_dataset(version).read(), version), dataframe_type)
        if spine is None:
            return self._fit_apply(self.query.read(ttl=ttl))
        return self._fit_apply(point_in_time(self._fs, spine, [self.query], spine_event_time, ttl,
                                             as_known_at_spine_time)[0])

    def create_training_dataset(self, spine: DataFrame | Query | None = None, spine_event_time: str | None = None,
                                data_format: str = "parquet", splits: dict[str, Any] | None = None,
                                seed: int | None = None, description: str = "", ttl: dt.timedelta | None = None,
                                as_known_at_spine_time: bool = False, version: int | None = None,
                                ) -> TrainingDataset:
        """Materialize a training dataset of this view, named ``<view>_v<version>`` and numbered per view
        (see ``FeatureStore.create_training_dataset`` for the options); the dataset records the view and the
        fitted statistics of its transformation functions."""
        self._serving_stats = None  # a new latest dataset: serving rereads its statistics
        return create_dataset(self._fs, self.dataset_name, version, query=self.query, spine=spine,
                      spine_event_time=spine_event_time, label=self.labels, data_format=data_format, splits=splits,
                      seed=seed, description=description, ttl=ttl, as_known_at_spine_time=as_known_at_spine_time,
                      feature_view={"name": self.name, "version": self.version},
                      transformation_functions=self.transformation_functions)

    @property
    def dataset_name(self) -> str:
        """The name of the training datasets cut from this view."""
        return f"{self.name}_v{self.version}"

    def get_training_datasets(self) -> list[TrainingDataset]:
        """The training datasets cut from this view, by version."""
        return [TrainingDataset(self._fs, r)
                for r in self._fs.registry.list_training_datasets(self._fs.id, self.dataset_name)]

    def get_training_dataset(self, version: int | None = None) -> TrainingDataset:
        """One training dataset of this view (None = the latest)."""
        return get_training_dataset(self._fs, self.dataset_name, version)

    # -- online ------------------------------------------------------------------------------
    def init_serving(self, training_dataset_version: int | None = None, **_options: Any) -> None:
        """Prepare serving (hsfs's call): builds the view's online lookups once; the training dataset
        version is checked to exist (its features are the view's); the transformation functions use its
        statistics (default: the latest training dataset's)."""
        if training_dataset_version is not None:
            self.get_training_dataset(training_dataset_version)
        self._serving_version = training_dataset_version
        self._serving_stats = None
        self._serving_targets()

    def get_feature_vector(self, entry: dict[str, Any], as_dict: bool = False,
                           on_missing: str = "none", return_type: str = "list") -> Any:
        """The view's features for one key from the online store, in :attr:`features` order: a list (hsfs's
        ``return_type="list"``), a dict (``as_dict`` or ``return_type="dict"``), a one-row pandas
        DataFrame (``return_type="pandas"``) or a numpy array (``return_type="numpy"``)."""
        return self._vectors_as([entry], as_dict, on_missing, return_type, one=True)

    def get_feature_vectors(self, entry: list[dict[str, Any]], as_dict: bool = False,
                            on_missing: str = "none", return_type: str = "list") -> Any:
        """Feature vectors of many keys (hsfs's ``entry=[...]``): one batched lookup per feature group of
        the view; ``return_type`` as for :meth:`get_feature_vector`."""
        return self._vectors_as(entry, as_dict, on_missing, return_type, one=False)

    def serving_features(self) -> list[str]:
        """The names of a serving vector's values in order: :attr:`features` after the transformation
        functions (a one-hot encoded feature becomes one name per category)."""
        return transforms.output_columns(self.features, self.transformation_functions, self._serving_statistics())

    def _serving_statistics(self) -> dict[str, Any]:
        if self._serving_stats is None:
            self._serving_stats = self._statistics(self._serving_version)
        return self._serving_stats

    def _vectors_as(self, entries: list[dict[str, Any]], as_dict: bool, on_missing: str, return_type: str,
                    one: bool) -> Any:
        if return_type not in ("list", "dict", "pandas", "numpy"):
            raise FeatureViewError(f"unknown return_type {return_type!r}; use list, dict, pandas or numpy")
        dicts = self._vectors(entries, True, on_missing)
        names = self.serving_features()
        if return_type == "pandas":
            import pandas as pd

            return pd.DataFrame(dicts, columns=names)
        if return_type == "numpy":  # hsfs: a 1-d array for one vector, 2-d for several (object dtype keeps types)
            import numpy as np

            array = np.array([[v[f] for f in names] for v in dicts], dtype=object)
            return array[0] if one else array
        if as_dict or return_type == "dict":
            return dicts[0] if one else dicts
        lists = [[v[f] for f in names] for v in dicts]
        return lists[0] if one else lists

    def _serving_targets(self) -> list[Any]:
        if self._targets is None:  # rebuilding the query reads the registry: once per view object, not per call
            labels = set(self.labels)
            targets = [(p.feature_group, [src for src, out in p.features if out not in labels],
                        {src: out for src, out in p.features}) for p in self.query.parts()]
            self._targets = [t for t in targets if t[1]]
        return self._targets

    def _vectors(self, entries: list[dict[str, Any]], as_dict: bool,
                 on_missing: str) -> list[list[Any]] | list[dict[str, Any]]:
        """Feature vectors of many keys (one batched lookup per feature group of the view), transformed."""
        vectors = self._fs.online_server.vectors(normalize_target(self._serving_targets()), entries, on_missing)
        features = self.features
        missing = [f for f in features if vectors and f not in vectors[0]]
        if missing:
            raise FeatureViewError(f"the online store returned no value for feature(s) "
                                   f"{', '.join(map(repr, missing))} of feature view '{self.name}'")
        out = transforms.apply_vectors(vectors, features, self.transformation_functions,
                                       self._serving_statistics() if self.transformation_functions else None)
        if as_dict:
            return out
        return [list(v.values()) for v in out]

    def delete(self) -> None:
        """Remove the view from the registry (its training datasets stay: they are self-contained)."""
        self._fs.registry.delete_feature_view(self.id)


def create(fs: StoreContext, name: str, version: int | None = None, *, query: Query | None = None,
           features: list[str] | None = None, labels: list[str] | str | None = None,
           description: str = "", transformation_functions: Any = None) -> FeatureView:
    """Register a feature view version (see ``FeatureStore.create_feature_view``)."""
    check_name(name, "feature view")
    if (query is None) == (features is None):
        raise FeatureViewError(f"feature view '{name}': pass exactly one of query= or features=")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise FeatureViewError(f"feature view '{name}': version must be a positive integer, got {version!r}")
    if query is None:
        query = resolve_features(fs, list(features or []))
    if not isinstance(query, Query):
        raise FeatureViewError(f"feature view '{name}': query must be a Query (fg.select(...)), "
                               f"got {type(query).__name__}")
    label_list = [labels] if isinstance(labels, str) else list(labels or [])
    if any(not isinstance(x, str) for x in label_list) or len(set(label_list)) != len(label_list):
        raise FeatureViewError(f"feature view '{name}': labels must be distinct column names, got {label_list!r}")
    outputs = query.features
    if not [f for f in outputs if f not in label_list]:
        raise FeatureViewError(f"feature view '{name}': every column of the query is a label; select features")
    tfs = bind_all(transformation_functions, f"feature view '{name}'")
    transforms.check(tfs, outputs, f"feature view '{name}'")
    version = version or fs.registry.next_feature_view_version(fs.id, name)
    check_name(f"{name}_v{version}", f"feature view '{name}' v{version}: its training datasets' (<view>_v<version>)")
    record = {"feature_store_id": fs.id, "name": name, "version": version, "description": description,
              "query": query.to_dict(), "features": outputs, "labels": label_list, "created_by": getpass.getuser(),
              "transformation_functions": [tf.to_dict() for tf in tfs]}
    return FeatureView(fs, fs.registry.create_feature_view(record))
