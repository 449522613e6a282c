"""Create a training dataset version from a YAML definition.

    ./spark-submit.sh jobs/create_training_dataset.py --definition conf/training_datasets/churn.yaml \
        [--version 3] [--spine data/spine/] [--feature-store default] [--config fs.yaml]

The definition (see conf/training_datasets/) names the features (``features: [...]``) or a query
(``query: {feature_group, version, features, filters, as_of, joins: [{query, on, left_on, right_on,
join_type, prefix}]}``), an optional spine (``spine: {path, format, event_time}`` or ``{sql, event_time}``
over the feature groups' views ``<name>_<version>``), ``label``, ``data_format``, ``splits``, ``seed``,
``ttl_seconds`` and ``as_known_at_spine_time``. Instead of ``name``, ``features``/``query`` and ``label``, a
definition may name a feature view (``feature_view: {name, version}``): the dataset is cut from it, named
``<view>_v<version>``. --spine overrides the spine path. Prints
``<name> <version> <location>`` on success (exit code 0); non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from featurestore.jobrunner import JobContext, common_arguments, run_job

ALLOWED_KEYS = {"name", "version", "description", "features", "query", "spine", "label", "data_format", "splits",
                "seed", "ttl_seconds", "as_known_at_spine_time", "feature_view"}
VIEW_KEYS = {"name", "version"}
FROM_VIEW = ("name", "features", "query", "label")  # what a feature view defines itself
QUERY_KEYS = {"feature_group", "version", "features", "filters", "as_of", "joins"}
JOIN_KEYS = {"query", "on", "left_on", "right_on", "join_type", "prefix"}
SPINE_KEYS = {"path", "format", "sql", "event_time"}


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/create_training_dataset.py", description=__doc__.splitlines()[0])
    p.add_argument("--definition", required=True, help="YAML training dataset definition")
    p.add_argument("--version", type=int, help="version to create (default: the definition's, else the next)")
    p.add_argument("--spine", help="spine path (overrides spine.path of the definition)")
    return common_arguments(p)


def _check_keys(data: Any, allowed: set[str], where: str) -> dict:
    from featurestore.errors import FeatureStoreError

    if not isinstance(data, dict):
        raise FeatureStoreError(f"{where} must be a mapping")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise FeatureStoreError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return data


def load_definition(path: Path) -> dict:
    """Read and check a YAML training dataset definition."""
    import yaml

    from featurestore.errors import FeatureStoreError

    if not path.is_file():
        raise FeatureStoreError(f"no training dataset definition at {path}")
    data = _check_keys(yaml.safe_load(path.read_text()) or {}, ALLOWED_KEYS, str(path))
    if "feature_view" in data:
        view = _check_keys(data["feature_view"], VIEW_KEYS, f"{path}: feature_view")
        if "name" not in view:
            raise FeatureStoreError(f"{path}: feature_view needs a 'name'")
        clash = [k for k in FROM_VIEW if k in data]
        if clash:
            raise FeatureStoreError(f"{path}: {', '.join(clash)} come(s) from the feature view; remove them")
        return data
    if "name" not in data:
        raise FeatureStoreError(f"{path}: 'name' is required")
    if ("features" in data) == ("query" in data):
        raise FeatureStoreError(f"{path}: give either 'features' or 'query'")
    return data


def build_query(fs: Any, data: dict, where: str = "query") -> Any:
    """A Query from its definition; filters are SQL conditions, checked against the feature group."""
    _check_keys(data, QUERY_KEYS, where)
    fg = fs.get_feature_group(data["feature_group"], data.get("version"))
    query = fg.select(data["features"]) if data.get("features") else fg.select_all()
    for cond in data.get("filters") or []:
        query = query.filter(cond)
    if data.get("as_of"):
        query = query.as_of(str(data["as_of"]))
    for i, join in enumerate(data.get("joins") or []):
        _check_keys(join, JOIN_KEYS, f"{where}.joins[{i}]")
        other = build_query(fs, join["query"], f"{where}.joins[{i}].query")
        query = query.join(other, on=join.get("on"), left_on=join.get("left_on"), right_on=join.get("right_on"),
                           join_type=join.get("join_type", "inner"), prefix=join.get("prefix"))
    return query


def read_spine(fs: Any, spine: dict, override: str | None) -> tuple[Any, str | None]:
    """The spine DataFrame and its event-time column."""
    _check_keys(spine, SPINE_KEYS, "spine")
    path = override or spine.get("path")
    if path:
        fmt = spine.get("format", "parquet")
        reader = fs.spark.read
        if fmt == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        return reader.format(fmt).load(path), spine.get("event_time")
    if spine.get("sql"):
        return fs.sql(spine["sql"]), spine.get("event_time")
    from featurestore.errors import FeatureStoreError

    raise FeatureStoreError("spine needs 'path' (with 'format') or 'sql'")


def body(ctx: JobContext) -> int:
    """Build the query and spine from the definition and write the training dataset."""
    args = ctx.args
    definition = load_definition(Path(args.definition))
    fs = ctx.fs
    spine, event_time = (None, None)
    if definition.get("spine") or args.spine:
        spine, event_time = read_spine(fs, definition.get("spine") or {}, args.spine)
        ctx.log("spine", f"{len(spine.columns)} columns, event time {event_time or 'ts'}")
    ttl = definition.get("ttl_seconds")
    options = {"spine": spine, "spine_event_time": event_time, "data_format": definition.get("data_format", "parquet"),
               "splits": definition.get("splits"), "seed": definition.get("seed"),
               "description": definition.get("description", ""),
               "ttl": dt.timedelta(seconds=ttl) if ttl is not None else None,
               "as_known_at_spine_time": bool(definition.get("as_known_at_spine_time", False))}
    version = args.version or definition.get("version")
    if "feature_view" in definition:
        view = fs.get_feature_view(definition["feature_view"]["name"], definition["feature_view"].get("version"))
        ctx.log("feature view", f"{view.name} v{view.version}: features {view.features}, labels {view.labels}")
        td = view.create_training_dataset(version=version, **options)
    else:
        query = build_query(fs, definition["query"]) if "query" in definition else None
        td = fs.create_training_dataset(definition["name"], version=version, query=query,
                                        features=definition.get("features"), label=definition.get("label"),
                                        **options)
    ctx.log("write", f"{td.name} v{td.version}: {td.row_counts} rows as {td.data_format}, commits {td.commits}")
    print(f"{td.name} {td.version} {td.location}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success, 1 with a one-line reason (and the alert webhook) on failure."""
    return run_job("create_training_dataset", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
