"""The snapshot role for MariaDB/MySQL: the captured tables as of one binlog position, as op `r` events.

MariaDB (lock-free): `START TRANSACTION WITH CONSISTENT SNAPSHOT` then `SHOW STATUS LIKE
'binlog_snapshot_%'` gives the binlog file/position that transaction sees, so streaming from there
neither misses nor repeats a change. MySQL has no such status: a brief `FLUSH TABLES WITH READ LOCK`
around starting the transaction and reading `SHOW MASTER STATUS`.

Each table is read in primary-key order, in chunks (`WHERE (pk) > (last) ORDER BY pk LIMIT n`); a table
without a primary key in one pass. Values come back as text and are turned into the same readable
forms the binlog decoder gives (`row_converters`), and the table's schema is built from
information_schema through the same `connectors.mysql.types` functions as a TABLE_MAP's, so a snapshot
row and a streamed row of the same data are identical, and so are their schemas.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from cdc.codecs import encode_float, encode_float4
from cdc.compat import geometry_value
from cdc.errors import SourceError
from cdc.events import TableSchema
from connectors.mysql import types as mt
from connectors.mysql.binlog import BinlogPosition
from connectors.mysql.dialect import qualified, quote_ident

log = logging.getLogger(__name__)

_INT_TYPES = {"tinyint": mt.T_TINY, "smallint": mt.T_SHORT, "mediumint": mt.T_INT24, "int": mt.T_LONG,
              "integer": mt.T_LONG, "bigint": mt.T_LONGLONG}
_BLOB_SIZES = {"tiny": 1, "": 2, "medium": 3, "long": 4}
_GEOMETRY_CODES = {name.lower(): code for code, name in mt.GEOMETRY_TYPES.items()}


@dataclass(slots=True)
class SnapshotTable:
    """One table to read: its schema, the text->value converter per column, and its key."""

    database: str
    name: str
    schema: TableSchema
    converters: tuple[Callable[[Any], Any], ...]
    key: tuple[str, ...]
    expressions: tuple[str, ...] = ()


def _members(column_type: str) -> tuple[str, ...]:
    """ENUM/SET members from COLUMN_TYPE text: enum('a','b''c') -> ('a', "b'c")."""
    inner = column_type[column_type.index("(") + 1:column_type.rindex(")")]
    return tuple(m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", inner))


def column_info(index: int, row: dict[str, Any]) -> mt.ColumnInfo:
    """A TABLE_MAP-equivalent ColumnInfo from an information_schema.COLUMNS row."""
    data_type = str(row["DATA_TYPE"]).lower()
    column_type = str(row["COLUMN_TYPE"]).lower()
    charset = row["CHARACTER_SET_NAME"]
    octets = int(row["CHARACTER_OCTET_LENGTH"] or 0)
    meta = 0
    values = None
    geometry_type = None
    if data_type in _INT_TYPES:
        code = _INT_TYPES[data_type]
    elif data_type == "decimal":
        code, meta = mt.T_NEWDECIMAL, (int(row["NUMERIC_PRECISION"]) << 8) | int(row["NUMERIC_SCALE"])
    elif data_type == "float":
        code, meta = mt.T_FLOAT, 4
    elif data_type == "double":
        code, meta = mt.T_DOUBLE, 8
    elif data_type == "bit":
        bits = int(row["NUMERIC_PRECISION"])
        code, meta = mt.T_BIT, ((bits // 8) << 8) | (bits % 8)
    elif data_type == "date":
        code = mt.T_DATE
    elif data_type in ("datetime", "timestamp", "time"):
        code = {"datetime": mt.T_DATETIME2, "timestamp": mt.T_TIMESTAMP2, "time": mt.T_TIME2}[data_type]
        meta = int(row["DATETIME_PRECISION"] or 0)
    elif data_type == "year":
        code = mt.T_YEAR
    elif data_type in ("char", "binary"):
        code, meta = mt.T_STRING, octets
        charset = charset or "binary"
    elif data_type in ("varchar", "varbinary"):
        code, meta = mt.T_VARCHAR, octets
        charset = charset or "binary"
    elif data_type.endswith("text") or data_type.endswith("blob"):
        code, meta = mt.T_BLOB, _BLOB_SIZES[data_type[:-4]]
        charset = charset or "binary"
    elif data_type == "json":  # MySQL 8 binary JSON (MariaDB reports JSON as longtext)
        code, meta = mt.T_JSON, 4
    elif data_type in ("enum", "set"):
        values = _members(str(row["COLUMN_TYPE"]))
        code = mt.T_ENUM if data_type == "enum" else mt.T_SET
        if data_type == "enum":
            meta = 1 if len(values) < 256 else 2
        else:
            meta = {0: 1, 1: 1, 2: 2, 3: 4, 4: 4}.get((len(values) + 7) // 8, 8)
    elif data_type in _GEOMETRY_CODES:
        code, meta, geometry_type = mt.T_GEOMETRY, 4, _GEOMETRY_CODES[data_type]
        charset = "binary"
    else:
        raise SourceError(f"column {row['COLUMN_NAME']} has type {column_type}, which the snapshot cannot read",
                          fix="leave the table out of --tables/--include")
    return mt.ColumnInfo(
        index=index,
        name=str(row["COLUMN_NAME"]),
        type_code=code,
        meta=meta,
        nullable=str(row["IS_NULLABLE"]).upper() == "YES",
        unsigned="unsigned" in column_type,
        collation=None,
        charset=charset if code in (mt.T_STRING, mt.T_VARCHAR, mt.T_BLOB, mt.T_ENUM, mt.T_SET) else
        ("binary" if code == mt.T_GEOMETRY else None),
        values=values,
        geometry_type=geometry_type,
        primary_key=str(row["COLUMN_KEY"]).upper() == "PRI",
    )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def converter(column: mt.ColumnInfo) -> Callable[[Any], Any]:
    """The function turning the value PyMySQL returns (conversions off) into the decoder's readable form."""
    code = column.type_code
    if code in _INT_TYPES.values() or code == mt.T_YEAR:
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


def _geometry(value: bytes) -> str:
    """MySQL's internal geometry (4-byte SRID, then WKB): base64 WKB carrying the SRID (cdc.compat.Geometry)."""
    data = bytes(value)
    return geometry_value(base64.b64encode(data[4:]).decode("ascii"), int.from_bytes(data[:4], "little"))


def describe_table(conn, database: str, table: str, version: int = 1) -> SnapshotTable:
    """Schema and converters of one table from information_schema."""
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, CHARACTER_OCTET_LENGTH,"
            " NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE, COLUMN_KEY"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
            " AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (database, table))
        key = tuple(str(r["COLUMN_NAME"]) for r in cursor.fetchall())
    if not rows:
        raise SourceError(f"table {database}.{table} does not exist", fix="check --tables / --include")
    columns = [column_info(i, row) for i, row in enumerate(rows)]
    schema = TableSchema(engine="mysql", database=database, namespace=database, name=table,
                         columns=tuple(mt.column_schema(c) for c in columns), version=version, primary_key=key)
    return SnapshotTable(database, table, schema, tuple(converter(c) for c in columns), key,
                         tuple(select_expression(c) for c in columns))


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
