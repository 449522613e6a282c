"""Feature groups and the registry through the public API, on SQLite and on the test MariaDB."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import mysql.connector
import pytest
from hudi_helpers import hudi_rs, rows_of_arrow, rows_of_spark

import featurestore
from featurestore import FeatureGroupError, FeatureStore
from featurestore.config import load_config
from featurestore.names import NameError_
from featurestore.offline import open_table

UTC = dt.UTC
SCHEMA = "user_id int, region string, clicks long, score double, ts timestamp"
_db_counter = itertools.count()


def ts(h: int) -> dt.datetime:
    return dt.datetime(2024, 3, 1, tzinfo=UTC) + dt.timedelta(hours=h)


@pytest.fixture(params=["sqlite", "mariadb"])
def registry_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    db = request.getfixturevalue("mariadb")
    name = f"registry_{next(_db_counter)}"
    conn = db.admin_connection()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    return db.url().rsplit("/", 1)[0] + f"/{name}"


def store(spark, tmp_path, registry_url: str | None = None, name: str = "default") -> FeatureStore:
    overrides = {"warehouse": str(tmp_path / "warehouse")}
    if registry_url:
        overrides["registry.url"] = registry_url
    return FeatureStore(load_config(environ={}, overrides=overrides), name, spark=spark)


def test_feature_group_lifecycle(spark, tmp_path, registry_url):
    fs = store(spark, tmp_path, registry_url)
    fg = fs.create_feature_group("user_clicks", description="clicks per user", primary_key=["user_id"],
                                 event_time="ts", partition_key=["region"])
    assert (fg.version, fg.primary_key, fg.event_time, fg.partition_key) == (1, ["user_id"], "ts", ["region"])
    assert fg.read().count() == 0 and fg.commit_details() == {}

    first = [(1, "eu", 10, 0.5, ts(0)), (2, "us", 20, 0.25, ts(0)), (3, "eu", 30, None, ts(0))]
    r1 = fg.insert(spark.createDataFrame(first, SCHEMA))
    assert (r1.rows_inserted, r1.rows_updated) == (3, 0)
    second = [(1, "eu", 11, 0.75, ts(5)), (2, "us", 99, 9.9, ts(-5)), (4, "ap", 40, 4.0, ts(1))]  # 2 is late
    r2 = fg.insert(spark.createDataFrame(second, SCHEMA))
    assert (r2.rows_inserted, r2.rows_updated) == (1, 1)
    r3 = fg.delete_records(spark.createDataFrame([(3, "eu")], "user_id int, region string"))
    assert r3.rows_deleted == 1

    cols = ["user_id", "region", "clicks", "score"]
    final = sorted([(1, "eu", 11, 0.75), (2, "us", 20, 0.25), (4, "ap", 40, 4.0)], key=repr)
    assert rows_of_spark(fg.read(), cols) == final
    assert rows_of_arrow(hudi_rs(fg.location), cols) == final
    assert fg.read().columns == ["user_id", "region", "clicks", "score", "ts"]
    assert "_hoodie_commit_time" in fg.read(include_meta=True).columns

    assert rows_of_spark(fg.read(as_of=r1.commit_id), cols) == sorted(
        [(1, "eu", 10, 0.5), (2, "us", 20, 0.25), (3, "eu", 30, None)], key=repr)
    assert rows_of_spark(fg.read(as_of=r2.commit_id), cols) == sorted(
        [(1, "eu", 11, 0.75), (2, "us", 20, 0.25), (3, "eu", 30, None), (4, "ap", 40, 4.0)], key=repr)
    as_time = dt.datetime.strptime(r1.commit_id, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
    assert fg.read(as_of=as_time).count() == 3
    assert rows_of_spark(fg.read_changes(r1.commit_id, r2.commit_id), cols) == sorted(
        [(1, "eu", 11, 0.75), (4, "ap", 40, 4.0)], key=repr)

    details = fg.commit_details()
    assert list(details) == [r3.commit_id, r2.commit_id, r1.commit_id]
    assert details[r2.commit_id]["rowsInserted"] == 1 and details[r2.commit_id]["rowsUpdated"] == 1
    assert details[r3.commit_id]["rowsDeleted"] == 1
    assert list(fg.commit_details(limit=1)) == [r3.commit_id]

    # metadata: schema, descriptions, tags, search, SQL, versions
    assert [f.name for f in fg.features] == ["user_id", "region", "clicks", "score", "ts"]
    fg.update_feature_description("clicks", "number of clicks")
    fg.update_description("clicks per user and region")
    fg.add_tag("owner", {"team": "growth", "since": 2024})
    assert fg.get_tag("owner") == {"team": "growth", "since": 2024}
    again = fs.get_feature_group("user_clicks")
    assert again.description == "clicks per user and region"
    assert again.get_feature("clicks").description == "number of clicks"
    assert [h["name"] for h in fs.search("growth")] == ["user_clicks"]
    assert "feature:clicks" in fs.search("number of")[0]["matched"]
    assert fs.sql("SELECT sum(clicks) AS s FROM user_clicks_1").first().s == 71
    fg.delete_tag("owner")
    assert fg.get_tags() == {}
    with pytest.raises(KeyError, match="no tag 'owner'"):
        fg.get_tag("owner")

    v2 = fs.create_feature_group("user_clicks", primary_key="user_id", event_time="ts")
    assert v2.version == 2 and fs.get_feature_group("user_clicks").version == 2
    assert fs.get_feature_group("user_clicks", 1).id == fg.id
    assert fs.get_or_create_feature_group("user_clicks", version=1).id == fg.id
    assert [(g.name, g.version) for g in fs.get_feature_groups()] == [("user_clicks", 1), ("user_clicks", 2)]

    location = fg.location
    fg.delete()
    assert not os.path.exists(location)
    with pytest.raises(FeatureGroupError, match="'user_clicks' \\(version 1\\) not found"):
        fs.get_feature_group("user_clicks", 1)


def test_bad_input_leaves_table_and_registry_unchanged(spark, tmp_path):
    fs = store(spark, tmp_path)
    fg = fs.create_feature_group("bad_input", primary_key=["user_id"], event_time="ts", partition_key="region")
    fg.insert(spark.createDataFrame([(1, "eu", 1, 1.0, ts(0))], SCHEMA))

    def listing():  # every file below .hoodie (version 9 keeps instants in .hoodie/timeline)
        return sorted(str(p.relative_to(fg.location)) for p in Path(fg.location, ".hoodie").rglob("*"))

    before = (fg.commit_details(), listing())

    def unchanged():
        assert (fg.commit_details(), listing()) == before
        assert fg.read().count() == 1

    with pytest.raises(FeatureGroupError, match="primary key column\\(s\\) 'user_id' missing"):
        fg.insert(spark.createDataFrame([("eu", 1, 1.0, ts(0))], "region string, clicks long, score double, "
                                        "ts timestamp"))
    with pytest.raises(FeatureGroupError, match=r"'user_id' is null in 2 row\(s\)"):
        fg.insert(spark.createDataFrame([(None, "eu", 1, 1.0, ts(0)), (None, "us", 1, 1.0, ts(0)),
                                         (5, "eu", 1, 1.0, ts(0))], SCHEMA))
    with pytest.raises(FeatureGroupError, match="event time column 'ts' must be a timestamp, date or long"):
        fg.insert(spark.createDataFrame([(1, "eu", 1, 1.0, "yesterday")], "user_id int, region string, clicks long, "
                                        "score double, ts string"))
    with pytest.raises(FeatureGroupError, match=r"missing 'score'; changed type 'clicks' \(bigint -> string\)"):
        fg.insert(spark.createDataFrame([(1, "eu", "1", ts(0))], "user_id int, region string, clicks string, "
                                        "ts timestamp"))
    with pytest.raises(FeatureGroupError, match="unknown operation 'merge'"):
        fg.insert(spark.createDataFrame([(1, "eu", 1, 1.0, ts(0))], SCHEMA), operation="merge")
    unchanged()
    with pytest.raises(NameError_, match="feature group name 'Bad-Name' is invalid"):
        fs.create_feature_group("Bad-Name", primary_key=["id"])
    with pytest.raises(FeatureGroupError, match="needs a primary_key"):
        fs.create_feature_group("no_key")
    with pytest.raises(NameError_, match="feature store name"):
        store(spark, tmp_path, name="bad store")
    from pyspark.sql import types as T

    with pytest.raises(FeatureGroupError, match="event time column\\(s\\) 'when' are not features"):
        fs.create_feature_group("declared", primary_key=["id"], event_time="when",
                                features=T.StructType([T.StructField("id", T.IntegerType())]))
    assert [g.name for g in fs.get_feature_groups()] == ["bad_input"]

    # a column the feature group does not have is refused unless evolution is asked for ...
    extra = spark.createDataFrame([(2, "us", 2, 2.0, ts(1), "web")], SCHEMA + ", channel string")
    with pytest.raises(FeatureGroupError, match=r"the data has column\(s\) 'channel' that feature group "
                                                r"'bad_input' v1 does not have"):
        fg.insert(extra)
    unchanged()
    # ... and accepted and recorded with the write option (schema evolution on the same version)
    r = fg.insert(extra, write_options={"schema_evolution": True})
    assert r.rows_inserted == 1
    assert fs.get_feature_group("bad_input").schema.fieldNames()[-1] == "channel"
    assert {(x.user_id, x.channel) for x in fg.read().collect()} == {(1, None), (2, "web")}


def test_feature_stores_are_isolated_and_registry_reconciles(spark, tmp_path):
    a = store(spark, tmp_path, name="team_a")
    b = store(spark, tmp_path, name="team_b")
    fa = a.create_feature_group("shared_name", primary_key=["user_id"], event_time="ts")
    fb = b.create_feature_group("shared_name", primary_key=["user_id"], event_time="ts")
    fa.insert(spark.createDataFrame([(1, "eu", 1, 1.0, ts(0))], SCHEMA))
    fb.insert(spark.createDataFrame([(2, "us", 2, 2.0, ts(0)), (3, "us", 3, 3.0, ts(0))], SCHEMA))
    assert fa.location != fb.location
    assert [x.user_id for x in fa.read().collect()] == [1]
    assert sorted(x.user_id for x in fb.read().collect()) == [2, 3]
    assert [g.id for g in a.get_feature_groups()] == [fa.id]

    # a commit that reached the timeline but not the registry (a crash between the two) is reconciled
    result = open_table(a, fa.record).write(spark.createDataFrame([(9, "eu", 9, 9.0, ts(9))], SCHEMA), "upsert")
    assert result.commit_id in fa.commit_details()
    assert fa.commit_details()[result.commit_id]["rowsInserted"] == 1
    # commit_details() is a read: it shows the missing commit without writing the registry ...
    assert result.commit_id not in {c["commit_id"] for c in a.registry.list_commits(fa.id)}
    # ... and the next write records it, once
    fa.insert(spark.createDataFrame([(1, "eu", 2, 1.0, ts(1))], SCHEMA))
    recorded = [c["commit_id"] for c in a.registry.list_commits(fa.id)]
    assert recorded.count(result.commit_id) == 1 and len(recorded) == 3


def test_connect_out_of_the_box(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(var)
    fs = featurestore.connect(spark=spark)
    assert fs.config.warehouse == tmp_path / "warehouse"
    fg = fs.get_or_create_feature_group("quick", primary_key=["user_id"], event_time="ts")
    assert fs.get_or_create_feature_group("quick", primary_key=["user_id"], event_time="ts").id == fg.id
    fg.insert(spark.createDataFrame([(1, "eu", 1, 1.0, ts(0))], SCHEMA))
    assert (tmp_path / "warehouse" / "registry.db").is_file()
    assert featurestore.connect(spark=spark).get_feature_group("quick").read().count() == 1


def test_external_feature_group_on_mariadb(spark, tmp_path, mariadb, monkeypatch):
    st = mariadb.state()
    conn = mysql.connector.connect(host="127.0.0.1", port=st.port, user=st.user, password=st.password,
                                   database=st.database)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS profiles (user_id INT PRIMARY KEY, country VARCHAR(8), age INT)")
    cur.execute("DELETE FROM profiles")
    cur.executemany("INSERT INTO profiles VALUES (%s, %s, %s)", [(1, "fr", 30), (2, "jp", None), (3, "ü", 50)])
    conn.commit()
    conn.close()
    monkeypatch.setenv("TEST_PROFILES_PASSWORD", st.password)
    fs = store(spark, tmp_path)
    fs.create_jdbc_connector("profiles_db", mariadb.jdbc_url(), user=st.user, password_env="TEST_PROFILES_PASSWORD")
    ext = fs.create_external_feature_group("profiles", None, "SELECT user_id, country, age FROM profiles",
                                           "profiles_db", primary_key="user_id")
    assert sorted((r.user_id, r.country, r.age) for r in ext.read().collect()) == [(1, "fr", 30), (2, "jp", None),
                                                                                   (3, "ü", 50)]
    clicks = fs.create_feature_group("clicks", primary_key=["user_id"], event_time="ts")
    clicks.insert(spark.createDataFrame([(1, "eu", 5, 1.0, ts(0)), (3, "eu", 7, 1.0, ts(0))], SCHEMA))
    joined = fs.sql("SELECT c.user_id, c.clicks, p.country FROM clicks_1 c JOIN profiles_1 p USING (user_id)")
    assert sorted((r.user_id, r.clicks, r.country) for r in joined.collect()) == [(1, 5, "fr"), (3, 7, "ü")]
    with pytest.raises(FeatureGroupError, match="read-only"):
        ext.insert(spark.createDataFrame([(1, "eu", 1, 1.0, ts(0))], SCHEMA))
    assert fs.get_feature_group("profiles").read().count() == 3


@pytest.mark.cluster
def test_ingest_job_on_cluster(spark, tmp_path, cluster):
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    warehouse = tmp_path / "warehouse"
    config = tmp_path / "fs.yaml"
    config.write_text(f"warehouse: {warehouse}\n")
    source = tmp_path / "clicks"
    spark.createDataFrame([(1, "eu", 3, 0.5, ts(0)), (2, "us", 4, 0.1, ts(0))], SCHEMA).write.parquet(str(source))

    def ingest(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(repo / "spark-submit.sh"), "--master", cluster.master_url,
                               str(repo / "jobs" / "ingest.py"), "--config", str(config), *extra],
                              capture_output=True, text=True, timeout=600, cwd=repo)

    done = ingest("--feature-group", "user_clicks", "--source", str(source),
                  "--transform", "SELECT user_id, region, clicks * 10 AS clicks, score, ts FROM source")
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit hands the Python driver's stderr to its own stdout: look at both
    log = [line for line in (done.stdout + done.stderr).splitlines() if " ingest [" in line]
    created = "[feature-group] created user_clicks v1 from conf/feature_groups/user_clicks.yaml"
    assert any(created in x for x in log), log
    fs = FeatureStore(load_config(config, environ={}), spark=spark)
    fg = fs.get_feature_group("user_clicks")
    assert fg.partition_key == ["region"] and fg.get_feature("clicks").description == "number of clicks in the window"
    assert sorted((r.user_id, r.clicks) for r in fg.read().collect()) == [(1, 30), (2, 40)]
    assert list(fg.commit_details()) == [done.stdout.strip().splitlines()[-1]]

    bad = ingest("--feature-group", "user_clicks", "--source", str(source), "--transform",
                 "SELECT CAST(NULL AS INT) AS user_id, region, clicks, score, ts FROM source")
    assert bad.returncode == 1
    assert ("ingest: error: key columns of feature group 'user_clicks' v1 cannot be null: 'user_id' is null in "
            "2 row(s); nothing was written") in bad.stdout + bad.stderr
    missing = ingest("--feature-group", "nope", "--source", str(source))
    assert missing.returncode == 1
    assert ("ingest: error: feature group 'nope' does not exist and there is no definition at "
            "conf/feature_groups/nope.yaml") in missing.stdout + missing.stderr


def test_migration_7_records_format_and_engine_of_existing_feature_groups(spark, tmp_path, registry_url):
    from sqlalchemy import text

    from featurestore.registry import Registry

    fs = store(spark, tmp_path, registry_url)
    fs.create_feature_group("legacy", primary_key=["id"])
    assert fs.registry.schema_version() >= 7
    # make the database as it was at migration 6: the two columns gone, version 7 not applied
    with fs.registry.engine.begin() as conn:
        conn.execute(text("ALTER TABLE feature_groups DROP COLUMN table_format"))
        conn.execute(text("ALTER TABLE feature_groups DROP COLUMN engine"))
        conn.execute(text("DELETE FROM registry_schema_version WHERE version >= 7"))
    fs.close()
    upgraded = Registry(registry_url)
    try:
        assert upgraded.schema_version() >= 7
        row = upgraded.find_feature_group(fs.id, "legacy", 1)
        assert (row["table_format"], row["engine"]) == ("HUDI", "native")
    finally:
        upgraded.engine.dispose()
    reopened = store(spark, tmp_path, registry_url).get_feature_group("legacy", 1)
    assert (reopened.record.table_format, reopened.record.engine) == ("HUDI", "native")


def test_a_nondeterministic_source_gives_validation_and_write_the_same_rows(spark, tmp_path):
    import random

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from featurestore.quality import Check, CheckLevel

    fs = store(spark, tmp_path)
    fg = fs.create_feature_group("draws", primary_key=["id"])
    fg.save_expectation_suite([Check(CheckLevel.Warning, "draws").hasSum("v", ">= 0").hasMax("v", "<= 1000000")],
                              validation_policy="ALWAYS")
    # a new value every time the plan runs: evaluated twice, validation and write would see different rows
    draw = F.udf(lambda _: random.randint(0, 1_000_000), T.IntegerType()).asNondeterministic()
    source = spark.range(300).select(F.col("id").cast("int").alias("id"), draw(F.col("id")).alias("v"))
    result = fg.insert(source)
    validated = {r.metric: r.value for r in result.validation.results}
    written = fg.read().agg(F.sum("v").alias("sum"), F.max("v").alias("max"), F.count("*").alias("n")).first()
    assert written.n == 300
    assert validated["Sum(v)"] == written.sum and validated["Maximum(v)"] == written.max


def test_feature_types_read_as_people_write_them(spark, tmp_path, registry_url):
    from featurestore.model.records import Feature

    fs = store(spark, tmp_path, registry_url)
    fg = fs.create_feature_group("typed", primary_key=["id"])
    fg.insert(spark.createDataFrame([(1, 2.5, ["a"], None)], "id int, amount double, tags array<string>, "
                                                             "price decimal(10,2)"))
    reopened = store(spark, tmp_path, registry_url).get_feature_group("typed")
    assert [(f.name, f.type) for f in reopened.features] == [
        ("id", "int"), ("amount", "double"), ("tags", "array<string>"), ("price", "decimal(10,2)")]
    assert reopened.get_feature("amount").type == "double"
    # DDL and Spark's JSON both make the same feature; the registry keeps the JSON
    ddl, from_json = Feature("tags", "array<string>"), Feature("tags", reopened.get_feature("tags").type_json)
    assert ddl == from_json and ddl.to_dict()["type"] == reopened.get_feature("tags").type_json
