"""MySQL/MariaDB source: checks, snapshot, then the binlog row stream into Kafka.

`run_capture(options, stop)` is what `cdc capture` calls (through `cdc.registry`). The streaming role
(`MysqlStream`) reads raw events with `connectors.mysql.binlog.BinlogReader`, decodes ROWS events with
`connectors.mysql.decoder.RowDecoder` (Cython or twin), builds `Change` records with Debezium's MySQL
`source` block and hands them to the engine-neutral `cdc.pipeline.CapturePipeline`.

Positions: the MariaDB GTID state (domain-server-seq per domain) is preferred, file:pos the fallback.
A transaction's end (XID, COMMIT, or a standalone DDL) is a checkpoint; once Kafka acknowledged every
record before it, the position is written to the compacted topic `__cdc-offsets.<prefix>` and a
restart resumes there. Every event carries `(binlog file number, event position, row)`, strictly
increasing, so consumers can drop the repeats a crash may cause.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from cdc import __version__
from cdc.envelope import Envelope
from cdc.errors import DecodeError, KafkaError, SourceError
from cdc.events import CREATE, DELETE, READ, UPDATE, Change, TableSchema
from cdc.kafka import make_admin, make_capture_producer, make_consumer
from cdc.pipeline import CaptureOptions, CapturePipeline, Every, StopSignal
from cdc.urls import DatabaseUrl, parse_url
from connectors.mysql import binlog
from connectors.mysql.binlog import BinlogEvent, BinlogPosition, BinlogReader, current_position
from connectors.mysql.ddl import ddl_target
from connectors.mysql.decoder import RowDecoder, plain_rows_type
from connectors.mysql.dialect import connect
from connectors.mysql.setup import ServerInfo, check_source
from connectors.mysql.types import TableMap

log = logging.getLogger(__name__)

CONNECTOR = "mysql"
DEFAULT_SERVER_ID_BASE = 5400
SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
ROW_OPS = {23: CREATE, 30: CREATE, 24: UPDATE, 31: UPDATE, 25: DELETE, 32: DELETE}


def source_block(prefix: str, *, ts_ms: int, snapshot: str, db: str, table: str | None, server_id: int,
                 gtid: str | None, file: str, pos: int, row: int, thread: int | None,
                 query: str | None = None) -> dict[str, Any]:
    """Debezium's MySQL `source` block, fields in Debezium 3.6's order."""
    return {
        "version": __version__,
        "connector": CONNECTOR,
        "name": prefix,
        "ts_ms": ts_ms,
        "snapshot": snapshot,
        "db": db,
        "sequence": None,
        "ts_us": ts_ms * 1000,
        "ts_ns": ts_ms * 1_000_000,
        "table": table,
        "server_id": server_id,
        "gtid": gtid,
        "file": file,
        "pos": pos,
        "row": row,
        "thread": thread,
        "query": query,
    }


def file_number(file: str) -> int:
    """The sequence number of a binlog file name (mysql-bin.000042 -> 42)."""
    try:
        return int(file.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def default_server_id(prefix: str) -> int:
    """A stable server id per prefix, away from the small ids servers usually have."""
    return DEFAULT_SERVER_ID_BASE + zlib.crc32(prefix.encode()) % 1_000_000


class TableFilter:
    """Which `db.table` names are captured: the --tables list, else the --include regex, else the URL's database."""

    def __init__(self, tables: Iterable[str], include: str | None, database: str) -> None:
        self.tables = {self._qualify(name, database) for name in tables}
        self.pattern = re.compile(include) if include else None
        self.database = database
        self._cache: dict[tuple[str, str], bool] = {}

    @staticmethod
    def _qualify(name: str, database: str) -> tuple[str, str]:
        return tuple(name.split(".", 1)) if "." in name else (database, name)  # type: ignore[return-value]

    def __call__(self, database: str, table: str) -> bool:
        key = (database, table)
        found = self._cache.get(key)
        if found is None:
            if self.tables:
                found = key in self.tables
            elif self.pattern is not None:
                found = bool(self.pattern.fullmatch(f"{database}.{table}"))
            else:
                found = database == self.database
            self._cache[key] = found
        return found

    def databases(self) -> set[str]:
        """Databases whose DDL goes to the schema-change topic."""
        if self.tables:
            return {db for db, _ in self.tables}
        return {self.database} if self.pattern is None else set()


class OffsetStore:
    """The source position in the compacted topic `__cdc-offsets.<prefix>` (key: the prefix)."""

    def __init__(self, bootstrap: str, prefix: str, backend: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.backend = backend
        self.topic = f"__cdc-offsets.{prefix}"
        self.key = orjson.dumps({"prefix": prefix, "connector": CONNECTOR})

    def record(self, position: BinlogPosition, server_id: int) -> tuple[str, bytes, bytes, list]:
        value = {"file": position.file, "pos": position.position, "gtid": position.gtid, "server_id": server_id,
                 "ts_ms": time.time_ns() // 1_000_000}
        return (self.topic, self.key, orjson.dumps(value), [])

    def ensure_topic(self) -> None:
        admin = make_admin(self.bootstrap, backend=self.backend)
        try:
            admin.ensure_topic(self.topic, 1, compacted=True)
        finally:
            admin.close()

    def load(self, timeout: float = 30.0) -> BinlogPosition | None:
        """The last stored position, or None when nothing was stored yet."""
        admin = make_admin(self.bootstrap, backend=self.backend)
        try:
            if self.topic not in admin.list_topics():
                return None
            ends = admin.end_offsets(self.topic)
        finally:
            admin.close()
        if not any(ends.values()):
            return None
        from cdc.kafka import choose_backend

        if choose_backend(self.backend) == "confluent":
            found = self._read_assigned(ends, timeout)
        else:
            found = self._read_with_group(ends, timeout)
        if found is None:
            return None
        return BinlogPosition(found["file"], int(found["pos"]), found.get("gtid"))


    def _read_assigned(self, ends: dict[int, int], timeout: float) -> dict | None:
        """Read every partition from the start by assignment: no consumer-group join to wait for."""
        import confluent_kafka as ck

        consumer = ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"cdc-offsets-{self.prefix}",
                                "enable.auto.commit": False, "enable.partition.eof": True})
        todo = {p for p, end in ends.items() if end}
        found = None
        deadline = time.monotonic() + timeout
        try:
            consumer.assign([ck.TopicPartition(self.topic, p, ck.OFFSET_BEGINNING) for p in todo])
            while todo:
                if time.monotonic() > deadline:
                    raise KafkaError(f"could not read the stored position from {self.topic} in {timeout:.0f}s",
                                     fix="check the Kafka broker")
                for message in consumer.consume(500, 0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == ck.KafkaError._PARTITION_EOF:
                            todo.discard(message.partition())
                        elif not error.retriable():
                            raise KafkaError(f"cannot read {self.topic}: {error.str()}")
                        continue
                    if message.key() == self.key and message.value():
                        found = orjson.loads(message.value())
        finally:
            consumer.close()
        return found

    def _read_with_group(self, ends: dict[int, int], timeout: float) -> dict | None:
        consumer = make_consumer(self.bootstrap, group_id=f"cdc-offsets-{self.prefix}-{uuid.uuid4().hex[:8]}",
                                 topics=[self.topic], backend=self.backend, auto_offset_reset="earliest")
        found = None
        reached: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        try:
            while any(reached.get(p, 0) < end for p, end in ends.items() if end):
                if time.monotonic() > deadline:
                    raise KafkaError(f"could not read the stored position from {self.topic} in {timeout:.0f}s",
                                     fix="check the Kafka broker")
                for record in consumer.consume(500, 1.0):
                    reached[record.partition] = record.offset + 1
                    if record.key == self.key and record.value:
                        found = orjson.loads(record.value)
        finally:
            consumer.close()
        return found


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
        self.ddl_databases = table_filter.databases()
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

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: StopSignal, start: BinlogPosition) -> None:
        """Stream from `start` until stop is requested (the reader reconnects on a lost link by itself)."""
        self.pipeline.tracker.acknowledged = start
        self.saved = start
        self.gtid_state = binlog.parse_gtid_state(start.gtid)
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
            self.pipeline.produce(self.offsets.record(position, self.server_id))
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
        return ",".join(self.gtid_state[d] for d in sorted(self.gtid_state)) if self.gtid_state else None

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
        when its current definition may already be a later one (see connectors/mysql/table_changes.py)."""
        from connectors.mysql.table_changes import describe_current

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
        if not self.table_filter(table.database, table.table):
            self.by_table_id[table.table_id] = None
            return
        self.by_table_id[table.table_id] = self._schema(table)

    def _schema(self, table: TableMap) -> TableSchema:
        """The TableSchema for a TABLE_MAP: unchanged columns keep the version, a change bumps it."""
        name = table.qualified_name
        previous = self.schemas.get(name)
        schema = table.to_schema(version=1)
        if previous is not None:
            if (previous.columns, previous.primary_key) == (schema.columns, schema.primary_key):
                return previous
            schema = table.to_schema(version=previous.version + 1)
            log.info("table schema changed", extra={"table": name, "version": schema.version})
        self.schemas[name] = schema
        return schema

    def _rows(self, event: BinlogEvent) -> None:
        body = event.body
        if len(body) < 6:
            raise DecodeError("rows event shorter than its table id", position=event.where)
        table_id = int.from_bytes(body[:6], "little")
        schema = self.by_table_id.get(table_id, False)
        if schema is None:
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


def query_parts(event: BinlogEvent) -> tuple[int, str, str]:
    """(thread id, default database, SQL) of a QUERY event; a DecodeError names the event's position."""
    try:
        return binlog.query_parts(event.body, compressed=event.type == binlog.MARIADB_QUERY_COMPRESSED)
    except DecodeError as exc:
        raise DecodeError(exc.message, position=event.where) from None


# -- snapshot ----------------------------------------------------------------------------------


def captured_tables(conn, table_filter: TableFilter) -> list[tuple[str, str]]:
    """The base tables the filter selects, as (db, table), sorted."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
                       " AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
                       " ORDER BY 1, 2")
        return [(str(db), str(name)) for db, name in cursor.fetchall() if table_filter(str(db), str(name))]


def run_snapshot(url: DatabaseUrl, info: ServerInfo, table_filter: TableFilter, pipeline: CapturePipeline,
                 options: CaptureOptions, stream: MysqlStream, stop: StopSignal) -> BinlogPosition | None:
    """Read every captured table as of one binlog position (op `r`); that position, or None when stopped."""
    from connectors.mysql.snapshot import begin_consistent_snapshot, describe_table, read_rows, snapshot_connection_kwargs

    conn = connect(url, autocommit=True, **snapshot_connection_kwargs())
    try:
        position = begin_consistent_snapshot(conn, info.mariadb)
        tables = captured_tables(conn, table_filter)
        log.info("snapshot starting", extra={"position": str(position), "gtid": position.gtid, "tables": len(tables)})
        ts_ms = time.time_ns() // 1_000_000
        emitted = 0

        def emit(change: Change, marker: str) -> None:
            nonlocal emitted
            change.source["snapshot"] = "first" if emitted == 0 else marker
            pipeline.emit(change)
            emitted += 1
            if emitted % 1000 == 0:
                pipeline.poll()

        # Markers as Debezium 3.6 (and our PG snapshot) set them: first, first_in_data_collection, true,
        # last_in_data_collection, last. A table's last row waits until the next table has one.
        last_of_table: tuple[Change, str] | None = None
        count = 0
        for database, name in tables:
            table = describe_table(conn, database, name)
            stream.schemas[f"{database}.{name}"] = table.schema
            held: Change | None = None
            held_first = True
            for row in read_rows(conn, table, options.snapshot_chunk):
                if stop.requested:
                    return None
                source = source_block(options.prefix, ts_ms=ts_ms, snapshot="true", db=database, table=name,
                                      server_id=info.server_id, gtid=None, file=position.file, pos=position.position,
                                      row=0, thread=None)
                change = Change(READ, table.schema, None, row, source, (0, 0, count))
                count += 1
                if held is not None:
                    emit(held, "first_in_data_collection" if held_first else "true")
                    held_first = False
                held = change
            if held is not None:
                if last_of_table is not None:
                    emit(*last_of_table)
                last_of_table = (held, "first_in_data_collection" if held_first else "last_in_data_collection")
        if last_of_table is not None:
            emit(last_of_table[0], "last")
        conn.commit()
        pipeline.checkpoint(position)
        log.info("snapshot read", extra={"rows": count, "tables": len(tables)})
        return position
    finally:
        conn.close()


# -- entry point --------------------------------------------------------------------------------


def run_capture(options: CaptureOptions, stop: StopSignal) -> None:
    """`cdc capture` for MySQL/MariaDB: checks, snapshot when asked, then stream until stopped."""
    url = parse_url(options.source, what="--source")
    server_id = int(options.extra.get("server_id") or default_server_id(options.prefix))
    conn = connect(url)
    try:
        info = check_source(conn, database=url.database, server_id=server_id)
    finally:
        conn.close()
    table_filter = TableFilter(options.tables, options.include, url.database)
    offsets = OffsetStore(options.kafka, options.prefix, options.kafka_backend)
    offsets.ensure_topic()
    stored = offsets.load()
    producer = make_capture_producer(options.kafka, backend=options.kafka_backend)
    pipeline = CapturePipeline(producer, Envelope(options.prefix, compat=options.compat))
    stream = MysqlStream(url, options, pipeline, table_filter, info, offsets, server_id)
    log.info("capture starting", extra={"source": url.redacted(), "server_id": server_id, "snapshot": options.snapshot,
                                        "stored_position": str(stored) if stored else None})
    try:
        start = stored
        if options.snapshot == "initial_only" or (stored is None and options.snapshot in ("initial", "when_needed")):
            start = _snapshot(url, info, table_filter, pipeline, options, stream, stop)
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
            start = _snapshot(url, info, table_filter, pipeline, options, stream, stop)
            if start is not None:
                stream.run(stop, start)
    finally:
        producer.close(10.0)


def _snapshot(url, info, table_filter, pipeline, options, stream, stop) -> BinlogPosition | None:
    position = run_snapshot(url, info, table_filter, pipeline, options, stream, stop)
    pipeline.flush()
    if position is not None:
        stream.saved = None
        stream.save_offsets()
        pipeline.flush()
        log.info("snapshot done", extra={"events": pipeline.events, "position": str(position)})
    return position
