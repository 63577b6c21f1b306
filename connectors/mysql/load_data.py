"""`LOAD DATA LOCAL INFILE` text for a batch of snapshot reads: the statement and its tab-separated rows.

The rows use the server's default escaping (`FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES
TERMINATED BY '\\n'`): NULL is `\\N`; backslash, tab, newline, carriage return and NUL are escaped.
Binary columns travel as hex into a user variable (`SET col = UNHEX(@v)`), bit columns as a number
(`SET col = CAST(@v AS UNSIGNED)`). A value this module does not render exactly as the INSERT path
would raises `NotLoadable`; the batch is then written with the INSERT statements.
Column names come only from the target table's known columns and are quoted.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable

from pymysql.converters import escape_date, escape_datetime, escape_time, escape_timedelta

from cdc.apply.target import TargetTable
from connectors.mysql.dialect import qualified, quote_ident

# Target types whose text form LOAD DATA reads as the INSERT path's literal; others (geometry, uuid,
# inet..) make the table take the INSERT path.
TEXT_TYPES = frozenset({
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double",
    "real", "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set", "date",
    "datetime", "timestamp", "time", "year",
})
HEX_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
BIT_TYPES = frozenset({"bit"})
FORMAT = ("CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'")


def _text(value: str) -> str:
    """Backslash first, then tab, newline, CR, NUL (five C scans beat one `str.translate` 4x)."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


class NotLoadable(Exception):
    """A value or a column type that LOAD DATA would not store exactly as the INSERT path."""


def base_type(type_name: str) -> str:
    """`decimal(10,2) unsigned` -> `decimal`."""
    return type_name.lower().split("(", 1)[0].split(" ", 1)[0]


def loadable(table: TargetTable) -> bool:
    """Whether every column of the table has a type this module renders."""
    return all(base_type(t) in TEXT_TYPES or base_type(t) in HEX_TYPES or base_type(t) in BIT_TYPES
               for t in table.types.values())


def statement_tail(table: TargetTable, columns: tuple[str, ...]) -> str:
    """What follows `LOAD DATA LOCAL INFILE '<file>'`: table, format, column list and assignments."""
    targets, assignments = [], []
    for i, name in enumerate(columns):
        type_name = table.types.get(name)
        if type_name is None:  # only the table's known columns reach SQL
            raise NotLoadable(f"unknown column {name!r}")
        kind = base_type(type_name)
        if kind in HEX_TYPES:
            targets.append(f"@v{i}")
            assignments.append(f"{quote_ident(name)} = UNHEX(@v{i})")
        elif kind in BIT_TYPES:
            targets.append(f"@v{i}")
            assignments.append(f"{quote_ident(name)} = CAST(@v{i} AS UNSIGNED)")
        else:
            targets.append(quote_ident(name))
    tail = f" INTO TABLE {qualified(table.namespace, table.name)} {FORMAT} ({', '.join(targets)})"
    return tail + (f" SET {', '.join(assignments)}" if assignments else "")


def _unsupported(value: Any) -> str:
    raise NotLoadable(f"no LOAD DATA form for a {type(value).__name__}")


def _float(value: float) -> str:
    text = repr(value)
    if text[-1] in "fn":  # inf, -inf, nan
        raise NotLoadable(text)
    return text


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise NotLoadable(str(value))
    return format(value, "f")


def _unquoted(escape: Callable[[Any], str]) -> Callable[[Any], str]:
    """pymysql's literal of a date/time value without its quotes (digits, '-', ':', '.', ' ' only)."""
    return lambda value: escape(value)[1:-1]


_TEXT: dict[type, Callable[[Any], str]] = {
    str: _text,
    int: int.__repr__,
    bool: lambda v: "1" if v else "0",
    float: _float,
    Decimal: _decimal,
    type(None): lambda v: "\\N",
    dt.datetime: _unquoted(escape_datetime),
    dt.date: _unquoted(escape_date),
    dt.time: _unquoted(escape_time),
    dt.timedelta: _unquoted(escape_timedelta),
}
_HEX: dict[type, Callable[[Any], str]] = {
    bytes: bytes.hex,
    bytearray: bytearray.hex,
    str: lambda v: v.encode().hex(),
    type(None): lambda v: "\\N",
}
_BIT: dict[type, Callable[[Any], str]] = {
    int: int.__repr__,
    bool: lambda v: "1" if v else "0",
    type(None): lambda v: "\\N",
}


def rows_text(table: TargetTable, columns: tuple[str, ...], rows: list[list[Any]]) -> bytes:
    """The rows as LOAD DATA input (UTF-8), one line per row."""
    tables = []
    for name in columns:
        kind = base_type(table.types[name])
        tables.append(_HEX if kind in HEX_TYPES else _BIT if kind in BIT_TYPES else _TEXT)
    lines = []
    append = lines.append
    if all(t is _TEXT for t in tables):
        get = _TEXT.get
        for row in rows:
            append("\t".join([(get(type(value)) or _unsupported)(value) for value in row]))
    else:
        for row in rows:
            append("\t".join([(t.get(type(value)) or _unsupported)(value) for t, value in zip(tables, row)]))
    lines.append("")
    try:
        return "\n".join(lines).encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: the INSERT path reports it
        raise NotLoadable(str(exc)) from exc
