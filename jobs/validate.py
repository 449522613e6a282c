"""Validate data against a feature group's expectation suite (or a suite file) without writing it.

    ./spark-submit.sh jobs/validate.py --feature-group orders --source data/orders/ --format parquet
    ./spark-submit.sh jobs/validate.py --suite conf/suites/orders.yaml --source data/orders.json --format json

Prints the report (``--json`` for machines). Exit code 0 if no Error-level constraint failed, 2 if
one did, 1 with a one-line reason on any other failure.
"""

from __future__ import annotations

import argparse
import json
import sys

from featurestore.cli.failures import VALIDATION_FAILED_EXIT
from featurestore.jobrunner import JobContext, common_arguments, run_job


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/validate.py", description=__doc__.splitlines()[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--feature-group", help="validate against this feature group's suite")
    target.add_argument("--suite", help="a YAML/JSON expectation suite file")
    p.add_argument("--version", type=int, help="feature group version (default: the latest)")
    p.add_argument("--source", required=True, help="input path (file or folder)")
    p.add_argument("--format", default="parquet", help="parquet, json, csv, orc")
    p.add_argument("--save-report", action="store_true", help="store the report in the registry as a dry run")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return common_arguments(p)


def body(ctx: JobContext) -> int:
    args = ctx.args
    fs = ctx.fs
    reader = fs.spark.read
    if args.format == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    df = reader.format(args.format).load(args.source)
    ctx.log("read", f"{args.source} ({args.format})")
    if args.feature_group:
        fg = fs.get_feature_group(args.feature_group, args.version)
        report = fg.validate(df, save_report=args.save_report)
        ctx.log("validate", f"{fg.name} v{fg.version}: {report.status}")
    else:
        from featurestore.quality import verify

        report = verify(df, args.suite)
        ctx.log("validate", f"{args.suite}: {report.status}")
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else str(report), flush=True)
    return 0 if report.success else VALIDATION_FAILED_EXIT


def main(argv: list[str] | None = None) -> int:
    """Run the job."""
    return run_job("validate", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
