"""The streaming role for PostgreSQL: the pgoutput change stream of a logical slot into Kafka.

`PostgresStream` reads XLogData frames in batches from a `replication=database` connection, decodes
them (`twin("connectors.postgres.decode")`) and hands them to the engine-neutral
`cdc.pipeline.CapturePipeline`: row changes through `emit_row` with Debezium's PG `source` block as a
per-table `SourceTemplate` (only the per-event fields filled in), truncates and logical messages as
`Change` records. The flush LSN sent to the server is the pipeline's `acknowledged` position: the
end of the last transaction whose events Kafka acknowledged.

Large transactions: with PG 14+ pgoutput streams a transaction larger than logical_decoding_work_mem
before its commit (proto v2 `streaming 'on'`; v4 `streaming 'parallel'` on PG 16+, whose Stream Abort also carries the
abort's LSN and time); its messages are spooled as received
(`connectors.postgres.spool.TransactionSpool`) and produced at Stream Commit. `CDC_PG_STREAMING=off`
in the environment asks for proto v1 instead (the server then buffers the transaction in pg_replslot
and sends it after its commit), for comparisons such as benchmarks/bench_pg_e2e.py's `--compare-v1`.

Positions: see `connectors.postgres.offsets`.
"""

from __future__ import annotations

import gc
import logging
import os
import struct
import time
from typing import Any

import psycopg

from cdc.errors import ConfigError, SourceError
from cdc.impl import twin
from cdc.events import CREATE, DELETE, MESSAGE, TRUNCATE, UPDATE, Change, TableSchema
from cdc.incremental import IncrementalSnapshot, parse_signal
from cdc.pipeline import CaptureOptions, CapturePipeline, Every, StopSignal
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.postgres.decode import RelationInfo
from connectors.postgres.dialect import connect
from connectors.postgres.incremental import SIGNAL_PREFIX, WATERMARK_PREFIX
from connectors.postgres.offsets import lsn_to_text
from connectors.postgres.replication import ReplicationConnection, StreamLost
from connectors.postgres.schema import SchemaRegistry, describe_change
from connectors.postgres.source_info import SOURCE_VARIABLE_FIELDS, source_block
from connectors.postgres.spool import SpoolFull, TransactionSpool

PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder

log = logging.getLogger(__name__)

_XLOGDATA_HEAD = struct.Struct("!QQ")  # data_start, wal_end (after the 'w')
_KEEPALIVE_HEAD = struct.Struct("!QqB")  # wal_end, send_time, reply_requested (after the 'k')
_W, _K = ord("w"), ord("k")
_STREAM_START = struct.Struct("!IB")  # xid, first_segment: a synthetic Stream Start for the decoder
_STREAMED_TAGS = frozenset(b"IUDTMRY")  # spooled (Y only decoded) inside a stream block
_DECODE_NOW_TAGS = frozenset(b"RY")
_ROW_TAGS = frozenset(b"IUD")
_TYPE_TAG = ord("Y")
FRAMES_PER_BATCH = 5000

HEARTBEAT_PREFIX = "cdc-heartbeat"

# Reconnect back-off after the server went away (seconds), and how long to keep trying.
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 10.0
RECONNECT_GIVE_UP_AFTER = 300.0


class PostgresStream:
    """The streaming role: pgoutput frames -> Change records -> pipeline, with status updates and heartbeats."""

    def __init__(self, url: DatabaseUrl, options: CaptureOptions, pipeline: CapturePipeline,
                 table_filter: TableFilter, *, slot: str, publication: str | tuple[str, ...], database: str) -> None:
        self.url = url
        self.options = options
        self.pipeline = pipeline
        self.table_filter = table_filter
        self.slot = slot
        self.publication = publication
        self.database = database
        self.prefix = options.prefix
        self.max_spool_bytes = int(options.extra.get("max_spool_bytes") or TransactionSpool.DEFAULT_MAX_SIZE)
        self.catalog_conn = connect(url)
        self.decoder = PgoutputDecoder()
        self.schemas = SchemaRegistry(self.catalog_conn, self.decoder, database, pipeline)
        self.server_messages = self.catalog_conn.info.server_version >= 140000
        # current transaction: (xid, commit_lsn, commit_ts_us) or None
        self.transaction: tuple[int, int, int] | None = None
        self.last_commit_lsn: int | None = None
        self.last_checkpoint = 0
        self.received = 0
        self.spools: dict[int, TransactionSpool] = {}
        self.streaming = os.environ.get("CDC_PG_STREAMING", "on") != "off"
        self.stream_xid: int | None = None
        # hot path: relid -> (table or None when filtered out, its SourceTemplate), until a Relation
        # message; the template's values are the transaction's (below) and the event's `sequence`, `lsn`
        self._hot: dict[int, tuple[TableSchema | None, Any]] = {}
        self._sequence_head = '[null,"'  # `sequence` up to the event's LSN: ["<last commit lsn>","
        self._txn_values: tuple = (0, 0, 0, 0)  # ts_ms, ts_us, ts_ns, txId of the open transaction
        self.incremental: IncrementalSnapshot | None = None  # incremental snapshots (cdc.incremental), when on

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: StopSignal, start: int, replication: ReplicationConnection | None = None) -> None:
        """Stream from `start` until stop is requested; reconnect with back-off when the server goes away."""
        self.pipeline.tracker.acknowledged = start
        self.last_checkpoint = start
        delay = RECONNECT_FIRST_DELAY
        failing_since: float | None = None
        while not stop.requested:
            try:
                if replication is None:
                    replication = ReplicationConnection(self.url)
                self._stream(replication, stop)
                return
            except SpoolFull as exc:
                if not self.streaming:
                    raise
                # the server then keeps a large transaction (in pg_replslot) until its commit
                log.warning("spool full; reconnecting without streaming of in-progress transactions",
                            extra={"error": str(exc)})
                self.streaming = False
                self._after_disconnect()
            except (SourceError, psycopg.OperationalError) as exc:
                if not _transient(exc):
                    raise
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_GIVE_UP_AFTER:
                    raise SourceError(f"PostgreSQL stayed unreachable for {RECONNECT_GIVE_UP_AFTER:.0f}s: {exc}",
                                      fix="check the source server; restart capture when it is back") from exc
                log.warning("replication stream lost; reconnecting", extra={"error": str(exc), "delay_s": delay})
                self.pipeline.metrics.reconnected()
                self._after_disconnect()
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
            finally:
                if replication is not None:
                    replication.close()
                    replication = None
            if self.received:
                failing_since = None
                delay = RECONNECT_FIRST_DELAY
                self.received = 0

    def _stream(self, replication: ReplicationConnection, stop: StopSignal) -> None:
        pipeline = self.pipeline
        start = pipeline.acknowledged
        replication.start_replication(self.slot, self.publication, start, streaming=self.streaming)
        self._reconnect_catalog()
        status = Every(self.options.status_interval)
        heartbeat = Every(self.options.heartbeat_interval)
        progress = Every(10.0)
        written = start
        handle = self.handle
        read_batch = replication.read_batch
        xlogdata_head = _XLOGDATA_HEAD.unpack_from
        keepalive_head = _KEEPALIVE_HEAD.unpack_from
        tracker = pipeline.tracker
        confirmed = start  # the flush position last sent to the server
        while not stop.requested:
            # While Kafka still owes acknowledgements, wait briefly: they are served between reads.
            frames = read_batch(0.2 if tracker.idle else 0.01, FRAMES_PER_BATCH)
            wal_end = 0
            for data in frames:
                if data[0] == _W:
                    data_start, wal_end = xlogdata_head(data, 1)
                    handle(data[25:], data_start)
                elif data[0] == _K:
                    keepalive_end, _, reply = keepalive_head(data, 1)
                    written = max(written, wal_end, keepalive_end)
                    self._idle_checkpoint(keepalive_end)
                    if reply:
                        pipeline.poll()
                        replication.send_status(written, pipeline.acknowledged)
                else:
                    raise SourceError(f"unexpected replication frame type {data[:1]!r}")
            if frames:
                self.received += len(frames)
                written = max(written, wal_end)
            pipeline.poll()
            if self.incremental is not None:
                self.incremental.tick()
            if heartbeat.due():
                self._emit_heartbeat()
            if status.due() or (not frames and pipeline.acknowledged != confirmed):
                # every status interval, and at once when idle with more acknowledged: the slot
                # (and the WAL it holds) moves as soon as Kafka has what was sent
                confirmed = pipeline.acknowledged
                replication.send_status(written, confirmed)
            if progress.due():
                log.info("streaming", extra={"events": pipeline.events, "acknowledged": lsn_to_text(pipeline.acknowledged),
                                             "in_flight": pipeline.tracker.in_flight})
        pipeline.flush()
        replication.send_status(written, pipeline.acknowledged)
        log.info("stopped; Kafka flushed and source acknowledged",
                 extra={"events": pipeline.events, "flushed": lsn_to_text(pipeline.acknowledged)})

    def _idle_checkpoint(self, wal_end: int) -> None:
        """With no transaction open, everything before the server's wal_end was received: it may be flushed."""
        if self.transaction is None and not self.spools and wal_end > self.last_checkpoint:
            self.last_checkpoint = wal_end
            self.pipeline.checkpoint(wal_end)

    def _emit_heartbeat(self) -> None:
        """A logical message through the WAL, so the slot advances even when captured tables are idle."""
        try:
            self.catalog_conn.execute("SELECT pg_logical_emit_message(false, %s, %s)",
                                      (HEARTBEAT_PREFIX, str(time.time_ns() // 1_000_000)))
        except psycopg.OperationalError as exc:
            log.warning("heartbeat failed", extra={"error": str(exc).strip()})
            self._reconnect_catalog(force=True)
            return
        if not self.server_messages:
            self.pipeline.heartbeat()

    def _reconnect_catalog(self, force: bool = False) -> None:
        if force or self.catalog_conn.closed or self.catalog_conn.broken:
            try:
                self.catalog_conn.close()
            finally:
                self.catalog_conn = connect(self.url)
                self.schemas.conn = self.catalog_conn

    def _after_disconnect(self) -> None:
        """Forget half-received transactions: the server sends them again from the flushed position."""
        self.pipeline.abandon_transaction()
        self.transaction = None
        self._hot.clear()
        for spool in self.spools.values():
            spool.close()
        self.spools.clear()
        self.stream_xid = None
        self.decoder = PgoutputDecoder()
        self.schemas.decoder = self.decoder
        self.schemas.types_seen = set()
        self.pipeline.flush()

    # -- messages --------------------------------------------------------------------------------

    def handle(self, payload: bytes, lsn: int) -> None:
        """Decode one pgoutput message and act on it (DecodeError stops the connector: nothing is skipped)."""
        if self.stream_xid is not None and payload and payload[0] in _STREAMED_TAGS:
            # inside a stream block: row changes prepared now, the rest kept as received (xid first)
            if payload[0] in _ROW_TAGS and self._prepare_streamed(payload, lsn):
                return
            if payload[0] != _TYPE_TAG:
                self.spools[self.stream_xid].add(int.from_bytes(payload[1:5], "big"), lsn, payload)
            if payload[0] in _DECODE_NOW_TAGS:
                message = self.decoder.decode(payload, lsn)  # its relation/type, known from now on
                if message[0] == "R":
                    self._relation(message[1])
            return
        message = self.decoder.decode(payload, lsn)
        tag = message[0]
        if tag in "IUD":
            self._row_change(message, lsn)
        elif tag == "B":
            _, final_lsn, commit_ts_us, xid = message
            self._begin(xid, final_lsn, commit_ts_us)
        elif tag == "C":
            _, _, commit_lsn, end_lsn, commit_ts_us = message
            self._commit(commit_lsn, end_lsn, commit_ts_us)
        elif tag == "R":
            self._relation(message[1])
        elif tag == "T":
            self._truncate(message, lsn)
        elif tag == "M":
            self._message(message, lsn)
        elif tag == "S":
            self.stream_xid = message[1]
            if message[1] not in self.spools:
                self.spools[message[1]] = TransactionSpool(message[1], self.max_spool_bytes)
                log.info("a large transaction is streamed before its commit: spooling it", extra={"xid": message[1]})
        elif tag == "E":
            self.stream_xid = None
        elif tag == "c":
            _, xid, _, commit_lsn, end_lsn, commit_ts_us = message
            self._stream_commit(xid, commit_lsn, end_lsn, commit_ts_us)
        elif tag == "A":
            xid, subxid = message[1], message[2]
            spool = self.spools.get(xid)
            if spool is not None:
                if subxid == xid:
                    spool.close()
                    del self.spools[xid]
                else:
                    spool.aborted.add(subxid)
        # "O" (origin) and "Y" (type; codecs are chosen from the catalog at Relation time) need nothing.

    def _prepare_streamed(self, payload: bytes, lsn: int) -> bool:
        """Keep a streamed row change prepared (or drop it: not a captured table); False: keep it raw."""
        message = self.decoder.decode(payload, lsn)  # the decoder is inside the stream block too
        hot = self._hot.get(message[1])
        if hot is None:
            hot = self._hot_table(message[1])
        table = hot[0]
        if table is None:
            return True  # not captured: Stream Commit would skip it
        op, before, after = _row_values(message)
        parts = self.pipeline.envelope.row_parts(table, op, before, after)
        if parts is None:
            return False
        subxid = int.from_bytes(payload[1:5], "big")
        return self.spools[self.stream_xid].add_prepared(subxid, lsn, hot, op, parts)

    def _begin(self, xid: int, commit_lsn: int, commit_ts_us: int) -> None:
        self.transaction = (xid, commit_lsn, commit_ts_us)
        last = self.last_commit_lsn
        self._sequence_head = '[null,"' if last is None else f'["{last}","'
        self._txn_values = (commit_ts_us // 1000, commit_ts_us, commit_ts_us * 1000, xid)
        self.pipeline.begin_transaction(f"{xid}:{commit_lsn}", commit_ts_us // 1000)

    def _commit(self, commit_lsn: int, end_lsn: int, commit_ts_us: int) -> None:
        self.pipeline.end_transaction(commit_ts_us // 1000)
        self.transaction = None
        self.last_commit_lsn = commit_lsn
        if end_lsn > self.last_checkpoint:
            self.last_checkpoint = end_lsn
            self.pipeline.checkpoint(end_lsn)

    def _stream_commit(self, xid: int, commit_lsn: int, end_lsn: int, commit_ts_us: int) -> None:
        spool = self.spools.pop(xid, None)
        self._begin(xid, commit_lsn, commit_ts_us)
        if spool is not None:
            decode = self.decoder.decode
            started = time.monotonic()
            log.info("streamed transaction committed: producing its changes",
                     extra={"xid": xid, "messages": spool.count, "spooled_bytes": spool.size})
            # the spooled messages carry their xid: decode them inside a stream block of the decoder
            decode(b"S" + _STREAM_START.pack(xid, 0), commit_lsn)
            try:
                row_change = self._row_change
                poll = self.pipeline.poll
                emit_prepared = self.pipeline.emit_prepared
                prepared = spool.prepared
                ts_ms, ts_us, ts_ns, _ = self._txn_values
                sequence_head = self._sequence_head
                for count, (lsn, payload) in enumerate(spool.replay(), 1):
                    if not payload[0]:
                        table, template, op, parts = prepared(payload)
                        emit_prepared(table, op, parts, template,
                                      (ts_ms, sequence_head + str(lsn) + '"]', ts_us, ts_ns, xid, lsn))
                        if not count % 1000:
                            poll()
                        continue
                    message = decode(payload, lsn)
                    tag = message[0]
                    if tag in "IUD":
                        row_change(message, lsn)
                    elif tag == "T":
                        self._truncate(message, lsn)
                    elif tag == "M":
                        self._message(message, lsn)
                    # "R": the decoder took it (the schema registry did on arrival)
                    if not count % 1000:
                        poll()
            finally:
                decode(b"E", commit_lsn)
                spool.close()
            log.info("streamed transaction produced", extra={"xid": xid, "seconds": round(time.monotonic() - started, 3),
                                                             "waits_for_kafka": self.pipeline.waits_for_kafka})
        self._commit(commit_lsn, end_lsn, commit_ts_us)

    def _relation(self, relation: RelationInfo) -> None:
        self._hot.clear()
        schema, previous = self.schemas.relation(relation)
        if previous is None or not self.table_filter(relation.namespace, relation.name):
            return
        log.info("table schema changed", extra={"table": schema.qualified_name, "version": schema.version})
        self.pipeline.publish_schema(schema)
        if self.incremental is not None:
            self.incremental.source.forget(schema.qualified_name)  # its next chunk reads the new definition
        if self.pipeline.envelope.compat == "debezium":
            return  # Debezium's PG connector writes no schema-change topic
        xid, commit_lsn, commit_ts_us = self.transaction or (None, None, time.time_ns() // 1000)
        source = source_block(self.prefix, self.database, commit_ts_us, "false", schema.namespace, schema.name,
                              xid, commit_lsn, self.last_commit_lsn)
        self.pipeline.produce(self.pipeline.envelope.schema_change_record(
            describe_change(previous, schema), db=self.database, schema=schema.namespace, table=schema.name,
            source=source, table_schema=schema,
        ))

    def _table(self, relid: int) -> TableSchema | None:
        schema = self.schemas.by_relid.get(relid)
        if schema is None:
            self._relation(self.decoder.relation(relid))
            schema = self.schemas.by_relid[relid]
        return schema if self.table_filter(schema.namespace, schema.name) else None

    def _source(self, schema_name: str, table_name: str, lsn: int) -> dict[str, Any]:
        xid, _, commit_ts_us = self.transaction or (None, None, time.time_ns() // 1000)
        return source_block(self.prefix, self.database, commit_ts_us, "false", schema_name, table_name, xid, lsn,
                            self.last_commit_lsn)

    def _row_change(self, message: tuple, lsn: int) -> None:
        op, before, after = _row_values(message)
        if self.transaction is not None:
            # hot path: the source block is a template per table (SOURCE_VARIABLE_FIELDS filled in), no Change
            hot = self._hot.get(message[1])
            if hot is None:
                hot = self._hot_table(message[1])
            table, template = hot
            if table is not None:
                ts_ms, ts_us, ts_ns, xid = self._txn_values
                self.pipeline.emit_row(table, op, before, after, template,
                                       (ts_ms, self._sequence_head + str(lsn) + '"]', ts_us, ts_ns, xid, lsn))
            return
        table = self._table(message[1])
        if table is None:
            return
        commit_lsn = lsn
        self.pipeline.emit(Change(op, table, before, after, self._source(table.namespace, table.name, lsn),
                                  (commit_lsn, lsn, 0)))

    def _hot_table(self, relid: int) -> tuple[TableSchema | None, Any]:
        """(table, its SourceTemplate) or (None, None) when not captured; kept until a Relation message."""
        table = self._table(relid)  # may handle a Relation, which empties the cache
        if table is None:
            hot = (None, None)
        else:
            source = source_block(self.prefix, self.database, 0, "false", table.namespace, table.name, 0, 0, None)
            hot = (table, self.pipeline.envelope.source_template(source, SOURCE_VARIABLE_FIELDS))
        self._hot[relid] = hot
        return hot

    def _truncate(self, message: tuple, lsn: int) -> None:
        commit_lsn = self.transaction[1] if self.transaction else lsn
        for n, relid in enumerate(message[3]):
            table = self._table(relid)
            if table is not None:
                self.pipeline.emit(Change(TRUNCATE, table, None, None, self._source(table.namespace, table.name, lsn),
                                          (commit_lsn, lsn, n)))

    def _message(self, message: tuple, lsn: int) -> None:
        _, _, transactional, message_lsn, prefix, content = message
        if prefix in (WATERMARK_PREFIX, SIGNAL_PREFIX):
            self._incremental_message(prefix, content)
            if not transactional and self.transaction is None and not self.spools and message_lsn > self.last_checkpoint:
                self.last_checkpoint = message_lsn
                self.pipeline.checkpoint(message_lsn)
            return
        if prefix == HEARTBEAT_PREFIX:
            if not transactional:
                self.pipeline.heartbeat()
                if self.transaction is None and not self.spools and message_lsn > self.last_checkpoint:
                    self.last_checkpoint = message_lsn
                    self.pipeline.checkpoint(message_lsn)
            return
        commit_lsn = self.transaction[1] if (self.transaction and transactional) else message_lsn
        source = self._source("", "", message_lsn)
        self.pipeline.emit(Change(MESSAGE, None, None, None, source, (commit_lsn, message_lsn, 0),
                                  content={"prefix": prefix, "content": content}))
        if not transactional and self.transaction is None and message_lsn > self.last_checkpoint:
            self.last_checkpoint = message_lsn
            self.pipeline.checkpoint(message_lsn)

    def _incremental_message(self, prefix: str, content: bytes) -> None:
        """A watermark or a signal of an incremental snapshot (cdc.incremental); never an event."""
        if self.incremental is None:
            return
        if prefix == WATERMARK_PREFIX:
            self.incremental.watermark_read(content)
            return
        try:
            signal = parse_signal(content, allow_where=True)
        except ConfigError as exc:
            log.error("signal ignored: %s", exc.message)
            return
        self.incremental.signal(signal)

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        self.spools.clear()
        self.catalog_conn.close()


def _transient(exc: Exception) -> bool:
    """True for errors a reconnect can cure: a lost connection, a restarting server, a slot still held."""
    if isinstance(exc, (StreamLost, psycopg.OperationalError)):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in (
        "cannot connect", "connection lost", "ended the replication stream", "starting up", "shutting down",
        "is in use", "is active for pid", "terminating connection", "server closed the connection",
        "connection refused", "recovery",
    ))


def _row_values(message: tuple) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(op, before, after) of a decoded Insert, Update or Delete message."""
    tag = message[0]
    if tag == "I":
        return CREATE, None, message[3]
    if tag == "U":
        return UPDATE, message[3], message[5]
    return DELETE, message[3], None


def tune_gc_for_streaming() -> None:
    """Fewer, cheaper garbage collections for the streaming loop (measured: ~5% of a 1M-row stream).

    Every event allocates short-lived containers (rows, tuples, delivery callbacks) that form no
    cycles, and up to max_in_flight callbacks live until Kafka acknowledges them: with the default
    thresholds the collector runs every 700 allocations and rescans them. What exists at start-up
    (modules, caches) is frozen out of collections; the young generation is collected every 50k
    allocations. Cycles are still collected, so memory stays bounded.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
