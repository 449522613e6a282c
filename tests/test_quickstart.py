"""The quick start job end to end: `./spark-submit.sh jobs/quickstart.py` on embedded defaults
(SQLite registry and online store), and the same story with the online store in MariaDB."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _check_story(text: str, warehouse: Path) -> None:
    assert "== commits of customer_activity" in text
    assert "== time travel: 200 customers changed spend_7d" in text
    assert "a bad batch was rejected, nothing written" in text and "isNonNegative(spend_7d)" in text
    assert "== feature vector of customer 42 (online):" in text and "'country': 'SE'" in text
    assert "training dataset churn v1" in text and "'train'" in text and "'test'" in text
    assert (warehouse / "quickstart" / "reports" / "customer_activity_1.html").is_file()
    assert (warehouse / "quickstart" / "training_datasets" / "churn_1").is_dir()


def test_quickstart_with_spark_submit_on_embedded_defaults(tmp_path):
    warehouse = tmp_path / "qs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    done = subprocess.run([str(REPO / "spark-submit.sh"), "--master", "local[2]", str(REPO / "jobs" / "quickstart.py"),
                           "--warehouse", str(warehouse)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _check_story(done.stdout, warehouse)
    assert "online.db" in {p.name for p in warehouse.iterdir()}  # the embedded online store


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
    cur.execute("SELECT COUNT(*) FROM `featurestore_quickstart`.`customer_activity_1`")
    assert cur.fetchone()[0] == 200
    conn.close()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("not the quick start's")
    assert job.main(["--warehouse", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine" / "keep.txt").exists()
