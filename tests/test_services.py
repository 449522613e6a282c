"""The services the test run starts: Spark session, MariaDB, standalone cluster and jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mysql.connector
import pytest
from mysql.connector import errorcode

from featurestore.config import load_config
from featurestore.spark import session_conf

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_session_is_configured(spark):
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert "mariadb-java-client" in conf.get("spark.jars", "")
    assert spark.range(10).selectExpr("sum(id)").first()[0] == 45


def test_session_conf_applies_config_and_caller_overrides():
    cfg = load_config(environ={}, overrides={"spark.shuffle_partitions": 3, "spark.conf": {"a.b": True}})
    props = session_conf(cfg, master="local[1]", conf={"x.y": 1})
    assert props["spark.master"] == "local[1]"
    assert props["spark.sql.shuffle.partitions"] == "3"
    assert props["spark.sql.session.timeZone"] == "UTC"
    assert props["a.b"] == "true" and props["x.y"] == "1"
    assert props["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"  # spark-defaults.conf


def test_mariadb_accepts_user_and_rejects_wrong_password(mariadb):
    st = mariadb.state()
    conn = mysql.connector.connect(host="127.0.0.1", port=st.port, user=st.user, password=st.password,
                                   database=st.database)
    cur = conn.cursor()
    cur.execute("SELECT CURRENT_USER(), %s", ("ünïcødé",))
    user, echoed = cur.fetchone()
    assert user == f"{st.user}@%" and user != "root@%"
    assert echoed == "ünïcødé"
    conn.close()
    with pytest.raises(mysql.connector.Error) as err:
        mysql.connector.connect(host="127.0.0.1", port=st.port, user=st.user, password=st.password + "x")
    assert err.value.errno == errorcode.ER_ACCESS_DENIED_ERROR


def test_dev_db_cli_prints_url(mariadb):
    env = {**os.environ}
    out = subprocess.run([str(REPO_ROOT / ".venv/bin/featurestore"), "--json", "dev-db", "url",
                          "--dir", str(mariadb.base_dir)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout)["url"] == mariadb.url()


def test_every_job_prints_help():
    jobs = sorted((REPO_ROOT / "jobs").glob("*.py"))
    assert {j.stem for j in jobs} >= {"ingest", "validate", "compute_statistics", "materialize",
                                      "create_training_dataset", "maintenance", "wait_for_commit", "quickstart"}
    # One through spark-submit (the way users run them); --help needs no Spark, so the rest run directly.
    for job in jobs:
        launcher = [str(REPO_ROOT / "spark-submit.sh")] if job.stem == "ingest" else [sys.executable]
        done = subprocess.run([*launcher, str(job), "--help"], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, (job, done.stderr[-2000:])
        assert "usage:" in done.stdout, job


@pytest.mark.cluster
def test_job_on_standalone_cluster(cluster, tmp_path):
    result_file = tmp_path / "smoke.json"
    done = subprocess.run(
        [str(REPO_ROOT / "spark-submit.sh"), "--master", cluster.master_url,
         str(REPO_ROOT / "jobs" / "smoke.py"), "--n", "2000", "--output", str(result_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["master"] == cluster.master_url
    assert result["executors"] >= 1
    assert result["sum_of_squares"] == sum(x * x for x in range(2000))
