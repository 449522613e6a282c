"""Write a dataset into a Hudi copy-on-write table as one commit (upsert by default).

    ./spark-submit.sh jobs/hudi_write.py --source data/ --format parquet --table warehouse/t \
        --option hoodie.table.name=t --option hoodie.datasource.write.recordkey.field=id

Prints the commit as one JSON line; exit code 0 on success, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/hudi_write.py", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="input path (file or folder)")
    p.add_argument("--format", default="parquet", help="input format: parquet, json, csv, orc (default parquet)")
    p.add_argument("--table", required=True, help="Hudi table path")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="Hudi write option, repeatable (e.g. hoodie.datasource.write.operation=delete)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success."""
    args = parse_args(argv)
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"hudi_write: error: --option {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        options[key.strip()] = value.strip()
    from featurestore import hudi
    from featurestore.errors import FeatureStoreError
    from featurestore.spark import get_session

    spark = get_session(app_name="featurestore-hudi-write")
    try:
        reader = spark.read.option("header", "true").option("inferSchema", "true") if args.format == "csv" \
            else spark.read
        df = reader.format(args.format).load(args.source)
        print(f"hudi_write: read {args.source} ({args.format})", file=sys.stderr)
        result = hudi.write(df, args.table, options)
    except (FeatureStoreError, OSError) as exc:
        print(f"hudi_write: error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(json.dumps({"instant": result.instant_time, "operation": result.operation,
                      "inserted": result.rows_inserted, "updated": result.rows_updated,
                      "deleted": result.rows_deleted, "files": result.files_written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
