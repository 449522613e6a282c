"""Materialize feature groups into the online store.

    ./spark-submit.sh jobs/materialize.py user_clicks [--version 1] [--mode incremental|full]
    ./spark-submit.sh jobs/materialize.py --feature-group user_clicks
    ./spark-submit.sh jobs/materialize.py --all [--mode full]

Incremental (default) applies the offline commits since the last materialized one; full syncs the
latest snapshot and removes online keys absent offline. Killed and rerun, it converges. Prints one
line per feature group (``name vN mode begin..end rows=.. deleted=.. expired=..``).
Exit code 0 on success; non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import sys

from featurestore.jobrunner import JobContext, common_arguments, run_job


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/materialize.py", description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("feature_group", nargs="?", help="feature group name")
    which.add_argument("--feature-group", dest="feature_group_flag", metavar="NAME",
                       help="the same, as the other jobs spell it")
    which.add_argument("--all", action="store_true", help="every online-enabled feature group version")
    p.add_argument("--version", type=int, help="feature group version (default: the latest)")
    p.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    return common_arguments(p)


def body(ctx: JobContext) -> int:
    """Materialize each selected feature group; one output line per group."""
    args, fs = ctx.args, ctx.fs
    if args.all:
        groups = [fg for fg in fs.get_feature_groups() if fg.online_enabled]
    else:
        groups = [fs.get_feature_group(args.feature_group or args.feature_group_flag, args.version)]
    ctx.log("plan", f"feature store '{fs.name}': {len(groups)} feature group(s), mode {args.mode}")
    for fg in groups:
        r = fs.materialize(fg, args.mode)
        line = (f"{fg.name} v{fg.version} {r['mode']} {r['begin'] or '-'}..{r['end'] or '-'} rows={r['rows']} "
                f"deleted={r['deleted']} expired={r['expired']}")
        ctx.log("materialize", line)
        print(line, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success, 1 with a one-line reason (and the alert webhook) on failure."""
    return run_job("materialize", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
