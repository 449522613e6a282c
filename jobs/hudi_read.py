"""Read a Hudi table (snapshot, time travel or incremental) and save it in a plain format.

    ./spark-submit.sh jobs/hudi_read.py --table warehouse/t --output out/ --format json [--as-of 20240101000000000]

Exit code 0 on success, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/hudi_read.py", description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, help="Hudi table path")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--format", default="parquet", help="output format: parquet, json, csv, orc (default parquet)")
    p.add_argument("--as-of", help="time travel: an instant yyyyMMddHHmmssSSS or a UTC timestamp")
    p.add_argument("--begin", help="incremental read: changes after this instant (exclusive)")
    p.add_argument("--end", help="incremental read: changes up to this instant (inclusive)")
    p.add_argument("--no-meta", action="store_true", help="drop the _hoodie_* meta columns")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success."""
    args = parse_args(argv)
    from featurestore import hudi
    from featurestore.errors import FeatureStoreError
    from featurestore.spark import get_session

    options = {}
    if args.as_of:
        options["as.of.instant"] = args.as_of
    if args.begin:
        options.update({"hoodie.datasource.query.type": "incremental",
                        "hoodie.datasource.read.begin.instanttime": args.begin})
        if args.end:
            options["hoodie.datasource.read.end.instanttime"] = args.end
    spark = get_session(app_name="featurestore-hudi-read")
    try:
        df = hudi.read(spark, args.table, options)
        if args.no_meta:
            df = df.drop(*[c for c in df.columns if c.startswith("_hoodie_")])
        df.write.mode("overwrite").format(args.format).save(args.output)
        print(f"hudi_read: wrote {args.output} ({args.format})", file=sys.stderr)
    except (FeatureStoreError, OSError) as exc:
        print(f"hudi_read: error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
