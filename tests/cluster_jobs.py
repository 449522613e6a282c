"""Runs four jobs, one after another, in ONE Spark application submitted to the standalone cluster
(by tests/test_quickstart.py): validate, compute_statistics, maintenance and wait_for_commit against
the store the quick start job made. Each job's own ``main`` runs, exactly as under its own
spark-submit (``run_job`` leaves the application's session running between them); one application
instead of four saves the cost of starting a driver and executors per job.

    spark-submit tests/cluster_jobs.py <quick start warehouse> <work folder>

Prints ``EXIT <job> <code>`` per job and the jobs' own output.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(warehouse: str, work: str) -> int:
    from featurestore.spark import get_session

    get_session()  # the application's session (spark-submit's master), shared by the jobs below
    config = str(Path(warehouse) / "featurestore.yaml")
    common = ["--config", config, "--feature-store", "default"]
    sample = Path(work) / "activity.json"
    sample.write_text("\n".join(json.dumps({"customer_id": i, "ts": "2024-05-01T00:00:00", "spend_7d": i / 10,
                                            "orders_7d": i % 5}) for i in range(1, 201)) + "\n")
    runs = [
        ("validate", ["--feature-group", "customer_activity", "--source", str(sample), "--format", "json", "--json"]),
        ("compute_statistics", ["--feature-group", "customer_activity", "--histograms"]),
        ("maintenance", ["--all", "--retain-commits", "1", "--vacuum-rejected-days", "0"]),
        ("wait_for_commit", ["--feature-group", "customer_activity", "--after", "2000-01-01 00:00:00",
                             "--timeout", "0"]),
    ]
    for name, argv in runs:
        code = load(name).main([*argv, *common])
        print(f"EXIT {name} {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
