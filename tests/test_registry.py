"""The registry on its own (no Spark): cascading deletes, ids never reused, atomic upserts under real
concurrency, and migrations of a fresh database by several processes at once. Every test runs on
SQLite and on the MariaDB the test run starts."""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, UniqueConstraint, create_engine, func, insert, inspect, select, text

from featurestore.registry import Registry, RegistryError
from featurestore.registry import schema as registry_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
NEWEST = registry_schema.MIGRATIONS[-1][0]
WHEN = dt.datetime(2024, 3, 1, 12, 0, 0)
_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "mariadb"])
def registry_url(request, tmp_path):
    """A URL of an empty registry database: a new SQLite file, or a new MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    db = request.getfixturevalue("mariadb")
    name = f"registry_test_{os.getpid()}_{next(_db_counter)}"
    conn = db.admin_connection()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    return db.url().rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def registry(registry_url):
    reg = Registry(registry_url)
    yield reg
    reg.dispose()


def fg_record(fs_id: int, name: str, version: int = 1) -> dict:
    return {"feature_store_id": fs_id, "name": name, "version": version, "kind": "cached", "description": "",
            "primary_key": ["id"], "event_time": None, "partition_key": [], "precombine_key": None,
            "online_enabled": True, "location": f"/tmp/{name}", "features": [{"name": "id", "type": "int"}],
            "options": {}, "created_by": "test", "updated_by": "test"}


def commit_row(commit_id: str) -> dict:
    return {"commit_id": commit_id, "committed_at": WHEN, "operation": "upsert", "rows_inserted": 1,
            "rows_updated": 0, "rows_deleted": 0, "details": {}}


def provenance_row(entity_type: str, fg_id: int | None = None, commit_id: str | None = None,
                   entity_id: int | None = None, sha256: str = "ab" * 32) -> dict:
    return {"entity_type": entity_type, "feature_group_id": fg_id, "commit_id": commit_id, "entity_id": entity_id,
            "kind": "script", "path": "job.py", "sha256": sha256, "git_commit": None, "git_dirty": None,
            "user": "test", "host": "h", "python": "3.11", "argv": ["job.py"], "packages": {},
            "captured_at": WHEN}


def td_record(fs_id: int, name: str) -> dict:
    return {"feature_store_id": fs_id, "name": name, "version": 1, "description": "", "data_format": "parquet",
            "location": f"/tmp/{name}", "query": {}, "features": [], "label": [], "columns": {}, "commits": {},
            "spine": None, "splits": None, "row_counts": {}, "options": {}, "created_by": "test"}


def fill(reg: Registry, fg_id: int, commit_id: str) -> None:
    """One row of every kind that belongs to a feature group."""
    reg.set_tag("feature_group", fg_id, "owner", {"team": "ü"})
    assert reg.add_commit(fg_id, commit_row(commit_id)) is True
    reg.set_expectation_suite(fg_id, {"checks": []}, "STRICT", "test")
    reg.add_validation_report(fg_id, {"status": "Success", "rows": 3}, "accepted", "STRICT", commit_id,
                              {"Size(*)": 3.0, "Mean(x)": None})
    reg.add_statistics(fg_id, commit_id, "commit", {"rows": 3})
    reg.set_online_state(fg_id, commit_id, "incremental", rows_written=3)
    reg.add_provenance(provenance_row("commit", fg_id, commit_id), b"print('hi')\n")


def rows_of(reg: Registry, fg_id: int) -> dict[str, int]:
    """Rows per table that point at feature group ``fg_id`` (every table with a feature_group_id, and tags)."""
    out = {}
    with reg.engine.connect() as conn:
        for table in registry_schema.metadata.sorted_tables:
            if "feature_group_id" in table.c:
                out[table.name] = conn.execute(select(func.count()).select_from(table).where(
                    table.c.feature_group_id == fg_id)).scalar()
        tags = registry_schema.tags
        out["tags"] = conn.execute(select(func.count()).select_from(tags).where(
            tags.c.entity_type == "feature_group", tags.c.entity_id == fg_id)).scalar()
    return out


EVERY_KIND = {"commits": 1, "expectation_suites": 1, "validation_reports": 1, "metric_history": 2, "statistics": 1,
              "online_state": 1, "provenance": 1, "tags": 1}


# -- 1. deletes cascade; ids are never reused ----------------------------------------------------
def test_delete_feature_group_removes_every_dependent_row_and_its_id_is_not_reused(registry):
    fs_id = registry.ensure_feature_store("default")
    kept = registry.create_feature_group(fg_record(fs_id, "kept"))
    gone = registry.create_feature_group(fg_record(fs_id, "gone"))  # the highest id: SQLite would reuse it
    fill(registry, kept["id"], "20240301000000000")
    fill(registry, gone["id"], "20240301000000001")
    assert rows_of(registry, gone["id"]) == EVERY_KIND
    # every table that has a feature_group_id is covered by the expected counts (a new table must be added)
    assert set(EVERY_KIND) - {"tags"} == {t.name for t in registry_schema.metadata.sorted_tables
                                          if "feature_group_id" in t.c}

    registry.delete_feature_group(gone["id"])
    assert rows_of(registry, gone["id"]) == dict.fromkeys(EVERY_KIND, 0)
    assert rows_of(registry, kept["id"]) == EVERY_KIND
    assert registry.online_state(kept["id"])["last_commit"] == "20240301000000000"
    # the code content is addressed by its hash and still used by the kept group's provenance
    assert registry.get_code("ab" * 32) == b"print('hi')\n"

    again = registry.create_feature_group(fg_record(fs_id, "gone"))
    assert again["id"] > gone["id"]
    assert registry.online_state(again["id"]) is None
    assert registry.get_provenance("commit", again["id"]) == []
    assert registry.get_tags("feature_group", again["id"]) == {}
    assert registry.list_commits(again["id"]) == []


def test_delete_training_dataset_removes_its_provenance_and_tags(registry):
    fs_id = registry.ensure_feature_store("default")
    first = registry.create_training_dataset(td_record(fs_id, "first"))
    second = registry.create_training_dataset(td_record(fs_id, "second"))
    for td in (first, second):
        registry.add_provenance(provenance_row("training_dataset", entity_id=td["id"]), b"x")
        registry.set_tag("training_dataset", td["id"], "purpose", "churn")
    registry.delete_training_dataset(second["id"])
    assert registry.get_provenance("training_dataset", entity_id=second["id"]) == []
    assert registry.get_tags("training_dataset", second["id"]) == {}
    assert len(registry.get_provenance("training_dataset", entity_id=first["id"])) == 1
    assert registry.get_tags("training_dataset", first["id"]) == {"purpose": "churn"}
    third = registry.create_training_dataset(td_record(fs_id, "third"))
    assert third["id"] > second["id"]
    assert registry.get_provenance("training_dataset", entity_id=third["id"]) == []


def old_registry(url: str) -> MetaData:
    """Make ``url`` a registry as the code before migration 8 left it: the tables of migrations 1-7
    (on SQLite without AUTOINCREMENT, so ids can be reused), versions 1-7 recorded."""
    old = MetaData()
    for table in registry_schema.metadata.sorted_tables:
        copy = table.to_metadata(old)
        copy.dialect_options["sqlite"]["autoincrement"] = False
    engine = create_engine(url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(insert(old.tables["registry_schema_version"]),
                     [{"version": v, "applied_at": WHEN} for v, _d, _f in registry_schema.MIGRATIONS if v <= 7])
    engine.dispose()
    return old


def test_a_registry_created_before_gets_ids_that_are_never_reused_and_loses_stale_rows(registry_url):
    old = old_registry(registry_url)
    engine = create_engine(registry_url)
    with engine.begin() as conn:
        conn.execute(insert(old.tables["feature_stores"]).values(id=1, name="default", description="",
                                                                 created_at=WHEN))
        conn.execute(insert(old.tables["feature_groups"]), [{**fg_record(1, n), "id": i, "created_at": WHEN,
                                                             "updated_at": WHEN} for i, n in ((1, "a"), (2, "b"))])
        # what the old delete_feature_group left behind of group 2: its online mark and provenance
        conn.execute(insert(old.tables["online_state"]).values(feature_group_id=2, last_commit="c2", mode="full",
                                                               rows_written=1, rows_deleted=0, materialized_at=WHEN))
        conn.execute(insert(old.tables["provenance"]).values(**provenance_row("commit", 2, "c2")))
        conn.execute(insert(old.tables["tags"]).values(entity_type="feature_group", entity_id=2, name="t", value=1))
        conn.execute(old.tables["feature_groups"].delete().where(old.tables["feature_groups"].c.id == 2))
        conn.execute(insert(old.tables["online_state"]).values(feature_group_id=1, last_commit="c1", mode="full",
                                                               rows_written=1, rows_deleted=0, materialized_at=WHEN))
    engine.dispose()

    reg = Registry(registry_url)
    try:
        assert reg.schema_version() == NEWEST
        assert reg.online_state(2) is None and reg.get_provenance("commit", 2) == []
        assert reg.get_tags("feature_group", 2) == {}
        assert reg.online_state(1)["last_commit"] == "c1"  # a live group's rows stay
        assert reg.feature_group_by_id(1)["name"] == "a"
        created = reg.create_feature_group(fg_record(1, "c"))
        assert created["id"] > 2  # not 2, which stale rows pointed at
        reg.delete_feature_group(created["id"])
        assert reg.create_feature_group(fg_record(1, "d"))["id"] > created["id"]
        if registry_url.startswith("sqlite"):
            with reg.engine.connect() as conn:
                sql = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all())
            with_ids = [t.name for t in registry_schema.metadata.sorted_tables
                        if "id" in t.c and t.c.id.autoincrement is True]
            assert with_ids and all("AUTOINCREMENT" in sql[name] for name in with_ids), sql
            # the rebuilt tables kept their indexes and foreign keys
            assert "ix_validation_reports_fg" in {i["name"] for i in inspect(reg.engine).get_indexes(
                "validation_reports")}
            with pytest.raises(RegistryError, match="feature group id 999"):
                reg.add_commit(999, commit_row("c9"))
    finally:
        reg.dispose()


def test_migration_9_adds_transformation_functions_to_a_registry_of_version_8(registry_url):
    # the registry as migrations 1-8 left it: no transformation_functions table, feature views without the column
    old = MetaData()
    for table in registry_schema.metadata.sorted_tables:
        if table.name == "feature_views":
            Table(table.name, old, *[c._copy() for c in table.columns if c.name != "transformation_functions"],
                  UniqueConstraint("feature_store_id", "name", "version"), sqlite_autoincrement=True)
        elif table.name != "transformation_functions":
            table.to_metadata(old)
    view = {"feature_store_id": 1, "name": "old_view", "version": 1, "description": "", "query": {},
            "features": ["id"], "labels": [], "created_at": WHEN, "created_by": "test"}
    engine = create_engine(registry_url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(insert(old.tables["registry_schema_version"]),
                     [{"version": v, "applied_at": WHEN} for v, _d, _f in registry_schema.MIGRATIONS if v <= 8])
        conn.execute(insert(old.tables["feature_stores"]).values(id=1, name="default", description="",
                                                                 created_at=WHEN))
        conn.execute(insert(old.tables["feature_views"]).values(**view))
    engine.dispose()

    reg = Registry(registry_url)
    try:
        assert reg.schema_version() == NEWEST >= 9
        assert "transformation_functions" in {c["name"] for c in inspect(reg.engine).get_columns("feature_views")}
        assert reg.find_feature_view(1, "old_view", 1)["transformation_functions"] is None  # a view made before
        attached = [{"name": "min_max_scaler", "version": 1, "features": ["amount"], "ü": "é"}]
        made = reg.create_feature_view({**{k: v for k, v in view.items() if k != "created_at"}, "version": 2,
                                        "transformation_functions": attached})
        assert reg.find_feature_view(1, "old_view", 2)["transformation_functions"] == attached == \
            made["transformation_functions"]
        definition = {"name": "plus", "return_type": "double", "function": "QUJD", "source": "def plus(): ..."}
        for version in (1, 2):
            reg.create_transformation_function({"feature_store_id": 1, "name": "plus", "version": version,
                                                "definition": {**definition, "version": version},
                                                "created_by": "test"})
        assert reg.find_transformation_function(1, "plus")["definition"]["version"] == 2  # the latest
        assert reg.find_transformation_function(1, "plus", 1)["definition"] == {**definition, "version": 1}
        assert reg.find_transformation_function(1, "plus", 3) is None
        assert [r["version"] for r in reg.list_transformation_functions(1)] == [1, 2]
        assert reg.next_transformation_function_version(1, "plus") == 3
        with pytest.raises(RegistryError, match="transformation function 'plus' version 1 already exists"):
            reg.create_transformation_function({"feature_store_id": 1, "name": "plus", "version": 1,
                                                "definition": definition, "created_by": "test"})
    finally:
        reg.dispose()
    assert Registry(registry_url).schema_version() == NEWEST  # applying again changes nothing


# -- 2. atomic upserts under concurrency ---------------------------------------------------------
def race(threads: int, rounds: int, work) -> list[list]:
    """Run ``work(round, thread)`` on ``threads`` threads at once, ``rounds`` times; every result and
    exception, per round."""
    barrier = threading.Barrier(threads)
    results: list[list] = [[None] * threads for _ in range(rounds)]

    def run(thread: int) -> None:
        for rnd in range(rounds):
            barrier.wait()
            try:
                results[rnd][thread] = work(rnd, thread)
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                results[rnd][thread] = exc

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    return results


def test_concurrent_upserts_end_in_one_stored_row(registry_url):
    threads, rounds = 6, 12
    # one engine per thread, as separate processes would have
    registries = [Registry(registry_url) for _ in range(threads)]
    try:
        main = registries[0]
        fs_id = main.ensure_feature_store("default")
        fg_ids = [main.create_feature_group(fg_record(fs_id, f"g{r}"))["id"] for r in range(rounds)]

        def work(rnd: int, thread: int):
            reg, fg_id = registries[thread], fg_ids[rnd]
            store_id = reg.ensure_feature_store(f"store_{rnd}")
            reg.set_tag("feature_group", fg_id, "owner", {"thread": thread})
            reg.set_online_state(fg_id, f"c{thread}", "incremental", rows_written=thread)
            reg.set_expectation_suite(fg_id, {"thread": thread}, "STRICT", f"user{thread}")
            inserted = reg.add_commit(fg_id, commit_row(f"2024030100000000{rnd % 10}"))
            reg.add_provenance(provenance_row("commit", fg_id, "c", sha256=f"{rnd:064d}"), b"code")
            return store_id, inserted

        results = race(threads, rounds, work)
        errors = [r for rnd in results for r in rnd if isinstance(r, Exception)]
        assert not errors, errors[:3]
        for rnd, outcome in enumerate(results):
            store_ids = {store_id for store_id, _ in outcome}
            assert len(store_ids) == 1  # every thread got the same store
            assert sorted(inserted for _, inserted in outcome) == [False] * (threads - 1) + [True]
            fg_id = fg_ids[rnd]
            tag = main.get_tags("feature_group", fg_id)["owner"]
            assert tag in [{"thread": t} for t in range(threads)]
            state = main.online_state(fg_id)
            assert state["last_commit"] == f"c{state['rows_written']}"  # one thread's whole row
            suite = main.get_expectation_suite(fg_id)
            assert suite["updated_by"] == f"user{suite['suite']['thread']}"
            assert main.get_code(f"{rnd:064d}") == b"code"
            assert len(main.get_provenance("commit", fg_id)) == threads
        with main.engine.connect() as conn:
            def count(table, **where):
                query = select(func.count()).select_from(table)
                for column, value in where.items():
                    query = query.where(table.c[column] == value)
                return conn.execute(query).scalar()

            assert count(registry_schema.feature_stores) == rounds + 1
            assert count(registry_schema.tags) == rounds
            assert count(registry_schema.online_state) == rounds
            assert count(registry_schema.expectation_suites) == rounds
            assert count(registry_schema.commits) == rounds
            assert count(registry_schema.code_contents) == rounds
    finally:
        for reg in registries:
            reg.dispose()


def test_upserts_return_the_stored_row_and_name_what_collided(registry):
    fs_id = registry.ensure_feature_store("default", description="first")
    assert registry.ensure_feature_store("default", description="second") == fs_id
    fg = registry.create_feature_group(fg_record(fs_id, "x"))
    assert registry.set_tag("feature_group", fg["id"], "k", [1, None, "ü"])["value"] == [1, None, "ü"]
    assert registry.set_tag("feature_group", fg["id"], "k", {"v": 2})["value"] == {"v": 2}
    assert registry.get_tags("feature_group", fg["id"]) == {"k": {"v": 2}}
    first = registry.set_online_state(fg["id"], "c1", "full", rows_written=5)
    assert (first["last_commit"], first["rows_written"]) == ("c1", 5)
    second = registry.set_online_state(fg["id"], None, "incremental")
    assert (second["last_commit"], second["mode"], second["rows_written"]) == (None, "incremental", 0)
    assert registry.set_expectation_suite(fg["id"], {"a": 1}, "ALWAYS", "me")["policy"] == "ALWAYS"
    assert registry.add_commit(fg["id"], commit_row("c1")) is True
    assert registry.add_commit(fg["id"], commit_row("c1")) is False
    with pytest.raises(RegistryError, match="commit 'c1' of feature group id 424242"):
        registry.add_commit(424242, commit_row("c1"))
    with pytest.raises(RegistryError, match="feature group 'x' version 1 already exists"):
        registry.create_feature_group(fg_record(fs_id, "x"))
    with pytest.raises(RegistryError, match="feature store id 777"):
        registry.create_feature_group(fg_record(777, "y"))
    registry.create_connector({"feature_store_id": fs_id, "name": "src", "kind": "jdbc", "url": "jdbc:x",
                               "user": None, "password_env": None, "options": {}})
    with pytest.raises(RegistryError, match="connector 'src' already exists"):
        registry.create_connector({"feature_store_id": fs_id, "name": "src", "kind": "jdbc", "url": "jdbc:y",
                                   "user": None, "password_env": None, "options": {}})
    assert registry.connector(fs_id, name="src")["url"] == "jdbc:x"


@pytest.mark.parametrize("attempts", [5, 1])
def test_a_write_that_lost_a_mariadb_deadlock_is_retried_or_named(mariadb, attempts, monkeypatch):
    """Two writers lock two rows in opposite orders: a real deadlock, the server rolls one back. With
    retries the loser runs again and both writes stand; without, its error names what it wrote."""
    import featurestore.registry.sql as registry_sql

    monkeypatch.setattr(registry_sql, "WRITE_ATTEMPTS", attempts)
    url = mariadb.url().rsplit("/", 1)[0] + f"/registry_deadlock_{attempts}"
    conn = mariadb.admin_connection()
    conn.cursor().execute(f"CREATE DATABASE `registry_deadlock_{attempts}`")
    conn.close()
    writers = [Registry(url), Registry(url)]
    fs_id = writers[0].ensure_feature_store("default")
    ids = [writers[0].create_feature_group(fg_record(fs_id, n))["id"] for n in ("one", "two")]
    table = registry_schema.feature_groups
    barrier = threading.Barrier(2, timeout=60)
    runs = {"a": 0, "b": 0}

    def work(name: str, first: int, second: int):
        def run(conn):
            runs[name] += 1
            conn.execute(table.update().where(table.c.id == first).values(description=name))
            if runs[name] == 1:
                barrier.wait()  # both hold their first row: each now waits for the other's
            conn.execute(table.update().where(table.c.id == second).values(description=name))
            return name
        return run

    results = race(2, 1, lambda _rnd, thread: writers[thread]._write(
        f"writer {'ab'[thread]}", work("ab"[thread], *(ids if thread == 0 else ids[::-1]))))[0]
    try:
        descriptions = {writers[0].feature_group_by_id(i)["description"] for i in ids}
        if attempts > 1:
            assert sorted(results) == ["a", "b"] and sorted(runs.values()) == [1, 2]
            loser = max(runs, key=runs.get)
            assert descriptions == {loser}  # the retried transaction ran last, whole
        else:
            errors = [r for r in results if isinstance(r, Exception)]
            assert len(errors) == 1 and isinstance(errors[0], RegistryError)
            assert re.search(r"writer [ab] collided with concurrent writers", str(errors[0]))
            winner = next(r for r in results if isinstance(r, str))
            assert descriptions == {winner}  # the loser left nothing behind
    finally:
        for reg in writers:
            reg.dispose()


# -- 3. migrations of a fresh database by several processes at once -------------------------------
def test_three_processes_migrate_a_fresh_registry_at_once(registry_url, tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "registry_worker.py"), registry_url,
                                 str(barrier)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(3)]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    (barrier / "go").touch()
    outcomes = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    assert [json.loads(out.strip().splitlines()[-1]) for out, _ in outcomes] == [{"version": NEWEST}] * 3
    engine = create_engine(registry_url)
    with engine.connect() as conn:
        versions = [v for (v,) in conn.execute(text("SELECT version FROM registry_schema_version ORDER BY version"))]
    engine.dispose()
    assert versions == [v for v, _d, _f in registry_schema.MIGRATIONS]


def test_migration_lock_held_elsewhere_is_a_clear_error_after_the_timeout(registry_url, tmp_path):
    from featurestore.registry.migrations import migration_lock_name

    if registry_url.startswith("sqlite"):
        path = registry_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA journal_mode=WAL")  # as every registry connection has it
        holder.execute("BEGIN IMMEDIATE")  # another process writing
        release = holder.close
    else:
        engine = create_engine(registry_url)
        holder = engine.connect()
        database = holder.execute(text("SELECT DATABASE()")).scalar()
        assert holder.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": migration_lock_name(database)}).scalar() == 1

        def release():
            holder.close()
            engine.dispose()
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError, match=r"migration lock .* not obtained within 1 s"):
            Registry(registry_url, migration_lock_timeout=1)
    finally:
        release()
    assert 0.9 < time.monotonic() - started < 30
    reg = Registry(registry_url, migration_lock_timeout=1)  # the lock is free again
    assert reg.schema_version() == NEWEST
    reg.dispose()


# -- 4. names say what things are ------------------------------------------------------------------
def test_registry_modules_have_no_one_letter_import_aliases():
    short = []
    for path in sorted((REPO_ROOT / "featurestore" / "registry").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                short += [f"{path.name}: {a.name} as {a.asname}" for a in node.names if a.asname and len(a.asname) == 1]
    assert not short, short
