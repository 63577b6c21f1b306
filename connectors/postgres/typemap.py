"""Source column -> PostgreSQL column type (docs/type-mapping.md), for any source engine.

Used by `cdc apply --create-tables` and when a schema change adds or widens a column. The type is
chosen from the column's kind and its length/precision/scale/unsigned; the source engine matters only
where a PostgreSQL source's own type can be kept (json vs jsonb, range types).
"""

from __future__ import annotations

from cdc.apply.typemap import has_fixed_type, time_precision
from cdc.events import Column

ENGINE = "postgresql"


def _int(column: Column) -> str:
    width = column.length or 4
    if column.unsigned:
        width += 1  # the unsigned range needs the next wider signed type
    if width <= 2:
        return "smallint"
    if width <= 4:
        return "integer"
    if width <= 8:
        return "bigint"
    return "numeric(20,0)"


def _decimal(column: Column) -> str:
    if column.precision is None:
        return "numeric"
    return f"numeric({column.precision},{column.scale or 0})"


def column_type(column: Column, source_engine: str = ENGINE) -> str:
    """The PostgreSQL type for a column captured from `source_engine`, by its kind."""
    kind = column.kind
    length = column.length
    if kind == "boolean":
        return "boolean"
    if kind == "int":
        return _int(column)
    if kind == "year":
        return "smallint"
    if kind == "decimal":
        return _decimal(column)
    if kind == "float":
        return "real" if column.length == 4 else "double precision"
    if kind == "string":
        if length is None:
            return "text"
        if has_fixed_type(column, "char(", "character(", "bpchar", "nchar("):
            return f"character({length})"
        return f"character varying({length})"
    if kind in ("enum", "set"):
        return "text"
    if kind == "bytes":
        return "bytea"
    if kind == "bits":
        if length and has_fixed_type(column, "bit(", "bit") and not has_fixed_type(column, "bit varying", "varbit"):
            return f"bit({length})"
        return f"bit varying({length})" if length else "bit varying"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time({time_precision(column)}) without time zone"
    if kind == "timestamp":
        return f"timestamp({time_precision(column)}) without time zone"
    if kind == "timestamptz":
        return f"timestamp({time_precision(column)}) with time zone"
    if kind == "interval":
        return "interval"
    if kind == "json":
        return "json" if column.source_type.lower() == "json" and source_engine == ENGINE else "jsonb"
    if kind in ("uuid", "inet", "cidr", "macaddr", "money", "xml", "tsvector"):
        return {"macaddr": "macaddr8" if column.source_type.lower() == "macaddr8" else "macaddr"}.get(kind, kind)
    if kind == "range":
        source = column.source_type.lower()
        ranges = ("int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange")
        return source if source_engine == ENGINE and source in ranges else "text"
    if kind == "array":
        element = Column(column.name, column.source_type.rstrip("[]"), column.element or "text")
        return column_type(element, source_engine) + "[]"
    return "text"  # geometry without PostGIS, text, unknown kinds: their text form
