"""The snapshot role for MariaDB/MySQL: the captured tables as of one binlog position, as op `r` events.

MariaDB (lock-free): `START TRANSACTION WITH CONSISTENT SNAPSHOT` then `SHOW STATUS LIKE
'binlog_snapshot_%'` gives the binlog file/position that transaction sees, so streaming from there
neither misses nor repeats a change. MySQL has no such status: a brief `FLUSH TABLES WITH READ LOCK`
around starting the transaction and reading `SHOW MASTER STATUS`.

Each table is read in primary-key order, in chunks (`WHERE (pk) > (last) ORDER BY pk LIMIT n`); a table
without a primary key in one pass. Values come back as text and are turned into the same readable
forms the binlog decoder gives (`converter`), and the table's schema is built from
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

import pymysql

from cdc.codecs import encode_float, encode_float4
from cdc.compat import geometry_value
from cdc.events import READ, Change, TableSchema
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal
from cdc.snapshot import SnapshotEmitter
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.mysql import text_rows
from connectors.mysql import types as mt
from connectors.mysql.dialect import connect, qualified, quote_ident
from connectors.mysql.offsets import BinlogPosition
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
                         tuple(text_kind(c) for c in columns))


def select_expression(column: mt.ColumnInfo) -> str:
    """How the snapshot selects a column: FLOAT as DOUBLE, since MariaDB prints FLOAT with 6 digits only."""
    if column.type_code == mt.T_FLOAT:
        return f"CAST({quote_ident(column.name)} AS DOUBLE)"
    return quote_ident(column.name)


def begin_consistent_snapshot(conn, mariadb: bool) -> BinlogPosition:
    """Open the snapshot transaction on `conn`; the binlog position (and GTID state) it corresponds to."""
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if mariadb:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cursor.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
            file, position = status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])
            cursor.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, position))
            gtid = cursor.fetchone()[0] or None
            return BinlogPosition(file, position, gtid)
        cursor.execute("FLUSH TABLES WITH READ LOCK")
        try:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cursor.execute("SHOW MASTER STATUS")
            row = cursor.fetchone()
        finally:
            cursor.execute("UNLOCK TABLES")
        return BinlogPosition(row[0], int(row[1]), None)


def read_rows(conn, table: SnapshotTable, chunk: int) -> Iterator[dict[str, Any]]:
    """Rows of `table` as readable dicts, in primary-key order, `chunk` rows per query."""
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
        last: tuple | None = None
        while True:
            if last is None:
                cursor.execute(f"SELECT {select} FROM {source} ORDER BY {key_list} LIMIT {int(chunk)}")
            else:
                marks = ", ".join(["%s"] * len(last))
                cursor.execute(f"SELECT {select} FROM {source} WHERE ({key_list}) > ({marks}) "
                               f"ORDER BY {key_list} LIMIT {int(chunk)}", last)
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


def run_snapshot(url: DatabaseUrl, info: ServerInfo, table_filter: TableFilter, pipeline: CapturePipeline,
                 options: CaptureOptions, schemas: dict[str, TableSchema], stop: StopSignal) -> BinlogPosition | None:
    """Read every captured table as of one binlog position (op `r`); that position, or None when stopped."""
    conn = connect(url, autocommit=True, **snapshot_connection_kwargs())
    try:
        position = begin_consistent_snapshot(conn, info.mariadb)
        tables = captured_tables(conn, table_filter)
        log.info("snapshot starting", extra={"position": str(position), "gtid": position.gtid, "tables": len(tables)})
        ts_ms = time.time_ns() // 1_000_000

        def emit(change: Change) -> None:
            pipeline.emit(change)
            if (emitter.emitted + 1) % 1000 == 0:
                pipeline.poll()

        emitter = SnapshotEmitter(emit)
        count = 0
        for database, name in tables:
            table = describe_table(conn, database, name)
            schemas[f"{database}.{name}"] = table.schema
            for row in read_rows(conn, table, options.snapshot_chunk):
                if stop.requested:
                    return None
                source = source_block(options.prefix, ts_ms=ts_ms, snapshot="true", db=database, table=name,
                                      server_id=info.server_id, gtid=None, file=position.file, pos=position.position,
                                      row=0, thread=None)
                emitter.row((database, name), Change(READ, table.schema, None, row, source, (0, 0, count)))
                count += 1
            emitter.table_done((database, name))
        emitter.finish()
        conn.commit()
        pipeline.checkpoint(position)
        log.info("snapshot read", extra={"rows": count, "tables": len(tables)})
        return position
    finally:
        conn.close()
