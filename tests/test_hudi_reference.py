"""Our native Hudi engine against Apache Hudi itself (1.2.0's Spark writer and reader, in the
reference JVM): one scenario kept as data (tests/data/hudi_reference_scenario.json) run through both
writers, and after every commit every reader — Apache Hudi's, ours, hudi-rs — gives the rows of a
plain-Python model of the scenario: snapshots, time travel to each commit, incremental reads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hudi_helpers import hudi_rs, norm, rows_of_arrow, rows_of_spark

from featurestore import hudi
from featurestore.hudi.table import load_table_config

SCENARIO = json.loads((Path(__file__).parent / "data" / "hudi_reference_scenario.json").read_text())
COLUMNS = ["id", "region", "v", "ts", "name"]
T0 = dt.datetime(2024, 1, 1)
# Apache Hudi 1.2: event-time ordering on the precombine field, as our engine orders upserts
HUDI_OPTIONS = {"hoodie.record.merge.mode": "EVENT_TIME_ORDERING", "hoodie.upsert.shuffle.parallelism": 1,
                "hoodie.insert.shuffle.parallelism": 1, "hoodie.bulkinsert.shuffle.parallelism": 1,
                "hoodie.delete.shuffle.parallelism": 1}


def _rows(commit: dict) -> list[tuple]:
    return [(i, region, v, T0 + dt.timedelta(hours=h), name) for i, region, v, h, name in commit["rows"]]


def _model_states() -> list[list[tuple]]:
    """The table after each commit, computed from the scenario alone."""
    state: dict[int, tuple] = {}
    states = []
    for commit in SCENARIO["commits"]:
        rows = _rows(commit)
        if commit["operation"] == "delete":
            for row in rows:
                state.pop(row[0], None)
        else:
            for row in rows:
                if row[0] not in state or row[3] > state[row[0]][3]:  # an older event never wins
                    state[row[0]] = row
        states.append(sorted((tuple(norm(v) for v in r) for r in state.values()), key=repr))
    return states


STATES = _model_states()


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def _incremental_reads_agree(spark, reference_jvm, path: str, commit_instants: list[str]) -> None:
    """Our incremental read of each (previous commit, commit] equals Apache Hudi's."""
    for begin, end in zip(commit_instants, commit_instants[1:], strict=False):
        theirs = _sorted(reference_jvm.hudi_read(path, COLUMNS, kind="incremental", begin=begin, end=end))
        ours = hudi.read(spark, path, {"hoodie.datasource.query.type": "incremental",
                                       "hoodie.datasource.read.begin.instanttime": begin,
                                       "hoodie.datasource.read.end.instanttime": end})
        assert rows_of_spark(ours, COLUMNS) == theirs, f"incremental ({begin}, {end}]"


def test_the_model_is_what_the_scenario_says():
    final = {r[0]: r for r in STATES[-1]}
    assert sorted(final) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert final[1][4] == "one updated" and final[2][4] is None  # the late event for 2 lost
    assert final[8][2] == 8.5 and final[4][4] == "back after delete" and final[3][4] is None
    assert 5 not in {r[0] for r in STATES[2]} and 4 not in {r[0] for r in STATES[2]}


@pytest.mark.parametrize("table_type", ["COPY_ON_WRITE", "MERGE_ON_READ"])
def test_tables_apache_hudi_writes_are_read_the_same_by_our_reader_and_hudi_rs(spark, reference_jvm, tmp_path,
                                                                               table_type):
    path = str(tmp_path / f"written_by_apache_hudi_{table_type.lower()}")
    commit_instants = []
    for commit, expected in zip(SCENARIO["commits"], STATES, strict=True):
        new = reference_jvm.hudi_write(path, SCENARIO["schema"], _rows(commit), SCENARIO["record_key"],
                                       commit["operation"], SCENARIO["precombine"], SCENARIO["partition_path"],
                                       table_type, HUDI_OPTIONS)
        assert new, f"Apache Hudi completed no instant for {commit['operation']}"
        commit_instants.append(max(new))
        assert _sorted(reference_jvm.hudi_read(path, COLUMNS)) == expected  # Hudi reads what the model says
        assert rows_of_spark(hudi.read(spark, path), COLUMNS) == expected, commit["operation"]
        assert rows_of_arrow(hudi_rs(path), COLUMNS) == expected, commit["operation"]
    for instant, expected in zip(commit_instants, STATES, strict=True):
        ours = hudi.read(spark, path, {"as.of.instant": instant})
        assert rows_of_spark(ours, COLUMNS) == expected, f"as of {instant}"
        assert rows_of_arrow(hudi_rs(path, as_of=instant), COLUMNS) == expected, f"hudi-rs as of {instant}"
    _incremental_reads_agree(spark, reference_jvm, path, commit_instants)


def test_tables_the_native_engine_writes_are_read_the_same_by_apache_hudi(spark, reference_jvm, tmp_path):
    path = str(tmp_path / "written_by_native")
    commit_instants = []
    for commit, expected in zip(SCENARIO["commits"], STATES, strict=True):
        frame = spark.createDataFrame(_rows(commit), SCENARIO["schema"])
        result = hudi.write(frame, path, {
            "hoodie.table.name": "written_by_native", "hoodie.datasource.write.operation": commit["operation"],
            "hoodie.datasource.write.recordkey.field": SCENARIO["record_key"],
            "hoodie.datasource.write.partitionpath.field": SCENARIO["partition_path"],
            "hoodie.datasource.write.precombine.field": SCENARIO["precombine"]})
        commit_instants.append(result.instant_time)
        assert rows_of_spark(hudi.read(spark, path), COLUMNS) == expected
        assert _sorted(reference_jvm.hudi_read(path, COLUMNS)) == expected, commit["operation"]
    timeline = reference_jvm.hudi_timeline(path)
    assert [i["time"] for i in timeline["instants"] if i["action"] in ("commit", "replacecommit")] == commit_instants
    for instant, expected in zip(commit_instants, STATES, strict=True):
        assert _sorted(reference_jvm.hudi_read(path, COLUMNS, kind="as_of", instant=instant)) == expected
    _incremental_reads_agree(spark, reference_jvm, path, commit_instants)


def test_apache_hudi_upgrades_a_native_version_6_table_and_the_native_engine_keeps_writing_it(
        spark, reference_jvm, tmp_path):
    path = str(tmp_path / "mixed")
    schema = "id int, region string, v double, ts timestamp"
    native = {"hoodie.table.name": "mixed", "hoodie.datasource.write.recordkey.field": "id",
              "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts",
              "hoodie.datasource.write.operation": "upsert"}
    first = hudi.write(spark.createDataFrame([(1, "eu", 1.0, T0), (2, "us", 2.0, T0)], schema), path,
                       {**native, "hoodie.write.table.version": "6"})
    # Apache Hudi's own upsert, its default index, into the version-6 table the native engine wrote (an
    # older event for 2 loses); Hudi upgrades the table to its own version 9 on the way
    theirs = reference_jvm.hudi_write(path, schema, [(1, "eu", 10.0, T0 + dt.timedelta(hours=1)),
                                                     (2, "us", 0.0, T0 - dt.timedelta(hours=1)), (3, "us", 3.0, T0)],
                                      "id", "upsert", "ts", "region", options=HUDI_OPTIONS, table_name="mixed")
    expected = [(1, 10.0), (2, 2.0), (3, 3.0)]
    assert sorted(reference_jvm.hudi_read(path, ["id", "v"])) == expected
    assert rows_of_spark(hudi.read(spark, path), ["id", "v"]) == expected
    assert rows_of_arrow(hudi_rs(path), ["id", "v"]) == expected
    assert reference_jvm.hudi_timeline(path)["table_version"] == 9
    # the native engine keeps writing the upgraded table, as version 9 (it never downgrades it)
    again = hudi.write(spark.createDataFrame([(2, "us", 20.0, T0 + dt.timedelta(hours=2)), (4, "eu", 4.0, T0)],
                                             schema), path, native)
    expected = [(1, 10.0), (2, 20.0), (3, 3.0), (4, 4.0)]
    assert load_table_config(path).version == 9
    for rows in (sorted(reference_jvm.hudi_read(path, ["id", "v"])), rows_of_spark(hudi.read(spark, path), ["id", "v"]),
                 rows_of_arrow(hudi_rs(path), ["id", "v"])):
        assert rows == expected
    commits = [first.instant_time, max(theirs), again.instant_time]
    timeline = reference_jvm.hudi_timeline(path)
    assert [i["time"] for i in timeline["instants"] if i["action"] == "commit"] == commits
    # time travel to each writer's commits, and the native engine's commit as an incremental read
    for instant, rows in zip(commits, [[(1, 1.0), (2, 2.0)], [(1, 10.0), (2, 2.0), (3, 3.0)], expected], strict=True):
        assert sorted(reference_jvm.hudi_read(path, ["id", "v"], kind="as_of", instant=instant)) == rows
        assert rows_of_spark(hudi.read(spark, path, {"as.of.instant": instant}), ["id", "v"]) == rows
    done = {e["instant"]: e["completion_time"] for e in hudi.timeline(path)}
    window = {"begin": done[max(theirs)], "end": done[again.instant_time]}
    assert sorted(reference_jvm.hudi_read(path, ["id", "v"], kind="incremental", **window)) == [(2, 20.0), (4, 4.0)]
    ours = hudi.read(spark, path, {"hoodie.datasource.query.type": "incremental",
                                   "hoodie.datasource.read.begin.instanttime": window["begin"],
                                   "hoodie.datasource.read.end.instanttime": window["end"]})
    assert rows_of_spark(ours, ["id", "v"]) == [(2, 20.0), (4, 4.0)]
