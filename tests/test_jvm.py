"""The JVM jars of the set-up (pom.xml -> jars/ by ./bootstrap.sh) in the test run's one session."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

import pytest
from hudi_helpers import rows_of_spark

from featurestore.config import load_config
from featurestore.errors import ServiceError
from featurestore.spark import (
    DELTA_CATALOG,
    DELTA_EXTENSION,
    HUDI_CATALOG,
    HUDI_EXTENSION,
    HUDI_KRYO_REGISTRATOR,
    KRYO_SERIALIZER,
    JvmArtifact,
    check_jars,
    jars_dir,
    jvm_session_conf,
    pom_artifacts,
    session_conf,
    submit_args,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
HUDI = JvmArtifact("org.apache.hudi", "hudi-spark4.1-bundle_2.13", "1.2.1")
DELTA = JvmArtifact("io.delta", "delta-spark_4.1_2.13", "4.4.0")
MARIADB = JvmArtifact("org.mariadb.jdbc", "mariadb-java-client", "3.5.11")


def _artifact_name(jar: str) -> str:
    """``hadoop-client-api-3.4.2.jar`` -> ``hadoop-client-api`` (as bootstrap.sh strips versions)."""
    return re.sub(r"-[0-9][^-]*(-.*)?\.jar$", "", jar)


# --- the set-up: pom.xml, the jars folder, the check that runs before the JVM -----------------

def test_pom_lists_pinned_artifacts_for_spark_4_1():
    artifacts = pom_artifacts()
    assert [a.coordinate for a in artifacts] == [
        "io.delta:delta-spark_4.1_2.13:4.4.0", "io.delta:delta-storage:4.4.0",
        "org.mariadb.jdbc:mariadb-java-client:3.5.11"]
    # The plain delta-spark_2.13 of 4.4 targets Spark 4.2: never that one.
    assert not any(a.artifact_id == "delta-spark_2.13" for a in artifacts)


def test_jars_folder_holds_every_artifact_and_nothing_pyspark_ships():
    import pyspark

    jars = check_jars(jars_dir(load_config(environ={})))
    names = {p.name for p in jars}
    assert {a.jar_name for a in pom_artifacts()} <= names
    pyspark_jars = {_artifact_name(j) for j in os.listdir(Path(pyspark.__file__).parent / "jars")
                    if j.endswith(".jar")}
    overlap = sorted(n for n in names if _artifact_name(n) in pyspark_jars)
    assert overlap == []
    assert not any(n.startswith(("spark-", "scala-")) for n in names)


def test_missing_jars_folder_is_a_clear_error_before_any_jvm(tmp_path):
    with pytest.raises(ServiceError) as err:
        check_jars(tmp_path / "absent", [HUDI, DELTA])
    message = str(err.value)
    assert "does not exist" in message and str(tmp_path / "absent") in message
    assert HUDI.coordinate in message and DELTA.coordinate in message
    assert "./bootstrap.sh" in message


def test_empty_jars_folder_names_every_missing_artifact(tmp_path):
    with pytest.raises(ServiceError) as err:
        check_jars(tmp_path)
    message = str(err.value)
    for artifact in pom_artifacts():
        assert f"{artifact.coordinate} ({artifact.jar_name})" in message
    assert "./bootstrap.sh" in message


def test_one_missing_artifact_is_named_alone(tmp_path):
    folder = jars_dir(load_config(environ={}))
    for jar in folder.glob("*.jar"):
        if not jar.name.startswith("delta-storage-"):
            (tmp_path / jar.name).symlink_to(jar)
    with pytest.raises(ServiceError) as err:
        check_jars(tmp_path)
    message = str(err.value)
    assert "io.delta:delta-storage:4.4.0 (delta-storage-4.4.0.jar)" in message
    assert "delta-spark_4.1_2.13" not in message and "mariadb" not in message


def test_session_conf_raises_for_a_missing_jar_folder(tmp_path):
    config = load_config(environ={}, overrides={"spark.jars_dir": str(tmp_path / "nowhere")})
    with pytest.raises(ServiceError, match=r"does not exist.*\./bootstrap\.sh"):
        session_conf(config, master="local[1]")


def test_jdbc_jar_setting_replaces_the_folders_connector(tmp_path):
    own = tmp_path / "mariadb-java-client-9.9.9.jar"
    shutil.copy(jars_dir(load_config(environ={})) / MARIADB.jar_name, own)
    jars = session_conf(load_config(environ={}, overrides={"spark.jdbc_jar": str(own)}))["spark.jars"].split(",")
    assert str(own) in jars
    assert not any(j.endswith(MARIADB.jar_name) for j in jars)
    with pytest.raises(ServiceError, match="spark.jdbc_jar"):
        session_conf(load_config(environ={}, overrides={"spark.jdbc_jar": str(tmp_path / "none.jar")}))


def test_session_settings_follow_the_artifacts():
    assert jvm_session_conf([MARIADB]) == {}
    assert jvm_session_conf([DELTA, MARIADB]) == {
        "spark.sql.extensions": DELTA_EXTENSION, "spark.sql.catalog.spark_catalog": DELTA_CATALOG}
    # With Hudi's bundle its catalog is spark_catalog (only one can be); Delta keeps its extension.
    assert jvm_session_conf([HUDI, DELTA]) == {
        "spark.serializer": KRYO_SERIALIZER,
        "spark.kryo.registrator": HUDI_KRYO_REGISTRATOR,
        "spark.sql.extensions": f"{HUDI_EXTENSION},{DELTA_EXTENSION}",
        "spark.sql.catalog.spark_catalog": HUDI_CATALOG,
        "spark.sql.variant.pushVariantIntoScan": "false",
    }


def test_submit_args_carry_every_jar_and_setting():
    args = submit_args(load_config(environ={}))
    assert args[0] == "--jars"
    assert sorted(Path(j).name for j in args[1].split(",")) == sorted(
        p.name for p in jars_dir(load_config(environ={})).glob("*.jar"))
    assert args[2::2] == ["--conf", "--conf"]
    assert sorted(args[3::2]) == [f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
                                  f"spark.sql.extensions={DELTA_EXTENSION}"]


def test_the_session_has_every_jar_and_the_settings(spark):
    conf = spark.sparkContext.getConf()
    on_classpath = {Path(j).name for j in conf.get("spark.jars").split(",")}
    assert {p.name for p in jars_dir(load_config(environ={})).glob("*.jar")} <= on_classpath
    assert spark.conf.get("spark.sql.extensions") == DELTA_EXTENSION
    assert spark.conf.get("spark.sql.catalog.spark_catalog") == DELTA_CATALOG


# --- Delta Lake: Spark's writer and reader, time travel, delta-rs as the oracle ---------------

DELTA_SCHEMA = "id int, name string, v double, ts timestamp"


def _delta_rows(table) -> list[tuple]:
    return sorted(((r["id"], r["name"], r["v"], r["ts"].replace(tzinfo=None) if r["ts"] else None)
                   for r in table.to_pylist()), key=repr)


def test_delta_write_time_travel_and_delta_rs_agree(spark, tmp_path):
    import deltalake
    from delta.tables import DeltaTable

    path = str(tmp_path / "delta")
    ts = T0.replace(tzinfo=None)
    v0 = [(1, "alpha", 1.0, ts), (2, None, None, ts), (3, "ünïcødé", 3.5, None)]
    spark.createDataFrame(v0, DELTA_SCHEMA).write.format("delta").save(path)
    v1_added = [(4, "delta", -0.0, ts + dt.timedelta(days=1)), (4, "delta", -0.0, ts + dt.timedelta(days=1))]
    spark.createDataFrame(v1_added, DELTA_SCHEMA).write.format("delta").mode("append").save(path)

    expected_v0 = sorted(v0, key=repr)
    expected_v1 = sorted(v0 + v1_added, key=repr)  # an append keeps duplicates
    cols = ["id", "name", "v", "ts"]
    assert rows_of_spark(spark.read.format("delta").option("versionAsOf", 0).load(path), cols) == expected_v0
    assert rows_of_spark(spark.read.format("delta").load(path), cols) == expected_v1
    assert [r.version for r in DeltaTable.forPath(spark, path).history().orderBy("version").collect()] == [0, 1]

    assert _delta_rows(deltalake.DeltaTable(path).to_pyarrow_table()) == expected_v1
    assert _delta_rows(deltalake.DeltaTable(path, version=0).to_pyarrow_table()) == expected_v0


def test_delta_sql_table_create_insert_select(spark, tmp_path):
    # Works while Delta's catalog is spark_catalog; with Hudi's bundle in the set-up Hudi's catalog
    # takes that place, and this is the Delta SQL that then needs checking again.
    location = str(tmp_path / "delta_sql")
    spark.sql(f"CREATE TABLE jvm_delta_sql (id INT, name STRING) USING delta LOCATION '{location}'")
    try:
        spark.sql("INSERT INTO jvm_delta_sql VALUES (1, 'a'), (2, NULL), (3, 'ç')")
        spark.sql("UPDATE jvm_delta_sql SET name = 'b' WHERE id = 2")
        rows = [tuple(r) for r in spark.sql("SELECT id, name FROM jvm_delta_sql ORDER BY id").collect()]
        assert rows == [(1, "a"), (2, "b"), (3, "ç")]
        # The location is this test's own tmp_path (no user input).
        by_path = spark.sql(f"SELECT count(*) FROM delta.`{location}` VERSION AS OF 1").first()[0]  # noqa: S608
        assert by_path == 3
    finally:
        spark.sql("DROP TABLE IF EXISTS jvm_delta_sql")


def test_local_sessions_size_deltas_state_rebuild_and_file_listing_to_the_shuffle_partitions():
    config = load_config(environ={}, overrides={"spark.shuffle_partitions": 3})
    local = session_conf(config, master="local[2]")
    assert local["spark.databricks.delta.snapshotPartitions"] == "3"
    assert local["spark.sql.sources.parallelPartitionDiscovery.parallelism"] == "3"
    # a cluster keeps Delta's and Spark's own defaults; an explicit setting always wins
    cluster = session_conf(config, master="spark://127.0.0.1:7077")
    assert "spark.databricks.delta.snapshotPartitions" not in cluster
    assert "spark.sql.sources.parallelPartitionDiscovery.parallelism" not in cluster
    mine = session_conf(config, master="local[2]", conf={"spark.databricks.delta.snapshotPartitions": "50"})
    assert mine["spark.databricks.delta.snapshotPartitions"] == "50"
