"""Structured Streaming into a feature group: every micro-batch is one validated commit.

``fg.insert_stream(df, checkpoint_location)`` starts a ``foreachBatch`` query. Each non-empty
micro-batch goes through the same write pipeline as ``fg.insert`` (:mod:`featurestore.ingestion`:
the feature group's expectation suite and policy, the commit statistics, the online write-through),
and its commit records the stream's id (derived from the checkpoint location, which is what
identifies a query across restarts) and the micro-batch id in the commit metadata. Spark replays the
last micro-batch after a crash between our commit and its own checkpoint commit; a batch id at or
below the newest one already committed for this stream is skipped, so no batch is committed twice
(exactly once).

A batch rejected under STRICT raises :class:`ValidationError` inside the query, which stops it;
``query.exception()`` carries the report. Under ALWAYS the batch is written and the query goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from featurestore import ingestion, offline
from featurestore.errors import FeatureGroupError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import FeatureGroupRecord

log = logging.getLogger(__name__)
STREAM_ID_KEY = "stream.id"
BATCH_ID_KEY = "stream.batch_id"
TRIGGERS = ("processingTime", "once", "availableNow")


def stream_id(checkpoint_location: str) -> str:
    """A stable id for the query that owns ``checkpoint_location``."""
    return hashlib.sha256(os.path.abspath(checkpoint_location).encode("utf-8")).hexdigest()[:16]


def last_committed_batch(ctx: StoreContext, record: FeatureGroupRecord, sid: str) -> int | None:
    """The newest micro-batch id of stream ``sid`` among the offline table's commits."""
    newest = None
    for commit in offline.open_table(ctx, record).commits():
        meta = commit.metadata
        if meta.get(STREAM_ID_KEY) == sid and BATCH_ID_KEY in meta:
            batch = int(meta[BATCH_ID_KEY])
            newest = batch if newest is None else max(newest, batch)
    return newest


def micro_batch_writer(ctx: StoreContext, record: FeatureGroupRecord, sid: str, operation: str,
                       write_options: dict[str, Any] | None):
    """The ``foreachBatch`` function: one commit per new, non-empty micro-batch."""
    current = {"record": record}  # the record moves on when a batch adds a feature

    def write(batch_df: DataFrame, batch_id: int) -> None:
        done = last_committed_batch(ctx, current["record"], sid)
        if done is not None and batch_id <= done:
            log.info("stream %s: micro-batch %s already committed (newest %s); skipped", sid, batch_id, done)
            return
        if batch_df.isEmpty():
            return
        result, current["record"] = ingestion.insert(
            ctx, ctx.refresh(current["record"]), batch_df, operation=operation, write_options=write_options,
            commit_metadata={STREAM_ID_KEY: sid, BATCH_ID_KEY: str(batch_id)})
        log.info("stream %s: micro-batch %s committed as %s", sid, batch_id, result.commit_id)

    return write


def insert_stream(ctx: StoreContext, record: FeatureGroupRecord, df: DataFrame, checkpoint_location: str,
                  trigger: dict[str, Any] | None = None, query_name: str | None = None, operation: str = "upsert",
                  write_options: dict[str, Any] | None = None) -> StreamingQuery:
    """Start the streaming query (see the module docstring) and return it."""
    if not df.isStreaming:
        raise FeatureGroupError("insert_stream needs a streaming DataFrame (spark.readStream...); use insert for a "
                                "batch DataFrame")
    if not checkpoint_location:
        raise FeatureGroupError("insert_stream needs a checkpoint_location (it makes the stream exactly once)")
    ingestion.check_input(record, df)
    trig = dict(trigger or {})
    if "continuous" in trig:
        raise FeatureGroupError("insert_stream cannot run the 'continuous' trigger: every micro-batch is one "
                                "validated commit (foreachBatch), which continuous processing does not have; use "
                                "processingTime, availableNow or once")
    unknown = set(trig) - set(TRIGGERS)
    if unknown or len(trig) > 1:
        raise FeatureGroupError(f"trigger must be one of {{{', '.join(TRIGGERS)}: value}}, got {trigger!r}")
    sid = stream_id(checkpoint_location)
    writer = (df.writeStream.foreachBatch(micro_batch_writer(ctx, record, sid, operation, write_options))
              .option("checkpointLocation", checkpoint_location)
              .queryName(query_name or f"featurestore_{record.table_name}"))
    if trig:
        writer = writer.trigger(**trig)
    return writer.start()
