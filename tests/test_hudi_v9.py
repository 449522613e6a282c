"""Table version 9 (what Apache Hudi 1.x writes), the native engine's default: the table's files
are Hudi 1.x's (properties, timeline layout 2 with completion times, Avro commit metadata); our
reader, hudi-rs and Apache Hudi 1.2 (the reference JVM) read the same rows after every commit;
version 6 stays an option; an existing table keeps its version, one the engine cannot write is
refused untouched; Apache Hudi and the native engine write one table in turns."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import fastavro
import pytest
from hudi_helpers import hudi_rs, norm, rows_of_arrow, rows_of_spark

from featurestore import hudi
from featurestore.hudi.table import parse_properties, table_checksum

SCHEMA = "id int, region string, v double, ts timestamp, name string"
COLS = ["id", "region", "v", "ts", "name"]
T0 = dt.datetime(2024, 1, 1)
HUDI_OPTIONS = {"hoodie.record.merge.mode": "EVENT_TIME_ORDERING", "hoodie.upsert.shuffle.parallelism": 1,
                "hoodie.insert.shuffle.parallelism": 1, "hoodie.bulkinsert.shuffle.parallelism": 1,
                "hoodie.delete.shuffle.parallelism": 1}


def _opts(name: str, **extra: str) -> dict[str, str]:
    return {"hoodie.table.name": name, "hoodie.datasource.write.recordkey.field": "id",
            "hoodie.datasource.write.partitionpath.field": "region",
            "hoodie.datasource.write.precombine.field": "ts", **extra}


def _rows(spec: list[tuple]) -> list[tuple]:
    """(id, region, v, hour, name) -> rows with ts = T0 + hour."""
    return [(i, r, v, T0 + dt.timedelta(hours=h), n) for i, r, v, h, n in spec]


class Model:
    """The table as the writes say it must be: keyed by id (ids never change region here), an
    older event never replaces a newer one, deletes by key."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple] = {}
        self.states: list[list[tuple]] = []

    def upsert(self, rows: list[tuple]) -> None:
        for row in rows:
            if row[0] not in self.rows or row[3] >= self.rows[row[0]][3]:
                self.rows[row[0]] = row
        self._snap()

    def delete(self, ids: list[int]) -> None:
        for i in ids:
            self.rows.pop(i, None)
        self._snap()

    def _snap(self) -> None:
        self.states.append(sorted((tuple(norm(v) for v in r) for r in self.rows.values()), key=repr))


def _props(path: str) -> dict[str, str]:
    return parse_properties(Path(path, ".hoodie", "hoodie.properties").read_text(encoding="utf-8"))


def _instant_files(path: str) -> list[str]:
    folder = Path(path, ".hoodie", "timeline")
    return sorted(n for n in os.listdir(folder) if n[:1].isdigit())


def _avro_record(path: Path) -> tuple[str, dict]:
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        return reader.writer_schema["name"], next(iter(reader))


def _completions(path: str) -> dict[str, str]:
    """Commit instant -> completion time, from our timeline."""
    return {e["instant"]: e["completion_time"] for e in hudi.timeline(path)
            if e["action"] in ("commit", "replacecommit")}


def _ours_incremental(spark, path: str, begin: str, end: str):
    return hudi.read(spark, path, {"hoodie.datasource.query.type": "incremental",
                                   "hoodie.datasource.read.begin.instanttime": begin,
                                   "hoodie.datasource.read.end.instanttime": end})


def _all_readers_agree(spark, path: str, model: Model, commits: list[str], reference_jvm=None) -> None:
    """Snapshot, time travel to every commit and incremental reads between commits: our reader,
    hudi-rs (and Apache Hudi when given) give the model's rows; incremental windows are completion
    times (layout 2), and each holds exactly the rows its commit wrote."""
    assert rows_of_spark(hudi.read(spark, path), COLS) == model.states[-1]
    assert rows_of_arrow(hudi_rs(path), COLS) == model.states[-1]
    if reference_jvm is not None:
        assert sorted((tuple(norm(v) for v in r) for r in reference_jvm.hudi_read(path, COLS)), key=repr) == \
            model.states[-1]
    for commit, expected in zip(commits, model.states, strict=True):
        assert rows_of_spark(hudi.read(spark, path, {"as.of.instant": commit}), COLS) == expected, commit
        assert rows_of_arrow(hudi_rs(path, as_of=commit), COLS) == expected, commit
        if reference_jvm is not None:
            theirs = reference_jvm.hudi_read(path, COLS, kind="as_of", instant=commit)
            assert sorted((tuple(norm(v) for v in r) for r in theirs), key=repr) == expected, commit
    done = _completions(path)
    bounds = [done[c] for c in commits]
    for begin, end in zip(bounds, bounds[1:], strict=False):
        ours = rows_of_spark(_ours_incremental(spark, path, begin, end), ["_hoodie_commit_time", *COLS])
        assert all(r[0] == commits[bounds.index(end)] for r in ours), (begin, end)
        assert rows_of_arrow(hudi_rs(path, begin=begin, end=end), ["_hoodie_commit_time", *COLS]) == ours
        if reference_jvm is not None:
            theirs = reference_jvm.hudi_read(path, COLS, kind="incremental", begin=begin, end=end)
            assert sorted((tuple(norm(v) for v in r) for r in theirs), key=repr) == [r[1:] for r in ours]


# -- the table's files ---------------------------------------------------------------------------

def test_a_new_table_is_version_9_with_hudi_1x_properties_and_instant_files(spark, tmp_path):
    path = str(tmp_path / "fmt9")
    first = hudi.write(spark.createDataFrame(_rows([(1, "eu", 1.0, 0, "a"), (2, "us", 2.0, 0, "b")]), SCHEMA),
                       path, _opts("fmt9"))
    second = hudi.write(spark.createDataFrame(_rows([(1, "eu", 1.5, 1, "a2")]), SCHEMA), path, _opts("fmt9"))
    props = _props(path)
    assert {k: props.get(k) for k in (
        "hoodie.table.version", "hoodie.table.initial.version", "hoodie.timeline.layout.version",
        "hoodie.timeline.path", "hoodie.timeline.history.path", "hoodie.record.merge.mode",
        "hoodie.table.ordering.fields", "hoodie.table.keygenerator.type", "hoodie.table.type")} == {
        "hoodie.table.version": "9", "hoodie.table.initial.version": "9", "hoodie.timeline.layout.version": "2",
        "hoodie.timeline.path": "timeline", "hoodie.timeline.history.path": "history",
        "hoodie.record.merge.mode": "EVENT_TIME_ORDERING", "hoodie.table.ordering.fields": "ts",
        "hoodie.table.keygenerator.type": "SIMPLE", "hoodie.table.type": "COPY_ON_WRITE"}
    assert "hoodie.table.precombine.field" not in props
    assert int(props["hoodie.table.checksum"]) == table_checksum("fmt9")
    # no instant in .hoodie itself: all in .hoodie/timeline, completed ones with their completion time
    assert not [n for n in os.listdir(Path(path, ".hoodie")) if n[:1].isdigit()]
    names = _instant_files(path)
    done = _completions(path)
    for r in (first, second):
        t, c = r.instant_time, done[r.instant_time]
        assert t < c
        assert {f"{t}.commit.requested", f"{t}.inflight", f"{t}_{c}.commit"} <= set(names)
    # one clock: the second commit was requested after the first completed
    assert done[first.instant_time] < second.instant_time
    completed = f"{second.instant_time}_{done[second.instant_time]}.commit"
    name, meta = _avro_record(Path(path, ".hoodie", "timeline", completed))
    assert name.endswith("HoodieCommitMetadata") and meta["operationType"] == "UPSERT"
    (stat,) = meta["partitionToWriteStats"]["eu"]
    assert stat["numUpdateWrites"] == 1 and stat["prevCommit"] == first.instant_time
    assert stat["prevBaseFile"] and stat["prevBaseFile"].endswith(f"_{first.instant_time}.parquet")
    assert stat["fileSizeInBytes"] == os.path.getsize(Path(path, stat["path"]))
    assert _avro_record(Path(path, ".hoodie", "timeline", f"{second.instant_time}.inflight"))[0].endswith(
        "HoodieCommitMetadata")
    # base files are named by the requested instant, as Hudi names them
    assert Path(path, stat["path"]).name.endswith(f"_{second.instant_time}.parquet")

    # without an ordering field the latest write wins: Hudi's COMMIT_TIME_ORDERING
    plain = str(tmp_path / "plain9")
    options = {k: v for k, v in _opts("plain9").items() if k != "hoodie.datasource.write.precombine.field"}
    hudi.write(spark.createDataFrame(_rows([(1, "eu", 1.0, 0, "a")]), SCHEMA), plain, options)
    assert _props(plain)["hoodie.record.merge.mode"] == "COMMIT_TIME_ORDERING"


def test_insert_overwrite_is_an_avro_replacecommit(spark, tmp_path):
    path = str(tmp_path / "ow9")
    hudi.write(spark.createDataFrame(_rows([(1, "eu", 1.0, 0, "a"), (2, "us", 2.0, 0, "b")]), SCHEMA), path,
               _opts("ow9"))
    r = hudi.write(spark.createDataFrame(_rows([(3, "eu", 3.0, 0, "c")]), SCHEMA), path,
                   _opts("ow9", **{"hoodie.datasource.write.operation": "insert_overwrite"}))
    done = _completions(path)[r.instant_time]
    name, meta = _avro_record(Path(path, ".hoodie", "timeline", f"{r.instant_time}_{done}.replacecommit"))
    assert name.endswith("HoodieReplaceCommitMetadata") and list(meta["partitionToReplaceFileIds"]) == ["eu"]
    expected = [(2, "us"), (3, "eu")]
    assert rows_of_spark(hudi.read(spark, path), ["id", "region"]) == expected
    assert rows_of_arrow(hudi_rs(path), ["id", "region"]) == expected


def test_version_6_is_an_option_and_a_table_keeps_its_version(spark, tmp_path):
    path = str(tmp_path / "v6")
    frame = spark.createDataFrame(_rows([(1, "eu", 1.0, 0, "a")]), SCHEMA)
    r = hudi.write(frame, path, _opts("v6", **{"hoodie.write.table.version": "6"}))
    props = _props(path)
    assert (props["hoodie.table.version"], props["hoodie.timeline.layout.version"]) == ("6", "1")
    assert props["hoodie.table.precombine.field"] == "ts" and "hoodie.record.merge.mode" not in props
    assert Path(path, ".hoodie", f"{r.instant_time}.commit").read_bytes().startswith(b"{")  # JSON, as Hudi 0.x
    # later writes without the option keep version 6
    r2 = hudi.write(spark.createDataFrame(_rows([(1, "eu", 2.0, 1, "b")]), SCHEMA), path, _opts("v6"))
    assert Path(path, ".hoodie", f"{r2.instant_time}.commit").is_file()
    assert _props(path)["hoodie.table.version"] == "6"
    # asking for another version of an existing table is an error naming the option; nothing written
    before = hudi.timeline(path)
    with pytest.raises(hudi.HudiOptionError, match=r"hoodie.write.table.version=9 .* has table version 6"):
        hudi.write(frame, path, _opts("v6", **{"hoodie.write.table.version": "9"}))
    assert hudi.timeline(path) == before
    for bad in ("8", "7", "x"):
        with pytest.raises(hudi.HudiOptionError, match="hoodie.write.table.version.*writes table versions 6 and 9"):
            hudi.write(frame, str(tmp_path / f"bad{bad}"), _opts("bad", **{"hoodie.write.table.version": bad}))
        assert not Path(tmp_path / f"bad{bad}").exists()


@pytest.mark.parametrize("version", ["8", "10"])
def test_a_table_of_a_version_the_engine_cannot_write_is_refused_untouched(spark, tmp_path, version):
    path = str(tmp_path / "other")
    hudi.write(spark.createDataFrame(_rows([(1, "eu", 1.0, 0, "a")]), SCHEMA), path, _opts("other"))
    props_file = Path(path, ".hoodie", "hoodie.properties")
    props_file.write_text(props_file.read_text().replace("hoodie.table.version=9", f"hoodie.table.version={version}"))

    def state() -> tuple:
        files = sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                       for p in Path(path).rglob("*") if p.is_file() and p.name != "featurestore.lock")
        return props_file.read_bytes(), files

    before = state()
    with pytest.raises(hudi.HudiOptionError, match=f"table version {version}"):
        hudi.write(spark.createDataFrame(_rows([(1, "eu", 2.0, 1, "b")]), SCHEMA), path, _opts("other"))
    assert state() == before
    with pytest.raises(hudi.HudiOptionError, match=f"table version {version}"):
        hudi.clean(path, 1)
    assert state() == before


# -- every reader agrees ---------------------------------------------------------------------------

def test_every_reader_reads_a_native_v9_table_the_same_after_upserts_deletes_and_cleans(
        spark, reference_jvm, tmp_path):
    path = str(tmp_path / "agree9")
    options = _opts("agree9", **{"hoodie.cleaner.commits.retained": "3"})
    model, commits = Model(), []
    writes = [
        ("bulk_insert", [(i, "eu" if i % 2 else "us", float(i), i, f"n{i}") for i in range(8)]),
        ("upsert", [(1, "eu", 10.0, 20, "one ü"), (2, "us", 99.0, -5, "late: loses"), (8, "us", 8.0, 8, None)]),
        ("delete", [(3, "eu", None, 0, None), (4, "us", None, 0, None)]),
        ("upsert", [(3, "eu", 30.0, 30, "back 😀"), (5, "eu", 50.0, 31, "五")]),
        ("upsert", [(1, "eu", 11.0, 40, "again"), (9, "eu", None, 41, "nine")]),
        ("upsert", [(6, "us", 60.0, 50, "six"), (1, "eu", 12.0, 51, "thrice")]),
    ]
    cleaned = 0
    for operation, spec in writes:
        rows = _rows(spec)
        r = hudi.write(spark.createDataFrame(rows, SCHEMA), path,
                       {**options, "hoodie.datasource.write.operation": operation})
        commits.append(r.instant_time)
        cleaned += r.files_cleaned
        if operation == "delete":
            model.delete([row[0] for row in rows])
        else:
            model.upsert(rows)
    assert cleaned > 0, "the writes should have cleaned old file versions"
    assert any(n.endswith(".clean") and "_" in n for n in _instant_files(path))  # <t>_<c>.clean
    timeline = reference_jvm.hudi_timeline(path)
    assert timeline["table_version"] == 9
    assert [i["time"] for i in timeline["instants"] if i["action"] == "commit"] == commits
    # time travel and incremental reads only to the commits the cleaner kept readable
    kept = commits[-3:]
    model.states = model.states[-3:]
    _all_readers_agree(spark, path, model, kept, reference_jvm)
    with pytest.raises(hudi.HudiInstantNotReadable, match=f"oldest readable commit is {kept[0]}"):
        hudi.read(spark, path, {"as.of.instant": commits[1]})
    assert not Path(path, ".hoodie", "archived").exists()  # no archival of v9 tables: Hudi's job


# -- Apache Hudi and the native engine write one table in turns --------------------------------------

def test_apache_hudi_and_the_native_engine_write_a_v9_table_in_turns(spark, reference_jvm, tmp_path):
    path = str(tmp_path / "turns")
    options = _opts("turns")
    model, commits = Model(), []

    def native(operation: str, spec: list[tuple]) -> None:
        rows = _rows(spec)
        r = hudi.write(spark.createDataFrame(rows, SCHEMA), path,
                       {**options, "hoodie.datasource.write.operation": operation})
        commits.append(r.instant_time)
        model.delete([row[0] for row in rows]) if operation == "delete" else model.upsert(rows)
        # the native engine turned Hudi's metadata table off: no reader lists files from a stale one
        assert not Path(path, ".hoodie", "metadata").exists()
        assert not _props(path).get("hoodie.table.metadata.partitions")

    def apache(operation: str, spec: list[tuple]) -> None:
        rows = _rows(spec)
        new = reference_jvm.hudi_write(path, SCHEMA, rows, "id", operation, "ts", "region", options=HUDI_OPTIONS,
                                       table_name="turns")
        commits.append(max(new))
        model.delete([row[0] for row in rows]) if operation == "delete" else model.upsert(rows)
        assert Path(path, ".hoodie", "metadata").is_dir()  # Hudi's default: the metadata table on

    native("upsert", [(1, "eu", 1.0, 0, "n1"), (2, "us", 2.0, 0, "n2"), (3, "eu", 3.0, 0, "n3")])
    apache("upsert", [(1, "eu", 10.0, 1, "hudi"), (2, "us", 0.0, -1, "late: loses"), (4, "us", 4.0, 0, "h4")])
    _all_readers_agree(spark, path, model, commits, reference_jvm)
    native("upsert", [(4, "us", 40.0, 2, "native after hudi"), (5, "eu", 5.0, 0, "n5")])
    _all_readers_agree(spark, path, model, commits, reference_jvm)
    apache("delete", [(3, "eu", None, 0, None)])
    native("upsert", [(1, "eu", 100.0, 3, "native again"), (6, "us", 6.0, 0, "n6")])
    apache("upsert", [(6, "us", 66.0, 4, "hudi again")])
    native("delete", [(2, "us", None, 0, None)])
    _all_readers_agree(spark, path, model, commits, reference_jvm)
    timeline = reference_jvm.hudi_timeline(path)
    assert timeline["table_version"] == 9
    assert [i["time"] for i in timeline["instants"] if i["action"] in ("commit", "replacecommit")] == commits
