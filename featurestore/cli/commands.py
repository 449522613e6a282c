"""CLI commands over a feature store: feature groups, commits, previews, validation, statistics,
code provenance, materialization, training datasets and feature views. Commands that only read the registry never
start Spark."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from featurestore.cli.failures import VALIDATION_FAILED_EXIT, UsageError
from featurestore.cli.output import Output
from featurestore.errors import FeatureStoreError

STORE_HELP = "feature store (project) name (default: the configuration's store, FEATURESTORE_STORE, else 'default')"


def _store(args: argparse.Namespace) -> Any:
    from featurestore.config import load_config
    from featurestore.feature_store import FeatureStore

    return FeatureStore(load_config(args.config), args.store)


@contextmanager
def progress(out: Output, text: str) -> Iterator[None]:
    """A spinner on a terminal (rich) while a long operation runs; nothing in JSON mode or in a pipe."""
    if out.as_json or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield


def say_where_else(fs: Any, out: Output, what: str) -> None:
    """After an empty listing: say which feature stores do hold feature groups (a wrong or missing
    ``--store`` is the usual reason for an empty list)."""
    if out.as_json:
        return
    others = [f"{name} ({count})" for name, count in fs.registry.list_feature_stores().items()
              if name != fs.name and count]
    where = (f"; feature stores with feature groups: {', '.join(others)} (choose one with --store or "
             "FEATURESTORE_STORE)") if others else ""
    out.message(f"no {what} in feature store '{fs.name}'{where}")


def _fg_row(fg: Any) -> dict[str, Any]:
    return {"name": fg.name, "version": fg.version, "kind": fg.record.kind,
            "primary_key": ",".join(fg.primary_key), "event_time": fg.event_time or "",
            "online": fg.online_enabled, "features": len(fg.features), "description": fg.description}


def feature_groups(args: argparse.Namespace, out: Output) -> int:
    """``feature-groups list|show``."""
    fs = _store(args)
    if args.action == "list":
        rows = [_fg_row(fg) for fg in fs.get_feature_groups(args.name)]
        if not rows and not out.as_json:
            say_where_else(fs, out, "feature groups" + (f" named '{args.name}'" if args.name else ""))
            return 0
        out.table(rows, ["name", "version", "kind", "primary_key", "event_time", "online", "features", "description"])
        return 0
    if not args.name:
        raise UsageError("feature-groups show: a feature group name is required")
    fg = fs.get_feature_group(args.name, args.version)
    suite = fs.registry.get_expectation_suite(fg.id)
    commits = fg.commit_details(limit=1)
    out.record({**_fg_row(fg), "location": fg.location, "partition_key": ",".join(fg.partition_key),
                "latest_commit": next(iter(commits), None), "expectation_suite": suite["suite"]["name"] if suite
                else None, "validation_policy": suite["policy"] if suite else None, "tags": fg.get_tags(),
                "schema": ", ".join(f"{f.name} {f.data_type.simpleString()}" for f in fg.features)})
    return 0


def commits(args: argparse.Namespace, out: Output) -> int:
    """``commits <fg>``: the commit log, newest first."""
    fg = _store(args).get_feature_group(args.feature_group, args.version)
    rows = [{"commit_id": cid, "committed_at": c["committedAt"], "operation": c["operation"],
             "inserted": c["rowsInserted"], "updated": c["rowsUpdated"], "deleted": c["rowsDeleted"]}
            for cid, c in fg.commit_details(limit=args.limit).items()]
    out.table(rows, ["commit_id", "committed_at", "operation", "inserted", "updated", "deleted"])
    return 0


def preview(args: argparse.Namespace, out: Output) -> int:
    """``preview <fg> [--as-of C] [-n N]``: the first rows of the snapshot (or as of a commit/time)."""
    fs = _store(args)
    fg = fs.get_feature_group(args.feature_group, args.version)
    with progress(out, f"reading {fg.name} v{fg.version}"):
        rows = [r.asDict() for r in fg.read(as_of=args.as_of).limit(args.n).collect()]
    out.table(rows, fg.schema.fieldNames() or None)
    return 0


def validate(args: argparse.Namespace, out: Output) -> int:
    """``validate <fg> <path>``: dry-run the feature group's suite on a file; exit 3 if it fails."""
    if "://" not in args.path and not os.path.exists(args.path):  # before the registry and Spark start
        raise FeatureStoreError(f"validate: input path {args.path!r} does not exist")
    fs = _store(args)
    fg = fs.get_feature_group(args.feature_group, args.version)
    with progress(out, f"validating {args.path}"):
        reader = fs.spark.read
        if args.format == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        report = fg.validate(reader.format(args.format).load(args.path))
    if out.as_json:
        out.record(report.to_dict())
    else:
        out.message(str(report).splitlines()[0])
        out.table([{"level": r.level, "check": r.check, "constraint": r.constraint, "status": r.status,
                    "value": json.dumps(r.to_dict()["value"]), "hint": r.hint or ""} for r in report.results])
    return 0 if report.success else VALIDATION_FAILED_EXIT


def statistics(args: argparse.Namespace, out: Output) -> int:
    """``statistics <fg> [--commit C]``: stored statistics of a commit (default: the newest)."""
    fg = _store(args).get_feature_group(args.feature_group, args.version)
    stats = fg.get_statistics(args.commit)
    if stats is None:
        out.message(f"no statistics stored for '{fg.name}' v{fg.version}", statistics=None)
        return 0
    if out.as_json:
        out.record(stats)
        return 0
    out.message(f"commit {stats['commit_id']} ({stats['kind']}), {stats['rows']} rows, computed {stats['computed_at']}")
    cols = ["feature", "type", "completeness", "approx_distinct", "min", "max", "mean", "stddev"]
    out.table([{"feature": name, **{k: _short(e.get(k)) for k in cols[1:]}} for name, e in stats["columns"].items()],
              cols)
    return 0


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def code(args: argparse.Namespace, out: Output) -> int:
    """``code <fg> [--commit C] [--content]``: what produced a commit."""
    fg = _store(args).get_feature_group(args.feature_group, args.version)
    prov = fg.get_provenance(args.commit)
    if prov is None:
        out.message(f"no provenance recorded for '{fg.name}' v{fg.version}"
                    + (f" commit {args.commit}" if args.commit else ""), provenance=None)
        return 0
    content = prov.pop("content")
    text = content.decode("utf-8", errors="replace") if content else None
    packages = prov.pop("packages")
    if out.as_json:
        out.record({**prov, "packages": packages, "content": text})
        return 0
    out.record({**prov, "packages": f"{len(packages)} installed (--json lists them)"})
    if args.content and text is not None:
        out.message("-" * 60)
        out.message(text)
    return 0


def materialize(args: argparse.Namespace, out: Output) -> int:
    """``materialize <fg> [--mode incremental|full]``: sync the online store from the offline table."""
    fs = _store(args)
    fg = fs.get_feature_group(args.feature_group, args.version)
    with progress(out, f"materializing {fg.name} v{fg.version} ({args.mode})"):
        result = fs.materialize(fg, mode=args.mode)
    out.record(result if isinstance(result, dict) else {"result": str(result)})
    return 0


def training_datasets(args: argparse.Namespace, out: Output) -> int:
    """``training-datasets list|show``."""
    fs = _store(args)
    if args.action == "list":
        rows = []
        for td in fs.get_training_datasets(args.name) if hasattr(fs, "get_training_datasets") else []:
            rows.append({"name": td.name, "version": td.version, "format": getattr(td, "data_format", ""),
                         "location": td.location, "description": getattr(td, "description", "")})
        if not rows and not out.as_json:
            say_where_else(fs, out, "training datasets" + (f" named '{args.name}'" if args.name else ""))
            return 0
        out.table(rows, ["name", "version", "format", "location", "description"])
        return 0
    if not args.name:
        raise UsageError("training-datasets show: a training dataset name is required")
    td = fs.get_training_dataset(args.name, args.version)
    record = getattr(td, "_record", None) or {"name": td.name, "version": td.version, "location": td.location}
    out.record({k: (json.dumps(v, default=str) if isinstance(v, dict | list) else v) for k, v in record.items()})
    return 0


def feature_views(args: argparse.Namespace, out: Output) -> int:
    """``feature-views list|show``."""
    fs = _store(args)
    if args.action == "list":
        rows = [{"name": fv.name, "version": fv.version, "features": ", ".join(fv.features),
                 "labels": ", ".join(fv.labels), "description": fv.description}
                for fv in fs.get_feature_views(args.name)]
        if not rows and not out.as_json:
            say_where_else(fs, out, "feature views" + (f" named '{args.name}'" if args.name else ""))
            return 0
        out.table(rows, ["name", "version", "features", "labels", "description"])
        return 0
    if not args.name:
        raise UsageError("feature-views show: a feature view name is required")
    fv = fs.get_feature_view(args.name, args.version)
    datasets = [f"{td.name} v{td.version}" for td in fv.get_training_datasets()]
    out.record({"name": fv.name, "version": fv.version, "description": fv.description,
                "features": ", ".join(fv.features), "labels": ", ".join(fv.labels),
                "query": json.dumps(fv._record["query"]), "training_datasets": ", ".join(datasets),
                "created_at": str(fv._record["created_at"]), "created_by": fv._record["created_by"]})
    return 0


def register(sub: Any) -> None:
    """Add the commands to the ``featurestore`` parser."""

    def fg_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("feature_group", help="feature group name")
        p.add_argument("--version", type=int, help="version (default: the latest)")
        p.add_argument("--store", help=STORE_HELP)
        return p

    p = sub.add_parser("feature-groups", help="list feature groups, or show one")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?", help="feature group name (list: filter; show: required)")
    p.add_argument("--version", type=int, help="show: version (default: the latest)")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(handler=feature_groups)

    p = fg_args(sub.add_parser("commits", help="a feature group's commits, newest first"))
    p.add_argument("--limit", type=int, help="at most this many")
    p.set_defaults(handler=commits)

    p = fg_args(sub.add_parser("preview", help="the first rows of a feature group (optionally as of a commit)"))
    p.add_argument("--as-of", help="commit id or time")
    p.add_argument("-n", type=int, default=10, help="rows (default 10)")
    p.set_defaults(handler=preview)

    p = fg_args(sub.add_parser("validate", help="dry-run a feature group's expectation suite on a file"))
    p.add_argument("path", help="data file or folder")
    p.add_argument("--format", default="parquet", help="parquet (default), json, csv, orc")
    p.set_defaults(handler=validate)

    p = fg_args(sub.add_parser("statistics", help="stored statistics of a commit (default: the newest)"))
    p.add_argument("--commit", help="commit id")
    p.set_defaults(handler=statistics)

    p = fg_args(sub.add_parser("code", help="the code that produced a commit (script/notebook, git, packages)"))
    p.add_argument("--commit", help="commit id (default: the newest)")
    p.add_argument("--content", action="store_true", help="print the stored script or notebook")
    p.set_defaults(handler=code)

    p = fg_args(sub.add_parser("materialize", help="sync the online store from the offline table"))
    p.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    p.set_defaults(handler=materialize)

    p = sub.add_parser("training-datasets", help="list training datasets, or show one")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?", help="training dataset name")
    p.add_argument("--version", type=int, help="show: version (default: the latest)")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(handler=training_datasets)

    p = sub.add_parser("feature-views", help="list feature views, or show one")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("name", nargs="?", help="feature view name")
    p.add_argument("--version", type=int, help="show: version (default: the latest)")
    p.add_argument("--store", help=STORE_HELP)
    p.set_defaults(handler=feature_views)
