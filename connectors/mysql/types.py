"""MySQL/MariaDB column types: TABLE_MAP events -> per-column codecs, engine-neutral kinds, source types.

A TABLE_MAP event names a table and lists its column type codes with their metadata; with
`binlog_row_metadata=FULL` it also carries column names, signedness, charsets, ENUM/SET members,
geometry types and the primary key. `parse_table_map` reads all of it once per TABLE_MAP and picks,
for every column, the codec the row decoder (`ext/binlog_rows.pyx` or its twin
`connectors.mysql.decode`) applies to that column's values: the decoder never looks at a type code.

A column plan is the tuple `(name, codec, a, b, extra)`; the meaning of `a`, `b` and `extra` per codec
is listed next to the codec ids below. The ids are shared with `ext/binlog_rows.pyx`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any, Callable

from cdc.errors import DecodeError, UnsupportedError
from cdc.events import Column, TableSchema

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

# --- codec ids (same numbers in ext/binlog_rows.pyx) ---
C_INT8 = 1          # a, b, extra unused (all integers)
C_UINT8 = 2
C_INT16 = 3
C_UINT16 = 4
C_INT24 = 5
C_UINT24 = 6
C_INT32 = 7
C_UINT32 = 8
C_INT64 = 9
C_UINT64 = 10
C_FLOAT = 11
C_DOUBLE = 12
C_DECIMAL = 13      # a = precision, b = scale
C_YEAR = 14
C_DATE = 15
C_DATETIME2 = 16    # a = fractional digits
C_DATETIME = 17     # old (pre-5.6) 8-byte DATETIME
C_TIMESTAMP2 = 18   # a = fractional digits
C_TIMESTAMP = 19    # old 4-byte TIMESTAMP
C_TIME2 = 20        # a = fractional digits
C_TIME = 21         # old 3-byte TIME
C_BIT = 22          # a = number of bits
C_TEXT = 23         # a = length-prefix bytes (1-4), b = 1 for UTF-8 else 2 with extra = Python codec
C_BYTES = 24        # a = length-prefix bytes (1-4), b = pad to this many bytes with 0x00 (BINARY(n)) or 0
C_ENUM = 25         # a = pack length (1-2), extra = tuple of members
C_SET = 26          # a = pack length (1-8), extra = tuple of members
C_GEOMETRY = 27     # a = length-prefix bytes; value = SRID (4 bytes) + WKB, the WKB is kept
C_JSON = 28         # a = length-prefix bytes, extra = callable(bytes) -> JSON text (MySQL binary JSON)
C_NULL = 29         # no bytes; always None

TEXT_UTF8 = 1
TEXT_CODEC = 2

BINARY_COLLATION = 63

# Charset name -> Python codec. MySQL's latin1 is Windows-1252; utf8 (utf8mb3) is a subset of UTF-8.
CHARSET_CODECS = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "mysql_latin1",
    "ascii": "ascii",
    "latin2": "iso8859-2",
    "latin5": "iso8859-9",
    "latin7": "iso8859-13",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "koi8r": "koi8-r",
    "koi8u": "koi8-u",
    "greek": "iso8859-7",
    "hebrew": "iso8859-8",
    "ucs2": "utf-16-be",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
    "sjis": "shift_jis",
    "cp932": "cp932",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "euc_kr",
    "gbk": "gbk",
    "gb2312": "gb2312",
    "gb18030": "gb18030",
    "big5": "big5",
    "tis620": "tis-620",
    "macroman": "mac_roman",
    "macce": "mac_latin2",
    "binary": "binary",
}

def _mysql_latin1_search(name: str):
    """MySQL's latin1 is Windows-1252 with its five holes (0x81, 0x8D, 0x8F, 0x90, 0x9D) kept as C1 controls."""
    if name != "mysql_latin1":
        return None
    table = "".join(
        bytes([byte]).decode("cp1252", errors="strict") if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(byte)
        for byte in range(256)
    )
    encoding_table = codecs.charmap_build(table)

    def decode(data, errors="strict"):
        return codecs.charmap_decode(data, errors, table)

    def encode(text, errors="strict"):
        return codecs.charmap_encode(text, errors, encoding_table)

    return codecs.CodecInfo(encode, decode, name="mysql_latin1")


codecs.register(_mysql_latin1_search)

GEOMETRY_TYPES = {
    0: "GEOMETRY", 1: "POINT", 2: "LINESTRING", 3: "POLYGON",
    4: "MULTIPOINT", 5: "MULTILINESTRING", 6: "MULTIPOLYGON", 7: "GEOMETRYCOLLECTION",
}

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

# Columns with a bit in the SIGNEDNESS metadata (MariaDB and MySQL count YEAR as numeric).
_NUMERIC_TYPES = frozenset(
    {T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_NEWDECIMAL, T_DECIMAL, T_FLOAT, T_DOUBLE, T_YEAR}
)
_INT_CODECS = {
    T_TINY: (C_INT8, C_UINT8, 1, "TINYINT"),
    T_SHORT: (C_INT16, C_UINT16, 2, "SMALLINT"),
    T_INT24: (C_INT24, C_UINT24, 3, "MEDIUMINT"),
    T_LONG: (C_INT32, C_UINT32, 4, "INT"),
    T_LONGLONG: (C_INT64, C_UINT64, 8, "BIGINT"),
}
_BLOB_NAMES = {1: "TINY", 2: "", 3: "MEDIUM", 4: "LONG"}


# Collation id -> charset, as MariaDB 10.11's information_schema.COLLATIONS lists them (MySQL 8's
# utf8mb4_0900 ids 255-323 added). The source passes the server's own table, which wins.
_COLLATION_RANGES = {
    "armscii8": [(32, 32), (64, 64), (1056, 1056), (1088, 1088)],
    "ascii": [(11, 11), (65, 65), (1035, 1035), (1089, 1089)],
    "big5": [(1, 1), (84, 84), (1025, 1025), (1108, 1108)],
    "binary": [(63, 63)],
    "cp1250": [(26, 26), (34, 34), (44, 44), (66, 66), (99, 99), (1050, 1050), (1090, 1090)],
    "cp1251": [(14, 14), (23, 23), (50, 52), (1074, 1075)],
    "cp1256": [(57, 57), (67, 67), (1081, 1081), (1091, 1091)],
    "cp1257": [(29, 29), (58, 59), (1082, 1083)],
    "cp850": [(4, 4), (80, 80), (1028, 1028), (1104, 1104)],
    "cp852": [(40, 40), (81, 81), (1064, 1064), (1105, 1105)],
    "cp866": [(36, 36), (68, 68), (1060, 1060), (1092, 1092)],
    "cp932": [(95, 96), (1119, 1120)],
    "dec8": [(3, 3), (69, 69), (1027, 1027), (1093, 1093)],
    "eucjpms": [(97, 98), (1121, 1122)],
    "euckr": [(19, 19), (85, 85), (1043, 1043), (1109, 1109)],
    "gb2312": [(24, 24), (86, 86), (1048, 1048), (1110, 1110)],
    "gbk": [(28, 28), (87, 87), (1052, 1052), (1111, 1111)],
    "geostd8": [(92, 93), (1116, 1117)],
    "greek": [(25, 25), (70, 70), (1049, 1049), (1094, 1094)],
    "hebrew": [(16, 16), (71, 71), (1040, 1040), (1095, 1095)],
    "hp8": [(6, 6), (72, 72), (1030, 1030), (1096, 1096)],
    "keybcs2": [(37, 37), (73, 73), (1061, 1061), (1097, 1097)],
    "koi8r": [(7, 7), (74, 74), (1031, 1031), (1098, 1098)],
    "koi8u": [(22, 22), (75, 75), (1046, 1046), (1099, 1099)],
    "latin1": [(5, 5), (8, 8), (15, 15), (31, 31), (47, 49), (94, 94), (1032, 1032), (1071, 1071)],
    "latin2": [(2, 2), (9, 9), (21, 21), (27, 27), (77, 77), (1033, 1033), (1101, 1101)],
    "latin5": [(30, 30), (78, 78), (1054, 1054), (1102, 1102)],
    "latin7": [(20, 20), (41, 42), (79, 79), (1065, 1065), (1103, 1103)],
    "macce": [(38, 38), (43, 43), (1062, 1062), (1067, 1067)],
    "macroman": [(39, 39), (53, 53), (1063, 1063), (1077, 1077)],
    "sjis": [(13, 13), (88, 88), (1037, 1037), (1112, 1112)],
    "swe7": [(10, 10), (82, 82), (1034, 1034), (1106, 1106)],
    "tis620": [(18, 18), (89, 89), (1042, 1042), (1113, 1113)],
    "ucs2": [(35, 35), (90, 90), (128, 151), (159, 159), (640, 642), (1059, 1059), (1114, 1114), (1152, 1152), (1174, 1174)],
    "ujis": [(12, 12), (91, 91), (1036, 1036), (1115, 1115)],
    "utf16": [(54, 55), (101, 124), (672, 674), (1078, 1079), (1125, 1125), (1147, 1147)],
    "utf16le": [(56, 56), (62, 62), (1080, 1080), (1086, 1086)],
    "utf32": [(60, 61), (160, 183), (736, 738), (1084, 1085), (1184, 1184), (1206, 1206)],
    "utf8mb3": [(33, 33), (83, 83), (192, 215), (223, 223), (576, 578), (1057, 1057), (1107, 1107), (1216, 1216), (1238, 1238)],
    "utf8mb4": [(45, 46), (224, 247), (255, 323), (608, 610), (1069, 1070), (1248, 1248), (1270, 1270)],
}


def _collation_charsets() -> dict[int, str]:
    return {
        collation: charset
        for charset, spans in _COLLATION_RANGES.items()
        for first, last in spans
        for collation in range(first, last + 1)
    }


_COLLATIONS: dict[int, str] | None = None


def collation_charset(collation_id: int, server_collations: dict[int, str] | None = None) -> str:
    """The charset name of a collation id; the server's own table (information_schema) wins."""
    global _COLLATIONS
    if server_collations and collation_id in server_collations:
        return server_collations[collation_id]
    if _COLLATIONS is None:
        _COLLATIONS = _collation_charsets()
    try:
        return _COLLATIONS[collation_id]
    except KeyError:
        raise UnsupportedError(
            f"collation id {collation_id} is unknown",
            fix="pass the server's collations (SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS)",
        ) from None


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

    def to_schema(self, version: int = 1) -> TableSchema:
        """The engine-neutral schema published on `<prefix>.schemas`."""
        return TableSchema(
            engine="mysql",
            database=self.database,
            namespace=self.database,
            name=self.table,
            columns=tuple(column_schema(column) for column in self.columns),
            version=version,
            primary_key=self.primary_key,
        )


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
    numeric = [i for i, t in enumerate(types) if t in _NUMERIC_TYPES]
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


def _length_bytes(max_length: int) -> int:
    return 1 if max_length < 256 else 2


def _text_or_bytes(column: ColumnInfo, prefix: int, pad: int = 0) -> tuple:
    charset = column.charset
    if charset is None or charset == "binary":
        return (column.name, C_BYTES, prefix, pad, None)
    codec = CHARSET_CODECS.get(charset)
    if codec is None:
        raise UnsupportedError(
            f"column {column.name!r} uses charset {charset!r}, which has no Python codec",
            fix="convert the column to utf8mb4",
        )
    if codec == "utf-8":
        return (column.name, C_TEXT, prefix, TEXT_UTF8, None)
    return (column.name, C_TEXT, prefix, TEXT_CODEC, codec)


def column_plan(column: ColumnInfo, json_decoder: Callable[[bytes], str] | None = None) -> tuple:
    """The decoder's `(name, codec, a, b, extra)` for one column."""
    t, meta, name = column.type_code, column.meta, column.name
    if t in _INT_CODECS:
        signed, unsigned, _, _ = _INT_CODECS[t]
        return (name, unsigned if column.unsigned else signed, 0, 0, None)
    if t == T_FLOAT:
        return (name, C_FLOAT, 0, 0, None)
    if t == T_DOUBLE:
        return (name, C_DOUBLE, 0, 0, None)
    if t == T_NEWDECIMAL:
        precision, scale = meta >> 8, meta & 0xFF
        if precision > 65 or scale > 30 or scale > precision:
            raise DecodeError(f"DECIMAL({precision},{scale}) in column {name!r} is out of range")
        return (name, C_DECIMAL, precision, scale, None)
    if t == T_YEAR:
        return (name, C_YEAR, 0, 0, None)
    if t in (T_DATE, T_NEWDATE):
        return (name, C_DATE, 0, 0, None)
    if t == T_DATETIME2:
        return (name, C_DATETIME2, min(meta, 6), 0, None)
    if t == T_DATETIME:
        return (name, C_DATETIME, 0, 0, None)
    if t == T_TIMESTAMP2:
        return (name, C_TIMESTAMP2, min(meta, 6), 0, None)
    if t == T_TIMESTAMP:
        return (name, C_TIMESTAMP, 0, 0, None)
    if t == T_TIME2:
        return (name, C_TIME2, min(meta, 6), 0, None)
    if t == T_TIME:
        return (name, C_TIME, 0, 0, None)
    if t == T_BIT:
        return (name, C_BIT, (meta >> 8) * 8 + (meta & 0xFF), 0, None)
    if t in (T_VARCHAR, T_VAR_STRING):
        return _text_or_bytes(column, _length_bytes(meta))
    if t == T_STRING:
        pad = meta if column.charset in (None, "binary") else 0
        return _text_or_bytes(column, _length_bytes(meta), pad)
    if t in (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        return _text_or_bytes(column, meta)
    if t == T_ENUM:
        return (name, C_ENUM, meta, 0, column.values)
    if t == T_SET:
        return (name, C_SET, meta, 0, column.values)
    if t == T_GEOMETRY:
        return (name, C_GEOMETRY, meta, 0, None)
    if t == T_JSON:
        if json_decoder is None:
            from connectors.mysql.decode import json_text

            json_decoder = json_text
        return (name, C_JSON, meta, 0, json_decoder)
    if t == T_NULL:
        return (name, C_NULL, 0, 0, None)
    raise UnsupportedError(f"column {name!r} has MySQL type code {t}, which the decoder does not handle")


def source_type(column: ColumnInfo) -> str:
    """The column's type as SQL text, as far as the binlog tells it ("INT UNSIGNED", "VARCHAR(40)")."""
    t, meta = column.type_code, column.meta
    if t in _INT_CODECS:
        return _INT_CODECS[t][3] + (" UNSIGNED" if column.unsigned else "")
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
    width = _char_width(column)
    if t in (T_VARCHAR, T_VAR_STRING):
        return f"VARBINARY({meta})" if binary else f"VARCHAR({meta // width})"
    if t == T_STRING:
        return f"BINARY({meta})" if binary else f"CHAR({meta // width})"
    if t in (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
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


_MAX_BYTES_PER_CHAR = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "ucs2": 2, "utf16": 4, "utf16le": 4, "utf32": 4,
                       "sjis": 2, "cp932": 2, "ujis": 3, "eucjpms": 3, "euckr": 2, "gbk": 2, "gb2312": 2,
                       "gb18030": 4, "big5": 2}


def _char_width(column: ColumnInfo) -> int:
    return _MAX_BYTES_PER_CHAR.get(column.charset or "", 1)


def column_kind(column: ColumnInfo) -> str:
    """The engine-neutral kind (cdc.events.KINDS) of a column."""
    t = column.type_code
    if t in _INT_CODECS:
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
    if t in (T_VARCHAR, T_VAR_STRING, T_STRING, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
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
    if t in _INT_CODECS:
        length = _INT_CODECS[t][2]
    elif t in (T_FLOAT, T_DOUBLE):
        length = 4 if t == T_FLOAT else 8
    elif t == T_NEWDECIMAL:
        precision, scale = meta >> 8, meta & 0xFF
    elif t in (T_DATETIME2, T_TIMESTAMP2, T_TIME2):
        precision = meta
    elif t == T_BIT:
        length = (meta >> 8) * 8 + (meta & 0xFF)
    elif t in (T_VARCHAR, T_VAR_STRING, T_STRING):
        length = meta if kind == "bytes" else meta // _char_width(column)
    elif t in (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB) and meta in (1, 2, 3):
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
