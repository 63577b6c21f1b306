"""PostgreSQL source: set-up, snapshot, then the pgoutput change stream into Kafka.

`run_capture(options, stop)` is what `cdc capture` calls (through `cdc.registry`). The streaming
role (`PostgresStream`) reads XLogData frames in batches from a `replication=database` connection,
decodes them (`connectors.postgres.decoder`) and hands them to the engine-neutral
`cdc.pipeline.CapturePipeline`: row changes through `emit_row` with Debezium's PG `source` block as a
per-table `SourceTemplate` (only the per-event fields filled in), truncates and logical messages as
`Change` records. The flush LSN sent to the server is the
pipeline's `acknowledged` position: the end of the last transaction whose events Kafka acknowledged.

Large transactions: with PG 14+ pgoutput streams a transaction larger than logical_decoding_work_mem
before its commit (proto v2, `streaming 'on'`); its messages are spooled as received (memory, then a
temporary file: `TransactionSpool`) and produced at Stream Commit. `CDC_PG_STREAMING=off` in the
environment asks for proto v1 instead (the server then buffers the transaction in pg_replslot and
sends it after its commit), for comparisons such as benchmarks/bench_pg_e2e.py's `--compare-v1`.

Positions: every event carries `(commit_lsn, lsn, n)`, strictly increasing in stream order (`n`
numbers the relations of one Truncate). Snapshot events carry `(0, row number)`, before any stream
event.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import struct
import tempfile
import time
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg

from cdc import __version__
from cdc.envelope import Envelope
from cdc.errors import SourceError
from cdc.impl import twin
from cdc.events import CREATE, DELETE, MESSAGE, TRUNCATE, UPDATE, Change, TableSchema
from cdc.kafka import make_admin, make_capture_producer
from cdc.pipeline import CaptureOptions, CapturePipeline, Every, StopSignal, ensure_topics, load_schemas
from cdc.urls import DatabaseUrl, parse_url
from connectors.postgres import catalog
from connectors.postgres.decode import RelationInfo
from connectors.postgres.dialect import connect
from connectors.postgres.replication import (
    ReplicationConnection,
    StreamLost,
    lsn_to_int,
    lsn_to_text,
)
from connectors.postgres.setup import check_select_privilege, prepare_source
from connectors.postgres.types import is_builtin

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

CONNECTOR = "postgresql"
# The `source` fields that change between events (the rest is fixed per table): SourceTemplate values.
SOURCE_VARIABLE_FIELDS = ("ts_ms", "sequence", "ts_us", "ts_ns", "txId", "lsn")
HEARTBEAT_PREFIX = "cdc-heartbeat"

# Reconnect back-off after the server went away (seconds), and how long to keep trying.
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 10.0
RECONNECT_GIVE_UP_AFTER = 300.0


def default_name(prefix: str) -> str:
    """Slot and publication name for a prefix: `cdc_<prefix>` in the characters slot names allow."""
    return "cdc_" + re.sub(r"[^a-z0-9_]", "_", prefix.lower())


def source_block(prefix: str, database: str, ts_us: int, snapshot: str, schema: str, table: str,
                 txid: int | None, lsn: int | None, last_commit_lsn: int | None) -> dict[str, Any]:
    """Debezium's PG `source` block, fields in Debezium 3.6's order (`origin`, `origin_lsn`: replication
    origin name and LSN, null as Debezium writes them for changes without a replication origin)."""
    sequence = orjson.dumps(
        [None if last_commit_lsn is None else str(last_commit_lsn), None if lsn is None else str(lsn)]
    ).decode()
    return {
        "version": __version__,
        "connector": CONNECTOR,
        "name": prefix,
        "ts_ms": ts_us // 1000,
        "snapshot": snapshot,
        "db": database,
        "sequence": sequence,
        "ts_us": ts_us,
        "ts_ns": ts_us * 1000,
        "schema": schema,
        "table": table,
        "txId": txid,
        "lsn": lsn,
        "xmin": None,
        "origin": None,
        "origin_lsn": None,
    }


class TableFilter:
    """Which tables are captured: the resolved list, else the --include regex, else every table."""

    def __init__(self, tables: Iterable[tuple[str, str]], include: str | None) -> None:
        self.tables = set(tables)
        self.pattern = re.compile(include) if include else None

    def __call__(self, namespace: str, name: str) -> bool:
        if self.pattern is not None:
            return (namespace, name) in self.tables or bool(self.pattern.fullmatch(f"{namespace}.{name}"))
        return not self.tables or (namespace, name) in self.tables


class SchemaRegistry:
    """TableSchema per relid, built from Relation messages + the catalog; a changed relation is a new version."""

    def __init__(self, conn: psycopg.Connection, decoder, database: str, pipeline: CapturePipeline) -> None:
        self.conn = conn
        self.decoder = decoder
        self.database = database
        self.pipeline = pipeline
        self.by_relid: dict[int, TableSchema] = {}
        self.types_seen: set[int] = set()

    def relation(self, relation: RelationInfo) -> tuple[TableSchema, TableSchema | None]:
        """Register a Relation message; returns (schema, the previous schema when this one is a new version)."""
        for _, _, type_oid, _ in relation.columns:
            if not is_builtin(type_oid) and type_oid not in self.types_seen:
                self.types_seen.add(type_oid)
                self.decoder.set_type_codec(type_oid, catalog.type_codec(self.conn, type_oid))
        table = catalog.read_table(self.conn, relation.relid)
        fresh = catalog.table_schema(relation, table, database=self.database)
        previous = self.pipeline.schemas.get(fresh.qualified_name)
        schema = self.pipeline.versioned(fresh)
        self.by_relid[relation.relid] = schema
        if previous is not None and previous.version != schema.version:
            return schema, previous
        return schema, None


class TransactionSpool:
    """The changes of one streamed (in-progress) transaction, kept on disk until Stream Commit/Abort.

    Each entry is (subxid, lsn, payload). A row change of a captured table is kept *prepared*: its
    key and its value up to the `source` block, made while the transaction streams in (the server
    is still decoding it then), so Stream Commit only adds the source block and produces
    (`add_prepared`, `prepared`). Other messages, and changes `Envelope.row_parts` does not split
    (primary-key changes, compat "debezium"), are kept as received and decoded at Stream Commit, in
    a stream block of the decoder, Relation messages included so each decodes with the relation it
    was sent with. Memory: up to `MEMORY_LIMIT` bytes in a buffer, then a temporary file written
    and read in `CHUNK`-sized pieces.
    """

    _HEADER = struct.Struct("!IQI")  # subxid, lsn, payload length
    # a prepared entry's payload: 0 (no pgoutput tag is 0), op | 0x80 when a tombstone follows, table
    # index, key length (0xFFFFFFFF: no key); then the key and the value's head
    _PREPARED = struct.Struct("!BBHI")
    _NO_KEY = 0xFFFFFFFF
    MEMORY_LIMIT = 8 * 1024 * 1024
    CHUNK = 1024 * 1024

    def __init__(self, xid: int) -> None:
        self.xid = xid
        self.buffer = bytearray()
        self.file: Any = None
        self.aborted: set[int] = set()
        self.count = 0
        self.size = 0
        self._pack = self._HEADER.pack
        self._prepared_header = struct.Struct(self._HEADER.format + self._PREPARED.format[1:]).pack
        # (hot entry (table, source template), topic, headers) of prepared entries, by index
        self.tables: list[tuple[tuple[TableSchema, Any], str, Any]] = []
        self._table_index: dict[int, int] = {}

    def add_prepared(self, subxid: int, lsn: int, hot: tuple[TableSchema, Any], op: str, parts: tuple) -> bool:
        """Keep a change as `Envelope.row_parts` split it; False (nothing kept) past 65,536 table entries."""
        topic, key, head, headers, tombstone = parts
        index = self._table_index.get(id(hot))
        if index is None:
            if len(self.tables) > 0xFFFF:
                return False
            index = len(self.tables)
            self.tables.append((hot, topic, headers))  # holds `hot`, so its id stays unique
            self._table_index[id(hot)] = index
        flags = ord(op) | (0x80 if tombstone else 0)
        buffer = self.buffer
        if key is None:
            length = self._PREPARED.size + len(head)
            buffer += self._prepared_header(subxid, lsn, length, 0, flags, index, self._NO_KEY)
        else:
            length = self._PREPARED.size + len(key) + len(head)
            buffer += self._prepared_header(subxid, lsn, length, 0, flags, index, len(key))
            buffer += key
        buffer += head
        self.count += 1
        self.size += length + 16
        if len(buffer) >= self.CHUNK:
            self._spill()
        return True

    def prepared(self, payload: bytes) -> tuple[TableSchema, Any, str, tuple]:
        """(table, source template, op, row parts) of a prepared entry's payload."""
        _, flags, index, key_length = self._PREPARED.unpack_from(payload)
        (table, template), topic, headers = self.tables[index]
        start = self._PREPARED.size
        if key_length == self._NO_KEY:
            key, head = None, payload[start:]
        else:
            key, head = payload[start:start + key_length], payload[start + key_length:]
        return table, template, chr(flags & 0x7F), (topic, key, head, headers, bool(flags & 0x80))

    def add(self, subxid: int, lsn: int, payload: bytes) -> None:
        buffer = self.buffer
        buffer += self._pack(subxid, lsn, len(payload))
        buffer += payload
        self.count += 1
        self.size += len(payload) + 16
        if len(buffer) >= self.CHUNK:
            self._spill()

    def _spill(self) -> None:
        """Past `MEMORY_LIMIT` (and then every `CHUNK`), move the buffer to the temporary file."""
        if self.file is not None or len(self.buffer) >= self.MEMORY_LIMIT:
            if self.file is None:
                self.file = tempfile.TemporaryFile(prefix=f"cdc-xid{self.xid}-")
            self.file.write(self.buffer)
            self.buffer.clear()

    def replay(self) -> Iterable[tuple[int, bytes]]:
        """(lsn, payload) of every spooled message whose subtransaction was not aborted, in order."""
        unpack = self._HEADER.unpack_from
        size = self._HEADER.size
        aborted = self.aborted
        for chunk in self._chunks():
            end = len(chunk)
            position = 0
            while position < end:
                subxid, lsn, length = unpack(chunk, position)
                position += size
                if subxid not in aborted:
                    yield lsn, chunk[position:position + length]
                position += length

    def _chunks(self) -> Iterable[bytes]:
        """The spool as pieces holding whole messages (the file's chunks, re-cut at message ends)."""
        if self.file is None:
            yield bytes(self.buffer)
            return
        if self.buffer:
            self.file.write(self.buffer)
            self.buffer.clear()
        self.file.seek(0)
        size = self._HEADER.size
        rest = b""
        while True:
            data = self.file.read(self.CHUNK)
            if not data:
                if rest:
                    raise SourceError("the spool of a streamed transaction ends inside a message",
                                      fix="restart capture; the server sends the transaction again")
                return
            data = rest + data if rest else data
            # cut after the last whole message
            position, end = 0, len(data)
            while position + size <= end:
                length = self._HEADER.unpack_from(data, position)[2]
                if position + size + length > end:
                    break
                position += size + length
            yield data[:position]
            rest = data[position:]

    def close(self) -> None:
        self.buffer = bytearray()
        if self.file is not None:
            self.file.close()
            self.file = None


class PostgresStream:
    """The streaming role: pgoutput frames -> Change records -> pipeline, with status updates and heartbeats."""

    def __init__(self, url: DatabaseUrl, options: CaptureOptions, pipeline: CapturePipeline,
                 table_filter: TableFilter, *, slot: str, publication: str, database: str) -> None:
        self.url = url
        self.options = options
        self.pipeline = pipeline
        self.table_filter = table_filter
        self.slot = slot
        self.publication = publication
        self.database = database
        self.prefix = options.prefix
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
        self.stream_xid: int | None = None
        # hot path: relid -> (table or None when filtered out, its SourceTemplate), until a Relation
        # message; the template's values are the transaction's (below) and the event's `sequence`, `lsn`
        self._hot: dict[int, tuple[TableSchema | None, Any]] = {}
        self._sequence_head = '[null,"'  # `sequence` up to the event's LSN: ["<last commit lsn>","
        self._txn_values: tuple = (0, 0, 0, 0)  # ts_ms, ts_us, ts_ns, txId of the open transaction

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
            except (SourceError, psycopg.OperationalError) as exc:
                if not _transient(exc):
                    raise
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_GIVE_UP_AFTER:
                    raise SourceError(f"PostgreSQL stayed unreachable for {RECONNECT_GIVE_UP_AFTER:.0f}s: {exc}",
                                      fix="check the source server; restart capture when it is back") from exc
                log.warning("replication stream lost; reconnecting", extra={"error": str(exc), "delay_s": delay})
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
        replication.start_replication(self.slot, self.publication, start,
                                      streaming=os.environ.get("CDC_PG_STREAMING", "on") != "off")
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
                self.spools[message[1]] = TransactionSpool(message[1])
                log.info("a large transaction is streamed before its commit: spooling it", extra={"xid": message[1]})
        elif tag == "E":
            self.stream_xid = None
        elif tag == "c":
            _, xid, _, commit_lsn, end_lsn, commit_ts_us = message
            self._stream_commit(xid, commit_lsn, end_lsn, commit_ts_us)
        elif tag == "A":
            _, xid, subxid = message
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

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        self.spools.clear()
        self.catalog_conn.close()


def describe_change(previous: TableSchema, schema: TableSchema) -> str:
    """A readable account of a relation change for `<prefix>.schema-changes` (pgoutput carries no DDL text)."""
    old = {c.name: c.source_type for c in previous.columns}
    new = {c.name: c.source_type for c in schema.columns}
    parts = [f"ADD COLUMN {name} {kind}" for name, kind in new.items() if name not in old]
    parts += [f"DROP COLUMN {name}" for name in old if name not in new]
    parts += [f"ALTER COLUMN {name} TYPE {kind}" for name, kind in new.items() if name in old and old[name] != kind]
    if previous.primary_key != schema.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(schema.primary_key)})")
    body = ", ".join(parts) or "ALTER (column attributes)"
    return f"ALTER TABLE {schema.namespace}.{schema.name} {body}"


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


# -- entry point --------------------------------------------------------------------------------


def run_capture(options: CaptureOptions, stop: StopSignal) -> None:
    """`cdc capture` for PostgreSQL: checks and set-up, snapshot when asked, then stream until stopped."""
    from connectors.postgres.snapshot import read_snapshot

    url = parse_url(options.source, what="--source")
    slot = options.slot or default_name(options.prefix)
    publication = options.publication or default_name(options.prefix)
    with connect(url) as conn:
        captured, slot_state = prepare_source(conn, slot=slot, publication=publication,
                                              tables=list(options.tables) or None, include=options.include)
        database = conn.info.dbname
    table_filter = TableFilter(captured, options.include)
    envelope = Envelope(options.prefix, compat=options.compat)
    with make_admin(options.kafka, backend=options.kafka_backend) as admin:
        ensure_topics(admin, envelope)
        schemas = load_schemas(options.kafka, envelope.schemas_topic, backend=options.kafka_backend, admin=admin)
    producer = make_capture_producer(options.kafka, backend=options.kafka_backend)
    pipeline = CapturePipeline(producer, envelope)
    pipeline.seed_schemas(schemas)
    log.info("capture starting", extra={"source": url.redacted(), "slot": slot, "publication": publication,
                                        "tables": len(captured) or "all", "snapshot": options.snapshot})
    replication: ReplicationConnection | None = None
    stream: PostgresStream | None = None
    try:
        if options.snapshot == "initial_only":
            replication = ReplicationConnection(url)
            temporary_slot = f"{slot[:40]}_snapshot_{os.getpid()}"
            created = replication.create_slot(temporary_slot, export_snapshot=True, temporary=True)
            read_snapshot(url, created.snapshot_name, created.consistent_point,
                          _snapshot_tables(url, captured, publication), pipeline, options, database, stop)
            pipeline.flush()
            log.info("snapshot done (initial_only): exiting", extra={"events": pipeline.events})
            return
        if slot_state is not None and _snapshot_unfinished(url, slot):
            log.warning("the previous run stopped during its snapshot: dropping the slot and snapshotting again",
                        extra={"slot": slot})
            _drop_slots(url, slot, pending_marker(slot))
            slot_state = None
        if slot_state is None:
            want_snapshot = options.snapshot in ("initial", "when_needed")
            if want_snapshot:
                _create_marker(url, pending_marker(slot))
            replication = ReplicationConnection(url)
            created = replication.create_slot(slot, export_snapshot=want_snapshot)
            start = created.consistent_point
            log.info("created replication slot", extra={"slot": slot, "consistent_point": lsn_to_text(start)})
            if want_snapshot:
                read_snapshot(url, created.snapshot_name, start, _snapshot_tables(url, captured, publication),
                              pipeline, options, database, stop)
                pipeline.flush()
                if stop.requested:
                    replication.close()
                    replication = None
                    _drop_slots(url, slot, pending_marker(slot))
                    log.info("stopped during the snapshot: dropped the new slot; the next start snapshots again")
                    return
                _drop_slots(url, pending_marker(slot))
        else:
            start = lsn_to_int(slot_state.confirmed_flush) if slot_state.confirmed_flush else 0
            log.info("resuming from the slot's confirmed position", extra={"slot": slot, "start": lsn_to_text(start)})
        stream = PostgresStream(url, options, pipeline, table_filter, slot=slot, publication=publication,
                                database=database)
        _tune_gc_for_streaming()
        stream.run(stop, start, replication)
        replication = None
    finally:
        if replication is not None:
            replication.close()
        if stream is not None:
            stream.close()
        producer.close(10.0)


def _row_values(message: tuple) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """(op, before, after) of a decoded Insert, Update or Delete message."""
    tag = message[0]
    if tag == "I":
        return CREATE, None, message[3]
    if tag == "U":
        return UPDATE, message[3], message[5]
    return DELETE, message[3], None


def _tune_gc_for_streaming() -> None:
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


def _snapshot_tables(url: DatabaseUrl, captured: list[tuple[str, str]], publication: str) -> list[tuple[str, str]]:
    """The tables to snapshot: the captured list, else every table of the publication."""
    if captured:
        return captured
    with connect(url) as conn:
        tables = [tuple(row) for row in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
            (publication,)).fetchall()]
        check_select_privilege(conn, tables)
        return tables


def pending_marker(slot: str) -> str:
    """Name of the physical slot that marks "snapshot of `slot` not finished" (a durable, WAL-free flag)."""
    return f"{slot[:46]}_snapshot_pending"


def _create_marker(url: DatabaseUrl, marker: str) -> None:
    with connect(url) as conn:
        if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (marker,)).fetchone() is None:
            conn.execute("SELECT pg_create_physical_replication_slot(%s, false)", (marker,))


def _snapshot_unfinished(url: DatabaseUrl, slot: str) -> bool:
    with connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (pending_marker(slot),)).fetchone() is not None


def _drop_slots(url: DatabaseUrl, *slots: str) -> None:
    with connect(url) as conn:
        for slot in slots:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                         (slot,))
