"""Ingest a source into a feature group version, creating it from a YAML definition if missing.

    ./spark-submit.sh jobs/ingest.py --feature-group user_clicks --version 1 \
        --source data/clicks/ --format parquet [--transform "SELECT ... FROM source"]

The source is a path (--source, --format) or a SQL query over the feature groups (--query).
An optional SQL transformation sees the source as the view ``source``. When the feature group
does not exist it is created from --definition (default conf/feature_groups/<name>.yaml).
Exit code 0 on success; non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from featurestore.jobrunner import JobContext, common_arguments, run_job

ALLOWED_DEFINITION_KEYS = {"name", "version", "description", "primary_key", "event_time", "partition_key",
                           "precombine_key", "online_enabled", "feature_descriptions", "statistics_config"}


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/ingest.py", description=__doc__.splitlines()[0])
    p.add_argument("--feature-group", required=True, help="feature group name")
    p.add_argument("--version", type=int, help="feature group version (default: the latest, or the definition's)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--source", help="input path (file or folder)")
    src.add_argument("--query", help="SQL over feature groups (views <name>_<version>)")
    p.add_argument("--format", default="parquet", help="input format for --source: parquet, json, csv, orc")
    p.add_argument("--transform", help="SQL applied to the input, which is the view 'source'")
    p.add_argument("--definition", help="YAML feature group definition (default conf/feature_groups/<name>.yaml)")
    p.add_argument("--operation", default="upsert", help="upsert (default), insert, bulk_insert, insert_overwrite")
    return common_arguments(p)


def load_definition(path: Path, name: str) -> dict:
    """Read and check a YAML feature group definition."""
    import yaml

    from featurestore.errors import FeatureStoreError

    if not path.is_file():
        raise FeatureStoreError(f"feature group '{name}' does not exist and there is no definition at {path}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - ALLOWED_DEFINITION_KEYS)
    if unknown:
        raise FeatureStoreError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if data.get("name", name) != name:
        raise FeatureStoreError(f"{path}: defines '{data['name']}', not '{name}'")
    return data


def body(ctx: JobContext) -> int:
    """Read the source, create the feature group if needed, insert: one commit."""
    from featurestore.errors import FeatureStoreError

    args, fs = ctx.args, ctx.fs
    spark = fs.spark
    if args.source:
        reader = spark.read
        if args.format == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        df = reader.format(args.format).load(args.source)
        ctx.log("read", f"{args.source} ({args.format})")
    else:
        df = fs.sql(args.query)
        ctx.log("read", "query over feature groups")
    if args.transform:
        df.createOrReplaceTempView("source")
        df = spark.sql(args.transform)
        ctx.log("transform", "applied")
    try:
        fg = fs.get_feature_group(args.feature_group, args.version)
        ctx.log("feature-group", f"{fg.name} v{fg.version} exists")
    except FeatureStoreError:
        path = Path(args.definition or Path("conf") / "feature_groups" / f"{args.feature_group}.yaml")
        definition = load_definition(path, args.feature_group)
        definition.pop("name", None)
        version = args.version or definition.pop("version", None)
        definition.pop("version", None)
        fg = fs.create_feature_group(args.feature_group, version=version, **definition)
        ctx.log("feature-group", f"created {fg.name} v{fg.version} from {path}")
    result = fg.insert(df, operation=args.operation)
    ctx.log("commit", f"{result.commit_id} inserted={result.rows_inserted} updated={result.rows_updated} "
                      f"deleted={result.rows_deleted}")
    print(result.commit_id or "no-commit")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success, 1 with a one-line reason (and the alert webhook) on failure."""
    return run_job("ingest", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
