"""Avro payloads of timeline instants as Hudi serialises them: an uncompressed Avro container
holding one record of a schema in ``org.apache.hudi.avro.model``. Clean and rollback instants use
Avro in every table version; commit metadata is Avro from table version 8 on (JSON before).
"""

from __future__ import annotations

import io
from typing import Any

import fastavro

NS = "org.apache.hudi.avro.model"
_STR_ARRAY = {"type": "array", "items": "string"}


def _opt(t: Any) -> list:
    return ["null", t]


ACTION_INSTANT = {"type": "record", "name": "HoodieActionInstant", "namespace": NS, "fields": [
    {"name": "timestamp", "type": "string"}, {"name": "action", "type": "string"},
    {"name": "state", "type": "string"}]}
CLEAN_FILE_INFO = {"type": "record", "name": "HoodieCleanFileInfo", "namespace": NS, "fields": [
    {"name": "filePath", "type": _opt("string"), "default": None},
    {"name": "isBootstrapBaseFile", "type": _opt("boolean"), "default": None}]}
CLEANER_PLAN = {"type": "record", "name": "HoodieCleanerPlan", "namespace": NS, "fields": [
    {"name": "earliestInstantToRetain", "type": _opt(ACTION_INSTANT), "default": None},
    {"name": "lastCompletedCommitTimestamp", "type": "string", "default": ""},
    {"name": "policy", "type": "string"},
    {"name": "filesToBeDeletedPerPartition", "type": _opt({"type": "map", "values": _STR_ARRAY}), "default": None},
    {"name": "version", "type": ["int", "null"], "default": 1},
    {"name": "filePathsToBeDeletedPerPartition",
     "type": _opt({"type": "map", "values": {"type": "array", "items": CLEAN_FILE_INFO}}), "default": None},
    {"name": "partitionsToBeDeleted", "type": _opt(_STR_ARRAY), "default": None},
    {"name": "extraMetadata", "type": _opt({"type": "map", "values": "string"}), "default": None}]}
CLEAN_PARTITION = {"type": "record", "name": "HoodieCleanPartitionMetadata", "namespace": NS, "fields": [
    {"name": "partitionPath", "type": "string"}, {"name": "policy", "type": "string"},
    {"name": "deletePathPatterns", "type": _STR_ARRAY}, {"name": "successDeleteFiles", "type": _STR_ARRAY},
    {"name": "failedDeleteFiles", "type": _STR_ARRAY},
    {"name": "isPartitionDeleted", "type": _opt("boolean"), "default": None}]}
CLEAN_METADATA = {"type": "record", "name": "HoodieCleanMetadata", "namespace": NS, "fields": [
    {"name": "startCleanTime", "type": "string"}, {"name": "timeTakenInMillis", "type": "long"},
    {"name": "totalFilesDeleted", "type": "int"}, {"name": "earliestCommitToRetain", "type": "string"},
    {"name": "lastCompletedCommitTimestamp", "type": "string", "default": ""},
    {"name": "partitionMetadata", "type": {"type": "map", "values": CLEAN_PARTITION}},
    {"name": "version", "type": ["int", "null"], "default": 1},
    {"name": "bootstrapPartitionMetadata", "type": _opt({"type": "map", "values": "HoodieCleanPartitionMetadata"}),
     "default": None},
    {"name": "extraMetadata", "type": _opt({"type": "map", "values": "string"}), "default": None}]}
INSTANT_INFO = {"type": "record", "name": "HoodieInstantInfo", "namespace": NS, "fields": [
    {"name": "commitTime", "type": "string"}, {"name": "action", "type": "string"}]}
ROLLBACK_REQUEST = {"type": "record", "name": "HoodieRollbackRequest", "namespace": NS, "fields": [
    {"name": "partitionPath", "type": "string"},
    {"name": "fileId", "type": _opt("string"), "default": None},
    {"name": "latestBaseInstant", "type": _opt("string"), "default": None},
    {"name": "filesToBeDeleted", "type": _STR_ARRAY, "default": []},
    {"name": "logBlocksToBeDeleted", "type": _opt({"type": "map", "values": "long"}), "default": None}]}
ROLLBACK_PLAN = {"type": "record", "name": "HoodieRollbackPlan", "namespace": NS, "fields": [
    {"name": "instantToRollback", "type": _opt(INSTANT_INFO), "default": None},
    {"name": "RollbackRequests", "type": _opt({"type": "array", "items": ROLLBACK_REQUEST}), "default": None},
    {"name": "version", "type": ["int", "null"], "default": 1}]}
ROLLBACK_PARTITION = {"type": "record", "name": "HoodieRollbackPartitionMetadata", "namespace": NS, "fields": [
    {"name": "partitionPath", "type": "string"}, {"name": "successDeleteFiles", "type": _STR_ARRAY},
    {"name": "failedDeleteFiles", "type": _STR_ARRAY},
    {"name": "rollbackLogFiles", "type": _opt({"type": "map", "values": "long"}), "default": None}]}
ROLLBACK_METADATA = {"type": "record", "name": "HoodieRollbackMetadata", "namespace": NS, "fields": [
    {"name": "startRollbackTime", "type": "string"}, {"name": "timeTakenInMillis", "type": "long"},
    {"name": "totalFilesDeleted", "type": "int"}, {"name": "commitsRollback", "type": _STR_ARRAY},
    {"name": "partitionMetadata", "type": {"type": "map", "values": ROLLBACK_PARTITION}},
    {"name": "version", "type": ["int", "null"], "default": 1},
    {"name": "instantsRollback", "type": {"type": "array", "items": INSTANT_INFO}, "default": []}]}

_LONG = _opt("long")
_WRITE_STAT_LONGS = ("numWrites", "numDeletes", "numUpdateWrites", "totalWriteBytes", "totalWriteErrors")
RUNTIME_STATS = {"type": "record", "name": "HoodieRuntimeStats", "namespace": NS, "fields": [
    {"name": n, "type": _LONG, "default": None} for n in ("totalScanTime", "totalCreateTime", "totalUpsertTime")]}
# The fields of HoodieWriteStat in Hudi 1.x's order (as its table version 9 commit files carry them).
WRITE_STAT = {"type": "record", "name": "HoodieWriteStat", "namespace": NS, "fields": [
    {"name": "fileId", "type": _opt("string"), "default": None},
    {"name": "path", "type": _opt("string"), "default": None},
    {"name": "prevCommit", "type": _opt("string"), "default": None},
    *[{"name": n, "type": _LONG, "default": None} for n in _WRITE_STAT_LONGS],
    {"name": "partitionPath", "type": _opt("string"), "default": None},
    *[{"name": n, "type": _LONG, "default": None} for n in (
        "totalLogRecords", "totalLogFiles", "totalUpdatedRecordsCompacted", "numInserts", "totalLogBlocks",
        "totalCorruptLogBlock", "totalRollbackBlocks", "fileSizeInBytes")],
    {"name": "logVersion", "type": _opt("int"), "default": None},
    {"name": "logOffset", "type": _LONG, "default": None},
    {"name": "baseFile", "type": _opt("string"), "default": None},
    {"name": "logFiles", "type": _opt(_STR_ARRAY), "default": None},
    {"name": "cdcStats", "type": _opt({"type": "map", "values": "long"}), "default": None},
    {"name": "prevBaseFile", "type": _opt("string"), "default": None},
    {"name": "minEventTime", "type": _LONG, "default": None},
    {"name": "maxEventTime", "type": _LONG, "default": None},
    {"name": "runtimeStats", "type": _opt(RUNTIME_STATS), "default": None},
    *[{"name": n, "type": _LONG, "default": None} for n in (
        "totalLogFilesCompacted", "totalLogReadTimeMs", "totalLogSizeCompacted")],
    {"name": "tempPath", "type": _opt("string"), "default": None},
    {"name": "numUpdates", "type": _LONG, "default": None}]}
_COMMIT_FIELDS = [
    {"name": "partitionToWriteStats",
     "type": _opt({"type": "map", "values": {"type": "array", "items": WRITE_STAT}}), "default": None},
    {"name": "compacted", "type": _opt("boolean"), "default": None},
    {"name": "extraMetadata", "type": _opt({"type": "map", "values": "string"}), "default": None},
    {"name": "version", "type": ["int", "null"], "default": 1},
    {"name": "operationType", "type": _opt("string"), "default": None}]
COMMIT_METADATA = {"type": "record", "name": "HoodieCommitMetadata", "namespace": NS, "fields": _COMMIT_FIELDS}
REPLACE_COMMIT_METADATA = {"type": "record", "name": "HoodieReplaceCommitMetadata", "namespace": NS, "fields": [
    *_COMMIT_FIELDS,
    {"name": "partitionToReplaceFileIds", "type": _opt({"type": "map", "values": _STR_ARRAY}), "default": None}]}

_PARSED: dict[str, Any] = {}


def serialize(schema: dict, record: dict) -> bytes:
    """One record in an uncompressed Avro container file."""
    key = schema["name"]
    if key not in _PARSED:
        _PARSED[key] = fastavro.parse_schema(schema, named_schemas={})
    buf = io.BytesIO()
    fastavro.writer(buf, _PARSED[key], [record], codec="null")
    return buf.getvalue()


def commit_metadata_avro(metadata: dict[str, Any]) -> bytes:
    """Commit metadata (the JSON form's keys) as Hudi 1.x writes it for table versions 8 and 9:
    ``HoodieReplaceCommitMetadata`` when it replaces file groups, else ``HoodieCommitMetadata``."""
    schema = REPLACE_COMMIT_METADATA if "partitionToReplaceFileIds" in metadata else COMMIT_METADATA
    record = dict(metadata)
    stats = record.get("partitionToWriteStats") or {}
    # The JSON form has no "numUpdates"; Hudi 1.x's own commit files carry 0 there.
    record["partitionToWriteStats"] = {
        p: [{**s, "numUpdates": s.get("numUpdates", 0)} for s in ss or []] for p, ss in stats.items()}
    record.setdefault("version", None)
    return serialize(schema, record)


def deserialize(data: bytes) -> dict:
    """The single record of an Avro container (empty dict for an empty file)."""
    if not data:
        return {}
    records = list(fastavro.reader(io.BytesIO(data)))
    return records[0] if records else {}
