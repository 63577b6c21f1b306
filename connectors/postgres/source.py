"""PostgreSQL source: the entry that runs a capture (`run_capture`, what `cdc capture` calls through
`cdc.registry`).

Checks and set-up (`connectors.postgres.setup`), a snapshot when asked (`connectors.postgres.snapshot`),
then the change stream of the slot (`connectors.postgres.streaming`) until stopped.
"""

from __future__ import annotations

import logging
import os

from cdc.envelope import Envelope
from cdc.envelope.topics import check_distinct_topics
from cdc.incremental import start_incremental
from cdc.kafka import make_admin, make_capture_producer
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal, ensure_topics, load_schemas
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl, parse_url
from connectors.postgres.dialect import connect
from connectors.postgres.incremental import PostgresChunks
from connectors.postgres.offsets import lsn_to_int, lsn_to_text
from connectors.postgres.replication import ReplicationConnection
from connectors.postgres.setup import (
    create_marker,
    default_name,
    drop_slots,
    pending_marker,
    prepare_source,
    published,
    snapshot_unfinished,
    wants_failover_slot,
)
from connectors.postgres.snapshot import read_snapshot, snapshot_tables
from connectors.postgres.streaming import PostgresStream, tune_gc_for_streaming

log = logging.getLogger(__name__)


def run_capture(options: CaptureOptions, stop: StopSignal) -> None:
    """`cdc capture` for PostgreSQL: checks and set-up, snapshot when asked, then stream until stopped."""
    url = parse_url(options.source, what="--source")
    slot = options.slot or default_name(options.prefix)
    publication = options.publication or default_name(options.prefix)
    with connect(url) as conn:
        captured, slot_state = prepare_source(conn, slot=slot, publication=publication,
                                              tables=list(options.tables) or None, include=options.include,
                                              keyless=options.extra.get("keyless", "refuse"))
        publications = published(conn, publication)
        database = conn.info.dbname
        failover = wants_failover_slot(options.extra.get("failover_slot"), conn.info.server_version)
    check_distinct_topics(options.prefix, captured)
    table_filter = TableFilter(captured if options.tables else (), options.include, default_namespace="public")
    envelope = Envelope(options.prefix, compat=options.compat)
    with make_admin(options.kafka, backend=options.kafka_backend) as admin:
        ensure_topics(admin, envelope)
        schemas = load_schemas(options.kafka, envelope.schemas_topic, backend=options.kafka_backend, admin=admin)
    producer = make_capture_producer(options.kafka, backend=options.kafka_backend,
                                     max_message_bytes=options.max_message_bytes)
    pipeline = CapturePipeline(producer, envelope)
    pipeline.seed_schemas(schemas)
    log.info("capture starting", extra={"source": url.redacted(), "slot": slot, "publication": ",".join(publications),
                                        "tables": len(captured) or "all", "snapshot": options.snapshot})
    replication: ReplicationConnection | None = None
    stream: PostgresStream | None = None
    # before the slot: its start-up (stored progress, signal topic) never delays streaming
    incremental = start_incremental(options, pipeline, PostgresChunks(
        url, pipeline, prefix=options.prefix, database=database, publication=publication, table_filter=table_filter))
    try:
        if options.snapshot == "initial_only":
            _snapshot_through_temporary_slot(url, slot, captured, publication, pipeline, options, database, stop)
            log.info("snapshot done (initial_only): exiting", extra={"events": pipeline.events})
            return
        if slot_state is not None and snapshot_unfinished(url, slot):
            # The rows the stopped snapshot published stay in Kafka. Streaming from the slot's consistent
            # point (not from the new snapshot's) replays every change since that snapshot began, so a row it
            # published and that was deleted since is deleted again: the target converges.
            log.warning("the previous run stopped during its snapshot: snapshotting again, then streaming from the "
                        "slot's consistent point (changes since then are replayed)", extra={"slot": slot})
            _snapshot_through_temporary_slot(url, slot, captured, publication, pipeline, options, database, stop)
            if stop.requested:
                log.info("stopped during the snapshot: the next start snapshots again")
                return
            drop_slots(url, pending_marker(slot))
        if slot_state is None:
            want_snapshot = options.snapshot in ("initial", "when_needed")
            if want_snapshot:
                create_marker(url, pending_marker(slot))
            replication = ReplicationConnection(url)
            created = replication.create_slot(slot, export_snapshot=want_snapshot, failover=failover)
            start = created.consistent_point
            log.info("created replication slot", extra={"slot": slot, "consistent_point": lsn_to_text(start),
                                                        "failover": failover})
            if want_snapshot:
                read_snapshot(url, created.snapshot_name, start, snapshot_tables(url, captured, publication),
                              pipeline, options, database, stop)
                pipeline.flush()
                if stop.requested:
                    replication.close()
                    replication = None
                    drop_slots(url, slot, pending_marker(slot))
                    log.info("stopped during the snapshot: dropped the new slot; the next start snapshots again")
                    return
                drop_slots(url, pending_marker(slot))
        else:
            start = lsn_to_int(slot_state.confirmed_flush) if slot_state.confirmed_flush else 0
            log.info("resuming from the slot's confirmed position", extra={"slot": slot, "start": lsn_to_text(start)})
            if failover and not slot_state.failover:
                replication = ReplicationConnection(url)
                replication.enable_failover(slot)
                log.info("the slot is now a failover slot", extra={"slot": slot})
        stream = PostgresStream(url, options, pipeline, table_filter, slot=slot, publication=publications,
                                database=database)
        stream.incremental = incremental
        incremental = None
        tune_gc_for_streaming()
        stream.run(stop, start, replication)
        replication = None
    finally:
        if replication is not None:
            replication.close()
        if stream is not None:
            stream.close()
            if stream.incremental is not None:
                stream.incremental.close()
        if incremental is not None:
            incremental.close()
        producer.close(10.0)


def _snapshot_through_temporary_slot(url: DatabaseUrl, slot: str, captured: list[tuple[str, str]], publication: str,
                                     pipeline: CapturePipeline,
                                     options: CaptureOptions, database: str, stop: StopSignal) -> None:
    """Snapshot the tables as of a temporary slot's exported snapshot (the capture's own slot is left as it is)."""
    replication = ReplicationConnection(url)
    try:
        created = replication.create_slot(f"{slot[:40]}_snapshot_{os.getpid()}", export_snapshot=True,
                                          temporary=True)
        read_snapshot(url, created.snapshot_name, created.consistent_point,
                      snapshot_tables(url, captured, publication), pipeline, options, database, stop)
        pipeline.flush()
    finally:
        replication.close()
