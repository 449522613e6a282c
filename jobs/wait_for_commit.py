"""Sensor for schedulers: exit 0 once a feature group has a commit newer than a given one.

    ./spark-submit.sh jobs/wait_for_commit.py --feature-group orders --after 20240601120000000 \
        --timeout 3600 --poke-interval 30

``--after`` is a commit id (or a time, or ``latest`` for "newer than the current newest").
Prints the newest commit id and exits 0 when there is one newer; exits 1 with a one-line reason
on timeout (``--timeout 0`` checks once). Reads only the Hudi timeline: no Spark job runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from featurestore.jobrunner import JobContext, common_arguments, run_job


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/wait_for_commit.py", description=__doc__.splitlines()[0])
    p.add_argument("--feature-group", required=True, help="feature group name")
    p.add_argument("--version", type=int, help="version (default: the latest)")
    p.add_argument("--after", default="latest", help="commit id or time; 'latest' = the current newest commit")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default 3600)")
    p.add_argument("--poke-interval", type=float, default=30.0, help="seconds between checks (default 30)")
    return common_arguments(p)


def newest_commit(location: str) -> str | None:
    """The newest completed commit (or replacecommit) on the timeline."""
    from featurestore import hudi
    from featurestore.hudi.table import table_exists

    if not table_exists(location):
        return None
    commits = [e["instant"] for e in hudi.timeline(location) if e["action"] in ("commit", "replacecommit")]
    return max(commits) if commits else None


def body(ctx: JobContext) -> int:
    from featurestore.errors import FeatureStoreError
    from featurestore.hudi.timeline import normalize_instant

    args = ctx.args
    fg = ctx.fs.get_feature_group(args.feature_group, args.version)  # the timeline only: no Spark session
    after = newest_commit(fg.location) or "0" if args.after == "latest" else normalize_instant(args.after)
    ctx.log("wait", f"{fg.name} v{fg.version}: waiting for a commit newer than {after} (timeout {args.timeout:g}s)")
    deadline = time.monotonic() + args.timeout
    while True:
        newest = newest_commit(fg.location)
        if newest is not None and newest > after:
            ctx.log("found", f"commit {newest}")
            print(newest, flush=True)
            return 0
        if time.monotonic() >= deadline:
            raise FeatureStoreError(f"no commit of '{fg.name}' v{fg.version} newer than {after} within "
                                    f"{args.timeout:g}s (newest: {newest})")
        time.sleep(max(0.1, min(args.poke_interval, deadline - time.monotonic())))


def main(argv: list[str] | None = None) -> int:
    """Run the job."""
    return run_job("wait_for_commit", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
