"""Engine-neutral column kind -> target column type, per target engine (docs/type-mapping.md).

Used by `cdc apply --create-tables` and when a schema change adds or widens a column. The mapping
is chosen from the column's kind and its length/precision/scale/unsigned, with the source engine only
where a kind means different things on the two engines (MySQL TIMESTAMP vs PG timestamptz range).
What a mapping loses is written in docs/type-mapping.md.
"""

from __future__ import annotations

import re

from cdc.events import Column

# MySQL cannot index an unbounded TEXT/BLOB as a primary key: key columns get a bounded type.
MYSQL_KEY_CHARS = 768  # 768 utf8mb4 characters = 3072 bytes, InnoDB's index limit
MYSQL_VARCHAR_MAX = 4096  # longer bounded strings become TEXT types (row size limit of 65535 bytes)


def _precision(column: Column, default: int = 6) -> int:
    value = column.precision if column.precision is not None else default
    return max(0, min(6, value))


def _int_pg(column: Column) -> str:
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


def _int_mysql(column: Column) -> str:
    name = {1: "tinyint", 2: "smallint", 3: "mediumint", 4: "int", 8: "bigint"}.get(column.length or 4, "bigint")
    return f"{name} unsigned" if column.unsigned else name


def _decimal(column: Column, engine: str) -> str:
    if column.precision is None:
        return "numeric" if engine == "postgresql" else "decimal(65,30)"
    scale = column.scale or 0
    if engine == "mysql" and column.precision > 65:
        return "decimal(65,30)"
    name = "numeric" if engine == "postgresql" else "decimal"
    return f"{name}({column.precision},{scale})"


def _is_fixed(column: Column, *prefixes: str) -> bool:
    """True when the source type starts with one of the prefixes (a bare name counts without "(")."""
    source = column.source_type.lower()
    return any(source.startswith(prefix) or source == prefix.rstrip("(") for prefix in prefixes)


def _quote_member(member: str) -> str:
    return "'" + member.replace("\\", "\\\\").replace("'", "''") + "'"


def pg_type(column: Column, source_engine: str = "postgresql") -> str:
    """The PostgreSQL type for a column of the given kind."""
    kind = column.kind
    length = column.length
    if kind == "boolean":
        return "boolean"
    if kind == "int":
        return _int_pg(column)
    if kind == "year":
        return "smallint"
    if kind == "decimal":
        return _decimal(column, "postgresql")
    if kind == "float":
        return "real" if column.length == 4 else "double precision"
    if kind == "string":
        if length is None:
            return "text"
        if _is_fixed(column, "char(", "character(", "bpchar", "nchar("):
            return f"character({length})"
        return f"character varying({length})"
    if kind in ("enum", "set"):
        return "text"
    if kind == "bytes":
        return "bytea"
    if kind == "bits":
        if length and _is_fixed(column, "bit(", "bit") and not _is_fixed(column, "bit varying", "varbit"):
            return f"bit({length})"
        return f"bit varying({length})" if length else "bit varying"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time({_precision(column)}) without time zone"
    if kind == "timestamp":
        return f"timestamp({_precision(column)}) without time zone"
    if kind == "timestamptz":
        return f"timestamp({_precision(column)}) with time zone"
    if kind == "interval":
        return "interval"
    if kind == "json":
        return "json" if column.source_type.lower() == "json" and source_engine == "postgresql" else "jsonb"
    if kind in ("uuid", "inet", "cidr", "macaddr", "money", "xml", "tsvector"):
        return {"macaddr": "macaddr8" if column.source_type.lower() == "macaddr8" else "macaddr"}.get(kind, kind)
    if kind == "range":
        source = column.source_type.lower()
        ranges = ("int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange")
        return source if source_engine == "postgresql" and source in ranges else "text"
    if kind == "array":
        element = Column(column.name, column.source_type.rstrip("[]"), column.element or "text")
        return pg_type(element, source_engine) + "[]"
    return "text"  # geometry without PostGIS, text, unknown kinds: their text form


def mysql_type(column: Column, source_engine: str = "mysql") -> str:
    """The MySQL/MariaDB type for a column of the given kind."""
    kind = column.kind
    length = column.length
    key = column.primary_key
    if kind == "boolean":
        return "boolean"
    if kind == "int":
        return _int_mysql(column)
    if kind == "year":
        return "year"
    if kind == "decimal":
        return _decimal(column, "mysql")
    if kind == "float":
        return "float" if column.length == 4 else "double"
    if kind == "string":
        if length is None:
            return f"varchar({MYSQL_KEY_CHARS})" if key else "longtext"
        if _is_fixed(column, "char(", "character(", "bpchar", "nchar(") and length <= 255:
            return f"char({length})"
        if length <= MYSQL_VARCHAR_MAX or key:
            return f"varchar({min(length, MYSQL_KEY_CHARS) if key else length})"
        return "longtext"
    if kind in ("enum", "set") and column.values:
        return f"{kind}({','.join(_quote_member(member) for member in column.values)})"
    if kind in ("enum", "set"):
        return "varchar(255)" if key else "text"
    if kind == "bytes":
        if length is not None and _is_fixed(column, "binary(") and length <= 255:
            return f"binary({length})"
        if length is not None and length <= MYSQL_VARCHAR_MAX:
            return f"varbinary({length})"
        return "varbinary(3072)" if key else "longblob"
    if kind == "bits":
        if length and length <= 64 and not _is_fixed(column, "bit varying", "varbit"):
            return f"bit({length})"
        return f"varchar({length or 255})" if (length or 0) <= MYSQL_VARCHAR_MAX else "longtext"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time({_precision(column)})"
    if kind == "timestamp":
        return f"datetime({_precision(column)})"
    if kind == "timestamptz":
        # MySQL TIMESTAMP only spans 1970-2038: other engines' instants go to DATETIME, in UTC.
        return f"timestamp({_precision(column)}) NULL" if source_engine == "mysql" else f"datetime({_precision(column)})"
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
    if kind == "geometry" and source_engine == "mysql":
        return "longtext"
    return f"varchar({MYSQL_KEY_CHARS})" if key else "longtext"


def target_type(column: Column, engine: str, source_engine: str) -> str:
    """The column type on `engine` ("postgresql" or "mysql") for a column captured from `source_engine`."""
    if engine == "postgresql":
        return pg_type(column, source_engine)
    if engine == "mysql":
        return mysql_type(column, source_engine)
    raise ValueError(f"no type map for engine {engine!r}")


_INT_RANK = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
_FLOAT_RANK = {"real": 4, "float": 4, "double precision": 8, "double": 8}
_SIZED = re.compile(r"^(character varying|varchar|varbinary|numeric|decimal|bit varying|bit|character|char|binary)"
                    r"\((\d+)(?:,(\d+))?\)$")


def normalise_type(type_name: str) -> str:
    """Lower case, single spaces, MySQL display widths removed (`int(11)` -> `int`)."""
    name = " ".join(type_name.lower().split())
    return re.sub(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", name)


def is_widening(current: str, wanted: str) -> bool:
    """True when `wanted` holds every value of `current` and more (same family, wider): ALTER is safe."""
    current, wanted = normalise_type(current), normalise_type(wanted)
    if current == wanted:
        return False
    if current in _INT_RANK and wanted in _INT_RANK:
        return _INT_RANK[wanted] > _INT_RANK[current]
    if current in _FLOAT_RANK and wanted in _FLOAT_RANK:
        return _FLOAT_RANK[wanted] > _FLOAT_RANK[current]
    if current in _INT_RANK and wanted.startswith(("numeric", "decimal")):
        return False
    if wanted in ("text", "longtext") and current.startswith(("character varying", "varchar", "character(", "char(")):
        return True
    old, new = _SIZED.match(current), _SIZED.match(wanted)
    if not old or not new or old.group(1) != new.group(1):
        return False
    if old.group(1) in ("numeric", "decimal"):
        old_scale, new_scale = int(old.group(3) or 0), int(new.group(3) or 0)
        old_int, new_int = int(old.group(2)) - old_scale, int(new.group(2)) - new_scale
        return new_scale >= old_scale and new_int >= old_int
    return int(new.group(2)) > int(old.group(2))
