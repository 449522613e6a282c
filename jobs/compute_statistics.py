"""Compute statistics over a feature group's current snapshot and optionally write the HTML report.

    ./spark-submit.sh jobs/compute_statistics.py --feature-group orders [--histograms] [--correlations] \
        [--report reports/orders.html]

The statistics are stored in the registry (kind ``table``, with the latest commit id). Exit code 0
on success, 1 with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import sys

from featurestore.jobrunner import JobContext, common_arguments, run_job


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/compute_statistics.py", description=__doc__.splitlines()[0])
    p.add_argument("--feature-group", required=True, help="feature group name")
    p.add_argument("--version", type=int, help="version (default: the latest)")
    p.add_argument("--histograms", action="store_true", help="numeric histograms and categorical top values")
    p.add_argument("--correlations", action="store_true", help="the correlation matrix of numeric features")
    p.add_argument("--exact-uniqueness", action="store_true", help="exact distinct counts and uniqueness")
    p.add_argument("--report", help="also write the HTML statistics report to this file")
    return common_arguments(p)


def body(ctx: JobContext) -> int:
    args = ctx.args
    fg = ctx.fs.get_feature_group(args.feature_group, args.version)
    stats = fg.compute_statistics({"histograms": args.histograms, "correlations": args.correlations,
                                   "exact_uniqueness": args.exact_uniqueness})
    ctx.log("statistics", f"{fg.name} v{fg.version}: {stats['rows']} rows, {len(stats['columns'])} features, "
                          f"commit {stats['commit_id']}")
    if args.report:
        path = fg.statistics_report(args.report, compute=False)
        ctx.log("report", path)
    print(stats["commit_id"] or "no-commit")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the job."""
    return run_job("compute_statistics", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
