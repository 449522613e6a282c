"""The online store end to end on SQLite and on the test MariaDB: materialization (full,
incremental, deletes, out-of-order events, failures and reruns, TTL), write-through, serving,
read-only credentials, the HTTP server and the job on the standalone cluster."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mariadb as mariadb_driver
import mysql.connector
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.errors import FeatureGroupError
from featurestore.offline import open_table
from featurestore.online import OnlineStoreError

REPO = Path(__file__).resolve().parent.parent
_stores = itertools.count()
T0 = dt.datetime(2024, 3, 1)
D = decimal.Decimal
ALL_TYPES = ("uid int, name string, score double, ratio float, amount decimal(38,10), big long, flag boolean, "
             "day date, ts timestamp, raw binary, tags array<string>, attrs map<string,int>, "
             "pos struct<x:int,label:string>")


def make_store(spark, tmp_path, backend: str, request, **extra) -> FeatureStore:
    """A feature store with its own online namespace (SQLite file, or a MariaDB database)."""
    overrides = {"warehouse": str(tmp_path / "warehouse"), "online.batch_size": 2, **extra}
    if backend == "mariadb" and "online.url" not in overrides:
        overrides["online.url"] = request.getfixturevalue("mariadb").url()
    return FeatureStore(load_config(environ={}, overrides=overrides), f"s{next(_stores)}", spark=spark)


@pytest.fixture(params=["sqlite", "mariadb"])
def backend(request) -> str:
    return request.param


def row(uid, name, score, ts, amount=None, tags=None, **kw):
    """One row of ALL_TYPES as a tuple (the remaining columns from ``kw`` or null)."""
    return (uid, name, score, kw.get("ratio"), amount, kw.get("big"), kw.get("flag"), kw.get("day"), ts,
            kw.get("raw"), tags, kw.get("attrs"), kw.get("pos"))


COLUMNS = [c.split(" ")[0] for c in ALL_TYPES.split(", ")]


def expected_vector(r: tuple) -> dict:
    """What serving must return for an input row, computed from the input (not from the store)."""
    out = dict(zip(COLUMNS, r, strict=True))
    if out["score"] is not None and math.isnan(out["score"]):
        out["score"] = None  # documented: NaN is stored as NULL
    if out["pos"] is not None:
        out["pos"] = {"x": out["pos"][0], "label": out["pos"][1]}
    if out["ratio"] is not None:
        import struct

        out["ratio"] = struct.unpack("f", struct.pack("f", out["ratio"]))[0]  # float32, as Spark keeps it
    if out["amount"] is not None:
        out["amount"] = out["amount"].quantize(D("1e-10"), context=decimal.Context(prec=60))
    if out["raw"] is not None:
        out["raw"] = bytes(out["raw"])
    return out


def spark_rows(df) -> list[dict]:
    out = []
    for r in df.collect():
        d = r.asDict(recursive=True)
        if d.get("raw") is not None:
            d["raw"] = bytes(d["raw"])
        if d.get("score") is not None and math.isnan(d["score"]):
            d["score"] = None
        out.append(d)
    return sorted(out, key=lambda d: d["uid"])


SEED = [
    row(1, "ä€😀 unicode", 1.5, T0, D("12345678901234567890123456.0123456789"), ["a", None, "ü"],
        ratio=0.1, big=2**62, flag=True, day=dt.date(2024, 2, 29), raw=bytearray(b"\x00\xff"), attrs={"k": 1},
        pos=(3, "x")),
    row(2, None, float("nan"), T0, None, [], flag=False, attrs={}),
    row(3, "three", -0.0, T0 + dt.timedelta(microseconds=123456), D("-1.5"), None, big=-(2**63)),
    row(4, "four", 4.0, T0, None, None),
]


def vectors(fs, fg, uids):
    return fs.get_feature_vectors(fg, [{"uid": u} for u in uids])


def test_full_and_incremental_materialization_equal_offline(spark, tmp_path, backend, request):
    fs = make_store(spark, tmp_path, backend, request)
    fg = fs.create_feature_group("items", primary_key="uid", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame(SEED, ALL_TYPES), storage="offline")
    assert fs.get_feature_vector(fg, {"uid": 1}) == {c: (1 if c == "uid" else None) for c in COLUMNS}

    report = fs.materialize(fg, "incremental")  # no mark yet: runs full
    assert (report["mode"], report["rows"], report["deleted"]) == ("full", 4, 0)
    expected = {r[0]: expected_vector(r) for r in SEED}
    assert vectors(fs, fg, [1, 2, 3, 4, 5]) == [expected[1], expected[2], expected[3], expected[4],
                                                {c: (5 if c == "uid" else None) for c in COLUMNS}]
    assert spark_rows(fg.read(online=True)) == [expected[u] for u in (1, 2, 3, 4)]
    assert spark_rows(fg.read(online=True)) == spark_rows(fg.read())

    # offline only: an update, a late (older) event that Hudi ignores, a new key, then a delete
    late = row(1, "late", 0.0, T0 - dt.timedelta(days=1))
    update = row(3, "three v2", 3.5, T0 + dt.timedelta(hours=1), D("2.25"), ["z"])
    new = row(5, "five", 5.0, T0)
    fg.insert(spark.createDataFrame([late, update, new], ALL_TYPES), storage="offline")
    assert vectors(fs, fg, [3])[0] == expected[3]  # not online until materialized
    report = fs.materialize(fg, "incremental")
    assert (report["mode"], report["rows"], report["deleted"]) == ("incremental", 2, 0)
    expected.update({3: expected_vector(update), 5: expected_vector(new)})
    assert vectors(fs, fg, [1, 2, 3, 4, 5]) == [expected[u] for u in (1, 2, 3, 4, 5)]

    fg.insert(spark.createDataFrame([row(2, "two v2", 2.0, T0 + dt.timedelta(hours=2))], ALL_TYPES),
              storage="offline")
    offline_delete = spark.createDataFrame([(4,)], "uid int")

    open_table(fs, fg.record).write(offline_delete, "delete")  # offline only: no write-through
    report = fs.materialize(fg)
    assert (report["rows"], report["deleted"]) == (1, 1)
    expected[2] = expected_vector(row(2, "two v2", 2.0, T0 + dt.timedelta(hours=2)))
    del expected[4]
    assert spark_rows(fg.read(online=True)) == [expected[u] for u in (1, 2, 3, 5)]
    assert spark_rows(fg.read(online=True)) == spark_rows(fg.read())
    again = fs.materialize(fg)  # nothing new: idempotent
    assert (again["rows"], again["deleted"], again["begin"]) == (0, 0, report["end"])

    # full removes online keys that are not offline, and rewrites changed rows
    fg.insert(spark.createDataFrame([row(9, "online only", 9.0, T0)], ALL_TYPES), storage="online")
    assert fs.get_feature_vector(fg, {"uid": 9})["name"] == "online only"
    report = fs.materialize(fg, "full")
    assert (report["rows"], report["deleted"]) == (4, 1)
    assert spark_rows(fg.read(online=True)) == spark_rows(fg.read())


def test_write_through_ordering_and_deletes(spark, tmp_path, backend, request):
    fs = make_store(spark, tmp_path, backend, request)
    fg = fs.create_feature_group("clicks", primary_key="uid", event_time="ts", online_enabled=True)
    result = fg.insert(spark.createDataFrame([row(1, "a", 1.0, T0), row(2, "b", 2.0, T0),
                                              row(2, "b later", 2.5, T0 + dt.timedelta(minutes=1))], ALL_TYPES))
    assert result.storage == "offline+online" and result.details["online"]["rows"] == 2
    assert [v["name"] for v in vectors(fs, fg, [1, 2])] == ["a", "b later"]

    # online only: an older event never overwrites a newer one; a newer one does; duplicates -> latest
    fg.insert(spark.createDataFrame([row(1, "older", 0.0, T0 - dt.timedelta(hours=1)),
                                     row(2, "newer", 3.0, T0 + dt.timedelta(hours=1)),
                                     row(2, "newest", 4.0, T0 + dt.timedelta(hours=2)),
                                     row(3, "new", 1.0, None)], ALL_TYPES), storage="online")
    assert [v["name"] for v in vectors(fs, fg, [1, 2, 3])] == ["a", "newest", "new"]
    assert [r.name for r in fg.read().orderBy("uid").collect()] == ["a", "b later"]
    # same event time as online: the later commit wins (as Hudi's merge does)
    fg.insert(spark.createDataFrame([row(1, "a again", 1.0, T0)], ALL_TYPES))
    assert vectors(fs, fg, [1])[0]["name"] == "a again"

    # an older event written online-only later, then a newer offline event from an earlier commit: the
    # newer event wins and brings its own commit time along (MySQL updates the guard columns last)
    commit = fg.insert(spark.createDataFrame([row(5, "offline newer", 5.0, T0 + dt.timedelta(hours=3))], ALL_TYPES),
                       storage="offline").commit_id
    fg.insert(spark.createDataFrame([row(5, "online older", 0.0, T0)], ALL_TYPES), storage="online")
    assert vectors(fs, fg, [5])[0]["name"] == "online older"
    fs.materialize(fg, "incremental")
    assert vectors(fs, fg, [5])[0]["ts"] == T0 + dt.timedelta(hours=3)
    store = fs.online_store
    conn = store.conn.connect()
    cur = conn.cursor()
    cur.execute(f"SELECT name, _fs_commit_time FROM {store.table(fg)} WHERE uid = 5")  # noqa: S608 - test
    fetched = [tuple(v.decode() if isinstance(v, (bytes, bytearray)) else v for v in r) for r in cur.fetchall()]
    assert fetched == [("offline newer", commit)]
    conn.close()

    deleted = fg.delete_records(spark.createDataFrame([(1,), (7,)], "uid int"))
    assert deleted.details["online"] == {"deleted": 1}
    assert vectors(fs, fg, [1])[0]["name"] is None
    with pytest.raises(KeyError, match="uid=1"):
        fs.get_feature_vector(fg, {"uid": 1}, on_missing="raise")


def test_composite_keys_multi_group_vectors_and_hostile_keys(spark, tmp_path, backend, request):
    fs = make_store(spark, tmp_path, backend, request)
    users = fs.create_feature_group("users", primary_key=["country", "uid"], event_time="ts", online_enabled=True)
    users.insert(spark.createDataFrame(
        [("fr", 1, "Zoé", T0), ("de", 1, "Jörg", T0), ("FR", 1, "upper", T0), ("fr ", 1, "space", T0),
         ("' OR 1=1 --", 2, "sql", T0)], "country string, uid int, name string, ts timestamp"))
    orders = fs.create_feature_group("orders", primary_key="uid", online_enabled=True)
    orders.insert(spark.createDataFrame([(1, 10, D("9.99"))], "uid int, n_orders int, total decimal(10,2)"))

    got = fs.get_feature_vectors(users, [{"country": "fr", "uid": 1}, {"country": "FR", "uid": 1},
                                         {"country": "fr ", "uid": 1}, {"country": "fr", "uid": 2},
                                         {"country": "' OR 1=1 --", "uid": 1}, {"country": "' OR 1=1 --", "uid": 2}],
                                 features=["name"])
    assert got == [{"name": "Zoé"}, {"name": "upper"}, {"name": "space"}, {"name": None}, {"name": None},
                   {"name": "sql"}]
    joined = fs.get_feature_vectors([users, (orders, ["n_orders", "total"])],
                                    [{"country": "de", "uid": 1}, {"country": "de", "uid": 3}])
    assert joined == [{"country": "de", "uid": 1, "name": "Jörg", "ts": T0, "n_orders": 10, "total": D("9.99")},
                      {"country": "de", "uid": 3, "name": None, "ts": None, "n_orders": None, "total": None}]
    query = users.select(["country", "uid", "name"]).join(orders.select(["uid", "total"])) \
        if hasattr(users, "select") else None
    if query is not None:
        assert fs.get_feature_vector(query, {"country": "fr", "uid": 1}) == \
            {"country": "fr", "uid": 1, "name": "Zoé", "total": D("9.99")}
    with pytest.raises(OnlineStoreError, match="key column 'uid' expects int"):
        fs.get_feature_vector(users, {"country": "fr", "uid": "1 OR 1=1"})
    with pytest.raises(OnlineStoreError, match="lacks primary-key column.*'country'"):
        fs.get_feature_vector(users, {"uid": 1})
    with pytest.raises(OnlineStoreError, match=r"an entry must be a mapping of primary-key values, got \['fr', 1\]"):
        fs.get_feature_vectors(users, [{"country": "fr", "uid": 1}, ["fr", 1]])
    with pytest.raises(OnlineStoreError, match=f"key column 'uid' expects int, got {2**70}"):
        fs.get_feature_vector(users, {"country": "fr", "uid": 2**70})
    with pytest.raises(OnlineStoreError, match="key column 'uid' expects int, got None"):
        fs.get_feature_vector(users, {"country": "fr", "uid": None})
    with pytest.raises(OnlineStoreError, match="no feature.*'nope'"):
        fs.get_feature_vector(users, {"country": "fr", "uid": 1}, features=["nope"])


def _fail_on_key(fs, fg, uid: int):
    """A trigger in the online database that makes the write of one key fail (a real failure
    midway through an executor's batches)."""
    store = fs.online_store
    store.ensure_table(fg)
    conn = store.conn.connect()
    cur = conn.cursor()
    table = store.table(fg)
    if store.dialect == "sqlite":
        cur.execute(f"CREATE TRIGGER fail_{uid} BEFORE INSERT ON {table} WHEN NEW.uid = {uid} "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    else:
        cur.execute(f"CREATE TRIGGER fail_{uid} BEFORE INSERT ON {table} FOR EACH ROW "
                    f"IF NEW.uid = {uid} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; "
                    "END IF")
    conn.commit()

    def remove() -> None:
        cur.execute(f"DROP TRIGGER fail_{uid}")
        conn.commit()
        conn.close()

    return remove


def test_failed_materialization_keeps_mark_and_rerun_converges(spark, tmp_path, backend, request):
    fs = make_store(spark, tmp_path, backend, request)
    fg = fs.create_feature_group("events", primary_key="uid", event_time="ts", online_enabled=True)
    first = [row(u, f"v1-{u}", float(u), T0) for u in range(1, 9)]
    fg.insert(spark.createDataFrame(first, ALL_TYPES), storage="offline")
    done = fs.materialize(fg)
    mark = fs.registry.online_state(fg.id)["last_commit"]
    assert mark == done["end"]

    second = [row(u, f"v2-{u}", u * 10.0, T0 + dt.timedelta(hours=1)) for u in range(1, 9)] + \
        [row(u, f"v2-{u}", 0.0, T0) for u in (20, 21)]
    fg.insert(spark.createDataFrame(second, ALL_TYPES).repartition(1).sortWithinPartitions("uid"), storage="offline")
    remove = _fail_on_key(fs, fg, 21)
    with pytest.raises(OnlineStoreError, match="injected failure"):
        fs.materialize(fg)
    assert fs.registry.online_state(fg.id)["last_commit"] == mark  # the mark did not move
    served = [v["name"] for v in vectors(fs, fg, range(1, 9))]
    assert any(n.startswith("v2") for n in served)  # batches before the failure were committed
    remove()
    report = fs.materialize(fg)
    assert report["begin"] == mark
    assert spark_rows(fg.read(online=True)) == spark_rows(fg.read())
    assert [v["name"] for v in vectors(fs, fg, [1, 8, 20, 21])] == ["v2-1", "v2-8", "v2-20", "v2-21"]


def test_both_drivers_serve_the_same_vectors_and_long_keys(spark, tmp_path, mariadb):
    url = mariadb.url()
    fs = make_store(spark, tmp_path, "mariadb", None, **{"online.url": url})
    assert fs.online_store.conn.driver == "mariadb"  # auto: the C connector is installed by the set-up command
    fg = fs.create_feature_group("items", primary_key="uid", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame(SEED, ALL_TYPES), storage="offline")
    fs.materialize(fg)
    pure = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse"), "online.url": url,
                                                           "online.driver": "mysql-connector"}), fs.name, spark=spark)
    assert pure.online_store.conn.driver == "mysql-connector"
    expected = [expected_vector(r) for r in SEED] + [{c: (5 if c == "uid" else None) for c in COLUMNS}]
    assert vectors(fs, fg, [1, 2, 3, 4, 5]) == expected
    assert vectors(pure, pure.get_feature_group("items"), [1, 2, 3, 4, 5]) == expected
    with pytest.raises(OnlineStoreError, match="online.driver: unknown driver 'odbc'"):
        _ = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "warehouse"),
                                                            "online.url": url, "online.driver": "odbc"}),
                         fs.name, spark=spark).online_store

    # key columns share InnoDB's 3,072-byte index: one string key holds 768 characters (4-byte ones too),
    # next to a long key (8 bytes) each of two string keys holds (3072 - 8) // 2 // 4 = 383
    single = fs.create_feature_group("long1", primary_key="k", event_time="ts", online_enabled=True)
    both = fs.create_feature_group("long2", primary_key=["n", "a", "b"], event_time="ts", online_enabled=True)
    k768 = "é" * 700 + "😀" * 68
    single.insert(spark.createDataFrame([(k768, T0, 1), (k768[:-1], T0, 2)], "k string, ts timestamp, v int"))
    a, b = "ü" * 383, "😀" * 383
    both.insert(spark.createDataFrame([(1, a, b, T0, 3)], "n long, a string, b string, ts timestamp, v int"))
    fs.materialize(single)
    fs.materialize(both)
    assert [v["v"] for v in fs.get_feature_vectors(single, [{"k": k768}, {"k": k768[:-1]}, {"k": k768 + "x"}])] == \
        [1, 2, None]
    assert fs.get_feature_vector(both, {"n": 1, "a": a, "b": b})["v"] == 3
    mark = fs.registry.online_state(single.id)["last_commit"]
    # a key over the limit is refused at insert, even offline only: it would block every materialization
    with pytest.raises(FeatureGroupError, match=r"'k' has a value of length 769 \(limit 768\)"):
        single.insert(spark.createDataFrame([(k768 + "x", T0, 9)], "k string, ts timestamp, v int"),
                      storage="offline")
    fs.materialize(single)
    assert fs.registry.online_state(single.id)["last_commit"] == mark
    assert fs.get_feature_vector(single, {"k": k768})["v"] == 1


def test_online_ttl_hides_and_purges_old_rows(spark, tmp_path, backend, request):
    fs = make_store(spark, tmp_path, backend, request)
    with pytest.raises(Exception, match="online_ttl needs an event_time"):
        fs.create_feature_group("nottl", primary_key="uid", online_ttl=60)
    fg = fs.create_feature_group("fresh", primary_key="uid", event_time="ts", online_enabled=True,
                                 online_ttl=dt.timedelta(days=1))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    fg.insert(spark.createDataFrame([row(1, "recent", 1.0, now - dt.timedelta(hours=1)),
                                     row(2, "stale", 2.0, now - dt.timedelta(days=2))], ALL_TYPES))
    assert [v["name"] for v in vectors(fs, fg, [1, 2])] == ["recent", None]  # stored but not served
    report = fs.materialize(fg, "full")
    assert report["expired"] == 1
    assert [r["uid"] for r in spark_rows(fg.read(online=True))] == [1]


def test_read_only_user_serves_but_cannot_materialize(spark, tmp_path, mariadb, request):
    writer = make_store(spark, tmp_path, "mariadb", request)
    fg = writer.create_feature_group("ro", primary_key="uid", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame([row(1, "one", 1.0, T0)], ALL_TYPES))
    database = writer.online_store.conn.database
    user = f"reader_{writer.name}"
    admin = mariadb.admin_connection()
    cur = admin.cursor()
    cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, "%", "ro-secret"))
    cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@%s", (user, "%"))
    admin.close()
    port = mariadb.state().port
    ro_config = load_config(environ={}, overrides={
        "warehouse": str(tmp_path / "warehouse"), "online.url": f"mysql+mysqlconnector://{user}@127.0.0.1:{port}/featurestore",
        "online.password": "ro-secret"})
    reader = FeatureStore(ro_config, writer.name, spark=spark)
    ro_fg = reader.get_feature_group("ro")
    assert reader.get_feature_vector(ro_fg, {"uid": 1})["name"] == "one"
    fg.insert(spark.createDataFrame([row(2, "two", 2.0, T0)], ALL_TYPES), storage="offline")
    mark = reader.registry.online_state(fg.id)
    with pytest.raises(OnlineStoreError) as err:
        reader.materialize(ro_fg, "full")
    assert "denied" in str(err.value) and "ro-secret" not in str(err.value)
    assert reader.registry.online_state(fg.id) == mark
    assert reader.get_feature_vector(ro_fg, {"uid": 2})["name"] is None
    # and the user really cannot write
    with pytest.raises((mysql.connector.Error, mariadb_driver.Error), match="DELETE command denied"):
        conn = reader.online_store.conn.connect()
        conn.cursor().execute(f"DELETE FROM `{database}`.`ro_1`")  # noqa: S608 - test identifiers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_feature_server_end_to_end(spark, tmp_path):
    config = tmp_path / "fs.yaml"
    config.write_text(f"warehouse: {tmp_path / 'warehouse'}\n")
    fs = FeatureStore(load_config(config, environ={}), "web", spark=spark)
    fg = fs.create_feature_group("profiles", primary_key="uid", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame([row(1, "Zoé", 1.5, T0, D("2.50"), ["a"], day=dt.date(2024, 1, 2))], ALL_TYPES))
    blank = fs.create_feature_group("blank", primary_key="uid", online_enabled=True)  # created, never written
    never_written = "feature group 'blank' v1 has no features yet (insert data first); nothing can be served from it"
    with pytest.raises(OnlineStoreError) as refused:
        fs.get_feature_vector(blank, {"uid": 1})
    assert str(refused.value) == never_written
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    bad = subprocess.run([str(Path(sys.executable).with_name("featurestore")), "--config", str(config), "serve",
                          "--workers", "0"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--workers must be at least 1, got 0" in bad.stderr  # a usage error
    # two worker processes on one port (each opens the feature store from the config file)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("featurestore")), "--config", str(config), "serve",
                             "--port", str(port), "--store", "web", "--workers", "2"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                status, health = _http(base + "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.1)
        assert (status, health) == (200, {"status": "ok", "feature_store": "web"})
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2, children  # uvicorn's supervisor runs the workers (and a resource tracker)
        for _ in range(4):  # whichever worker takes a request answers the same
            assert _http(base + "/health") == (200, {"status": "ok", "feature_store": "web"})
        status, body = _http(base + "/feature-vectors", {"feature_group": "profiles", "version": 1,
                                                         "entries": [{"uid": 1}, {"uid": "' OR 1=1 --"}],
                                                         "features": ["uid", "name", "amount", "ts", "day", "tags"]})
        assert status == 400 and "key column 'uid' expects int" in body["error"]
        status, body = _http(base + "/feature-vectors", {
            "feature_group": "profiles", "entries": [{"uid": 1}, {"uid": 2}],
            "features": ["uid", "name", "amount", "ts", "day", "tags"]})
        assert status == 200
        assert body == {"vectors": [{"uid": 1, "name": "Zoé", "amount": "2.5000000000", "ts": "2024-03-01T00:00:00",
                                     "day": "2024-01-02", "tags": ["a"]},
                                    {"uid": 2, "name": None, "amount": None, "ts": None, "day": None, "tags": None}]}
        assert _http(base + "/feature-vectors", b"{not json")[0] == 400
        assert _http(base + "/feature-vectors", {"entries": []})[0] == 400
        status, body = _http(base + "/feature-vectors", {"feature_group": "nope", "entries": [{"uid": 1}]})
        assert status == 404 and "'nope'" in body["error"]
        status, body = _http(base + "/feature-vectors", {"feature_group": "profiles", "entries": [{"uid": 2}],
                                                         "on_missing": "raise"})
        assert status == 404 and "uid=2" in body["error"]
        assert _http(base + "/other")[0] == 404
        assert _http(base + "/feature-vectors", {"feature_group": "blank", "entries": [{"uid": 1}]}) == (
            400, {"error": never_written})
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.cluster
def test_materialize_job_on_cluster(spark, tmp_path, cluster, mariadb):
    config = tmp_path / "fs.yaml"
    config.write_text(f"warehouse: {tmp_path / 'warehouse'}\nonline:\n  url: {mariadb.url()}\n")
    fs = FeatureStore(load_config(config, environ={}), "jobs", spark=spark)
    fg = fs.create_feature_group("scores", primary_key="uid", event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame([row(u, f"n{u}", float(u), T0) for u in range(10)], ALL_TYPES), storage="offline")
    other = fs.create_feature_group("other", primary_key="uid", online_enabled=True)
    other.insert(spark.createDataFrame([(1, 1.0)], "uid int, v double"), storage="offline")

    def job(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "spark-submit.sh"), "--master", cluster.master_url,
                               str(REPO / "jobs" / "materialize.py"), "--config", str(config),
                               "--feature-store", "jobs", *extra],
                              capture_output=True, text=True, timeout=600, cwd=REPO)

    done = job("scores", "--version", "1")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    end = fs.registry.online_state(fg.id)["last_commit"]
    assert f"scores v1 full -..{end} rows=10 deleted=0 expired=0" in done.stdout
    assert spark_rows(fg.read(online=True)) == spark_rows(fg.read())
    done = job("--all", "--mode", "incremental")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert f"scores v1 incremental {end}..{end} rows=0" in done.stdout and "other v1 full" in done.stdout
    assert fs.get_feature_vector(other, {"uid": 1}) == {"uid": 1, "v": 1.0}
    bad = job("nope")
    assert bad.returncode == 1 and "materialize: error: feature group 'nope'" in bad.stdout + bad.stderr


def test_serving_pool_bounds_connections_and_waits(tmp_path):
    import threading

    from featurestore.online.serving import Pool
    from featurestore.online.store import Connection

    pool = Pool(Connection("sqlite", path=str(tmp_path / "pool.db")), size=1, timeout=0.3)
    with pool.connection() as first:
        with pytest.raises(OnlineStoreError, match="no free online-store connection after 0s"):
            with pool.connection():
                pass
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(pool.connection().__enter__()))
        waiter.start()
        time.sleep(0.1)
        assert got == []  # still waiting for the only connection
    waiter.join(5)
    assert got == [first]  # handed the connection the first block gave back
    pool._give_back(got[0])
    with pytest.raises(ZeroDivisionError), pool.connection() as broken:
        1 / 0  # noqa: B018 - a failure inside the block
    with pool.connection() as fresh:
        assert fresh is not broken  # a connection that saw an error is discarded, not reused
        assert fresh.query("SELECT 1", []) == [(1,)]
    pool.close()


KEYED = "cc_num long, merchant string, region string, ts timestamp, amount double"


def test_null_in_any_key_column_is_refused_before_anything_is_written(spark, tmp_path, backend, request):
    """A composite primary key with one null part (and a null partition value) is refused, naming the
    column and its null rows, on every storage; the offline timeline and the online table stay as they were."""
    fs = make_store(spark, tmp_path, backend, request)
    fg = fs.create_feature_group("payments", primary_key=["cc_num", "merchant"], partition_key="region",
                                 event_time="ts", online_enabled=True)
    fg.insert(spark.createDataFrame([(1, "shop", "eu", T0, 1.0)], KEYED))
    before = (fg.commit_details(), sorted(os.listdir(os.path.join(fg.location, ".hoodie"))))
    bad = [(None, "shop", "eu", T0, 2.0), (None, "café", "eu", T0, 3.0), (2, None, "us", T0, 4.0),
           (3, "ok", "us", T0, 5.0)]
    for storage in (None, "offline", "online"):
        with pytest.raises(FeatureGroupError, match=r"cannot be null: 'cc_num' is null in 2 row\(s\), 'merchant' "
                                                    r"is null in 1 row\(s\); nothing was written"):
            fg.insert(spark.createDataFrame(bad, KEYED), storage=storage)
    with pytest.raises(FeatureGroupError, match=r"'region' is null in 1 row\(s\)"):
        fg.insert(spark.createDataFrame([(4, "ok", None, T0, 6.0), (5, "ok", "eu", T0, 7.0)], KEYED))
    assert (fg.commit_details(), sorted(os.listdir(os.path.join(fg.location, ".hoodie")))) == before
    assert [r.cc_num for r in fg.read().collect()] == [1]
    got = fs.get_feature_vectors(fg, [{"cc_num": 1, "merchant": "shop"}, {"cc_num": 3, "merchant": "ok"}])
    assert [v["amount"] for v in got] == [1.0, None]
    # a first insert (no schema, no table yet) is refused the same way and creates nothing
    fresh = fs.create_feature_group("fresh", primary_key=["cc_num", "merchant"], event_time="ts")
    with pytest.raises(FeatureGroupError, match=r"'merchant' is null in 1 row\(s\)"):
        fresh.insert(spark.createDataFrame([(2, None, "us", T0, 4.0)], KEYED))
    assert fresh.commit_details() == {} and not os.path.exists(os.path.join(fresh.location, ".hoodie"))


def test_keys_longer_than_the_online_store_holds_are_refused_at_insert(spark, tmp_path, backend, request):
    """MariaDB: string keys share InnoDB's 3,072-byte index (one string key next to a long: (3072 - 8) // 4
    = 766 characters); a longer key is refused at insert, offline and online, naming column, length and
    limit. SQLite's keys have no limit: the same key is stored and served."""
    fs = make_store(spark, tmp_path, backend, request)
    fg = fs.create_feature_group("merchants", primary_key=["cc_num", "merchant"], event_time="ts",
                                 online_enabled=True)
    schema = "cc_num long, merchant string, ts timestamp, amount double"
    fg.insert(spark.createDataFrame([(1, "m" * 766, T0, 1.0)], schema))  # exactly at the limit
    before = fg.commit_details()
    long_key = "ü" * 400 + "😀" * 367  # 767 characters
    rows = [(2, long_key, T0, 2.0), (3, "short", T0, 3.0)]
    if backend == "mariadb":
        assert fs.online_store.key_limits({"cc_num": spark.createDataFrame([], schema).schema["cc_num"].dataType,
                                           "merchant": spark.createDataFrame([], schema).schema["merchant"].dataType}
                                          ) == {"merchant": 766}
        for storage in (None, "offline", "online"):
            with pytest.raises(FeatureGroupError, match=r"'merchant' has a value of length 767 \(limit 766\); "
                                                        r"nothing was written"):
                fg.insert(spark.createDataFrame(rows, schema), storage=storage)
        assert fg.commit_details() == before
        assert sorted(r.cc_num for r in fg.read().collect()) == [1]
        fs.materialize(fg)  # nothing blocks materialization
        assert [v["amount"] for v in fs.get_feature_vectors(
            fg, [{"cc_num": 1, "merchant": "m" * 766}, {"cc_num": 3, "merchant": "short"}])] == [1.0, None]
    else:
        assert fs.online_store.key_limits({"merchant": spark.createDataFrame([], schema).schema["merchant"].dataType}
                                          ) == {}
        fg.insert(spark.createDataFrame(rows, schema))
        assert [v["amount"] for v in fs.get_feature_vectors(
            fg, [{"cc_num": 2, "merchant": long_key}, {"cc_num": 3, "merchant": "short"}])] == [2.0, 3.0]
