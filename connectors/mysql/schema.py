"""Table descriptions for MySQL/MariaDB: the engine-neutral `TableSchema` of a table, from a TABLE_MAP
(streaming) or from information_schema (snapshot, and the table after a DDL), built by the same
functions so a snapshot row and a streamed row of the same table carry the same schema.

The table after a DDL, for a schema-change record's `tableChanges` (compat "debezium"): the binlog
carries a DDL as text only. Debezium parses that text; this reads the definition from
`information_schema` instead, which is right only if no later DDL changed the table since. So before
the description is used, `later_ddl` reads the binlog from just after the DDL to the server's current
end (`SHOW BINLOG EVENTS`) and looks for another statement touching the table. When one exists, or
the check cannot finish (too many events, missing privilege), the record gets no table change and the
capture says why in its log: an empty `tableChanges` is honest, a newer table's columns would not be.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import pymysql

from cdc.errors import SourceError
from cdc.events import Column, TableSchema
from connectors.mysql.charsets import max_bytes_per_char
from connectors.mysql.ddl import ddl_target
from connectors.mysql.table_map import TableMap
from connectors.mysql.types import (
    BLOB_TYPES,
    GEOMETRY_TYPES,
    INT_TYPES,
    T_BIT,
    T_BLOB,
    T_DATE,
    T_DATETIME,
    T_DATETIME2,
    T_DECIMAL,
    T_DOUBLE,
    T_ENUM,
    T_FLOAT,
    T_GEOMETRY,
    T_INT24,
    T_JSON,
    T_LONG,
    T_LONGLONG,
    T_NEWDATE,
    T_NEWDECIMAL,
    T_SET,
    T_SHORT,
    T_STRING,
    T_TIME,
    T_TIME2,
    T_TIMESTAMP,
    T_TIMESTAMP2,
    T_TINY,
    T_VAR_STRING,
    T_VARCHAR,
    T_YEAR,
    ColumnInfo,
)

log = logging.getLogger(__name__)

SCAN_LIMIT = 20_000  # binlog events read at most to prove that no later DDL touched the table
_CHUNK = 2_000
_USE = re.compile(r"use\s+(`(?:[^`]|``)+`|\w+)\s*;\s*", re.I)
_WIDTH = re.compile(r"^\w+\((\d+)\)")

# information_schema DATA_TYPE -> type code, for the types whose name alone says it
INT_TYPE_NAMES = {"tinyint": T_TINY, "smallint": T_SHORT, "mediumint": T_INT24, "int": T_LONG,
                  "integer": T_LONG, "bigint": T_LONGLONG}
_BLOB_SIZES = {"tiny": 1, "": 2, "medium": 3, "long": 4}
_BLOB_NAMES = {1: "TINY", 2: "", 3: "MEDIUM", 4: "LONG"}
_GEOMETRY_CODES = {name.lower(): code for code, name in GEOMETRY_TYPES.items()}


# -- from a TABLE_MAP or information_schema to the engine-neutral description ----------------------


def read_columns(conn, database: str, table: str) -> tuple[list[ColumnInfo], tuple[str, ...]]:
    """The columns (as a TABLE_MAP would describe them) and the primary key of a table, from information_schema."""
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
    return [column_info(i, row) for i, row in enumerate(rows)], key


def table_schema(database: str, table: str, columns: Iterable[ColumnInfo], primary_key: tuple[str, ...],
                 version: int = 1) -> TableSchema:
    """The engine-neutral schema published on `<prefix>.schemas`."""
    return TableSchema(engine="mysql", database=database, namespace=database, name=table,
                       columns=tuple(column_schema(column) for column in columns), version=version,
                       primary_key=primary_key)


def table_map_schema(table: TableMap, version: int = 1) -> TableSchema:
    """The schema of the table a TABLE_MAP describes."""
    return table_schema(table.database, table.table, table.columns, table.primary_key, version)


def _members(column_type: str) -> tuple[str, ...]:
    """ENUM/SET members from COLUMN_TYPE text: enum('a','b''c') -> ('a', "b'c")."""
    inner = column_type[column_type.index("(") + 1:column_type.rindex(")")]
    return tuple(m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", inner))


def column_info(index: int, row: dict[str, Any]) -> ColumnInfo:
    """A TABLE_MAP-equivalent ColumnInfo from an information_schema.COLUMNS row."""
    data_type = str(row["DATA_TYPE"]).lower()
    column_type = str(row["COLUMN_TYPE"]).lower()
    charset = row["CHARACTER_SET_NAME"]
    octets = int(row["CHARACTER_OCTET_LENGTH"] or 0)
    meta = 0
    values = None
    geometry_type = None
    if data_type in INT_TYPE_NAMES:
        code = INT_TYPE_NAMES[data_type]
    elif data_type == "decimal":
        code, meta = T_NEWDECIMAL, (int(row["NUMERIC_PRECISION"]) << 8) | int(row["NUMERIC_SCALE"])
    elif data_type == "float":
        code, meta = T_FLOAT, 4
    elif data_type == "double":
        code, meta = T_DOUBLE, 8
    elif data_type == "bit":
        bits = int(row["NUMERIC_PRECISION"])
        code, meta = T_BIT, ((bits // 8) << 8) | (bits % 8)
    elif data_type == "date":
        code = T_DATE
    elif data_type in ("datetime", "timestamp", "time"):
        code = {"datetime": T_DATETIME2, "timestamp": T_TIMESTAMP2, "time": T_TIME2}[data_type]
        meta = int(row["DATETIME_PRECISION"] or 0)
    elif data_type == "year":
        code = T_YEAR
    elif data_type in ("char", "binary"):
        code, meta = T_STRING, octets
        charset = charset or "binary"
    elif data_type in ("varchar", "varbinary"):
        code, meta = T_VARCHAR, octets
        charset = charset or "binary"
    elif data_type.endswith("text") or data_type.endswith("blob"):
        code, meta = T_BLOB, _BLOB_SIZES[data_type[:-4]]
        charset = charset or "binary"
    elif data_type == "json":  # MySQL 8 binary JSON (MariaDB reports JSON as longtext)
        code, meta = T_JSON, 4
    elif data_type in ("enum", "set"):
        values = _members(str(row["COLUMN_TYPE"]))
        code = T_ENUM if data_type == "enum" else T_SET
        if data_type == "enum":
            meta = 1 if len(values) < 256 else 2
        else:
            meta = {0: 1, 1: 1, 2: 2, 3: 4, 4: 4}.get((len(values) + 7) // 8, 8)
    elif data_type in _GEOMETRY_CODES:
        code, meta, geometry_type = T_GEOMETRY, 4, _GEOMETRY_CODES[data_type]
        charset = "binary"
    else:
        raise SourceError(f"column {row['COLUMN_NAME']} has type {column_type}, which the snapshot cannot read",
                          fix="leave the table out of --tables/--include")
    return ColumnInfo(
        index=index,
        name=str(row["COLUMN_NAME"]),
        type_code=code,
        meta=meta,
        nullable=str(row["IS_NULLABLE"]).upper() == "YES",
        unsigned="unsigned" in column_type,
        collation=None,
        charset=charset if code in (T_STRING, T_VARCHAR, T_BLOB, T_ENUM, T_SET) else
        ("binary" if code == T_GEOMETRY else None),
        values=values,
        geometry_type=geometry_type,
        primary_key=str(row["COLUMN_KEY"]).upper() == "PRI",
    )


def source_type(column: ColumnInfo) -> str:
    """The column's type as SQL text, as far as the binlog tells it ("INT UNSIGNED", "VARCHAR(40)")."""
    t, meta = column.type_code, column.meta
    if t in INT_TYPES:
        return INT_TYPES[t][1] + (" UNSIGNED" if column.unsigned else "")
    if t == T_FLOAT:
        return "FLOAT" + (" UNSIGNED" if column.unsigned else "")
    if t == T_DOUBLE:
        return "DOUBLE" + (" UNSIGNED" if column.unsigned else "")
    if t == T_NEWDECIMAL:
        return f"DECIMAL({meta >> 8},{meta & 0xFF})" + (" UNSIGNED" if column.unsigned else "")
    if t == T_YEAR:
        return "YEAR"
    if t in (T_DATE, T_NEWDATE):
        return "DATE"
    if t in (T_DATETIME2, T_DATETIME):
        return f"DATETIME({meta})" if t == T_DATETIME2 and meta else "DATETIME"
    if t in (T_TIMESTAMP2, T_TIMESTAMP):
        return f"TIMESTAMP({meta})" if t == T_TIMESTAMP2 and meta else "TIMESTAMP"
    if t in (T_TIME2, T_TIME):
        return f"TIME({meta})" if t == T_TIME2 and meta else "TIME"
    if t == T_BIT:
        return f"BIT({(meta >> 8) * 8 + (meta & 0xFF)})"
    binary = column.charset in (None, "binary")
    width = max_bytes_per_char(column.charset)
    if t in (T_VARCHAR, T_VAR_STRING):
        return f"VARBINARY({meta})" if binary else f"VARCHAR({meta // width})"
    if t == T_STRING:
        return f"BINARY({meta})" if binary else f"CHAR({meta // width})"
    if t in BLOB_TYPES:
        return _BLOB_NAMES.get(meta, "") + ("BLOB" if binary else "TEXT")
    if t == T_ENUM:
        return "ENUM(" + ",".join(_sql_quote(v) for v in column.values or ()) + ")"
    if t == T_SET:
        return "SET(" + ",".join(_sql_quote(v) for v in column.values or ()) + ")"
    if t == T_GEOMETRY:
        return GEOMETRY_TYPES.get(column.geometry_type or 0, "GEOMETRY")
    if t == T_JSON:
        return "JSON"
    return f"TYPE_{t}"


def _sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def column_kind(column: ColumnInfo) -> str:
    """The engine-neutral kind (cdc.events.KINDS) of a column."""
    t = column.type_code
    if t in INT_TYPES:
        return "int"
    if t in (T_FLOAT, T_DOUBLE):
        return "float"
    if t in (T_NEWDECIMAL, T_DECIMAL):
        return "decimal"
    if t == T_YEAR:
        return "year"
    if t in (T_DATE, T_NEWDATE):
        return "date"
    if t in (T_DATETIME2, T_DATETIME):
        return "timestamp"
    if t in (T_TIMESTAMP2, T_TIMESTAMP):
        return "timestamptz"
    if t in (T_TIME2, T_TIME):
        return "time"
    if t == T_BIT:
        return "bits"
    if t in (T_VARCHAR, T_VAR_STRING, T_STRING, *BLOB_TYPES):
        return "bytes" if column.charset in (None, "binary") else "string"
    if t == T_ENUM:
        return "enum"
    if t == T_SET:
        return "set"
    if t == T_GEOMETRY:
        return "geometry"
    if t == T_JSON:
        return "json"
    return "text"


def column_schema(column: ColumnInfo) -> Column:
    """The engine-neutral `cdc.events.Column` for a TABLE_MAP column."""
    t, meta = column.type_code, column.meta
    kind = column_kind(column)
    length = precision = scale = None
    if t in INT_TYPES:
        length = INT_TYPES[t][0]
    elif t in (T_FLOAT, T_DOUBLE):
        length = 4 if t == T_FLOAT else 8
    elif t == T_NEWDECIMAL:
        precision, scale = meta >> 8, meta & 0xFF
    elif t in (T_DATETIME2, T_TIMESTAMP2, T_TIME2):
        precision = meta
    elif t == T_BIT:
        length = (meta >> 8) * 8 + (meta & 0xFF)
    elif t in (T_VARCHAR, T_VAR_STRING, T_STRING):
        length = meta if kind == "bytes" else meta // max_bytes_per_char(column.charset)
    elif t in BLOB_TYPES and meta in (1, 2, 3):
        length = (1 << (8 * meta)) - 1
    return Column(
        name=column.name,
        source_type=source_type(column),
        kind=kind,
        nullable=column.nullable,
        primary_key=column.primary_key,
        length=length,
        precision=precision,
        scale=scale,
        unsigned=column.unsigned,
        charset=column.charset,
        values=column.values,
    )


# -- the table just after a DDL --------------------------------------------------------------------


def describe_current(conn, database: str, table: str, after_file: str, after_position: int
                     ) -> tuple[TableSchema | None, dict[str, dict[str, Any]], str | None]:
    """(schema, Debezium column details, None) of `database.table` as it is now, when no DDL after
    `after_file:after_position` touched it; else (None, {}, the reason)."""
    try:
        with conn.cursor() as cursor:  # a metadata lock held by a running ALTER: wait 10 s, not a day
            cursor.execute("SET SESSION lock_wait_timeout = 10")
        schema = table_schema(database, table, *read_columns(conn, database, table))
        details = column_details(conn, database, table)
        reason = later_ddl(conn, database, table, after_file, after_position)
    except SourceError as exc:
        return None, {}, exc.message
    except pymysql.err.MySQLError as exc:
        return None, {}, f"cannot read the table definition: {exc.args[-1] if exc.args else exc}"
    if reason:
        return None, {}, reason
    return schema, details, None


def column_details(conn, database: str, table: str) -> dict[str, dict[str, Any]]:
    """What Debezium's table change says of each column that our TableSchema does not carry: the
    declared display width of integers, the default, the comment, auto-increment, generated."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT, IS_NULLABLE"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (database, table))
        rows = cursor.fetchall()
    details: dict[str, dict[str, Any]] = {}
    for name, data_type, column_type, default, extra, comment, nullable in rows:
        extra = str(extra or "").lower()
        entry: dict[str, Any] = {
            "defaultValueExpression": default_expression(default, nullable == "YES"),
            "comment": str(comment) if comment else None,
            "autoIncremented": "auto_increment" in extra,
            "generated": "generated" in extra,
        }
        width = _WIDTH.match(str(column_type).lower())
        if width and str(data_type).lower() in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint"):
            entry["length"] = int(width.group(1))
        details[str(name)] = entry
    return details


def default_expression(default: Any, nullable: bool) -> str | None:
    """Debezium's `defaultValueExpression` from information_schema's COLUMN_DEFAULT: a literal
    without its quotes, an expression as written, None for no default or DEFAULT NULL (MariaDB
    writes that as the word NULL)."""
    if default is None:
        return None
    text = default.decode() if isinstance(default, bytes) else str(default)
    if text == "NULL" and nullable:
        return None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'").replace("\\\\", "\\")
    return text


def later_ddl(conn, database: str, table: str, file: str, position: int, limit: int = SCAN_LIMIT) -> str | None:
    """None when no statement after `file:position` up to the server's current end may have changed
    `database.table`; else why its definition now cannot be trusted to be the one after that DDL."""
    with conn.cursor() as cursor:
        try:
            cursor.execute("SHOW BINARY LOGS")
            files = [str(row[0]) for row in cursor.fetchall()]
        except pymysql.err.MySQLError as exc:
            return f"cannot list the binlog files ({exc.args[-1] if exc.args else exc})"
        if file not in files:
            return f"binlog file {file} is gone"
        scanned = 0
        for name in files[files.index(file):]:
            start = position if name == file else 4
            while True:
                try:
                    cursor.execute(f"SHOW BINLOG EVENTS IN %s FROM {int(start)} LIMIT {_CHUNK}", (name,))
                except pymysql.err.MySQLError as exc:
                    return f"cannot read the binlog after the DDL ({exc.args[-1] if exc.args else exc})"
                rows = cursor.fetchall()
                for _log, _pos, event_type, _server, _end, info in rows:
                    if str(event_type) == "Query" and _touches(str(info or ""), database, table):
                        return f"a later DDL changed {database}.{table} again (at {name}:{_pos})"
                scanned += len(rows)
                if scanned > limit:
                    return f"more than {limit} binlog events since the DDL: not checked"
                if len(rows) < _CHUNK:
                    break
                start = int(rows[-1][4])
    return None


def _touches(info: str, database: str, table: str) -> bool:
    """Whether SHOW BINLOG EVENTS' Info text of a Query event is a DDL touching the table."""
    default_db = ""
    use = _USE.match(info)
    if use:
        name = use.group(1)
        default_db = name[1:-1].replace("``", "`") if name.startswith("`") else name
        info = info[use.end():]
    target = ddl_target(info, default_db)
    return target is not None and target.touches(database, table)
