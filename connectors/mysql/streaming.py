"""The streaming role for MySQL/MariaDB: the binlog row stream into Kafka.

`MysqlStream` reads raw events with `connectors.mysql.binlog.BinlogReader`, decodes ROWS events with
`connectors.mysql.decoder.RowDecoder` (Cython or twin), builds records with Debezium's MySQL `source`
block (`connectors.mysql.source_info`) and hands them to the engine-neutral
`cdc.pipeline.CapturePipeline`; once Kafka acknowledged a transaction's records, its end position
is stored (`cdc.offsets.OffsetStore`). Positions: see `connectors.mysql.offsets`.
"""

from __future__ import annotations

import logging
from typing import Any

from cdc.errors import ConfigError, DecodeError, SourceError
from cdc.events import CREATE, DELETE, UPDATE, TableSchema
from cdc.incremental import IncrementalSnapshot, parse_signal
from cdc.offsets import OffsetStore
from cdc.pipeline import CaptureOptions, CapturePipeline, Every, StopSignal
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.mysql import binlog
from connectors.mysql.binlog import BinlogEvent, BinlogReader
from connectors.mysql.ddl import ddl_target
from connectors.mysql.decoder import RowDecoder, plain_rows_type
from connectors.mysql.dialect import connect
from connectors.mysql.incremental import WATERMARK_TYPE, MysqlChunks
from connectors.mysql.offsets import BinlogPosition, format_gtid_state, parse_gtid_state, position_value
from connectors.mysql.schema import describe_current, table_map_schema
from connectors.mysql.setup import ServerInfo
from connectors.mysql.source_info import source_block
from connectors.mysql.table_map import TableMap

log = logging.getLogger(__name__)

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
ROW_OPS = {
    binlog.WRITE_ROWS_V1: CREATE, binlog.WRITE_ROWS_V2: CREATE,
    binlog.UPDATE_ROWS_V1: UPDATE, binlog.UPDATE_ROWS_V2: UPDATE,
    binlog.DELETE_ROWS_V1: DELETE, binlog.DELETE_ROWS_V2: DELETE,
}


class MysqlStream:
    """The streaming role: binlog events -> Change records -> pipeline; offsets once Kafka acknowledged."""

    def __init__(self, url: DatabaseUrl, options: CaptureOptions, pipeline: CapturePipeline,
                 table_filter: TableFilter, info: ServerInfo, offsets: OffsetStore, server_id: int,
                 *, decoder: RowDecoder | None = None) -> None:
        self.url = url
        self.options = options
        self.pipeline = pipeline
        self.table_filter = table_filter
        self.info = info
        self.offsets = offsets
        self.server_id = server_id
        self.prefix = options.prefix
        self.decoder = decoder or RowDecoder(mariadb=info.mariadb, collations=info.collations)
        self.schemas: dict[str, TableSchema] = {}        # db.table -> current schema
        self.by_table_id: dict[int, TableSchema | None] = {}
        self.ddl_databases = table_filter.namespaces()
        self.gtid: str | None = None
        self.gtid_state: dict[int, str] = {}
        self.thread: int | None = None
        self.in_transaction = False
        self.file: str | None = None
        self.saved: BinlogPosition | None = None
        self.reader: BinlogReader | None = None
        # hot path: table id -> (schema, event timestamp, server id, SourceTemplate with `pos`, `row` variable),
        # valid until the transaction, thread or binlog file changes
        self._templates: dict[int, tuple[TableSchema, int, int, Any]] = {}
        # table id -> (schema, (key columns, key heads) when its rows are decoded straight to JSON, else None);
        # only with the compiled decoder: the twin's rows_json goes through dicts itself
        self._json_keys: dict[int, tuple[TableSchema, tuple | None]] = {}
        self._json_rows = self.decoder.impl.IMPLEMENTATION == "cython"
        self.incremental: IncrementalSnapshot | None = None  # incremental snapshots (cdc.incremental), when on
        self.chunks: MysqlChunks | None = None
        self._signal_table_ids: set[int] = set()

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: StopSignal, start: BinlogPosition) -> None:
        """Stream from `start` until stop is requested (the reader reconnects on a lost link by itself)."""
        self.pipeline.tracker.acknowledged = start
        self.saved = start
        self.gtid_state = parse_gtid_state(start.gtid)
        self.reader = BinlogReader(self.url, self.server_id, start, heartbeat_seconds=1.0, idle_events=True)
        heartbeat = Every(self.options.heartbeat_interval)
        status = Every(self.options.status_interval)
        progress = Every(10.0)
        handle = self.handle
        pipeline = self.pipeline
        count = 0
        try:
            for event in self.reader.events():
                handle(event)
                count += 1
                if count % 256 == 0 or event.type in (binlog.IDLE, binlog.HEARTBEAT_EVENT):
                    pipeline.poll()
                    if self.incremental is not None:
                        if self.chunks is not None:
                            self.chunks.position = (event.file, event.next_position)
                        self.incremental.tick()
                    if stop.requested:
                        break
                    if heartbeat.due():
                        pipeline.heartbeat()
                    if status.due():
                        self.save_offsets()
                    if progress.due():
                        log.info("streaming", extra={"events": pipeline.events, "acknowledged": str(pipeline.acknowledged),
                                                     "in_flight": pipeline.tracker.in_flight})
        finally:
            self.reader.close()
        pipeline.flush()
        self.save_offsets()
        pipeline.flush()
        log.info("stopped; Kafka flushed and position stored", extra={"events": pipeline.events,
                                                                      "position": str(pipeline.acknowledged)})

    def save_offsets(self) -> None:
        """Store the acknowledged position in `__cdc-offsets.<prefix>` when it moved."""
        position = self.pipeline.acknowledged
        if position is not None and position != self.saved:
            self.pipeline.produce(self.offsets.record(position_value(position, self.server_id)))
            self.saved = position

    # -- events ----------------------------------------------------------------------------------

    def handle(self, event: BinlogEvent) -> None:
        """Act on one binlog event (a DecodeError stops the connector: nothing is skipped silently)."""
        kind = event.type
        if kind in binlog.ROWS_EVENTS or kind in binlog.COMPRESSED_ROWS_EVENTS:
            self._rows(event)
        elif kind == binlog.TABLE_MAP_EVENT:
            self._table_map(event)
        elif kind == binlog.XID_EVENT:
            self._commit(event)
        elif kind == binlog.MARIADB_GTID:
            self._gtid(event)
        elif kind == binlog.GTID_LOG_EVENT:  # MySQL: the GTID names the transaction; resuming uses file:pos
            self._templates.clear()
            self.thread = None  # the BEGIN query that follows names it
            self.gtid = binlog.mysql_gtid(event.body)
            self.in_transaction = True
            self.pipeline.begin_transaction(self.gtid, event.timestamp * 1000)
        elif kind in (binlog.QUERY_EVENT, binlog.MARIADB_QUERY_COMPRESSED):
            self._query(event)
        elif kind == binlog.RECONNECTED:
            self._templates.clear()
            self.pipeline.metrics.reconnected()
            if self.in_transaction:  # its first events come again with the same positions
                log.warning("binlog link lost inside a transaction; its events are read again",
                            extra={"gtid": self.gtid})
                self.pipeline.abandon_transaction()  # no END for the part sent: BEGIN comes again with the whole
                self.in_transaction = False
        elif kind == binlog.ROTATE_EVENT:
            self.decoder.forget_tables()  # table ids are only valid within one binlog file
            self.by_table_id.clear()
            self._templates.clear()
            moved = self.file is not None and event.file != self.file
            self.file = event.file
            if moved and not self.in_transaction:  # keeps the stored position off purgeable files
                self.pipeline.checkpoint(BinlogPosition(event.file, event.next_position, self._gtid_text()))

    def _gtid(self, event: BinlogEvent) -> None:
        gtid, domain, flags = binlog.mariadb_gtid(event.body, event.server_id)
        self._templates.clear()
        self.thread = None  # MariaDB writes no BEGIN query (which names the thread) before a transaction's rows
        self.gtid = gtid
        self.gtid_state[domain] = gtid
        self.in_transaction = not flags & 1
        self.pipeline.begin_transaction(gtid, event.timestamp * 1000)

    def _gtid_text(self) -> str | None:
        return format_gtid_state(self.gtid_state)

    def _position_after(self, event: BinlogEvent) -> BinlogPosition:
        return BinlogPosition(event.file, event.next_position, self._gtid_text())

    def _commit(self, event: BinlogEvent) -> None:
        self.pipeline.end_transaction(event.timestamp * 1000)
        self.in_transaction = False
        self.pipeline.checkpoint(self._position_after(event))

    def _query(self, event: BinlogEvent) -> None:
        thread, database, sql = query_parts(event)
        if thread != self.thread:
            self._templates.clear()
        self.thread = thread
        statement = sql.strip()
        upper = statement[:16].upper()
        if upper.startswith("BEGIN"):
            return
        if upper.startswith("COMMIT"):
            self._commit(event)
            return
        if upper.startswith("ROLLBACK"):
            self.in_transaction = False
            self.pipeline.end_transaction(event.timestamp * 1000)
            self.pipeline.checkpoint(self._position_after(event))
            return
        if database in self.ddl_databases or any(db and f"{db}." in statement for db in self.ddl_databases) \
                or (self.table_filter.pattern is not None and database and database not in SYSTEM_DATABASES):
            self._schema_change(event, thread, database, statement)
        self.pipeline.end_transaction(event.timestamp * 1000)
        self.pipeline.checkpoint(self._position_after(event))

    def _schema_change(self, event: BinlogEvent, thread: int, database: str, statement: str) -> None:
        """The schema-change record of a DDL: the table it names (`source.table`) and, in compat
        "debezium" for CREATE/ALTER of a captured table, the table after it (`tableChanges`)."""
        target = ddl_target(statement, database)
        named = [(db, name) for db, name in (target.tables if target else ()) if name]
        captured = [(db, name) for db, name in named if self.table_filter(db, name)]
        table = (captured or named or [(None, None)])[0][1]
        table_schema = details = None
        if captured and target.kind in ("CREATE", "ALTER") and self.pipeline.envelope.compat == "debezium":
            table_schema, details = self._describe_after(event, *captured[0])
        source = source_block(self.prefix, ts_ms=event.timestamp * 1000, snapshot="false", db=database,
                              table=table, server_id=event.server_id, gtid=self.gtid, file=event.file,
                              pos=event.position, row=0, thread=thread)
        self.pipeline.produce(self.pipeline.envelope.schema_change_record(
            statement, db=database, table=table, source=source, ts_ms=event.timestamp * 1000,
            table_schema=table_schema, change_type=target.kind if target else "ALTER", column_details=details,
            debezium_schema_history=True))

    def _describe_after(self, event: BinlogEvent, database: str, table: str):
        """(schema, column details) of a table just after the DDL `event`, or (None, None) with a log line
        when its current definition may already be a later one (see connectors/mysql/schema.py)."""
        try:
            conn = connect(self.url)
        except SourceError as exc:
            log.warning("DDL on %s.%s: no tableChanges: %s", database, table, exc.message)
            return None, None
        try:
            schema, details, reason = describe_current(conn, database, table, event.file, event.next_position)
        finally:
            conn.close()
        if reason:
            log.warning("DDL on %s.%s at %s:%s: no tableChanges: %s", database, table, event.file, event.position,
                        reason)
            return None, None
        return schema, details

    def _table_map(self, event: BinlogEvent) -> None:
        table = self.decoder.table_map(event.body, event.where)
        if self.chunks is not None and self.chunks.is_signal_table(table.database, table.table):
            self._signal_table_ids.add(table.table_id)
            self.by_table_id[table.table_id] = None
            return
        self._signal_table_ids.discard(table.table_id)
        if not self.table_filter(table.database, table.table):
            self.by_table_id[table.table_id] = None
            return
        self.by_table_id[table.table_id] = self._schema(table)

    def _schema(self, table: TableMap) -> TableSchema:
        """The TableSchema for a TABLE_MAP: unchanged columns keep the version, a change bumps it."""
        name = table.qualified_name
        previous = self.schemas.get(name)
        schema = table_map_schema(table, version=1)
        if previous is not None:
            if (previous.columns, previous.primary_key) == (schema.columns, schema.primary_key):
                return previous
            schema = table_map_schema(table, version=previous.version + 1)
            log.info("table schema changed", extra={"table": name, "version": schema.version})
            if self.chunks is not None:
                self.chunks.forget(name)  # its next incremental chunk reads the new definition
        self.schemas[name] = schema
        return schema

    def _rows(self, event: BinlogEvent) -> None:
        body = event.body
        if len(body) < 6:
            raise DecodeError("rows event shorter than its table id", position=event.where)
        table_id = int.from_bytes(body[:6], "little")
        schema = self.by_table_id.get(table_id, False)
        if schema is None:
            if table_id in self._signal_table_ids:
                self._signal_rows(event)
            return  # a table we do not capture: not even decoded
        keys = None
        if schema is not False and self._json_rows:
            known = self._json_keys.get(table_id)
            if known is None or known[0] is not schema:
                known = self._json_keys[table_id] = (schema, self.pipeline.envelope.json_row_keys(schema))
            keys = known[1]
        if keys is not None:  # rows straight to JSON, no dicts (see RowDecoder.rows_json)
            table, rows = self.decoder.rows_json(body, event.type, keys[0], keys[1], event.where)
        else:
            table, rows = self.decoder.rows(body, event.type, event.where)
        if schema is False:
            schema = self._schema(table)
        op = ROW_OPS[plain_rows_type(event.type)]
        # The source block is serialised once per transaction and table; only `pos` and `row` vary.
        hot = self._templates.get(table.table_id)
        if hot is None or hot[0] is not schema or hot[1] != event.timestamp or hot[2] != event.server_id:
            source = source_block(self.prefix, ts_ms=event.timestamp * 1000, snapshot="false", db=table.database,
                                  table=table.table, server_id=event.server_id, gtid=self.gtid, file=event.file,
                                  pos=0, row=0, thread=self.thread)
            hot = (schema, event.timestamp, event.server_id, self.pipeline.envelope.source_template(source, ("pos", "row")))
            self._templates[table.table_id] = hot
        if keys is not None:
            if self.pipeline.emit_json_rows(schema, op, rows, hot[3], event.position):
                return
            rows = self.decoder.rows(body, event.type, event.where)[1]  # a key changed: as dicts
        self.pipeline.emit_rows(schema, op, rows, hot[3], event.position)


    def _signal_rows(self, event: BinlogEvent) -> None:
        """Rows inserted into the signal table: watermarks and signals of incremental snapshots, never events."""
        if ROW_OPS[plain_rows_type(event.type)] != CREATE or self.incremental is None:
            return
        self.chunks.position = (event.file, event.position)
        for _, after in self.decoder.rows(event.body, event.type, event.where)[1]:
            if after.get("type") == WATERMARK_TYPE:
                self.incremental.watermark_read(after.get("data") or "")
                continue
            try:
                signal = parse_signal(after.get("data") or "", allow_where=True)
            except ConfigError as exc:
                log.error("signal ignored: %s", exc.message, extra={"id": after.get("id")})
                continue
            self.incremental.signal(signal)


def query_parts(event: BinlogEvent) -> tuple[int, str, str]:
    """(thread id, default database, SQL) of a QUERY event; a DecodeError names the event's position."""
    try:
        return binlog.query_parts(event.body, compressed=event.type == binlog.MARIADB_QUERY_COMPRESSED)
    except DecodeError as exc:
        raise DecodeError(exc.message, position=event.where) from None


def query_parts(event: BinlogEvent) -> tuple[int, str, str]:
    """(thread id, default database, SQL) of a QUERY event; a DecodeError names the event's position."""
    try:
        return binlog.query_parts(event.body, compressed=event.type == binlog.MARIADB_QUERY_COMPRESSED)
    except DecodeError as exc:
        raise DecodeError(exc.message, position=event.where) from None
