"""The hsfs names of a feature view's calls (``training_data``, ``train_test_split``, ``create_train_test_split``,
``get_train_test_split``, ``init_serving``, ...): same arguments and return shapes as hsfs, on top of the
feature view's own calls. Spark DataFrames by default, pandas with ``dataframe_type="pandas"``.

Training rows are the view's query read point-in-time (its joins on the left feature group's event time);
``start_time``/``end_time`` and the time splits filter on that event time (start inclusive, end exclusive).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore.errors import FeatureStoreError
from featurestore.names import spark_column
from featurestore.training import splits as split_rules
from featurestore.training.dataset import create
from featurestore.transformation import apply as transforms

if TYPE_CHECKING:
    from featurestore.query.query import Query
    from featurestore.training.dataset import TrainingDataset
    from featurestore.transformation.functions import TransformationFunction


DATAFRAME_TYPES = ("default", "spark", "pandas")


class FeatureViewSurfaceError(FeatureStoreError, ValueError):
    """Bad input for an hsfs-named feature-view call: names the argument at fault."""


def _frame_out(df: DataFrame | None, dataframe_type: str) -> Any:
    if df is None or dataframe_type in ("default", "spark"):
        return df
    return df.toPandas()


def _check_type(dataframe_type: str) -> str:
    if dataframe_type not in DATAFRAME_TYPES:
        raise FeatureViewSurfaceError(f"unknown dataframe_type {dataframe_type!r}; use one of "
                                      f"{', '.join(DATAFRAME_TYPES)}")
    return dataframe_type


class HsfsFeatureViewCalls:
    """hsfs's feature-view calls; mixed into :class:`~featurestore.training.feature_view.FeatureView`."""

    # provided by FeatureView: query, features, labels, name, version, _fs, create_training_dataset,
    # get_training_dataset, transformation_functions, _fit_apply, _apply
    transformation_functions: list[TransformationFunction]

    # -- rows in memory (not materialized) -----------------------------------------------------
    def _time_query(self, start_time: Any, end_time: Any) -> Query:
        """The view's query with its left feature group's rows limited to [start_time, end_time)."""
        query = self.query
        if start_time is None and end_time is None:
            return query
        event_time = query.feature_group.event_time
        if not event_time:
            raise FeatureViewSurfaceError(f"start_time/end_time filter on the event time, but feature group "
                                          f"'{query.feature_group.name}' of the view's query has none")
        for bound, keep in ((start_time, ">="), (end_time, "<")):
            if bound is not None:
                value = F.lit(_utc(split_rules._iso(bound, "start_time/end_time")))
                column = spark_column(event_time)
                query = query.filter(column >= value if keep == ">=" else column < value)
        return query

    def _x_y(self, df: DataFrame, dataframe_type: str) -> tuple[Any, Any]:
        labels = [c for c in self.labels if c in df.columns]
        features = [c for c in df.columns if c not in labels]
        if dataframe_type == "pandas":  # one collect, split after: the rows of X and y stay aligned
            frame = df.toPandas()
            return frame[features], (frame[labels] if labels else None)
        x = df.select(*[spark_column(c) for c in features])
        y = df.select(*[spark_column(c) for c in labels]) if labels else None
        return x, y

    def training_data(self, start_time: Any = None, end_time: Any = None, description: str = "",
                      dataframe_type: str = "default", ttl: dt.timedelta | None = None) -> tuple[Any, Any]:
        """``(X, y)``: the view's point-in-time rows (in [start_time, end_time) of the left event time),
        features and labels apart (``y`` is None without labels). Spark frames keep no row order between
        ``X`` and ``y``: ask ``dataframe_type="pandas"`` for aligned rows. Transformation functions are
        fitted on these rows and applied."""
        _check_type(dataframe_type)
        view: Any = self  # the FeatureView this is mixed into
        return self._x_y(view._fit_apply(self._time_query(start_time, end_time).read(ttl=ttl)), dataframe_type)

    def _split_rows(self, names: list[str], sizes: list[float | None], times: list[tuple[Any, Any]],
                    seed: int | None, dataframe_type: str, ttl: dt.timedelta | None) -> tuple[Any, ...]:
        _check_type(dataframe_type)
        df = self.query.read(ttl=ttl)
        definition = self._split_definition(names, sizes, times, seed, df)
        marked = df.withColumn("__split", split_rules.split_column(df, definition))
        frames = [marked.where(F.col("__split") == name).drop("__split") for name in names]
        tfs = self.transformation_functions
        if tfs:  # fitted on the train split, as a materialized split is
            fitted = transforms.fit(frames[0], tfs)
            frames = [transforms.apply_frame(f, tfs, fitted) for f in frames]
        parts = [self._x_y(f, dataframe_type) for f in frames]
        return tuple(x for x, _ in parts) + tuple(y for _, y in parts)

    def _split_definition(self, names: list[str], sizes: list[float | None], times: list[tuple[Any, Any]],
                          seed: int | None, df: DataFrame) -> dict[str, Any]:
        timed = any(t != (None, None) for t in times)
        if timed and any(s is not None for s in sizes):
            raise FeatureViewSurfaceError("split either by size (test_size=...) or by time (train_start=...), "
                                          "not both")
        if timed:
            event_time = self.query.feature_group.event_time
            if not event_time or event_time not in df.columns:
                raise FeatureViewSurfaceError(f"a split by time needs the left feature group's event time "
                                              f"('{event_time}') among the view's features")
            ranges = {n: {k: v for k, v in (("start", s), ("end", e)) if v is not None}
                      for n, (s, e) in zip(names, times, strict=True)}
            return split_rules.normalize(ranges, None, event_time)
        given = [s for s in sizes if s is not None]
        if not given:
            raise FeatureViewSurfaceError(f"pass {'test_size' if len(names) == 2 else 'validation_size and test_size'}"
                                          " (fractions) or the split times")
        bad = [s for s in given if not isinstance(s, int | float) or isinstance(s, bool) or not 0 < s < 1]
        if bad or sum(given) >= 1:
            raise FeatureViewSurfaceError(f"split sizes must be fractions in (0, 1) adding up to less than 1, got "
                                          f"{given}")
        fractions = dict(zip(names[1:], [s or 0.0 for s in sizes[1:]], strict=True))
        fractions = {names[0]: 1.0 - sum(fractions.values()), **fractions}
        return split_rules.normalize({n: v for n, v in fractions.items() if v > 0}, seed, None)

    def train_test_split(self, test_size: float | None = None, train_start: Any = None, train_end: Any = None,
                         test_start: Any = None, test_end: Any = None, description: str = "", seed: int | None = None,
                         dataframe_type: str = "default", ttl: dt.timedelta | None = None) -> tuple[Any, ...]:
        """``(X_train, X_test, y_train, y_test)``, by fraction (``test_size``, a seeded hash of the row) or by
        time ranges of the left event time (start inclusive, end exclusive)."""
        return self._split_rows(["train", "test"], [None, test_size],
                                [(train_start, train_end), (test_start, test_end)], seed, dataframe_type, ttl)

    def train_validation_test_split(self, validation_size: float | None = None, test_size: float | None = None,
                                    train_start: Any = None, train_end: Any = None, validation_start: Any = None,
                                    validation_end: Any = None, test_start: Any = None, test_end: Any = None,
                                    description: str = "", seed: int | None = None, dataframe_type: str = "default",
                                    ttl: dt.timedelta | None = None) -> tuple[Any, ...]:
        """``(X_train, X_val, X_test, y_train, y_val, y_test)``, by fractions or by time ranges."""
        return self._split_rows(["train", "validation", "test"], [None, validation_size, test_size],
                                [(train_start, train_end), (validation_start, validation_end), (test_start, test_end)],
                                seed, dataframe_type, ttl)

    # -- materialized training datasets ------------------------------------------------------
    def create_training_data(self, start_time: Any = None, end_time: Any = None, description: str = "",
                             data_format: str = "parquet", seed: int | None = None,
                             ttl: dt.timedelta | None = None, **_hopsworks_options: Any) -> tuple[int, None]:
        """Materialize the view's point-in-time rows: ``(version, job)``; ``job`` is None (no Hopsworks job:
        the rows are written before this returns)."""
        if start_time is not None or end_time is not None:
            td = self._create_from(self._time_query(start_time, end_time), description, data_format, None, seed,
                                   ttl)
        else:
            td = self.create_training_dataset(description=description, data_format=data_format, seed=seed, ttl=ttl)
        return td.version, None

    def _create_from(self, query: Query, description: str, data_format: str, splits: dict[str, Any] | None,
                     seed: int | None, ttl: dt.timedelta | None) -> TrainingDataset:
        view: Any = self  # the FeatureView this is mixed into
        view._serving_stats = None  # a new latest dataset: serving rereads its statistics
        return create(view._fs, view.dataset_name, None, query=query, label=self.labels, data_format=data_format,
                      splits=splits, seed=seed, description=description, ttl=ttl,
                      feature_view={"name": view.name, "version": view.version},
                      transformation_functions=self.transformation_functions)

    def _create_split(self, names: list[str], sizes: list[float | None], times: list[tuple[Any, Any]],
                      description: str, data_format: str, seed: int | None,
                      ttl: dt.timedelta | None) -> tuple[int, None]:
        df = self.query.read(ttl=ttl)
        definition = self._split_definition(names, sizes, times, seed, df)
        if definition["type"] == "random":
            splits: dict[str, Any] = definition["fractions"]
            seed = definition["seed"]
        else:
            splits = {n: {"start": s, "end": e} for n, (s, e) in definition["ranges"].items()}
        td = self.create_training_dataset(description=description, data_format=data_format, splits=splits, seed=seed,
                                          ttl=ttl)
        return td.version, None

    def create_train_test_split(self, test_size: float | None = None, train_start: Any = None,
                                train_end: Any = None, test_start: Any = None, test_end: Any = None,
                                description: str = "", data_format: str = "parquet", seed: int | None = None,
                                ttl: dt.timedelta | None = None, **_hopsworks_options: Any) -> tuple[int, None]:
        """Materialize a train/test split: ``(version, job)`` (``job`` None, as :meth:`create_training_data`)."""
        return self._create_split(["train", "test"], [None, test_size],
                                  [(train_start, train_end), (test_start, test_end)], description, data_format,
                                  seed, ttl)

    def create_train_validation_test_split(self, validation_size: float | None = None,
                                           test_size: float | None = None, train_start: Any = None,
                                           train_end: Any = None, validation_start: Any = None,
                                           validation_end: Any = None, test_start: Any = None, test_end: Any = None,
                                           description: str = "", data_format: str = "parquet",
                                           seed: int | None = None, ttl: dt.timedelta | None = None,
                                           **_hopsworks_options: Any) -> tuple[int, None]:
        """Materialize a train/validation/test split: ``(version, job)``."""
        return self._create_split(["train", "validation", "test"], [None, validation_size, test_size],
                                  [(train_start, train_end), (validation_start, validation_end),
                                   (test_start, test_end)], description, data_format, seed, ttl)

    def _read_split(self, version: int, names: list[str], dataframe_type: str) -> tuple[Any, ...]:
        _check_type(dataframe_type)
        td = self.get_training_dataset(version)
        missing = [n for n in names if n not in td.split_names]
        if missing:
            raise FeatureViewSurfaceError(f"training dataset '{td.name}' version {version} has no split(s) "
                                          f"{', '.join(missing)} (splits: {', '.join(td.split_names) or 'none'})")
        view: Any = self
        parts = [self._x_y(view._apply(td.read(n), version), dataframe_type) for n in names]
        return tuple(x for x, _ in parts) + tuple(y for _, y in parts)

    def get_train_test_split(self, training_dataset_version: int, dataframe_type: str = "default",
                             **_read_options: Any) -> tuple[Any, ...]:
        """``(X_train, X_test, y_train, y_test)`` of a materialized split."""
        return self._read_split(training_dataset_version, ["train", "test"], dataframe_type)

    def get_train_validation_test_split(self, training_dataset_version: int, dataframe_type: str = "default",
                                        **_read_options: Any) -> tuple[Any, ...]:
        """``(X_train, X_val, X_test, y_train, y_val, y_test)`` of a materialized split."""
        return self._read_split(training_dataset_version, ["train", "validation", "test"], dataframe_type)

    def delete_training_dataset(self, training_dataset_version: int) -> None:
        """Delete one materialized training dataset of this view (its files and its record)."""
        self.get_training_dataset(training_dataset_version).delete()


def _utc(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
