"""Maintenance: clean old file versions of feature group tables and vacuum old validation reports.

    ./spark-submit.sh jobs/maintenance.py --all --retain-commits 10 --vacuum-rejected-days 30
    ./spark-submit.sh jobs/maintenance.py --feature-group orders --optimize

Cleaning keeps every file needed to read (and time travel to) the last ``--retain-commits``
commits (default: hudi.cleaner_commits_retained from the configuration): on Hudi tables it is
recorded as a clean instant, on Delta tables it is a ``VACUUM`` whose retention is the age of the
oldest retained commit. ``--optimize`` first compacts small files (Delta's ``OPTIMIZE``; Hudi tables
written by the native engine have no such action and are left as they are). ``--vacuum-rejected-days
N`` deletes stored reports of rejected batches older than N days (rejected data itself is never
written). Prints the number of data files removed; exit code 0, or 1 with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys

from featurestore.jobrunner import JobContext, common_arguments, run_job


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/maintenance.py", description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--feature-group", help="one feature group (every version unless --version)")
    which.add_argument("--all", action="store_true", help="every feature group of the feature store")
    p.add_argument("--version", type=int, help="one version")
    p.add_argument("--retain-commits", type=int, help="commits kept readable (default from configuration)")
    p.add_argument("--vacuum-rejected-days", type=int, help="delete reports of rejected batches older than this")
    p.add_argument("--optimize", action="store_true", help="compact small files first (Delta Lake's OPTIMIZE)")
    return common_arguments(p)


def body(ctx: JobContext) -> int:
    from featurestore.offline import open_table

    args = ctx.args
    fs = ctx.fs
    retain = args.retain_commits or fs.config.get("hudi.cleaner_commits_retained")
    if args.all:
        groups = fs.get_feature_groups()
    elif args.version is not None:
        groups = [fs.get_feature_group(args.feature_group, args.version)]
    else:
        groups = fs.get_feature_groups(args.feature_group)
        if not groups:
            fs.get_feature_group(args.feature_group)  # raises naming the feature group
    total = 0
    for fg in groups:
        if fg.location is None or fg.record.kind != "cached":
            continue
        table = open_table(fs, fg.record)
        if not table.exists():
            continue
        if args.optimize:
            compacted = table.optimize()
            ctx.log("optimize", f"{fg.name} v{fg.version}: " + ("no compaction for this table format"
                                                                 if compacted is None
                                                                 else f"{compacted} small file(s) compacted"))
        cleaned = table.clean(retain)
        total += cleaned
        ctx.log("clean", f"{fg.name} v{fg.version}: {cleaned} old file version(s) removed, {retain} commits retained")
    if args.vacuum_rejected_days is not None:
        removed = fs.registry.vacuum_rejected_reports([fg.id for fg in groups], args.vacuum_rejected_days)
        ctx.log("vacuum", f"{removed} rejected-batch report(s) older than {args.vacuum_rejected_days} days removed")
    print(total)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the job."""
    return run_job("maintenance", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
