"""Structured Streaming into a feature group: every micro-batch is one validated Hudi commit.

``fg.insert_stream(df, checkpoint_location)`` starts a ``foreachBatch`` query. Each non-empty
micro-batch goes through ``fg.insert`` — the feature group's expectation suite and policy, the
commit statistics, the online write-through — and its commit records the stream's id (derived
from the checkpoint location, which is what identifies a query across restarts) and the
micro-batch id in the Hudi commit metadata. Spark replays the last micro-batch after a crash
between our commit and its own checkpoint commit; a batch id at or below the newest one already on
the timeline for this stream is skipped, so no batch is committed twice (exactly once).

A batch rejected under STRICT raises :class:`ValidationError` inside the query, which stops it;
``query.exception()`` carries the report. Under ALWAYS the batch is written and the query goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from featurestore import hudi
from featurestore.hudi.table import table_exists

if TYPE_CHECKING:
    from featurestore.feature_group import FeatureGroup

log = logging.getLogger(__name__)
STREAM_ID_KEY = "stream.id"
BATCH_ID_KEY = "stream.batch_id"
TRIGGERS = ("processingTime", "once", "availableNow", "continuous")


def stream_id(checkpoint_location: str) -> str:
    """A stable id for the query that owns ``checkpoint_location``."""
    return hashlib.sha256(os.path.abspath(checkpoint_location).encode("utf-8")).hexdigest()[:16]


def last_committed_batch(location: str, sid: str) -> int | None:
    """The newest micro-batch id of stream ``sid`` on the table's active timeline."""
    if not table_exists(location):
        return None
    newest = None
    for entry in hudi.timeline(location):
        meta = entry.get("extra_metadata") or {}
        if meta.get(STREAM_ID_KEY) == sid and BATCH_ID_KEY in meta:
            batch = int(meta[BATCH_ID_KEY])
            newest = batch if newest is None else max(newest, batch)
    return newest


def micro_batch_writer(fg: FeatureGroup, sid: str, operation: str, write_options: dict[str, Any] | None):
    """The ``foreachBatch`` function: one commit per new, non-empty micro-batch."""

    def write(batch_df: DataFrame, batch_id: int) -> None:
        done = last_committed_batch(fg.location, sid)
        if done is not None and batch_id <= done:
            log.info("stream %s: micro-batch %s already committed (newest %s); skipped", sid, batch_id, done)
            return
        if batch_df.isEmpty():
            return
        options = {**(write_options or {}), f"featurestore.commit.metadata.{STREAM_ID_KEY}": sid,
                   f"featurestore.commit.metadata.{BATCH_ID_KEY}": str(batch_id)}
        result = fg.insert(batch_df, operation=operation, write_options=options)
        log.info("stream %s: micro-batch %s committed as %s", sid, batch_id, result.commit_id)

    return write


def insert_stream(fg: FeatureGroup, df: DataFrame, checkpoint_location: str, trigger: dict[str, Any] | None = None,
                  query_name: str | None = None, operation: str = "upsert",
                  write_options: dict[str, Any] | None = None) -> StreamingQuery:
    """Start the streaming query (see the module docstring) and return it."""
    from featurestore.feature_group import FeatureGroupError

    if not df.isStreaming:
        raise FeatureGroupError("insert_stream needs a streaming DataFrame (spark.readStream...); use insert for a "
                                "batch DataFrame")
    if not checkpoint_location:
        raise FeatureGroupError("insert_stream needs a checkpoint_location (it makes the stream exactly once)")
    fg._check_input(df)
    trig = dict(trigger or {})
    unknown = set(trig) - set(TRIGGERS)
    if unknown or len(trig) > 1:
        raise FeatureGroupError(f"trigger must be one of {{{', '.join(TRIGGERS)}: value}}, got {trigger!r}")
    sid = stream_id(checkpoint_location)
    writer = (df.writeStream.foreachBatch(micro_batch_writer(fg, sid, operation, write_options))
              .option("checkpointLocation", checkpoint_location)
              .queryName(query_name or f"featurestore_{fg.table_name}"))
    if trig:
        writer = writer.trigger(**trig)
    return writer.start()
