"""TABLE_MAP events: a table's identity and its columns' types and metadata, read once per TABLE_MAP.

A TABLE_MAP event names a table and lists its column type codes with their metadata; with
`binlog_row_metadata=FULL` it also carries column names, signedness, charsets, ENUM/SET members,
geometry types and the primary key. `parse_table_map` reads all of it and picks, for every column,
the codec the row decoder applies (`connectors.mysql.column_plans`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cdc.errors import DecodeError
from connectors.mysql.charsets import CHARSET_CODECS, collation_charset
from connectors.mysql.column_plans import column_plan
from connectors.mysql.types import (
    NUMERIC_TYPES,
    T_BIT,
    T_BLOB,
    T_DATETIME2,
    T_DOUBLE,
    T_ENUM,
    T_FLOAT,
    T_GEOMETRY,
    T_JSON,
    T_LONG_BLOB,
    T_MEDIUM_BLOB,
    T_NEWDECIMAL,
    T_SET,
    T_STRING,
    T_TIME2,
    T_TIMESTAMP2,
    T_TINY_BLOB,
    T_VAR_STRING,
    T_VARCHAR,
    T_YEAR,
    ColumnInfo,
)

# Optional metadata field types (binlog_row_metadata=FULL).
M_SIGNEDNESS = 1
M_DEFAULT_CHARSET = 2
M_COLUMN_CHARSET = 3
M_COLUMN_NAME = 4
M_SET_STR_VALUE = 5
M_ENUM_STR_VALUE = 6
M_GEOMETRY_TYPE = 7
M_SIMPLE_PRIMARY_KEY = 8
M_PRIMARY_KEY_WITH_PREFIX = 9
M_ENUM_AND_SET_DEFAULT_CHARSET = 10
M_ENUM_AND_SET_COLUMN_CHARSET = 11
M_VISIBILITY = 12


@dataclass(slots=True, frozen=True)
class TableMap:
    """A parsed TABLE_MAP: table identity, columns and the decoder's per-column plan."""

    table_id: int
    database: str
    table: str
    columns: tuple[ColumnInfo, ...]
    plan: tuple[tuple, ...]
    primary_key: tuple[str, ...]
    has_names: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.table}"


class _Cursor:
    """Bounds-checked reads over a TABLE_MAP body; a short read is a DecodeError with the offset."""

    __slots__ = ("data", "offset", "position")

    def __init__(self, data: bytes, position: object) -> None:
        self.data = data
        self.offset = 0
        self.position = position

    def fail(self, message: str) -> DecodeError:
        return DecodeError(f"TABLE_MAP event: {message}", position=f"{self.position} byte {self.offset}")

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise self.fail(f"needs {size} bytes, {len(self.data) - self.offset} left")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def lenenc(self) -> int:
        first = self.u8()
        if first < 251:
            return first
        if first == 252:
            return self.uint(2)
        if first == 253:
            return self.uint(3)
        if first == 254:
            return self.uint(8)
        raise self.fail(f"invalid length-encoded integer prefix {first}")

    def packed_string(self) -> bytes:
        return self.take(self.lenenc())

    @property
    def left(self) -> int:
        return len(self.data) - self.offset


def _read_type_meta(cur: _Cursor, type_code: int) -> int:
    if type_code in (T_FLOAT, T_DOUBLE, T_BLOB, T_GEOMETRY, T_JSON, T_TIMESTAMP2, T_DATETIME2, T_TIME2,
                     T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        return cur.u8()
    if type_code in (T_VARCHAR, T_VAR_STRING):
        return cur.uint(2)
    if type_code in (T_NEWDECIMAL, T_STRING, T_ENUM, T_SET):
        high = cur.u8()
        return (high << 8) | cur.u8()
    if type_code == T_BIT:
        bits = cur.u8()
        return (cur.u8() << 8) | bits  # (bytes << 8) | extra bits
    return 0


def _real_type(type_code: int, meta: int) -> tuple[int, int]:
    """STRING hides ENUM/SET and long CHAR lengths in its metadata: (real type, max length or pack size)."""
    if type_code != T_STRING:
        return type_code, meta
    byte0, byte1 = meta >> 8, meta & 0xFF
    if (byte0 & 0x30) != 0x30:
        return T_STRING, byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
    if byte0 in (T_ENUM, T_SET):
        return byte0, byte1
    return T_STRING, byte1


def _is_character(type_code: int, mariadb: bool) -> bool:
    if type_code in (T_STRING, T_VAR_STRING, T_VARCHAR, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        return True
    return type_code == T_GEOMETRY and mariadb  # MariaDB counts GEOMETRY (a BLOB inside) too


def _read_optional(cur: _Cursor, types: list[int], mariadb: bool) -> dict[int, Any]:
    numeric = [i for i, t in enumerate(types) if t in NUMERIC_TYPES]
    character = [i for i, t in enumerate(types) if _is_character(t, mariadb)]
    enum_set = [i for i, t in enumerate(types) if t in (T_ENUM, T_SET)]
    found: dict[int, Any] = {}
    while cur.left > 0:
        kind = cur.u8()
        length = cur.lenenc()
        body = _Cursor(cur.take(length), cur.position)
        if kind == M_SIGNEDNESS:
            bits = body.take(body.left)
            unsigned = set()
            for n, column in enumerate(numeric):
                if n // 8 < len(bits) and bits[n // 8] & (0x80 >> (n % 8)):
                    unsigned.add(column)
            found[kind] = unsigned
        elif kind in (M_DEFAULT_CHARSET, M_ENUM_AND_SET_DEFAULT_CHARSET):
            targets = character if kind == M_DEFAULT_CHARSET else enum_set
            default = body.lenenc()
            collations = {column: default for column in targets}
            while body.left > 0:
                n = body.lenenc()
                collation = body.lenenc()
                if n < len(targets):
                    collations[targets[n]] = collation
            found[M_COLUMN_CHARSET if kind == M_DEFAULT_CHARSET else M_ENUM_AND_SET_COLUMN_CHARSET] = collations
        elif kind in (M_COLUMN_CHARSET, M_ENUM_AND_SET_COLUMN_CHARSET):
            targets = character if kind == M_COLUMN_CHARSET else enum_set
            collations = {}
            n = 0
            while body.left > 0:
                collation = body.lenenc()
                if n < len(targets):
                    collations[targets[n]] = collation
                n += 1
            found[kind] = collations
        elif kind == M_COLUMN_NAME:
            names = []
            while body.left > 0:
                names.append(body.packed_string().decode("utf-8", "replace"))
            found[kind] = names
        elif kind in (M_SET_STR_VALUE, M_ENUM_STR_VALUE):
            members = []
            while body.left > 0:
                member_count = body.lenenc()
                members.append(tuple(body.packed_string() for _ in range(member_count)))
            found[kind] = members
        elif kind == M_GEOMETRY_TYPE:
            geometry = []
            while body.left > 0:
                geometry.append(body.lenenc())
            found[kind] = geometry
        elif kind == M_SIMPLE_PRIMARY_KEY:
            keys = []
            while body.left > 0:
                keys.append(body.lenenc())
            found[kind] = keys
        elif kind == M_PRIMARY_KEY_WITH_PREFIX:
            keys = []
            while body.left > 0:
                keys.append(body.lenenc())
                body.lenenc()  # prefix length
            found[M_SIMPLE_PRIMARY_KEY] = keys
    return found


def parse_table_map(
    body: bytes,
    *,
    position: object = None,
    mariadb: bool = True,
    names: tuple[str, ...] | None = None,
    collations: dict[int, str] | None = None,
    json_decoder: Callable[[bytes], str] | None = None,
) -> TableMap:
    """Parse a TABLE_MAP event body (after the 19-byte header, without checksum) into a TableMap.

    `names` stands in for the column names when the server does not send them
    (binlog_row_metadata=MINIMAL); `collations` is the server's collation id -> charset table.
    """
    cur = _Cursor(body, position)
    table_id = cur.uint(6)
    cur.take(2)  # flags
    database = cur.take(cur.u8()).decode("utf-8", "replace")
    cur.take(1)
    table = cur.take(cur.u8()).decode("utf-8", "replace")
    cur.take(1)
    count = cur.lenenc()
    wire_types = list(cur.take(count))
    meta_block = _Cursor(cur.packed_string(), position)
    metas = [_read_type_meta(meta_block, t) for t in wire_types]
    null_bits = cur.take((count + 7) // 8)
    resolved = [_real_type(t, m) for t, m in zip(wire_types, metas)]
    types = [t for t, _ in resolved]
    optional = _read_optional(cur, types, mariadb)

    wire_names = optional.get(M_COLUMN_NAME)
    has_names = wire_names is not None and len(wire_names) == count
    if not has_names:
        wire_names = list(names) if names is not None and len(names) == count else [f"col_{i}" for i in range(count)]
        has_names = names is not None and len(names) == count
    unsigned = optional.get(M_SIGNEDNESS, set())
    char_collations = optional.get(M_COLUMN_CHARSET, {})
    enum_collations = optional.get(M_ENUM_AND_SET_COLUMN_CHARSET, {})
    enum_members = iter(optional.get(M_ENUM_STR_VALUE, []))
    set_members = iter(optional.get(M_SET_STR_VALUE, []))
    geometry_types = iter(optional.get(M_GEOMETRY_TYPE, []))
    key_indexes = optional.get(M_SIMPLE_PRIMARY_KEY, [])

    columns = []
    for i, (type_code, meta) in enumerate(resolved):
        collation = char_collations.get(i, enum_collations.get(i))
        charset = collation_charset(collation, collations) if collation is not None else None
        values = None
        if type_code in (T_ENUM, T_SET):
            raw = next(enum_members if type_code == T_ENUM else set_members, None)
            if raw is not None:
                codec = CHARSET_CODECS.get(charset or "utf8mb4", "utf-8")
                values = tuple(member.decode("utf-8" if codec == "binary" else codec, "replace") for member in raw)
        geometry_type = next(geometry_types, None) if type_code == T_GEOMETRY else None
        columns.append(
            ColumnInfo(
                index=i,
                name=wire_names[i],
                type_code=type_code,
                meta=meta,
                nullable=bool(null_bits[i // 8] & (1 << (i % 8))),
                unsigned=i in unsigned and type_code != T_YEAR,  # YEAR has a signedness bit, no sign
                collation=collation,
                charset=charset,
                values=values,
                geometry_type=geometry_type,
                primary_key=i in key_indexes,
            )
        )
    plan = tuple(column_plan(column, json_decoder) for column in columns)
    primary_key = tuple(wire_names[i] for i in key_indexes if 0 <= i < count)
    return TableMap(
        table_id=table_id,
        database=database,
        table=table,
        columns=tuple(columns),
        plan=plan,
        primary_key=primary_key,
        has_names=has_names,
    )
