"""Materialize feature groups into the online store.

    ./spark-submit.sh jobs/materialize.py user_clicks [--version 1] [--mode incremental|full]
    ./spark-submit.sh jobs/materialize.py --all [--mode full]

Incremental (default) applies the offline commits since the last materialized one; full syncs the
latest snapshot and removes online keys absent offline. Killed and rerun, it converges. Prints one
line per feature group (``name vN mode begin..end rows=.. deleted=.. expired=..``).
Exit code 0 on success; non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/materialize.py", description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("feature_group", nargs="?", help="feature group name")
    which.add_argument("--all", action="store_true", help="every online-enabled feature group version")
    p.add_argument("--version", type=int, help="feature group version (default: the latest)")
    p.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    p.add_argument("--feature-store", default="default", help="feature store (project) name")
    p.add_argument("--config", help="configuration file (default: the usual lookup)")
    return p.parse_args(argv)


def log(message: str) -> None:
    """One log line on stderr."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} materialize {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success."""
    args = parse_args(argv)
    import featurestore
    from featurestore.errors import FeatureStoreError

    try:
        from pyspark.errors import PySparkException
    except ImportError:  # pragma: no cover - older pyspark
        PySparkException = Exception  # noqa: N806

    spark = None
    try:
        fs = featurestore.connect(args.config, name=args.feature_store)
        spark = fs.spark
        if args.all:
            groups = [fg for fg in fs.get_feature_groups() if fg.online_enabled]
        else:
            groups = [fs.get_feature_group(args.feature_group, args.version)]
        log(f"feature store '{fs.name}': {len(groups)} feature group(s), mode {args.mode}")
        for fg in groups:
            r = fs.materialize(fg, args.mode)
            line = (f"{fg.name} v{fg.version} {r['mode']} {r['begin'] or '-'}..{r['end'] or '-'} rows={r['rows']} "
                    f"deleted={r['deleted']} expired={r['expired']}")
            log(line)
            print(line, flush=True)
        return 0
    except (FeatureStoreError, PySparkException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"materialize: error: {reason}", file=sys.stderr)
        return 1
    finally:
        if spark is not None:
            spark.stop()


if __name__ == "__main__":
    sys.exit(main())
