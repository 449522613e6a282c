"""The Hudi engine end to end: every read checked against hudi-rs and an independent model."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hudi_helpers import hudi_rs, norm, rows_of_arrow, rows_of_spark

from featurestore import hudi
from featurestore.hudi import actions
from featurestore.hudi.table import load_table_config, parse_properties, table_checksum

UTC = dt.UTC
SCHEMA = "id int, region string, v double, ts timestamp, name string"


def opts(name: str, partition: str = "region", keys: str = "id", **extra) -> dict:
    base = {
        "hoodie.table.name": name,
        "hoodie.datasource.write.recordkey.field": keys,
        "hoodie.datasource.write.partitionpath.field": partition,
        "hoodie.datasource.write.precombine.field": "ts",
    }
    base.update(extra)
    return base


def t(hours: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=hours)


class Model:
    """Independent model of an upsert table keyed by (key, partition) with event-time ordering."""

    def __init__(self) -> None:
        self.rows: dict[tuple, tuple] = {}
        self.history: list[dict[tuple, tuple]] = []

    def upsert(self, rows: list[tuple]) -> None:
        batch: dict[tuple, tuple] = {}
        for r in rows:  # within a batch, the highest ts wins; later rows win ties
            k = (r[0], r[1])
            if k not in batch or r[3] >= batch[k][3]:
                batch[k] = r
        for k, r in batch.items():
            if k not in self.rows or r[3] >= self.rows[k][3]:
                self.rows[k] = r
        self.history.append(dict(self.rows))

    def delete(self, keys: list[tuple]) -> None:
        for k in keys:
            self.rows.pop(k, None)
        self.history.append(dict(self.rows))

    def snapshot(self, i: int = -1) -> list[tuple]:
        return sorted((tuple(norm(v) for v in r) for r in self.history[i].values()), key=repr)


DATA_COLS = ["id", "region", "v", "ts", "name"]


def check_all_reads(spark, path: str, model: Model, commits: list[str]) -> None:
    """Snapshot, time travel at every commit and incremental ranges equal hudi-rs and the model."""
    assert rows_of_spark(hudi.read(spark, path), DATA_COLS) == model.snapshot()
    assert rows_of_arrow(hudi_rs(path), DATA_COLS) == model.snapshot()
    for i, c in enumerate(commits):
        ours = rows_of_spark(hudi.read(spark, path, {"as.of.instant": c}), DATA_COLS)
        assert ours == model.snapshot(i), f"time travel to commit {i}"
        assert rows_of_arrow(hudi_rs(path, as_of=c), DATA_COLS) == ours
    # incremental windows are completion times (table version 9; instant times on version 6)
    done = {e["instant"]: e["completion_time"] for e in hudi.timeline(path)}
    bounds = [done[c] for c in commits]
    pairs = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)] + [("000", bounds[-1])]
    if len(bounds) > 2:
        pairs.append((bounds[0], bounds[2]))
    for begin, end in pairs:
        ours = hudi.read(spark, path, {"hoodie.datasource.query.type": "incremental",
                                       "hoodie.datasource.read.begin.instanttime": begin,
                                       "hoodie.datasource.read.end.instanttime": end})
        cols = ["_hoodie_commit_time", *DATA_COLS]
        expected = rows_of_arrow(hudi_rs(path, begin=begin if begin != "000" else "19700101000000000", end=end),
                                 cols)
        assert rows_of_spark(ours, cols) == expected, (begin, end)
        assert all(begin < done[r[0]] <= end for r in expected)


def test_upsert_delete_time_travel_incremental_match_hudi_rs_and_model(spark, tmp_path):
    path = str(tmp_path / "events")
    model = Model()
    commits = []
    first = [(i, f"r{i % 3}", float(i), t(i), f"n{i}") for i in range(12)]
    r = hudi.write(spark.createDataFrame(first, SCHEMA), path, opts("events"))
    model.upsert(first)
    commits.append(r.instant_time)
    assert (r.rows_inserted, r.rows_updated, r.rows_deleted) == (12, 0, 0)

    # updates, a late event that must not win, duplicates in the batch, new keys, unicode
    second = [
        (1, "r1", 100.0, t(50), "upd-ü"),
        (2, "r2", -1.0, t(-50), "late"),         # older than the stored event: ignored
        (3, "r0", 30.0, t(60), "dup-a"),
        (3, "r0", 31.0, t(61), "dup-b"),         # same key twice in the batch: highest ts wins
        (40, "r1", 4.0, t(1), "new 中文"),
        (41, "r0", None, t(2), None),             # nulls in data columns
    ]
    r = hudi.write(spark.createDataFrame(second, SCHEMA), path, opts("events"))
    model.upsert(second)
    commits.append(r.instant_time)
    assert (r.rows_inserted, r.rows_updated) == (2, 2)

    r = hudi.write(spark.createDataFrame([(4, "r1"), (5, "r2"), (999, "r0")], "id int, region string"), path,
                   opts("events", **{"hoodie.datasource.write.operation": "delete"}))
    model.delete([(4, "r1"), (5, "r2")])
    commits.append(r.instant_time)
    assert r.rows_deleted == 2

    # same key in a different partition is a different record (non-global index, as Hudi)
    third = [(1, "r0", 7.0, t(70), "other-partition")]
    r = hudi.write(spark.createDataFrame(third, SCHEMA), path, opts("events"))
    model.upsert(third)
    commits.append(r.instant_time)
    assert commits == sorted(commits) and len(set(commits)) == len(commits)
    check_all_reads(spark, path, model, commits)

    listed = hudi.timeline(path)
    assert [e["instant"] for e in listed if e["action"] == "commit"] == commits
    assert [e["operation"] for e in listed] == ["upsert", "upsert", "delete", "upsert"]


def test_table_format_files(spark, tmp_path):
    """Table version 6 by option (layout 1, JSON commit metadata); version 9: tests/test_hudi_v9.py."""
    path = tmp_path / "fmt"
    hudi.write(spark.createDataFrame([(1, "a", 1.0, t(0), "x")], SCHEMA), str(path),
               opts("fmt", **{"hoodie.write.table.version": "6"}))
    props = parse_properties((path / ".hoodie" / "hoodie.properties").read_text())
    assert props["hoodie.table.version"] == "6" and props["hoodie.timeline.layout.version"] == "1"
    assert props["hoodie.table.keygenerator.class"] == "org.apache.hudi.keygen.SimpleKeyGenerator"
    assert int(props["hoodie.table.checksum"]) == table_checksum("fmt")
    commit_files = sorted(p.name for p in (path / ".hoodie").iterdir() if p.is_file() and p.name[0].isdigit())
    instant = commit_files[0].split(".")[0]
    assert commit_files == [f"{instant}.commit", f"{instant}.commit.requested", f"{instant}.inflight"]
    meta = json.loads((path / ".hoodie" / f"{instant}.commit").read_text())
    stat = meta["partitionToWriteStats"]["a"][0]
    assert stat["path"] == f"a/{stat['fileId']}_" + stat["path"].split("_", 1)[1]
    assert stat["prevCommit"] == "null" and stat["numInserts"] == 1 and stat["numWrites"] == 1
    assert stat["fileSizeInBytes"] == os.path.getsize(path / stat["path"])
    assert json.loads(meta["extraMetadata"]["schema"])["name"] == "fmt_record"
    assert meta["operationType"] == "UPSERT"
    assert (path / "a" / ".hoodie_partition_metadata").read_text().endswith(f"commitTime={instant}\npartitionDepth=1\n")
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path / stat["path"])
    assert pf.schema_arrow.names[:5] == ["_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                                         "_hoodie_partition_path", "_hoodie_file_name"]
    kv = pf.metadata.metadata
    assert kv[b"hoodie_min_record_key"] == b"1" and b"parquet.avro.schema" in kv
    assert not list((path / ".hoodie" / ".temp").iterdir())  # markers removed after the commit


def test_composite_keys_hive_style_url_encoded_partitions(spark, tmp_path):
    path = str(tmp_path / "composite")
    o = opts("composite", partition="country,city", keys="id,kind", **{
        "hoodie.datasource.write.hive_style_partitioning": "true",
        "hoodie.datasource.write.partitionpath.urlencode": "true"})
    schema = "id int, kind string, country string, city string, v double, ts timestamp"
    rows = [(1, "a", "fr", "Paris/Nord", 1.0, t(0)), (1, "b", "fr", "Paris/Nord", 2.0, t(0)),
            (2, "a", "jp", "東京", 3.0, t(0)), (3, "a", None, "x:y=z", 4.0, t(0))]
    hudi.write(spark.createDataFrame(rows, schema), path, o)
    r = hudi.write(spark.createDataFrame([(1, "b", "fr", "Paris/Nord", 20.0, t(5))], schema), path, o)
    assert r.rows_updated == 1 and r.rows_inserted == 0
    df = hudi.read(spark, path)
    got = {(x["_hoodie_record_key"], x["_hoodie_partition_path"], x["v"]) for x in df.collect()}
    assert got == {
        ("id:1,kind:a", "country=fr/city=Paris%2FNord", 1.0),
        ("id:1,kind:b", "country=fr/city=Paris%2FNord", 20.0),
        ("id:2,kind:a", "country=jp/city=東京", 3.0),
        ("id:3,kind:a", "country=__HIVE_DEFAULT_PARTITION__/city=x%3Ay%3Dz", 4.0),
    }
    assert os.path.isdir(os.path.join(path, "country=fr", "city=Paris%2FNord"))
    cols = ["_hoodie_record_key", "id", "kind", "country", "city", "v"]
    assert rows_of_arrow(hudi_rs(path), cols) == rows_of_spark(df, cols)
    assert load_table_config(path).props["hoodie.table.keygenerator.class"].endswith("ComplexKeyGenerator")


def test_non_partitioned_and_all_types_round_trip(spark, tmp_path):
    path = str(tmp_path / "types")
    schema = ("id long, b boolean, by byte, sh short, i int, f float, d double, dec decimal(20,6), s string, "
              "bin binary, dt date, ts timestamp, arr array<int>, m map<string,double>, "
              "st struct<x:int,y:string,z:array<struct<q:double>>>")
    big = "ü" * 100_000
    rows = [
        (1, True, 1, 2, 3, 1.5, 2.5, Decimal("12345678901234.123456"), "a", bytearray(b"\x00\x01"),
         dt.date(2024, 2, 29), t(1), [1, None, 3], {"k": 1.0, "z": None}, (1, "s", [(1.5,), None])),
        (2, None, None, None, None, float("nan"), None, None, big, None, None, None, [], {}, None),
        (3, False, -128, -32768, -(2**31), float("inf"), -0.0, Decimal("-0.000001"), "", bytearray(b""),
         dt.date(1900, 1, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None, None, (None, None, [])),
    ]
    o = {"hoodie.table.name": "types", "hoodie.datasource.write.recordkey.field": "id"}
    df = spark.createDataFrame(rows, schema)
    hudi.write(df, path, o)
    back = hudi.read(spark, path)
    assert back.drop(*[c for c in back.columns if c.startswith("_hoodie")]).schema == df.schema
    cols = [c.split()[0] for c in schema.split(", ")]
    assert rows_of_spark(back, cols) == rows_of_spark(df, cols)
    rs = hudi_rs(path)
    assert rows_of_arrow(rs, cols) == rows_of_spark(df, cols)
    assert load_table_config(path).props["hoodie.table.keygenerator.class"].endswith("NonpartitionedKeyGenerator")


def test_schema_evolution_and_bad_input(spark, tmp_path):
    path = str(tmp_path / "evo")
    o = opts("evo")
    hudi.write(spark.createDataFrame([(1, "a", 1.0, t(0), "x")], SCHEMA), path, o)
    def listing():  # every file below .hoodie (version 9 keeps instants in .hoodie/timeline)
        return sorted(str(p.relative_to(path)) for p in Path(path, ".hoodie").rglob("*"))

    before = listing()

    def unchanged():
        assert listing() == before
        assert [r.id for r in hudi.read(spark, path).collect()] == [1]

    null_key = r"2 row\(s\) have a null or empty record key \(null or empty: 'id' in 2 row\(s\)\)"
    with pytest.raises(hudi.HudiSchemaError, match=null_key):
        hudi.write(spark.createDataFrame([(None, "a", 1.0, t(0), "x"), (None, "b", 1.0, t(0), "y"),
                                          (3, "a", 1.0, t(0), "z")], SCHEMA), path, o)
    unchanged()
    with pytest.raises(hudi.HudiSchemaError, match="missing column.*'name'"):
        hudi.write(spark.createDataFrame([(2, "a", 1.0, t(0))], "id int, region string, v double, ts timestamp"),
                   path, o)
    with pytest.raises(hudi.HudiSchemaError, match=r"changed type of 'v' \(double -> string\)"):
        hudi.write(spark.createDataFrame([(2, "a", "1", t(0), "x")], "id int, region string, v string, "
                                         "ts timestamp, name string"), path, o)
    with pytest.raises(hudi.HudiSchemaError, match="precombine column.*'ts'"):
        hudi.write(spark.createDataFrame([(2, "a")], "id int, region string"), path, o)
    with pytest.raises(hudi.HudiSchemaError, match="partition path column.*'region'"):
        hudi.write(spark.createDataFrame([(2, 1.0, t(0), "x")], "id int, v double, ts timestamp, name string"), path, o)
    with pytest.raises(hudi.HudiOptionError, match="unknown write option.*hoodie.datasource.write.recordkey"):
        hudi.write(spark.createDataFrame([(2, "a", 1.0, t(0), "x")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.recordkey": "id"})
    with pytest.raises(hudi.HudiOptionError, match="hoodie.datasource.write.operation: unknown value 'merge'"):
        hudi.write(spark.createDataFrame([(2, "a", 1.0, t(0), "x")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.operation": "merge"})
    with pytest.raises(hudi.HudiOptionError, match="recordkey.field='name' but the table has 'id'"):
        hudi.write(spark.createDataFrame([(2, "a", 1.0, t(0), "x")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.recordkey.field": "name"})
    with pytest.raises(hudi.HudiOptionError, match=r"hoodie\.keep\.max\.commits \(3\) must be greater than "
                                                   r"hoodie\.cleaner\.commits\.retained \(3\)"):
        hudi.write(spark.createDataFrame([(2, "a", 1.0, t(0), "x")], SCHEMA), path,
                   {**o, "hoodie.cleaner.commits.retained": "3", "hoodie.keep.max.commits": "3"})
    unchanged()

    # a new nullable column is schema evolution: old rows read it as null
    r = hudi.write(spark.createDataFrame([(2, "a", 2.0, t(1), "y", 7)], SCHEMA + ", extra int"), path, o)
    assert r.rows_inserted == 1
    got = {(x.id, x.extra) for x in hudi.read(spark, path).collect()}
    assert got == {(1, None), (2, 7)}
    assert {(x["id"], x["extra"]) for x in hudi_rs(path).to_pylist()} == got
    first = hudi.timeline(path)[0]["instant"]
    assert {x.id for x in hudi.read(spark, path, {"as.of.instant": first}).collect()} == {1}


def test_insert_bulk_insert_and_overwrite(spark, tmp_path):
    path = str(tmp_path / "ow")
    o = opts("ow", **{"hoodie.write.table.version": "6"})  # its JSON replacecommit is read below
    rows = [(i, f"r{i % 2}", float(i), t(i), "x") for i in range(6)]
    r = hudi.write(spark.createDataFrame(rows, SCHEMA), path, {**o, "hoodie.datasource.write.operation": "bulk_insert"})
    assert r.rows_inserted == 6
    r = hudi.write(spark.createDataFrame([(100, "r0", 1.0, t(0), "ins")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.operation": "insert"})
    assert r.rows_inserted == 1
    r = hudi.write(spark.createDataFrame([(7, "r1", 7.0, t(7), "ow")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.operation": "insert_overwrite"})
    assert r.action == "replacecommit" and r.replaced_file_groups >= 1
    ids = sorted(x.id for x in hudi.read(spark, path).collect())
    assert ids == [0, 2, 4, 7, 100]  # r1 replaced, r0 kept
    assert sorted(hudi_rs(path).column("id").to_pylist()) == ids
    r = hudi.write(spark.createDataFrame([(8, "r2", 8.0, t(8), "all")], SCHEMA), path,
                   {**o, "hoodie.datasource.write.operation": "insert_overwrite_table"})
    assert [x.id for x in hudi.read(spark, path).collect()] == [8]
    assert hudi_rs(path).column("id").to_pylist() == [8]
    meta = json.loads(Path(path, ".hoodie", f"{r.instant_time}.replacecommit").read_text())
    assert set(meta["partitionToReplaceFileIds"]) == {"r0", "r1"}


def test_cleaning_keeps_retained_commits_readable(spark, tmp_path):
    # table version 6: the engine archives layout-1 timelines only (v9 cleaning: tests/test_hudi_v9.py)
    path = str(tmp_path / "clean")
    o = opts("clean", partition="", **{"hoodie.cleaner.commits.retained": "2", "hoodie.write.table.version": "6"})
    commits = []
    for i in range(4):
        r = hudi.write(spark.createDataFrame([(1, "a", float(i), t(i), "x"), (i + 10, "a", 0.0, t(0), "y")],
                                             SCHEMA), path, o)
        commits.append(r.instant_time)
    assert r.files_cleaned >= 1
    parquet = [n for n in os.listdir(path) if n.endswith(".parquet")]
    assert len(parquet) == 2  # versions written by the last two commits
    cleans = [n for n in os.listdir(os.path.join(path, ".hoodie")) if ".clean" in n]
    assert {n.split(".", 1)[1] for n in cleans} >= {"clean", "clean.requested", "clean.inflight"}
    tl = hudi.timeline(path)
    assert any(e["action"] == "clean" for e in tl)
    assert hudi.read(spark, path, {"as.of.instant": commits[2]}).where("id = 1").first().v == 2.0
    for c in commits[2:]:
        assert rows_of_spark(hudi.read(spark, path, {"as.of.instant": c}), ["id", "v"]) == \
            rows_of_arrow(hudi_rs(path, as_of=c), ["id", "v"])
    with pytest.raises(hudi.HudiInstantNotReadable, match=f"oldest readable commit is {commits[2]}"):
        hudi.read(spark, path, {"as.of.instant": commits[1]})

    assert sorted(hudi_rs(path).column("id").to_pylist()) == [1, 10, 11, 12, 13]

    # archival moves instants older than the retained window out of the active timeline; the data
    # they wrote stays visible to both readers
    from featurestore.hudi.timeline import Timeline

    moved = actions.archive(path, Timeline.load(path), keep=1)
    assert {i.timestamp for i in moved} >= set(commits[:2])
    archived = os.listdir(os.path.join(path, ".hoodie", "archived"))
    assert any(n.startswith(commits[0]) for n in archived)
    assert not any(n.startswith(commits[0]) for n in os.listdir(os.path.join(path, ".hoodie")))
    assert sorted(x.id for x in hudi.read(spark, path).collect()) == [1, 10, 11, 12, 13]
    assert sorted(hudi_rs(path).column("id").to_pylist()) == [1, 10, 11, 12, 13]
    r = hudi.write(spark.createDataFrame([(1, "a", 9.0, t(9), "after")], SCHEMA), path, o)
    assert r.instant_time > commits[-1] and hudi.read(spark, path).where("id = 1").first().v == 9.0


def test_lock_timeout_and_concurrent_writers(spark, tmp_path):
    path = str(tmp_path / "conc")
    o = opts("conc")
    hudi.write(spark.createDataFrame([(0, "a", 0.0, t(0), "seed")], SCHEMA), path, o)
    with actions.table_lock(path, 1), pytest.raises(hudi.HudiLockTimeout, match="featurestore.lock.timeout"):
        hudi.write(spark.createDataFrame([(1, "a", 1.0, t(1), "x")], SCHEMA), path,
                   {**o, "featurestore.lock.timeout.seconds": "0.3"})
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            rows = [(start + i, "a", float(i), t(1), f"w{start}") for i in range(5)]
            rows.append((0, "a", float(start), t(start), "x"))
            hudi.write(spark.createDataFrame(rows, SCHEMA), path, o)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (100, 200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    df = hudi.read(spark, path)
    assert sorted(x.id for x in df.collect()) == [0, 100, 101, 102, 103, 104, 200, 201, 202, 203, 204]
    assert df.where("id = 0").first().v == 200.0  # the latest event time wins in either order
    commits = [e for e in hudi.timeline(path) if e["action"] == "commit"]
    assert len(commits) == 3 and commits[1]["rows_inserted"] == commits[2]["rows_inserted"] == 5


def test_hudi_rs_read_path_handles_empty_file_slices(spark, tmp_path):
    """Arrow batches reach Spark through the hudi-rs path; an empty file slice must not lose rows
    (pyspark 4.1 drops every row after an empty batch in createDataFrame(arrow))."""
    from featurestore.hudi.options import ReadOptions
    from featurestore.hudi.reader import _read_with_hudi_rs

    path = str(tmp_path / "empty_slice")
    o = opts("empty_slice")
    rows = [(i, f"r{i % 3}", float(i), t(i), "x") for i in range(9)]
    hudi.write(spark.createDataFrame(rows, SCHEMA), path, o)
    # every row of partition r1 deleted: its file group's new base file is empty
    r = hudi.write(spark.createDataFrame([(i, "r1") for i in (1, 4, 7)], "id int, region string"), path,
                   {**o, "hoodie.datasource.write.operation": "delete"})
    assert r.rows_deleted == 3 and r.files_written == 1
    config = load_table_config(path)
    via_hudi_rs = _read_with_hudi_rs(spark, path, config, ReadOptions.parse({}))
    assert sorted(x.id for x in via_hudi_rs.collect()) == [0, 2, 3, 5, 6, 8]
    assert rows_of_spark(via_hudi_rs, DATA_COLS) == rows_of_spark(hudi.read(spark, path), DATA_COLS)


def _row_group_bytes(path: str) -> dict[str, list[bytes]]:
    """Per row group of a base file: the raw bytes of every column chunk but ``_hoodie_file_name``,
    keyed by the row group's first record key."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    raw = Path(path).read_bytes()
    out = {}
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        chunks = []
        for c in range(group.num_columns):
            col = group.column(c)
            if col.path_in_schema == "_hoodie_file_name":
                continue
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            chunks.append(raw[start:start + col.total_compressed_size])
        first = pq.ParquetFile(path).read_row_group(i, columns=["_hoodie_record_key"]).column(0)[0].as_py()
        out[first] = chunks
    return out


def test_small_upserts_splice_unchanged_row_groups(spark, tmp_path):
    """Small writes re-encode only the row groups they change; every read still equals hudi-rs and
    the model, whichever index path (driver or executors) and merge path (splice or rewrite) ran."""
    import pyarrow.parquet as pq

    from featurestore.hudi.timeline import Timeline

    path = str(tmp_path / "spliced")
    small_groups = {"featurestore.parquet.row.group.rows": "8"}
    model, commits = Model(), []

    def write(rows, schema=SCHEMA, **extra):
        r = hudi.write(spark.createDataFrame(rows, schema), path, opts("spliced", **small_groups, **extra))
        commits.append(r.instant_time)
        return r

    base = [(i, f"r{i % 2}", float(i), t(i), f"n{i}") for i in range(1000, 1200)]
    write(base, **{"hoodie.datasource.write.operation": "bulk_insert"})
    model.upsert(base)

    def latest_files() -> dict[str, str]:
        names = {}
        for p in sorted(Path(path).glob("r*/*.parquet")):
            fid = p.name.split("_")[0]
            if fid not in names or p.name.split("_")[-1] > names[fid].split("_")[-1]:
                names[fid] = str(p)
        return names

    before = latest_files()
    # A narrow key range (looked up by the driver): two updates, one late event that loses, a new key.
    narrow = [(1100, "r0", -1.0, t(5000), "upd ✓"), (1101, "r1", -2.0, t(5001), "upd"),
              (1102, "r0", 9.0, t(-5), "late"), (1105, "r1", 5.5, t(5002), None), (5000, "r0", 1.0, t(3), "new")]
    r = write(narrow)
    model.upsert(narrow)
    assert (r.rows_updated, r.rows_inserted) == (3, 1)
    after = latest_files()
    for fid, old_path in before.items():
        old_groups, new_groups = _row_group_bytes(old_path), _row_group_bytes(after[fid])
        kept = [k for k in old_groups if k in new_groups and old_groups[k] == new_groups[k]]
        # most row groups are carried over byte for byte; the changed ones are not
        assert len(kept) >= len(old_groups) - 3, fid
        table = pq.read_table(after[fid])
        assert set(table.column("_hoodie_file_name").to_pylist()) == {Path(after[fid]).name}
        keys = table.column("_hoodie_record_key").to_pylist()
        footer = pq.read_metadata(after[fid]).metadata
        assert (footer[b"hoodie_min_record_key"].decode(), footer[b"hoodie_max_record_key"].decode()) == (
            min(keys), max(keys))
        assert len(keys) == len(set(keys))

    # Keys spread over every row group (looked up by executors), deletes, then more upserts.
    spread = [(i, f"r{i % 2}", float(-i), t(6000 + i), f"s{i}") for i in range(1000, 1200, 7)]
    write(spread)
    model.upsert(spread)
    doomed = [(i, f"r{i % 2}") for i in range(1003, 1200, 11)]
    r = write(doomed, "id int, region string", **{"hoodie.datasource.write.operation": "delete"})
    model.delete(doomed)
    assert r.rows_deleted == len(doomed)
    for k in range(3):  # repeated small upserts do not grow a trail of tiny row groups
        batch = [(6000 + k, "r1", float(k), t(700 + k), "tail")]
        write(batch)
        model.upsert(batch)
    assert max(pq.read_metadata(p).num_row_groups for p in latest_files().values()) <= 200 // 8 // 2 + 4

    # A new column: stored files no longer match the schema, so the write rewrites them whole.
    evolved = [(1100, "r0", 3.0, t(9000), "evolved", 7)]
    write(evolved, SCHEMA + ", extra int")
    model.upsert([row[:5] for row in evolved])
    check_all_reads(spark, path, model, commits)
    assert len(Timeline.load(path).completed_commits) == len(commits)


def test_splice_with_nested_columns(spark, tmp_path):
    """Structs, lists and maps have one column chunk per leaf: a spliced file keeps all of them."""
    path = str(tmp_path / "nested")
    schema = ("id int, region string, ts timestamp, pos struct<x:int,y:double>, tags array<string>, "
              "attrs map<string,int>")
    options = opts("nested", **{"featurestore.parquet.row.group.rows": "4"})

    def row(i: int, hour: int, label: str) -> tuple:
        return (i, "r0", t(hour), (i, i / 2), [label, f"{label}{i}"], {label: i})

    rows = {i: row(i, i, "a") for i in range(40)}
    hudi.write(spark.createDataFrame(list(rows.values()), schema), path,
               {**options, "hoodie.datasource.write.operation": "bulk_insert"})
    update = [row(7, 100, "ü"), row(99, 100, "new")]
    hudi.write(spark.createDataFrame(update, schema), path, options)
    rows.update({r[0]: r for r in update})
    cols = ["id", "region", "ts", "pos", "tags", "attrs"]
    as_read = [(*r[:3], {"x": r[3][0], "y": r[3][1]}, *r[4:]) for r in rows.values()]  # structs read as mappings
    expected = sorted((tuple(norm(v) for v in r) for r in as_read), key=repr)
    assert rows_of_spark(hudi.read(spark, path), cols) == expected
    assert rows_of_arrow(hudi_rs(path), cols) == expected


def test_footer_key_cache_is_bounded_and_forgets_cleaned_files(spark, tmp_path):
    import pyarrow.parquet as pq

    from featurestore.hudi.index import FOOTER_KEY_RANGES, FooterKeyRanges
    from featurestore.hudi.timeline import Timeline

    path = str(tmp_path / "footers")
    o = opts("footers", partition="", **{"hoodie.cleaner.commits.retained": "1"})
    written = []
    for i in range(3):  # upserts of key 5 rewrite the one file group: each clean deletes the previous version
        r = hudi.write(spark.createDataFrame([(5, "a", float(i), t(i), "x"), (100 + i, "a", 0.0, t(0), "y")],
                                             SCHEMA), path, o)
        timeline = Timeline.load(path)
        meta = timeline.read_metadata(next(i for i in timeline.completed_commits if i.timestamp == r.instant_time))
        written += [os.path.join(path, s["path"]) for stats in meta["partitionToWriteStats"].values() for s in stats]
    live = {os.path.join(path, n) for n in os.listdir(path) if n.endswith(".parquet")}
    assert len(written) == 3 and len(live) == 1
    for gone in set(written) - live:  # the writer looked them up; the cleaner deleted them
        assert gone not in FOOTER_KEY_RANGES
    (current,) = live
    keys = sorted(pq.read_table(current, columns=["_hoodie_record_key"]).column(0).to_pylist())
    assert keys == ["100", "101", "102", "5"]
    assert FOOTER_KEY_RANGES.get(current) == ("100", "5")  # string order, as Hudi compares keys

    bounded = FooterKeyRanges(max_entries=2)
    files = []
    for i in range(3):
        table_path = str(tmp_path / f"small{i}")
        hudi.write(spark.createDataFrame([(i, "a", 1.0, t(0), "z")], SCHEMA), table_path,
                   opts(f"small{i}", partition=""))
        files += [os.path.join(table_path, n) for n in os.listdir(table_path) if n.endswith(".parquet")]
    assert bounded.get(files[0]) == ("0", "0")
    bounded.get(files[1])
    bounded.get(files[0])  # used again: files[1] is now the least recently used
    assert bounded.get(files[2]) == ("2", "2")
    assert len(bounded) == 2 and files[1] not in bounded and files[0] in bounded
    bounded.forget([files[0]])
    assert files[0] not in bounded and len(bounded) == 1


def test_marker_folders_of_finished_instants_are_removed(spark, tmp_path):
    path = str(tmp_path / "markers")
    o = opts("markers", partition="")
    first = hudi.write(spark.createDataFrame([(1, "a", 1.0, t(0), "x")], SCHEMA), path, o)
    temp = Path(path, ".hoodie", ".temp")
    # what a writer killed after its commit point, before removing its markers, leaves behind
    (temp / first.instant_time).mkdir(parents=True)
    (temp / first.instant_time / "f_0-1-0_x.parquet.marker.CREATE").touch()
    hudi.clean(path, 10)
    assert not list(temp.iterdir())
    (temp / first.instant_time).mkdir()
    second = hudi.write(spark.createDataFrame([(2, "a", 2.0, t(1), "y")], SCHEMA), path, o)
    assert second.instant_time and not list(temp.iterdir())
    assert rows_of_spark(hudi.read(spark, path), ["id", "v"]) == [(1, 1.0), (2, 2.0)]
