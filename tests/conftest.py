"""Shared fixtures: one Spark session, one MariaDB server, one standalone cluster per test run.

Every service is real and started by the test run; if one cannot start the tests that need it
error out with the reason (never a skip).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.config import load_config
from featurestore.devcluster import StandaloneCluster
from featurestore.devdb import DevDatabase

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures" / "hudi"

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test run: local[2], 2 shuffle partitions, UTC."""
    from featurestore.spark import get_session

    config = load_config(environ={})
    session = get_session(master="local[2]", app_name="featurestore-tests", config=config,
                          conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory) -> Iterator[DevDatabase]:
    """A throwaway MariaDB on 127.0.0.1 with a real non-root user and a random password."""
    db = DevDatabase(tmp_path_factory.mktemp("mariadb"))
    db.start()
    try:
        yield db
    finally:
        db.destroy()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[StandaloneCluster]:
    """A Spark standalone Master + Worker on 127.0.0.1."""
    c = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster")).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def reference_jvm(tmp_path_factory):
    """The reference JVM: Apache Hudi 1.2's own Spark writer and reader (and Deequ) on Spark 3.5, in a
    sidecar process (reference/sidecar.py). It fails, never skips, when it cannot start."""
    from reference_jvm import ReferenceJVM

    jvm = ReferenceJVM(tmp_path_factory.mktemp("reference-jvm") / "sidecar.log")
    yield jvm
    jvm.close()
