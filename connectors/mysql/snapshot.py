"""The snapshot role for MariaDB/MySQL: the captured tables as of one binlog position, as op `r` events.

MariaDB (lock-free): `START TRANSACTION WITH CONSISTENT SNAPSHOT` then `SHOW STATUS LIKE
'binlog_snapshot_%'` gives the binlog file/position that transaction sees, so streaming from there
neither misses nor repeats a change. MySQL has no such status: a brief `FLUSH TABLES WITH READ LOCK`
around starting the transaction and reading `SHOW MASTER STATUS`.

Each table is read in primary-key order, in chunks (`WHERE (pk) > (last) ORDER BY pk LIMIT n`); a table
without a primary key in one pass. With `--snapshot-workers N` > 1, a table whose first key column is an
integer is split into N key ranges (`cdc.snapshot.key_ranges`) read by N connections at once, once those
connections' snapshots are of one binlog position (`begin_aligned_snapshots`): on MariaDB, lock-free when
their `binlog_snapshot_position`s agree (no commit between them; tried 3 times), else under a brief
`FLUSH TABLES WITH READ LOCK` when the user has RELOAD; without it, one connection reads everything
(logged). Values come back as text and are turned into the same readable
forms the binlog decoder gives (`converter`). A table with a primary key is read straight off the
socket into row JSON (`raw_query.iter_rows_json` and the `text_rows` twins, as an incremental
snapshot's chunk: `json_plan`), only each batch's first and last row decoded back into values (their
Change gets the marker); the others are read through PyMySQL's rows. The table's schema is built from
information_schema through the same `connectors.mysql.schema` functions as a TABLE_MAP's, so a snapshot
row and a streamed row of the same data are identical, and so are their schemas. Snapshot markers
(`source.snapshot`) are set by `cdc.snapshot.SnapshotEmitter`.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pymysql

from cdc.codecs import encode_float, encode_float4
from cdc.compat import geometry_value
from cdc.errors import SourceError
from cdc.events import READ, Change, TableSchema
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal
from cdc.snapshot import WHOLE_TABLE, KeyRange, SnapshotEmitter, key_ranges, read_in_parallel
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.mysql import text_rows
from connectors.mysql import types as mt
from connectors.mysql.dialect import connect, qualified, quote_ident
from connectors.mysql.offsets import BinlogPosition
from connectors.mysql.raw_query import iter_rows_json
from connectors.mysql.schema import read_columns, table_schema
from connectors.mysql.setup import ServerInfo
from connectors.mysql.source_info import source_block

log = logging.getLogger(__name__)

@dataclass(slots=True)
class SnapshotTable:
    """One table to read: its schema, the text->value converter per column, and its key."""

    database: str
    name: str
    schema: TableSchema
    converters: tuple[Callable[[Any], Any], ...]
    key: tuple[str, ...]
    expressions: tuple[str, ...] = ()
    kinds: tuple[int, ...] = ()  # per column, how text_rows writes it straight to JSON (text_kind)
    columns: tuple[mt.ColumnInfo, ...] = ()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def converter(column: mt.ColumnInfo) -> Callable[[Any], Any]:
    """The function turning the value PyMySQL returns (conversions off) into the decoder's readable form."""
    code = column.type_code
    if code in mt.INT_TYPES or code == mt.T_YEAR:
        return lambda value: int(_text(value))
    if code == mt.T_NEWDECIMAL:
        return _text
    if code == mt.T_FLOAT:
        return lambda value: encode_float4(float(_text(value)))
    if code == mt.T_DOUBLE:
        return lambda value: encode_float(float(_text(value)))
    if code == mt.T_BIT:
        width = (column.meta >> 8) * 8 + (column.meta & 0xFF)
        return lambda value: format(int.from_bytes(value, "big"), f"0{width}b")[-width:] if width else ""
    if code == mt.T_DATE:
        return lambda value: None if _text(value).startswith("0000-00-00") else _text(value)
    if code == mt.T_DATETIME2:
        return lambda value: None if _text(value).startswith("0000-00-00") else _text(value).replace(" ", "T")
    if code == mt.T_TIMESTAMP2:
        return lambda value: None if _text(value).startswith("0000-00-00") else _text(value).replace(" ", "T") + "Z"
    if code == mt.T_TIME2:
        return _text
    if code in (mt.T_STRING, mt.T_VARCHAR, mt.T_BLOB):
        if column.charset == "binary":
            return lambda value: base64.b64encode(bytes(value)).decode("ascii")
        return _text
    if code in (mt.T_ENUM, mt.T_SET, mt.T_JSON):
        return _text
    if code == mt.T_GEOMETRY:
        return _geometry
    return _text


def text_kind(column: mt.ColumnInfo) -> int:
    """How the compiled `connectors.mysql.text_rows` writes this column's text straight to JSON, with
    the same result as `converter(column)`: the kinds it knows, K_OTHER (through the converter) else."""
    code = column.type_code
    if code in mt.INT_TYPES or code == mt.T_YEAR:
        return text_rows.K_INT
    if code == mt.T_DATE:
        return text_rows.K_DATE
    if code == mt.T_DATETIME2:
        return text_rows.K_DATETIME
    if code == mt.T_TIMESTAMP2:
        return text_rows.K_TIMESTAMP
    if converter(column) is _text:
        return text_rows.K_TEXT
    return text_rows.K_OTHER


def _geometry(value: bytes) -> str:
    """MySQL's internal geometry (4-byte SRID, then WKB): base64 WKB carrying the SRID (cdc.compat.Geometry)."""
    data = bytes(value)
    return geometry_value(base64.b64encode(data[4:]).decode("ascii"), int.from_bytes(data[:4], "little"))


def describe_table(conn, database: str, table: str, version: int = 1) -> SnapshotTable:
    """Schema and converters of one table from information_schema."""
    columns, key = read_columns(conn, database, table)
    return SnapshotTable(database, table, table_schema(database, table, columns, key, version),
                         tuple(converter(c) for c in columns), key, tuple(select_expression(c) for c in columns),
                         tuple(text_kind(c) for c in columns), tuple(columns))


def select_expression(column: mt.ColumnInfo) -> str:
    """How the snapshot selects a column: FLOAT as DOUBLE, since MariaDB prints FLOAT with 6 digits only."""
    if column.type_code == mt.T_FLOAT:
        return f"CAST({quote_ident(column.name)} AS DOUBLE)"
    return quote_ident(column.name)


SHARED_LOCK_WAIT_SECONDS = 30  # FLUSH TABLES WITH READ LOCK gives up (and the copy reads in one connection) after this


def begin_consistent_snapshot(conn, mariadb: bool) -> BinlogPosition:
    """Open the snapshot transaction on `conn`; the binlog position (and GTID state) it corresponds to."""
    with conn.cursor() as cursor:
        if mariadb:
            return _start_snapshot(cursor, mariadb)
        cursor.execute("FLUSH TABLES WITH READ LOCK")
        try:
            return _start_snapshot(cursor, mariadb)
        finally:
            cursor.execute("UNLOCK TABLES")


def begin_shared_snapshot(lock_conn, conns: list, mariadb: bool, sessions: tuple = ()) -> BinlogPosition:
    """Open one snapshot on each of `conns` (and each client session: client_stream.py), all at the same
    binlog position (as mydumper does).

    `lock_conn` holds FLUSH TABLES WITH READ LOCK (needs RELOAD) while the snapshots start, so no
    commit lands between them. The binlog's end (SHOW MASTER STATUS) and GTID state (gtid_binlog_pos)
    are read under the lock; MariaDB's per-snapshot position must equal that end for every snapshot.
    (BINLOG_GTID_POS would read the binlog file from its start: seconds on a large one.)
    LockUnavailable when the lock cannot be taken (no RELOAD, or a long statement holds it off).
    """
    with lock_conn.cursor() as lock:
        lock.execute("SET SESSION lock_wait_timeout = %s", (SHARED_LOCK_WAIT_SECONDS,))
        try:
            lock.execute("FLUSH TABLES WITH READ LOCK")
        except pymysql.err.MySQLError as exc:
            raise LockUnavailable(str(exc.args[-1])) from exc
        try:
            snapshots = []
            for conn in conns:
                with conn.cursor() as cursor:
                    snapshots.append(_start_snapshot(cursor, mariadb, gtid=False))
            snapshots.extend(session.start_snapshot(mariadb) for session in sessions)
            lock.execute("SHOW MASTER STATUS")
            file, position = lock.fetchone()[:2]
            gtid = None
            if mariadb:
                lock.execute("SELECT @@gtid_binlog_pos")
                gtid = lock.fetchone()[0] or None
        finally:
            lock.execute("UNLOCK TABLES")
    end = BinlogPosition(file, int(position), gtid)
    if mariadb and any((s.file, s.position) != (end.file, end.position) for s in snapshots):
        seen = sorted({str(s) for s in snapshots} | {str(end)})
        raise SourceError(f"snapshots opened under one read lock report different positions: {seen}",
                          fix="report this; copy with --workers 1 meanwhile")
    return end


class LockUnavailable(Exception):
    """FLUSH TABLES WITH READ LOCK was refused or timed out."""


def _start_snapshot(cursor, mariadb: bool, gtid: bool = True) -> BinlogPosition:
    """START TRANSACTION WITH CONSISTENT SNAPSHOT on the cursor's connection; that snapshot's position
    (MariaDB reports it per snapshot; MySQL's current position is it only while commits are locked out).
    gtid=False: MariaDB's GTID state is left out (finding it reads the binlog file up to the position)."""
    cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    if mariadb:
        cursor.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
        status = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
        file, position = status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])
        if not gtid:
            return BinlogPosition(file, position)
        cursor.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, position))
        return BinlogPosition(file, position, cursor.fetchone()[0] or None)
    cursor.execute("SHOW MASTER STATUS")
    row = cursor.fetchone()
    return BinlogPosition(row[0], int(row[1]), None)


def read_rows(conn, table: SnapshotTable, chunk: int, key_range: KeyRange = WHOLE_TABLE) -> Iterator[dict[str, Any]]:
    """Rows of `table` (of `key_range`) as readable dicts, in primary-key order, `chunk` rows per query."""
    names = [column.name for column in table.schema.columns]
    select = ", ".join(table.expressions or [quote_ident(name) for name in names])
    source = qualified(table.database, table.name)
    converters = table.converters

    def convert(raw: tuple) -> dict[str, Any]:
        return {name: (None if value is None else convert_one(value))
                for name, value, convert_one in zip(names, raw, converters)}

    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        if not table.key:
            cursor.execute(f"SELECT {select} FROM {source}")
            for raw in cursor:
                yield convert(raw)
            return
        key_list = ", ".join(quote_ident(k) for k in table.key)
        key_index = [names.index(k) for k in table.key]
        in_range, range_params = key_range.condition(quote_ident(table.key[0]))
        last: tuple | None = None
        while True:
            if last is None:
                cursor.execute(f"SELECT {select} FROM {source} WHERE true{in_range} ORDER BY {key_list}"
                               f" LIMIT {int(chunk)}", range_params)
            else:
                marks = ", ".join(["%s"] * len(last))
                cursor.execute(f"SELECT {select} FROM {source} WHERE ({key_list}) > ({marks}){in_range} "
                               f"ORDER BY {key_list} LIMIT {int(chunk)}", [*last, *range_params])
            count = 0
            raw = None
            for raw in cursor:
                count += 1
                yield convert(raw)
            if count < chunk or raw is None:
                return
            last = tuple(raw[i] for i in key_index)


def snapshot_connection_kwargs() -> dict[str, Any]:
    """PyMySQL options for snapshot reads: every value as text/bytes, nothing converted by the driver."""
    from pymysql.converters import conversions

    return {"conv": {kind: encoder for kind, encoder in conversions.items() if not isinstance(kind, int)}}


def captured_tables(conn, table_filter: TableFilter) -> list[tuple[str, str]]:
    """The base tables the filter selects, as (db, table), sorted."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
                       " AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
                       " ORDER BY 1, 2")
        return [(str(db), str(name)) for db, name in cursor.fetchall() if table_filter(str(db), str(name))]


ALIGN_ATTEMPTS = 3
SNAPSHOT_CLOCK_FIELDS = ("ts_ms", "ts_us", "ts_ns")  # variable fields of the rows' source template
ACCESS_DENIED = (1227, 1045)  # ER_SPECIFIC_ACCESS_DENIED_ERROR (no RELOAD), ER_ACCESS_DENIED_ERROR


def begin_aligned_snapshots(conns: list, mariadb: bool) -> BinlogPosition | None:
    """Snapshot transactions on every connection, all of one binlog position; None when they cannot be
    aligned (no transaction left open then)."""
    if mariadb:
        for _ in range(ALIGN_ATTEMPTS):
            positions = [begin_consistent_snapshot(conn, True) for conn in conns]
            if all(position == positions[0] for position in positions):
                return positions[0]
            for conn in conns:
                conn.rollback()
    with conns[0].cursor() as cursor:
        try:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] in ACCESS_DENIED:
                return None
            raise
        try:
            for conn in conns:
                with conn.cursor() as each:
                    each.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    each.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cursor.execute("SHOW MASTER STATUS")
            file, position = cursor.fetchone()[:2]
            gtid = None
            if mariadb:
                cursor.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, int(position)))
                gtid = cursor.fetchone()[0] or None
        finally:
            cursor.execute("UNLOCK TABLES")
    return BinlogPosition(str(file), int(position), gtid)


def plan_ranges(conn, table: SnapshotTable, parts: int, min_width: int) -> list[KeyRange]:
    """The key ranges to read `table` in: `parts` of them when its first key column is an integer, else one."""
    if parts < 2 or not table.key:
        return [WHOLE_TABLE]
    column = next(c for c in table.schema.columns if c.name == table.key[0])
    if column.kind != "int":
        return [WHOLE_TABLE]
    key = quote_ident(table.key[0])
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT MIN({key}), MAX({key}) FROM {qualified(table.database, table.name)}")
        low, high = cursor.fetchone()
    return key_ranges(None if low is None else int(low), None if high is None else int(high), parts, min_width)


def open_snapshots(url: DatabaseUrl, info: ServerInfo, workers: int) -> tuple[list, BinlogPosition]:
    """`workers` connections in snapshot transactions of one binlog position (one when they cannot be
    aligned), and that position."""
    conns = [connect(url, autocommit=True, **snapshot_connection_kwargs()) for _ in range(max(1, workers))]
    try:
        if len(conns) > 1:
            position = begin_aligned_snapshots(conns, info.mariadb)
            if position is not None:
                return conns, position
            log.info("snapshot reads on one connection: several connections could not be aligned on one binlog"
                     " position without FLUSH TABLES WITH READ LOCK, which needs the RELOAD privilege",
                     extra={"snapshot_workers": workers})
            for conn in conns[1:]:
                conn.close()
            conns = conns[:1]
        return conns, begin_consistent_snapshot(conns[0], info.mariadb)
    except BaseException:
        for conn in conns:
            conn.close()
        raise


def run_snapshot(url: DatabaseUrl, info: ServerInfo, table_filter: TableFilter, pipeline: CapturePipeline,
                 options: CaptureOptions, schemas: dict[str, TableSchema], stop: StopSignal) -> BinlogPosition | None:
    """Read every captured table as of one binlog position (op `r`); that position, or None when stopped."""
    conns, position = open_snapshots(url, info, options.snapshot_workers)
    try:
        conn = conns[0]
        tables = [describe_table(conn, database, name) for database, name in captured_tables(conn, table_filter)]
        work = [((t.database, t.name), (t, key_range)) for t in tables
                for key_range in plan_ranges(conn, t, len(conns), options.snapshot_chunk)]
        log.info("snapshot starting", extra={"position": str(position), "gtid": position.gtid, "tables": len(tables),
                                             "connections": len(conns), "ranges": len(work)})
        ts_ms = time.time_ns() // 1_000_000
        emitter = SnapshotEmitter(pipeline.emit)
        by_name = {(t.database, t.name): t for t in tables}
        for table in tables:
            schemas[f"{table.database}.{table.name}"] = table.schema
        clock = (ts_ms, ts_ms * 1000, ts_ms * 1_000_000)

        def source_of(table: SnapshotTable) -> dict[str, Any]:
            return source_block(options.prefix, ts_ms=ts_ms, snapshot="true", db=table.database, table=table.name,
                                server_id=info.server_id, gtid=None, file=position.file, pos=position.position,
                                row=0, thread=None)

        # One source block per table, for the rows between a batch's edges (the hot path, no Change).
        templates = {key: pipeline.envelope.source_template(source_of(t), SNAPSHOT_CLOCK_FIELDS)
                     for key, t in by_name.items()}
        plans = json_plans(tables, pipeline.envelope)
        fixed = {key: pipeline.envelope.source_template(source_of(by_name[key]), ()) for key in plans}

        def read(c, item: tuple[SnapshotTable, KeyRange]) -> Iterator[list]:
            plan = plans.get((item[0].database, item[0].name))
            if plan is None:
                return _batches(c, item, options.snapshot_chunk)
            return _json_batches(c, item[0], plan, options.snapshot_chunk, item[1])

        count = 0
        for key, rows in read_in_parallel(work, conns, read,
                                          stop=lambda: stop.requested, idle=pipeline.poll):
            if rows is None:
                emitter.table_done(key)
                continue
            table = by_name[key]
            if key in plans:
                emitter.rows(key, rows, lambda row, t=table: Change(READ, t.schema, None, orjson.loads(row[1]),
                                                                    source_of(t), (0, 0, 0)),
                             lambda inside, t=table, k=key: pipeline.emit_json_reads(t.schema, inside, fixed[k]))
                count += len(rows)
                pipeline.poll()
                continue
            emitter.rows(key, rows, lambda row, t=table: Change(READ, t.schema, None, row, source_of(t), (0, 0, 0)),
                         lambda inside, t=table, k=key: pipeline.emit_reads(t.schema, inside, templates[k], clock))
            count += len(rows)
            pipeline.poll()
        if stop.requested:
            return None
        emitter.finish()
        for conn in conns:
            conn.commit()
        pipeline.checkpoint(position)
        log.info("snapshot read", extra={"rows": count, "tables": len(tables)})
        return position
    finally:
        for conn in conns:
            conn.close()


BATCH_ROWS = 1000  # rows handed from a reader thread to the emitting one at a time


def _batches(conn, item: tuple[SnapshotTable, KeyRange], chunk: int) -> Iterator[list[dict[str, Any]]]:
    """The rows of one (table, key range) in lists of BATCH_ROWS."""
    table, key_range = item
    batch: list[dict[str, Any]] = []
    for row in read_rows(conn, table, chunk, key_range):
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(slots=True, frozen=True)
class JsonPlan:
    """How one table's rows are read straight off the socket into row JSON (`raw_query.iter_rows_json`)."""

    names: tuple[str, ...]
    json_names: tuple[bytes, ...]  # '"name":' per column, as orjson writes a dict key
    key_positions: tuple[int, ...]  # the envelope's key columns, as positions in `names`
    key_heads: tuple[bytes, ...]
    paging: tuple[tuple[int, Callable[[bytes], Any]], ...]  # per `key` column: its place in the raw key, as a param


def json_plan(table: SnapshotTable, envelope) -> JsonPlan | str:
    """The fast path's plan for `table`, or why it is read through PyMySQL's rows instead."""
    if not table.key:
        return "no primary key (read in one pass)"
    if any(column.type_code == mt.T_GEOMETRY for column in table.columns):
        return "a geometry column"
    keys = envelope.json_row_keys(table.schema)
    if keys is None:
        return "the envelope needs rows as dicts (compat debezium, or a float key column)"
    key_names, key_heads = keys
    if set(key_names) != set(table.key):
        return "the topic's key is not the primary key"
    names = tuple(column.name for column in table.schema.columns)
    by_name = {column.name: column for column in table.columns}
    paging = tuple((key_names.index(name), _key_param(by_name[name])) for name in table.key)
    return JsonPlan(names, tuple(orjson.dumps(name) + b":" for name in names),
                    tuple(names.index(name) for name in key_names), key_heads, paging)


def _key_param(column: mt.ColumnInfo) -> Callable[[bytes], Any]:
    """A key column's raw text as the next chunk's query compares it: int, bytes (binary), else str."""
    if column.type_code in mt.INT_TYPES:
        return int
    if column.charset == "binary":
        return bytes
    return lambda raw: bytes(raw).decode("utf-8")


def json_plans(tables: list[SnapshotTable], envelope) -> dict[tuple[str, str], JsonPlan]:
    """The fast path's plans of the tables it can read; the others are named in a debug line each."""
    plans = {}
    for table in tables:
        plan = json_plan(table, envelope)
        if isinstance(plan, str):
            log.debug("snapshot of %s.%s reads rows through PyMySQL: %s", table.database, table.name, plan)
        else:
            plans[(table.database, table.name)] = plan
    return plans


def _json_batches(conn, table: SnapshotTable, plan: JsonPlan, chunk: int,
                  key_range: KeyRange = WHOLE_TABLE) -> Iterator[list[tuple[None, bytes, None, bytes | None]]]:
    """The rows of one (table, key range) as row JSON (`(None, after, None, key)`, as the envelope's
    `json_reads_records` takes them), in primary-key order, `chunk` rows per query, in lists of at
    least BATCH_ROWS (a block's rows) but the last; no row decoded into Python values but the key
    of each chunk's last row."""
    select = ", ".join(table.expressions)
    source = qualified(table.database, table.name)
    key_list = ", ".join(quote_ident(k) for k in table.key)
    in_range, range_params = key_range.condition(quote_ident(table.key[0]))
    mogrify = conn.cursor().mogrify
    last: list[Any] | None = None
    batch: list = []
    while True:
        if last is None:
            sql = mogrify(f"SELECT {select} FROM {source} WHERE true{in_range} ORDER BY {key_list}"
                          f" LIMIT {int(chunk)}", range_params)
        else:
            marks = ", ".join(["%s"] * len(last))
            sql = mogrify(f"SELECT {select} FROM {source} WHERE ({key_list}) > ({marks}){in_range} "
                          f"ORDER BY {key_list} LIMIT {int(chunk)}", [*last, *range_params])
        count = 0
        last_raw = None
        for rows, key in iter_rows_json(conn, sql, table.kinds, table.converters, plan.names, plan.json_names,
                                        plan.key_positions, plan.key_heads):
            count += len(rows)
            batch += rows
            last_raw = key
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if count < chunk or last_raw is None:
            break
        last = [param(last_raw[index]) for index, param in plan.paging]
    if batch:
        yield batch
