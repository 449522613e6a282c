"""The quick start job end to end: `./spark-submit.sh jobs/quickstart.py` on embedded defaults
(SQLite registry and online store) on the standalone cluster, followed there by the other jobs, and
the same story with the online store in MariaDB."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config

REPO = Path(__file__).resolve().parent.parent


def _check_story(text: str, warehouse: Path) -> None:
    assert "== commits of customer_activity" in text
    assert "== time travel: 200 customers changed spend_7d" in text
    assert "a bad batch was rejected, nothing written" in text and "isNonNegative(spend_7d)" in text
    assert "== feature vector of customer 42 (online):" in text and "'country': 'SE'" in text
    assert "training dataset churn v1" in text and "'train'" in text and "'test'" in text
    assert (warehouse / "default" / "reports" / "customer_activity_1.html").is_file()
    assert (warehouse / "default" / "training_datasets" / "churn_1").is_dir()


@pytest.mark.cluster
def test_quickstart_and_the_other_jobs_with_spark_submit_on_the_cluster(spark, cluster, tmp_path):
    """The quick start on embedded defaults submitted to the standalone cluster, then validate,
    compute_statistics, maintenance and wait_for_commit on its store, in one more application."""
    warehouse = tmp_path / "qs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}

    def submit(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "spark-submit.sh"), "--master", cluster.master_url, *argv], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=900)

    done = submit(str(REPO / "jobs" / "quickstart.py"), "--warehouse", str(warehouse))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _check_story(done.stdout, warehouse)
    # its training dataset is cut from a stored spine, read back without Spark's warning about it
    assert "All paths were ignored" not in done.stderr
    assert "online.db" in {p.name for p in warehouse.iterdir()}  # the embedded online store

    fs = FeatureStore(load_config(warehouse / "featurestore.yaml", environ={}), spark=spark)
    fg = fs.get_feature_group("customer_activity")
    commits = sorted(fg.commit_details())
    files_before = sum(1 for _ in Path(fg.location).rglob("*.parquet"))
    jobs = submit(str(REPO / "tests" / "cluster_jobs.py"), str(warehouse), str(tmp_path))
    out = jobs.stdout
    assert jobs.returncode == 0, out[-3000:] + jobs.stderr[-3000:]
    codes = dict(line.split()[1:] for line in out.splitlines() if line.startswith("EXIT "))
    assert codes == {"validate": "0", "compute_statistics": "0", "maintenance": "0", "wait_for_commit": "0"}, out
    lines = out.splitlines()
    assert '"status": "Success"' in out  # validate --json: 200 well-formed rows pass the suite
    assert lines[lines.index("EXIT compute_statistics 0") - 1] == commits[-1]
    assert fg.get_statistics()["kind"] == "table"
    removed = int(lines[lines.index("EXIT maintenance 0") - 1])
    assert removed > 0 and sum(1 for _ in Path(fg.location).rglob("*.parquet")) == files_before - removed
    assert fg.read().count() == 200  # the snapshot is intact after cleaning
    assert lines[lines.index("EXIT wait_for_commit 0") - 1] == commits[-1]


def test_quickstart_with_the_online_store_in_mariadb(spark, mariadb, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("quickstart_job", REPO / "jobs" / "quickstart.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    warehouse = tmp_path / "qs"
    assert job.main(["--warehouse", str(warehouse), "--online-url", mariadb.url()]) == 0
    _check_story(capsys.readouterr().out, warehouse)
    assert "online.db" not in {p.name for p in warehouse.iterdir()}
    conn = mariadb.admin_connection()
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM `featurestore_default`.`customer_activity_1`")
    assert cur.fetchone()[0] == 200
    conn.close()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("not the quick start's")
    assert job.main(["--warehouse", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine" / "keep.txt").exists()
