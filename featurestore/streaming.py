"""Structured Streaming into a feature group: every micro-batch is one validated commit.

``fg.insert_stream(df, checkpoint_location)`` starts a ``foreachBatch`` query. Each non-empty
micro-batch goes through the same write pipeline as ``fg.insert`` (:mod:`featurestore.ingestion`:
the feature group's expectation suite and policy, the commit statistics, the online write-through),
and its commit records the stream's id and the micro-batch id in the commit metadata. The stream's id
is Spark's own query id (``StreamingQuery.id``), which Spark keeps in the checkpoint: it is the same
across restarts from that checkpoint however its location is spelled (a path, a ``file:`` or ``s3a:``
URI, a symlink), and new when the checkpoint is deleted or reset. Spark replays the last micro-batch
after a crash between our commit and its own checkpoint commit; a batch id at or below the newest one
already committed for this stream is skipped, so no batch is committed twice (exactly once), and a new
checkpoint starts a new stream whose batches are all written. On Delta Lake the table enforces the same
itself: the stream id and batch id are the commit's ``txnAppId`` and ``txnVersion``.

A batch rejected under STRICT raises :class:`ValidationError` inside the query, which stops it;
``query.exception()`` carries the report. Under ALWAYS the batch is written and the query goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from featurestore import ingestion, offline
from featurestore.errors import FeatureGroupError
from featurestore.model.protocols import StoreContext
from featurestore.model.records import BATCH_ID_KEY, STREAM_ID_KEY, FeatureGroupRecord

log = logging.getLogger(__name__)
CHECKPOINT_KEY = "stream.checkpoint"
TRIGGERS = ("processingTime", "once", "availableNow")
QUERY_ID_WAIT_SECONDS = 300.0


class QueryIdentity:
    """The id of a streaming query, known once ``start()`` returned: the first micro-batch can run on
    Spark's stream thread before that, so the writer waits for it."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._known = threading.Event()

    def set(self, query_id: str) -> None:
        """Record the started query's id (``str(query.id)``)."""
        self._id = query_id
        self._known.set()

    def __call__(self) -> str:
        if not self._known.wait(QUERY_ID_WAIT_SECONDS) or self._id is None:
            raise FeatureGroupError("the streaming query's id was not known in time; the micro-batch is not written")
        return self._id


def last_committed_batch(ctx: StoreContext, record: FeatureGroupRecord, sid: str) -> int | None:
    """The newest micro-batch id of stream ``sid`` among the offline table's commits."""
    newest = None
    for commit in offline.open_table(ctx, record).commits():
        meta = commit.metadata
        if meta.get(STREAM_ID_KEY) == sid and BATCH_ID_KEY in meta:
            batch = int(meta[BATCH_ID_KEY])
            newest = batch if newest is None else max(newest, batch)
    return newest


def micro_batch_writer(ctx: StoreContext, record: FeatureGroupRecord, stream: str | Callable[[], str],
                       operation: str, write_options: dict[str, Any] | None,
                       checkpoint_location: str | None = None) -> Callable[[DataFrame, int], None]:
    """The ``foreachBatch`` function: one commit per new, non-empty micro-batch.

    ``stream`` is the query id, or a callable giving it (:class:`QueryIdentity`) when the query is not
    started yet; ``checkpoint_location`` is kept in the commit metadata for people, not for matching.
    """
    current = {"record": record}  # the record moves on when a batch adds a feature

    def write(batch_df: DataFrame, batch_id: int) -> None:
        sid = stream if isinstance(stream, str) else stream()
        done = last_committed_batch(ctx, current["record"], sid)
        if done is not None and batch_id <= done:
            log.info("stream %s: micro-batch %s already committed (newest %s); skipped", sid, batch_id, done)
            return
        if batch_df.isEmpty():
            return
        result, current["record"] = ingestion.insert(
            ctx, ctx.refresh(current["record"]), batch_df, operation=operation, write_options=write_options,
            commit_metadata={STREAM_ID_KEY: sid, BATCH_ID_KEY: str(batch_id),
                             **({CHECKPOINT_KEY: checkpoint_location} if checkpoint_location else {})})
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
    ingestion.check_input(record, df, ingestion.schema_evolution(record, write_options))
    trig = dict(trigger or {})
    if "continuous" in trig:
        raise FeatureGroupError("insert_stream cannot run the 'continuous' trigger: every micro-batch is one "
                                "validated commit (foreachBatch), which continuous processing does not have; use "
                                "processingTime, availableNow or once")
    unknown = set(trig) - set(TRIGGERS)
    if unknown or len(trig) > 1:
        raise FeatureGroupError(f"trigger must be one of {{{', '.join(TRIGGERS)}: value}}, got {trigger!r}")
    identity = QueryIdentity()
    writer = (df.writeStream
              .foreachBatch(micro_batch_writer(ctx, record, identity, operation, write_options, checkpoint_location))
              .option("checkpointLocation", checkpoint_location)
              .queryName(query_name or f"featurestore_{record.table_name}"))
    if trig:
        writer = writer.trigger(**trig)
    query = writer.start()
    identity.set(str(query.id))  # read from (or first written to) <checkpoint>/metadata by Spark
    return query
