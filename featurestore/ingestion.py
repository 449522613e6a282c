"""Writes into a feature group: check, validate, commit, record, write through to the online store.

The pipeline of ``fg.insert`` / ``fg.delete_records`` / streaming micro-batches, below the facades:
it takes a :class:`~featurestore.model.StoreContext` and a record, goes down to the quality gate,
the offline table and the online store, and never back up. The input DataFrame is evaluated once:
it is persisted (spilling to disk) for validation, the write and the commit statistics, and
unpersisted after. The offline timeline is read once per operation, after the commit, and that one
commit list feeds the registry's commit log and the online write-through.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestore import offline, provenance
from featurestore.errors import FeatureGroupError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import (
    EVENT_TIME_TYPES,
    CommitInfo,
    FeatureGroupRecord,
    WriteResult,
    features_from_schema,
)
from featurestore.names import spark_column
from featurestore.online import sync as online_sync
from featurestore.online.types import OnlineStoreError
from featurestore.quality import gate
from featurestore.quality.statistics import scan_analyzers, statistics_config
from featurestore.quality.suite import verify

log = logging.getLogger(__name__)

# Commit metadata key of the validation status of the batch (Success/Warning/Error, or NOT_VALIDATED).
VALIDATION_KEY = "validation.status"
NOT_VALIDATED = "not_validated"
RECOVERED = "recovered"  # provenance kind of a commit whose provenance was rebuilt after a crash
FIRST_COMMIT = "19700101000000000"  # before every commit: read_changes from here reads the first commit
INSERT_OPERATIONS = ("upsert", "insert", "bulk_insert", "insert_overwrite", "insert_overwrite_table")
STORAGES = (None, "offline", "online")


#: write option of ``fg.insert`` that lets a batch add new (nullable) features to the version
SCHEMA_EVOLUTION_OPTION = "schema_evolution"
# integral types from narrow to wide, and the decimal digits each holds whole
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_INTEGRAL_DIGITS = {T.ByteType: 3, T.ShortType: 5, T.IntegerType: 10, T.LongType: 19}


@dataclass(frozen=True)
class InputSchema:
    """How a batch fits its feature group: the schema to register after the write (None: unchanged) and
    the incoming columns cast to the registered type (safe widenings such as int into bigint)."""

    evolved: T.StructType | None = None
    casts: Mapping[str, T.DataType] = field(default_factory=dict)


def widens(incoming: T.DataType, registered: T.DataType) -> bool:
    """Whether every value of ``incoming`` converts exactly to ``registered``: a wider integer, a float or
    double that holds the integer exactly (byte/short into float, up to int into double), float into double,
    a decimal with at least as many integer and fraction digits. Nothing else (no strings, no narrowing,
    no long into double, which loses digits past 2**53, no date into timestamp, which depends on the session
    time zone)."""
    src, dst = type(incoming), type(registered)
    if src in _INTEGRAL and dst in _INTEGRAL:
        return _INTEGRAL.index(src) < _INTEGRAL.index(dst)
    if src in _INTEGRAL and dst is T.FloatType:
        return src in (T.ByteType, T.ShortType)
    if src in _INTEGRAL and dst is T.DoubleType:
        return src is not T.LongType
    if src is T.FloatType and dst is T.DoubleType:
        return True
    if isinstance(registered, T.DecimalType):
        if src in _INTEGRAL:
            return registered.precision - registered.scale >= _INTEGRAL_DIGITS[src]
        if isinstance(incoming, T.DecimalType):
            return (registered.scale >= incoming.scale
                    and registered.precision - registered.scale >= incoming.precision - incoming.scale)
    return False


def schema_evolution(record: FeatureGroupRecord, write_options: Mapping[str, Any] | None) -> bool:
    """The ``schema_evolution`` write option (a bool, or the text true/false); an error naming it otherwise."""
    value = (write_options or {}).get(SCHEMA_EVOLUTION_OPTION, False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise FeatureGroupError(f"write option '{SCHEMA_EVOLUTION_OPTION}' of the insert into {record.label} must "
                                f"be True or False, got {value!r}")
    return value


def check_input(record: FeatureGroupRecord, df: DataFrame, evolve: bool = False) -> InputSchema:
    """Check ``df`` against the feature group before anything is written.

    Every registered feature must be there, with its type or one that widens safely to it (:func:`widens`:
    cast on the way in). A column the feature group does not have is an error naming it, unless ``evolve``
    (the ``schema_evolution`` write option): then it becomes a new nullable feature of the version.
    """
    cols = set(df.columns)
    for role, names in (("primary key", record.primary_key), ("partition key", record.partition_key),
                        ("event time", [record.event_time] if record.event_time else [])):
        missing = [c for c in names if c not in cols]
        if missing:
            raise FeatureGroupError(f"{role} column(s) {', '.join(repr(c) for c in missing)} missing from the "
                                    f"data of feature group {record.label} (columns: {', '.join(df.columns)})")
    if record.event_time and not isinstance(df.schema[record.event_time].dataType, EVENT_TIME_TYPES):
        raise FeatureGroupError(f"event time column '{record.event_time}' must be a timestamp, date or long, got "
                                f"{df.schema[record.event_time].dataType.simpleString()}")
    registered = {f.name: f for f in record.features}
    if not registered:
        return InputSchema(df.schema)
    incoming = {f.name: f for f in df.schema.fields}
    missing = [n for n in registered if n not in incoming]
    casts: dict[str, T.DataType] = {}
    changed = []
    for name, feature in registered.items():
        if name not in incoming:
            continue
        theirs, ours = incoming[name].dataType, feature.data_type
        if theirs.simpleString() == ours.simpleString():
            continue
        if widens(theirs, ours):
            casts[name] = ours
        else:
            changed.append(f"'{name}' ({ours.simpleString()} -> {theirs.simpleString()})")
    if missing or changed:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(n) for n in missing))
        if changed:
            parts.append("changed type " + ", ".join(changed))
        raise FeatureGroupError(f"the data does not match feature group {record.label}: " + "; ".join(parts)
                                + " (the types of a version only widen safely, e.g. int into bigint or float into "
                                "double; nothing was written)")
    added = [f for f in df.schema.fields if f.name not in registered]
    if added and not evolve:
        raise FeatureGroupError(
            f"the data has column(s) {', '.join(repr(f.name) for f in added)} that feature group {record.label} "
            f"does not have (features: {', '.join(registered)}); nothing was written. Add them with "
            "fg.append_features([Feature(name, type)]) or insert with write_options={'schema_evolution': True}, "
            "or drop them if misspelt")
    if added:
        evolved = T.StructType([T.StructField(n, registered[n].data_type, True) for n in registered]
                               + [T.StructField(f.name, f.dataType, True) for f in added])
        return InputSchema(evolved, casts)
    return InputSchema(None, casts)


def check_keys(ctx: StoreContext, record: FeatureGroupRecord, df: DataFrame) -> None:
    """Refuse a batch with a null in a primary-key or partition-key column, or (online-enabled groups) a
    key longer than the online store's key columns hold; one Spark job over ``df``, before any write.

    A null part of a composite key would be stored as a key of its own offline and could not be
    looked up online; a key over the online limit would be accepted offline and then stop every
    materialization of the group, so both are refused up front.
    """
    keys = list(dict.fromkeys([*record.primary_key, *record.partition_key]))
    limits: dict[str, int] = {}
    if record.online_enabled:
        limits = ctx.online_store.key_limits({k: df.schema[k].dataType for k in record.primary_key})
    aggregates = [F.sum(spark_column(k).isNull().cast("long")).alias(f"null_{i}") for i, k in enumerate(keys)]
    aggregates += [F.max(F.length(spark_column(k))).alias(f"len_{i}") for i, k in enumerate(limits)]
    if not aggregates:
        return
    summary = df.agg(*aggregates).first()
    nulls = [(k, summary[f"null_{i}"]) for i, k in enumerate(keys) if summary[f"null_{i}"]]
    if nulls:
        raise FeatureGroupError(
            f"key columns of feature group {record.label} cannot be null: "
            + ", ".join(f"'{k}' is null in {n} row(s)" for k, n in nulls) + "; nothing was written")
    too_long = [(k, summary[f"len_{i}"], limit) for i, (k, limit) in enumerate(limits.items())
                if summary[f"len_{i}"] is not None and summary[f"len_{i}"] > limit]
    if too_long:
        raise FeatureGroupError(
            f"primary-key values of feature group {record.label} are longer than its online store holds: "
            + ", ".join(f"'{k}' has a value of length {n} (limit {limit})" for k, n, limit in too_long)
            + "; nothing was written")


def _in_feature_order(record: FeatureGroupRecord, df: DataFrame,
                      casts: Mapping[str, T.DataType] | None = None) -> DataFrame:
    """``df`` in the feature group's column order (new columns last), safe widenings cast."""
    registered = record.feature_names
    order = registered + [c for c in df.columns if c not in registered]
    casts = casts or {}
    return df.select(*[spark_column(c).cast(casts[c]).alias(c) if c in casts else spark_column(c) for c in order])


def insert(ctx: StoreContext, record: FeatureGroupRecord, df: DataFrame, operation: str = "upsert",
           write_options: dict[str, Any] | None = None, storage: str | None = None,
           validation_options: dict[str, Any] | None = None,
           commit_metadata: dict[str, str] | None = None) -> tuple[WriteResult, FeatureGroupRecord]:
    """Validate and write ``df`` as one commit; returns the result and the (possibly evolved) record.

    See ``FeatureGroup.insert`` for the arguments; ``commit_metadata`` is kept with the commit
    (streaming records its query id and batch id there).
    """
    if operation not in INSERT_OPERATIONS:
        raise FeatureGroupError(f"unknown operation {operation!r} for insert; use {', '.join(INSERT_OPERATIONS)}")
    if storage not in STORAGES:
        raise FeatureGroupError(f"unknown storage {storage!r}; use None (both), 'offline' or 'online'")
    if storage == "online" and not record.online_enabled:
        raise FeatureGroupError(f"feature group {record.label} is not online-enabled; storage='online' needs "
                                "online_enabled=True")
    shape = check_input(record, df, schema_evolution(record, write_options))
    evolved = shape.evolved
    write_options = {k: v for k, v in (write_options or {}).items() if k != SCHEMA_EVOLUTION_OPTION} or None
    # Validation, the write and the statistics each run a job over the batch: a non-deterministic or
    # expensive source must give them the same rows, computed once.
    batch = _in_feature_order(record, df, shape.casts).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        check_keys(ctx, record, batch)  # the first job over the batch: it also fills the cache
        validation = gate.validate_before_write(ctx, record, batch, validation_options)
        if storage == "online":
            online = online_sync.write_batch(ctx, record, batch)
            return WriteResult(None, operation, storage="online", validation=validation,
                               details={"online": online}), record
        prov = provenance.capture()
        table = offline.open_table(ctx, record)
        # The validation status goes with the commit: a commit whose registry rows a crash lost is then
        # validated again on recovery only if this batch was.
        validated = {VALIDATION_KEY: validation.status if validation is not None else NOT_VALIDATED}
        outcome = table.write(batch, operation,
                              {**provenance.commit_metadata(prov), **validated, **(commit_metadata or {})},
                              write_options)
        if evolved is not None:
            record = _register_schema(ctx, record, evolved)
            table = offline.open_table(ctx, record)
        commits = sync_commits(ctx, record, table, current=outcome.commit_id)
        if outcome.commit_id is None:
            return WriteResult(None, operation, storage="offline", validation=validation), record
        _record_provenance(ctx, record, prov, outcome.commit_id)
        gate.after_commit(ctx, record, batch, outcome.commit_id, validation)
    finally:
        batch.unpersist()
    details: dict[str, Any] = {"files": outcome.files_written, "partitions": list(outcome.partitions)}
    written = "offline"
    if storage is None and record.online_enabled:
        details["online"] = _write_through(ctx, record, outcome.commit_id, commits)
        written = "offline+online"
    return WriteResult(outcome.commit_id, operation, outcome.rows_inserted, outcome.rows_updated,
                       outcome.rows_deleted, storage=written, validation=validation, details=details), record


def delete_records(ctx: StoreContext, record: FeatureGroupRecord, keys_df: DataFrame) -> WriteResult:
    """Delete the rows whose primary key (and partition key) appear in ``keys_df``, offline and online."""
    needed = list(record.primary_key) + list(record.partition_key)
    missing = [c for c in needed if c not in keys_df.columns]
    if missing:
        raise FeatureGroupError(f"delete_records needs column(s) {', '.join(repr(c) for c in missing)}")
    table = offline.open_table(ctx, record)
    if not table.exists():
        return WriteResult(None, "delete")
    keys = keys_df.select(*[spark_column(c) for c in needed])
    prov = provenance.capture()
    outcome = table.write(keys, "delete", provenance.commit_metadata(prov))
    sync_commits(ctx, record, table, current=outcome.commit_id)
    if outcome.commit_id is None:
        return WriteResult(None, "delete")
    _record_provenance(ctx, record, prov, outcome.commit_id)
    details: dict[str, Any] = {}
    storage = "offline"
    if record.online_enabled:
        # only keys really gone offline (a key given with the wrong partition value stays)
        pk = [spark_column(k) for k in record.primary_key]
        gone = keys.select(*pk).join(table.read(as_of=outcome.commit_id).select(*pk), list(record.primary_key),
                                     "left_anti")
        details["online"] = {"deleted": online_sync.delete_keys(ctx, record, gone)}
        storage = "offline+online"
    return WriteResult(outcome.commit_id, "delete", rows_deleted=outcome.rows_deleted, storage=storage,
                       details=details)


def _register_schema(ctx: StoreContext, record: FeatureGroupRecord, schema: T.StructType) -> FeatureGroupRecord:
    """Store the features of an evolved (or first) schema; the new record."""
    descriptions = dict(record.options.get("feature_descriptions") or {})
    descriptions.update({f.name: f.description for f in record.features if f.description})
    features = features_from_schema(schema, record.primary_key, record.partition_key, descriptions)
    row = ctx.registry.update_feature_group(record.id, getpass.getuser(), features=[f.to_dict() for f in features])
    return FeatureGroupRecord.from_row(row)


def _write_through(ctx: StoreContext, record: FeatureGroupRecord, commit_id: str,
                   commits: list[CommitInfo]) -> dict[str, Any] | None:
    """Apply the new commit to the online table: its rows read back from the offline table, so the
    online rows are exactly the offline ones (including keys a replace removed)."""
    begin = max([c.commit_id for c in commits if c.commit_id < commit_id], default=online_sync.FIRST_INSTANT)
    try:
        return online_sync.sync_range(ctx, record, begin, commit_id, commits)
    except OnlineStoreError as exc:
        raise OnlineStoreError(f"offline commit {commit_id} of {record.label} succeeded but the online write "
                               f"failed ({exc}); fs.materialize(fg) catches up") from None


def _record_provenance(ctx: StoreContext, record: FeatureGroupRecord, prov: dict[str, Any], commit_id: str) -> None:
    """Store what produced a commit (script/notebook content once per hash)."""
    try:
        provenance.record(ctx.registry, prov, "commit", record.id, commit_id)
    except Exception as exc:  # noqa: BLE001 - the commit stands; provenance is best effort after it
        log.warning("provenance of commit %s was not stored: %s", commit_id, exc)


# -- the commit log -------------------------------------------------------------------------------
def _registry_row(commit: CommitInfo) -> dict[str, Any]:
    return {"commit_id": commit.commit_id, "committed_at": commit.committed_at, "operation": commit.operation,
            "rows_inserted": commit.rows_inserted, "rows_updated": commit.rows_updated,
            "rows_deleted": commit.rows_deleted, "details": {"files": commit.files, **dict(commit.metadata)}}


def sync_commits(ctx: StoreContext, record: FeatureGroupRecord, table: offline.OfflineTable | None = None,
                 current: str | None = None) -> list[CommitInfo]:
    """Record commits that reached the offline table but not the registry (e.g. after a crash); returns
    the table's commit list, read once.

    A commit other than ``current`` (the one the running operation records itself) that the registry
    lacks was committed by a writer that died before its registry writes: it gets its commit row and,
    through :func:`recover_commit`, its provenance, statistics and validation report.
    """
    table = table or offline.open_table(ctx, record)
    commits = table.commits()
    if commits:
        known = {c["commit_id"] for c in ctx.registry.list_commits(record.id)}
        previous = FIRST_COMMIT
        for commit in commits:
            if commit.commit_id not in known and ctx.registry.add_commit(record.id, _registry_row(commit)) \
                    and commit.commit_id != current:
                recover_commit(ctx, record, table, commit, previous)
            previous = commit.commit_id
    return commits


def recover_commit(ctx: StoreContext, record: FeatureGroupRecord, table: offline.OfflineTable,
                   commit: CommitInfo, previous: str) -> None:
    """What the writer of ``commit`` did not live to store: provenance, rebuilt from the commit metadata
    and marked ``kind="recovered"``; for inserts, the statistics of the commit's rows read back from the
    table and, if the batch was validated (or the commit does not say), the feature group's suite run
    again on those rows. Best effort: the commit stands whatever fails here.
    """
    try:
        provenance_row = _recovered_provenance(record, commit)
        ctx.registry.add_provenance(provenance_row, None)
    except Exception as exc:  # noqa: BLE001 - the commit stands; provenance is best effort after it
        log.warning("recovered provenance of commit %s of %s was not stored: %s", commit.commit_id, record.label,
                    exc)
    if commit.operation not in INSERT_OPERATIONS:
        return
    rows = table.read_changes(previous, commit.commit_id)
    rows = _in_feature_order(record, rows).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        report = None
        if commit.metadata.get(VALIDATION_KEY) != NOT_VALIDATED:
            report = _revalidate(ctx, record, rows)
        gate.after_commit(ctx, record, rows, commit.commit_id, report)
        log.warning("commit %s of %s reached the offline table but not the registry (the writer died): its "
                    "provenance, statistics%s were recovered", commit.commit_id, record.label,
                    " and validation report" if report is not None else "")
    except Exception as exc:  # noqa: BLE001 - e.g. the cleaner removed the commit's file versions
        log.warning("statistics and validation of recovered commit %s of %s were not stored: %s",
                    commit.commit_id, record.label, exc)
    finally:
        rows.unpersist()


def _revalidate(ctx: StoreContext, record: FeatureGroupRecord, rows: DataFrame) -> Any:
    """The feature group's suite run on a recovered commit's rows (None without a suite). The rows are
    what the table kept of the batch (duplicate keys combined), and the data is written whatever the
    outcome: the report is stored as accepted, with the suite's policy."""
    suite, policy = gate.load_feature_group_suite(ctx, record)
    if suite is None:
        return None
    cfg = statistics_config(record.statistics_options)
    extra = scan_analyzers(rows, cfg) if cfg["enabled"] else []
    report = verify(rows, suite, gate.history_lookup(ctx, record), extra_analyzers=extra)
    report.outcome, report.policy, report.save = "accepted", policy, True
    return report


def _recovered_provenance(record: FeatureGroupRecord, commit: CommitInfo) -> dict[str, Any]:
    """A provenance row from what the commit metadata kept (code hash, path, git commit, user, host)."""
    meta = commit.metadata
    return {"entity_type": "commit", "feature_group_id": record.id, "commit_id": commit.commit_id,
            "entity_id": None, "kind": RECOVERED, "path": meta.get("code.path"), "sha256": meta.get("code.sha256"),
            "git_commit": meta.get("code.git_commit"), "git_dirty": None, "user": meta.get("user") or "unknown",
            "host": meta.get("host") or "unknown", "python": "unknown", "argv": [], "packages": [],
            "captured_at": commit.committed_at}


def commit_log(ctx: StoreContext, record: FeatureGroupRecord, limit: int | None = None) -> list[dict[str, Any]]:
    """The commits of a feature group, newest first: the registry's rows plus any commit of the offline
    table the registry does not have yet (read, not written: writes sync the registry)."""
    rows = list(ctx.registry.list_commits(record.id))
    if record.kind == "cached":
        known = {r["commit_id"] for r in rows}
        rows += [_registry_row(c) for c in offline.open_table(ctx, record).commits() if c.commit_id not in known]
    rows.sort(key=lambda r: (r["committed_at"], r["commit_id"]), reverse=True)
    return rows[:limit] if limit is not None else rows

