"""MySQL/MariaDB column types: the field type codes, and one column as a TABLE_MAP describes it.

The codes are MySQL's `enum_field_types` (include/mysql_com.h); this is their one definition in the
tree. What the decoder does with each type is in `connectors.mysql.column_plans`, how a TABLE_MAP is
read in `connectors.mysql.table_map`, and the engine-neutral description of a column in
`connectors.mysql.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- MySQL field type codes (include/mysql_com.h enum_field_types) ---
T_DECIMAL = 0
T_TINY = 1
T_SHORT = 2
T_LONG = 3
T_FLOAT = 4
T_DOUBLE = 5
T_NULL = 6
T_TIMESTAMP = 7
T_LONGLONG = 8
T_INT24 = 9
T_DATE = 10
T_TIME = 11
T_DATETIME = 12
T_YEAR = 13
T_NEWDATE = 14
T_VARCHAR = 15
T_BIT = 16
T_TIMESTAMP2 = 17
T_DATETIME2 = 18
T_TIME2 = 19
T_JSON = 245
T_NEWDECIMAL = 246
T_ENUM = 247
T_SET = 248
T_TINY_BLOB = 249
T_MEDIUM_BLOB = 250
T_LONG_BLOB = 251
T_BLOB = 252
T_VAR_STRING = 253
T_STRING = 254
T_GEOMETRY = 255

GEOMETRY_TYPES = {
    0: "GEOMETRY", 1: "POINT", 2: "LINESTRING", 3: "POLYGON",
    4: "MULTIPOINT", 5: "MULTILINESTRING", 6: "MULTIPOLYGON", 7: "GEOMETRYCOLLECTION",
}

# Columns with a bit in the SIGNEDNESS metadata (MariaDB and MySQL count YEAR as numeric).
NUMERIC_TYPES = frozenset(
    {T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_NEWDECIMAL, T_DECIMAL, T_FLOAT, T_DOUBLE, T_YEAR}
)
# Integer types: (storage bytes, SQL name).
INT_TYPES = {
    T_TINY: (1, "TINYINT"),
    T_SHORT: (2, "SMALLINT"),
    T_INT24: (3, "MEDIUMINT"),
    T_LONG: (4, "INT"),
    T_LONGLONG: (8, "BIGINT"),
}
BLOB_TYPES = (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB)


@dataclass(slots=True, frozen=True)
class ColumnInfo:
    """One column as a TABLE_MAP describes it."""

    index: int
    name: str
    type_code: int            # the real type (ENUM/SET resolved from STRING's metadata)
    meta: int                 # type metadata (meaning depends on type_code)
    nullable: bool
    unsigned: bool = False
    collation: int | None = None
    charset: str | None = None
    values: tuple[str, ...] | None = None
    geometry_type: int | None = None
    primary_key: bool = False
