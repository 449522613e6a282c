"""Smoke-test job: proves a cluster runs feature-store code on its executors.

Sums ``x * x`` for x in [0, n) across the executors, with a function imported from the
``featurestore`` package (shipped by spark-submit.sh), and writes the result as JSON.

    ./spark-submit.sh jobs/smoke.py --n 1000 --output /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the job."""
    p = argparse.ArgumentParser(prog="jobs/smoke.py", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="how many integers to square and sum")
    p.add_argument("--output", required=True, help="JSON file to write the result to")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the job; exit code 0 on success."""
    args = parse_args(argv)
    from featurestore.spark import get_session

    spark = get_session(app_name="featurestore-smoke")
    sc = spark.sparkContext

    def square_with_package(x: int) -> int:
        import featurestore  # fails on an executor that did not get the package

        assert featurestore.__version__
        return x * x

    total = sc.parallelize(range(args.n), 4).map(square_with_package).sum()
    result = {"n": args.n, "sum_of_squares": total, "master": sc.master,
              "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1}
    with open(args.output, "w") as fh:
        json.dump(result, fh)
    print(f"smoke: sum of squares below {args.n} = {total}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
