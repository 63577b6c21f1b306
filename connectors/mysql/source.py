"""MySQL/MariaDB source: the entry that runs a capture (`run_capture`, what `cdc capture` calls through
`cdc.registry`).

Checks (`connectors.mysql.setup`), the stored position (`cdc.offsets.OffsetStore`), a snapshot when
asked or needed (`connectors.mysql.snapshot`), then the binlog stream (`connectors.mysql.streaming`)
until stopped.
"""

from __future__ import annotations

import logging

from cdc.envelope import Envelope
from cdc.envelope.topics import check_distinct_topics
from cdc.errors import SourceError
from cdc.incremental import start_incremental
from cdc.kafka import make_capture_producer
from cdc.offsets import OffsetStore
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl, parse_url
from connectors.mysql.binlog import current_position
from connectors.mysql.dialect import connect
from connectors.mysql.incremental import MysqlChunks
from connectors.mysql.offsets import BinlogPosition, position_from_value, position_value
from connectors.mysql.setup import ServerInfo, check_source, default_server_id, resolve_tables
from connectors.mysql.snapshot import run_snapshot
from connectors.mysql.source_info import CONNECTOR
from connectors.mysql.streaming import MysqlStream

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "mysql-snapshot"  # the offsets topic key where an unfinished snapshot says where it began


def run_capture(options: CaptureOptions, stop: StopSignal) -> None:
    """`cdc capture` for MySQL/MariaDB: checks, snapshot when asked, then stream until stopped."""
    url = parse_url(options.source, what="--source")
    server_id = int(options.extra.get("server_id") or default_server_id(options.prefix))
    table_filter = TableFilter(options.tables, options.include, default_namespace=url.database, scope=url.database)
    conn = connect(url)
    try:
        info = check_source(conn, database=url.database, server_id=server_id)
        check_distinct_topics(options.prefix, resolve_tables(conn, table_filter))
    finally:
        conn.close()
    offsets = OffsetStore(options.kafka, options.prefix, CONNECTOR, options.kafka_backend)
    offsets.ensure_topic()
    snapshot_began = OffsetStore(options.kafka, options.prefix, SNAPSHOT_KEY, options.kafka_backend)
    stored = position_from_value(offsets.load())
    producer = make_capture_producer(options.kafka, backend=options.kafka_backend,
                                     max_message_bytes=options.max_message_bytes)
    pipeline = CapturePipeline(producer, Envelope(options.prefix, compat=options.compat))
    stream = MysqlStream(url, options, pipeline, table_filter, info, offsets, server_id)
    stream.chunks = MysqlChunks(url, pipeline, prefix=options.prefix, server_id=server_id, table_filter=table_filter,
                                schemas=stream.schemas)
    stream.incremental = start_incremental(options, pipeline, stream.chunks)
    log.info("capture starting", extra={"source": url.redacted(), "server_id": server_id, "snapshot": options.snapshot,
                                        "stored_position": str(stored) if stored else None})
    try:
        start = stored
        if options.snapshot == "initial_only" or (stored is None and options.snapshot in ("initial", "when_needed")):
            start = _snapshot(url, info, table_filter, pipeline, options, stream, stop,
                              None if options.snapshot == "initial_only" else snapshot_began)
            if start is None or options.snapshot == "initial_only":
                return
        elif start is None:
            start = current_position(url)
        try:
            stream.run(stop, start)
        except SourceError as exc:
            if options.snapshot != "when_needed" or "new snapshot is needed" not in str(exc):
                raise
            log.warning("stored position is gone; taking a new snapshot (--snapshot when_needed)",
                        extra={"error": str(exc)})
            pipeline.produce(snapshot_began.record({"began_after": None}))  # a stored position: no snapshot is unfinished
            start = _snapshot(url, info, table_filter, pipeline, options, stream, stop, snapshot_began)
            if start is not None:
                stream.run(stop, start)
    finally:
        stream.incremental.close()
        producer.close(10.0)


def _snapshot(url: DatabaseUrl, info: ServerInfo, table_filter: TableFilter, pipeline: CapturePipeline,
              options: CaptureOptions, stream: MysqlStream, stop: StopSignal,
              snapshot_began: OffsetStore | None) -> BinlogPosition | None:
    """Snapshot, flush, and store the stream's start; None when stopped.

    The start is the snapshot's position, except after a snapshot that stopped midway: the rows it published
    stay in Kafka, so streaming starts where that first snapshot began (kept under `snapshot_began` until a
    snapshot finishes) and replays every change since, deletes of rows it published among them.
    """
    earlier = None
    if snapshot_began is not None:
        earlier = position_from_value((snapshot_began.load() or {}).get("began_after"))
        if earlier is None:
            pipeline.produce(snapshot_began.record({"began_after": position_value(current_position(url),
                                                                                   stream.server_id)}))
            pipeline.flush()
    position = run_snapshot(url, info, table_filter, pipeline, options, stream.schemas, stop)
    pipeline.flush()
    if position is None:
        return None
    if earlier is not None:
        log.warning("the previous run stopped during its snapshot: streaming from where that snapshot began, "
                    "so changes since then are replayed", extra={"snapshot": str(position), "start": str(earlier)})
        pipeline.checkpoint(earlier)
        position = earlier
    stream.saved = None
    stream.save_offsets()
    if snapshot_began is not None:
        pipeline.produce(snapshot_began.record({"began_after": None}))
    pipeline.flush()
    log.info("snapshot done", extra={"events": pipeline.events, "position": str(position)})
    return position
