"""Scenarios kept as data (tests/scenarios/*.json), run through every offline implementation.

Each scenario is a feature group's life (bulk insert, upserts with duplicate keys and late events,
deletes, a new nullable column, an overwrite). After every commit the snapshot, the time travel to
every earlier commit, the incremental changes and the commit's row counts are compared with a
plain-Python model of the semantics the offline interface promises (upserts keyed by primary key and
ordered by event time: an older event never replaces a newer one; duplicates in a batch combined by
event time first). The model knows nothing of any table format, so the same scenario proves each
implementation (today the native Hudi engine; Apache Hudi's datasource and Delta Lake join
``IMPLEMENTATIONS`` and run here unchanged).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pytest
from pyspark.sql import types as T

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.offline import IMPLEMENTATIONS, open_table

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def typed(value, data_type: T.DataType):
    """A scenario's JSON value as the Python value Spark returns for ``data_type``."""
    if value is None:
        return None
    if isinstance(data_type, T.DecimalType):
        return decimal.Decimal(value)
    if isinstance(data_type, T.DateType):
        return dt.date.fromisoformat(value)
    if isinstance(data_type, T.TimestampType):
        return dt.datetime.fromisoformat(value)
    if isinstance(data_type, T.ArrayType):
        return [typed(v, data_type.elementType) for v in value]
    return value


class Model:
    """What a feature group holds after each operation, computed in plain Python."""

    def __init__(self, key: list[str], ordering: str) -> None:
        self.key, self.ordering = key, ordering
        self.rows: dict[tuple, dict] = {}

    def _key(self, row: dict) -> tuple:
        return tuple(row[k] for k in self.key)

    def _combine(self, rows: list[dict]) -> dict[tuple, dict]:
        batch: dict[tuple, dict] = {}
        for row in rows:  # duplicates in a batch: the newest event wins
            old = batch.get(self._key(row))
            if old is None or row[self.ordering] >= old[self.ordering]:
                batch[self._key(row)] = row
        return batch

    def upsert(self, rows: list[dict]) -> tuple[int, int, int, set]:
        inserted = updated = 0
        changed = set()
        for k, row in self._combine(rows).items():
            old = self.rows.get(k)
            if old is None:
                inserted += 1
            elif row[self.ordering] >= old[self.ordering]:
                updated += 1
            else:
                continue  # a late event never overwrites a newer one
            self.rows[k] = row
            changed.add(k)
        return inserted, updated, 0, changed

    def delete(self, keys: list[tuple]) -> tuple[int, int, int, set]:
        gone = [k for k in keys if k in self.rows]
        for k in gone:
            del self.rows[k]
        return 0, 0, len(gone), set()

    def overwrite(self, rows: list[dict]) -> tuple[int, int, int, set]:
        self.rows = self._combine(rows)
        return len(self.rows), 0, 0, set(self.rows)

    def widen(self, columns: list[str]) -> None:
        for row in self.rows.values():
            for c in columns:
                row.setdefault(c, None)


def frame_rows(df) -> dict[tuple, dict]:
    return {tuple([r["user_id"]]): r.asDict(recursive=True) for r in df.collect()}


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS), ids=lambda i: "/".join(i))
@pytest.mark.parametrize("scenario_path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_on_every_implementation(spark, tmp_path, implementation, scenario_path):
    scenario = load(scenario_path)
    table_format, engine = implementation
    fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(tmp_path / "wh")}), spark=spark)
    fg = fs.create_feature_group(scenario["name"], primary_key=scenario["primary_key"],
                                 event_time=scenario["event_time"], time_travel_format=table_format, engine=engine)
    assert (fg.time_travel_format, fg.engine) == implementation
    model = Model(scenario["primary_key"], scenario["event_time"])
    schema = T._parse_datatype_string(scenario["schema"])
    history: list[tuple[str, dict]] = []
    for number, step in enumerate(scenario["steps"]):
        if "schema" in step:
            new = T._parse_datatype_string(step["schema"])
            model.widen([f.name for f in new.fields if f.name not in schema.fieldNames()])
            schema = new
        if step["op"] == "delete":
            keys = [tuple(k) for k in step["keys"]]
            key_schema = T.StructType([schema[k] for k in scenario["primary_key"]])
            result = fg.delete_records(spark.createDataFrame([list(k) for k in keys], key_schema))
            expected_counts = model.delete(keys)
        else:
            rows = [{f.name: typed(v, f.dataType) for f, v in zip(schema.fields, r, strict=True)} for r in step["rows"]]
            df = spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
            result = fg.insert(df, operation=step["op"], write_options=step.get("write_options"))
            expected_counts = (model.overwrite(rows) if step["op"].startswith("insert_overwrite")
                               else model.upsert(rows))
        where = f"step {number} ({step['op']})"
        assert result.commit_id is not None, where
        inserted, updated, deleted, changed = expected_counts
        if not step["op"].startswith("insert_overwrite"):
            # an overwrite replaces files: its counts are the rows it wrote, which the model gives as inserts
            counts = (result.rows_inserted, result.rows_updated, result.rows_deleted)
            assert counts == (inserted, updated, deleted), where
        snapshot = {k: dict(v) for k, v in model.rows.items()}
        assert frame_rows(fg.read()) == snapshot, where
        if history:
            previous = history[-1][0]
            written = {k: v for k, v in frame_rows(fg.read_changes(previous, result.commit_id)).items()}
            assert written == {k: snapshot[k] for k in changed}, where
        history.append((result.commit_id, snapshot))
        details = fg.commit_details()
        assert list(details)[0] == result.commit_id and len(details) == len(history), where
    # time travel to every commit gives the state after it (columns added later read as null)
    for number, (commit, state) in enumerate(history):
        got = frame_rows(fg.read(as_of=commit))
        widened = {k: {**{f.name: None for f in schema.fields}, **v} for k, v in state.items()}
        assert {k: {**{f.name: None for f in schema.fields}, **v} for k, v in got.items()} == widened, number
    table = open_table(fs, fg.record)
    assert [c.commit_id for c in table.commits()] == [c for c, _ in history]
