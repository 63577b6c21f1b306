"""The table definition after a DDL, for a schema-change record's `tableChanges` (compat "debezium").

The binlog carries a DDL as text only. Debezium parses that text; this reads the definition from
`information_schema` instead, which is right only if no later DDL changed the table since. So before
the description is used, `later_ddl` reads the binlog from just after the DDL to the server's current
end (`SHOW BINLOG EVENTS`) and looks for another statement touching the table. When one exists, or
the check cannot finish (too many events, missing privilege), the record gets no table change and the
capture says why in its log: an empty `tableChanges` is honest, a newer table's columns would not be.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pymysql

from cdc.errors import SourceError
from cdc.events import TableSchema
from connectors.mysql.ddl import ddl_target

log = logging.getLogger(__name__)

SCAN_LIMIT = 20_000  # binlog events read at most to prove that no later DDL touched the table
_CHUNK = 2_000
_USE = re.compile(r"use\s+(`(?:[^`]|``)+`|\w+)\s*;\s*", re.I)
_WIDTH = re.compile(r"^\w+\((\d+)\)")


def describe_current(conn, database: str, table: str, after_file: str, after_position: int
                     ) -> tuple[TableSchema | None, dict[str, dict[str, Any]], str | None]:
    """(schema, Debezium column details, None) of `database.table` as it is now, when no DDL after
    `after_file:after_position` touched it; else (None, {}, the reason)."""
    from connectors.mysql.snapshot import describe_table

    try:
        with conn.cursor() as cursor:  # a metadata lock held by a running ALTER: wait 10 s, not a day
            cursor.execute("SET SESSION lock_wait_timeout = 10")
        schema = describe_table(conn, database, table).schema
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
