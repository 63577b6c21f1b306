"""Source column -> MySQL/MariaDB column type (docs/type-mapping.md), for any source engine.

Used by `cdc apply --create-tables` and when a schema change adds or widens a column. The type is
chosen from the column's kind and its length/precision/scale/unsigned; the source engine matters only
where a kind means different things on the two sides (MySQL TIMESTAMP spans only 1970-2038, so other
engines' instants go to DATETIME; MySQL geometry keeps its text form).
"""

from __future__ import annotations

from cdc.apply.typemap import has_fixed_type, time_precision
from cdc.events import Column

ENGINE = "mysql"

# MySQL cannot index an unbounded TEXT/BLOB as a primary key: key columns get a bounded type.
MYSQL_KEY_CHARS = 768  # 768 utf8mb4 characters = 3072 bytes, InnoDB's index limit
MYSQL_VARCHAR_MAX = 4096  # longer bounded strings become TEXT types (row size limit of 65535 bytes)


def _int(column: Column) -> str:
    name = {1: "tinyint", 2: "smallint", 3: "mediumint", 4: "int", 8: "bigint"}.get(column.length or 4, "bigint")
    return f"{name} unsigned" if column.unsigned else name


def _decimal(column: Column) -> str:
    if column.precision is None or column.precision > 65:
        return "decimal(65,30)"
    return f"decimal({column.precision},{column.scale or 0})"


def _quote_member(member: str) -> str:
    return "'" + member.replace("\\", "\\\\").replace("'", "''") + "'"


def column_type(column: Column, source_engine: str = ENGINE) -> str:
    """The MySQL/MariaDB type for a column captured from `source_engine`, by its kind."""
    kind = column.kind
    length = column.length
    key = column.primary_key
    if kind == "boolean":
        return "boolean"
    if kind == "int":
        return _int(column)
    if kind == "year":
        return "year"
    if kind == "decimal":
        return _decimal(column)
    if kind == "float":
        return "float" if column.length == 4 else "double"
    if kind == "string":
        if length is None:
            return f"varchar({MYSQL_KEY_CHARS})" if key else "longtext"
        if has_fixed_type(column, "char(", "character(", "bpchar", "nchar(") and length <= 255:
            return f"char({length})"
        if length <= MYSQL_VARCHAR_MAX or key:
            return f"varchar({min(length, MYSQL_KEY_CHARS) if key else length})"
        return "longtext"
    if kind in ("enum", "set") and column.values:
        return f"{kind}({','.join(_quote_member(member) for member in column.values)})"
    if kind in ("enum", "set"):
        return "varchar(255)" if key else "text"
    if kind == "bytes":
        if length is not None and has_fixed_type(column, "binary(") and length <= 255:
            return f"binary({length})"
        if length is not None and length <= MYSQL_VARCHAR_MAX:
            return f"varbinary({length})"
        return "varbinary(3072)" if key else "longblob"
    if kind == "bits":
        if length and length <= 64 and not has_fixed_type(column, "bit varying", "varbit"):
            return f"bit({length})"
        return f"varchar({length or 255})" if (length or 0) <= MYSQL_VARCHAR_MAX else "longtext"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time({time_precision(column)})"
    if kind == "timestamp":
        return f"datetime({time_precision(column)})"
    if kind == "timestamptz":
        # MySQL TIMESTAMP only spans 1970-2038: other engines' instants go to DATETIME, in UTC.
        return f"timestamp({time_precision(column)}) NULL" if source_engine == ENGINE else f"datetime({time_precision(column)})"
    if kind == "interval":
        return "varchar(64)"
    if kind == "json" or kind == "array":
        return "json"
    if kind == "uuid":
        return "char(36)"
    if kind in ("inet", "cidr"):
        return "varchar(43)"
    if kind == "macaddr":
        return "varchar(23)"
    if kind == "money":
        return "varchar(32)"
    if kind == "geometry" and source_engine == ENGINE:
        return "longtext"
    return f"varchar({MYSQL_KEY_CHARS})" if key else "longtext"
