"""PostgreSQL type OIDs -> value codec (how the decoder reads a column) and engine-neutral kind.

A *codec* is a small int chosen once per column when a Relation message arrives; the decoder
(`connectors.postgres.decode` and its Cython twin `cdc._ext.pgoutput`) switches on it per value.
Codec names are what `PgoutputDecoder.set_type_codec` accepts: the scalar names below, or
`"array:<scalar name>"` for an array whose elements use that codec.
"""

from __future__ import annotations

# Scalar codecs. Keep the numbers in step with ext/connectors/postgres/decode.pyx (tests check both agree).
TEXT = 0         # text form as str; binary form is the same UTF-8 text (text, varchar, enum, ...)
OTHER = 1        # text form as str; binary form has no decoder here (inet, money, ranges, ...)
INT = 2          # int2/int4/int8 (binary width from the length)
OID = 3          # unsigned 32-bit (oid, xid)
BOOL = 4
NUMERIC = 5      # exact text, "NaN", "Infinity", "-Infinity"
FLOAT4 = 6
FLOAT8 = 7
BYTEA = 8        # base64
BITS = 9         # "0101"
DATE = 10
TIME = 11
TIMETZ = 12      # PG's text form
TIMESTAMP = 13
TIMESTAMPTZ = 14
INTERVAL = 15    # ISO 8601
JSON = 16
JSONB = 17
UUID = 18
BOX = 19         # text form; arrays of it use ';' between elements
ARRAY = 0x40     # ARRAY | scalar codec = array of that scalar

CODEC_NAMES = {
    "text": TEXT, "other": OTHER, "int": INT, "oid": OID, "bool": BOOL, "numeric": NUMERIC,
    "float4": FLOAT4, "float8": FLOAT8, "bytea": BYTEA, "bits": BITS, "date": DATE, "time": TIME,
    "timetz": TIMETZ, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ, "interval": INTERVAL,
    "json": JSON, "jsonb": JSONB, "uuid": UUID, "box": BOX,
}
SCALAR_CODECS = frozenset(CODEC_NAMES.values())

# Codecs whose binary send format the decoders read (arrays of these too).
BINARY_CODECS = frozenset(SCALAR_CODECS - {OTHER, BOX})

# Built-in scalar types: oid -> (codec, kind, canonical name, byte width for ints/floats).
_SCALARS: dict[int, tuple[int, str, str]] = {
    16: (BOOL, "boolean", "boolean"),
    17: (BYTEA, "bytes", "bytea"),
    18: (TEXT, "string", '"char"'),
    19: (TEXT, "string", "name"),
    20: (INT, "int", "bigint"),
    21: (INT, "int", "smallint"),
    23: (INT, "int", "integer"),
    24: (OTHER, "text", "regproc"),
    25: (TEXT, "string", "text"),
    26: (OID, "int", "oid"),
    28: (OID, "int", "xid"),
    114: (JSON, "json", "json"),
    142: (TEXT, "xml", "xml"),
    600: (OTHER, "geometry", "point"),
    601: (OTHER, "geometry", "lseg"),
    602: (OTHER, "geometry", "path"),
    603: (BOX, "geometry", "box"),
    604: (OTHER, "geometry", "polygon"),
    628: (OTHER, "geometry", "line"),
    650: (OTHER, "cidr", "cidr"),
    700: (FLOAT4, "float", "real"),
    701: (FLOAT8, "float", "double precision"),
    718: (OTHER, "geometry", "circle"),
    774: (OTHER, "macaddr", "macaddr8"),
    790: (OTHER, "money", "money"),
    829: (OTHER, "macaddr", "macaddr"),
    869: (OTHER, "inet", "inet"),
    1042: (TEXT, "string", "character"),
    1043: (TEXT, "string", "character varying"),
    1082: (DATE, "date", "date"),
    1083: (TIME, "time", "time without time zone"),
    1114: (TIMESTAMP, "timestamp", "timestamp without time zone"),
    1184: (TIMESTAMPTZ, "timestamptz", "timestamp with time zone"),
    1186: (INTERVAL, "interval", "interval"),
    1266: (TIMETZ, "time", "time with time zone"),
    1560: (BITS, "bits", "bit"),
    1562: (BITS, "bits", "bit varying"),
    1700: (NUMERIC, "decimal", "numeric"),
    2950: (UUID, "uuid", "uuid"),
    3220: (OTHER, "text", "pg_lsn"),
    3614: (OTHER, "tsvector", "tsvector"),
    3615: (OTHER, "text", "tsquery"),
    3802: (JSONB, "json", "jsonb"),
    3904: (OTHER, "range", "int4range"),
    3906: (OTHER, "range", "numrange"),
    3908: (OTHER, "range", "tsrange"),
    3910: (OTHER, "range", "tstzrange"),
    3912: (OTHER, "range", "daterange"),
    3926: (OTHER, "range", "int8range"),
    4451: (OTHER, "range", "int4multirange"),
    4532: (OTHER, "range", "nummultirange"),
    4533: (OTHER, "range", "tsmultirange"),
    4534: (OTHER, "range", "tstzmultirange"),
    4535: (OTHER, "range", "datemultirange"),
    4536: (OTHER, "range", "int8multirange"),
    5069: (OID, "int", "xid8"),
}

# Built-in array types: array oid -> element oid.
_ARRAYS: dict[int, int] = {
    1000: 16, 1001: 17, 1002: 18, 1003: 19, 1016: 20, 1005: 21, 1007: 23, 1008: 24, 1009: 25,
    1028: 26, 1011: 28, 199: 114, 143: 142, 1017: 600, 1018: 601, 1019: 602, 1020: 603,
    1027: 604, 629: 628, 651: 650, 1021: 700, 1022: 701, 719: 718, 775: 774, 791: 790,
    1040: 829, 1041: 869, 1014: 1042, 1015: 1043, 1182: 1082, 1183: 1083, 1115: 1114,
    1185: 1184, 1187: 1186, 1270: 1266, 1561: 1560, 1563: 1562, 1231: 1700, 2951: 2950,
    3221: 3220, 3643: 3614, 3645: 3615, 3807: 3802, 3905: 3904, 3907: 3906, 3909: 3908,
    3911: 3910, 3913: 3912, 3927: 3926, 6150: 4451, 6151: 4532, 6152: 4533, 6153: 4534,
    6155: 4535, 6157: 4536, 271: 5069,
}

_INT_WIDTHS = {20: 8, 21: 2, 23: 4}
_FLOAT_WIDTHS = {700: 4, 701: 8}
_VARHDRSZ = 4


def codec_by_name(name: str) -> int:
    """The codec id for a name from CODEC_NAMES or `"array:<name>"`; ValueError when unknown."""
    if name.startswith("array:"):
        element = codec_by_name(name[len("array:"):])
        if element & ARRAY:
            raise ValueError(f"nested array codec {name!r}: name the element's scalar codec")
        return ARRAY | element
    try:
        return CODEC_NAMES[name]
    except KeyError:
        known = ", ".join(sorted(CODEC_NAMES))
        raise ValueError(f"unknown codec {name!r}; use one of {known} or 'array:<codec>'") from None


def codec_for_oid(type_oid: int) -> int | None:
    """The codec of a built-in type, or None when the OID is not built in (ask the catalog)."""
    scalar = _SCALARS.get(type_oid)
    if scalar is not None:
        return scalar[0]
    element = _ARRAYS.get(type_oid)
    if element is not None:
        return ARRAY | _SCALARS[element][0]
    return None


def is_builtin(type_oid: int) -> bool:
    """True when this module knows the OID (no `set_type_codec` needed)."""
    return type_oid in _SCALARS or type_oid in _ARRAYS


def binary_capable(codec: int) -> bool:
    """True when the decoders read this codec's binary send format (pgoutput `binary 'true'`)."""
    return (codec & ~ARRAY) in BINARY_CODECS


def _typmod_suffix(type_oid: int, typmod: int) -> tuple[str, int | None, int | None, int | None]:
    """(modifier text, length, precision, scale) from a column's typmod."""
    if typmod < 0:
        return "", None, None, None
    if type_oid in (1042, 1043):
        length = typmod - _VARHDRSZ
        return f"({length})", length, None, None
    if type_oid in (1560, 1562):
        return f"({typmod})", typmod, None, None
    if type_oid == 1700:
        precision = ((typmod - _VARHDRSZ) >> 16) & 0xFFFF
        scale = (((typmod - _VARHDRSZ) & 0x7FF) ^ 1024) - 1024
        return f"({precision},{scale})", None, precision, scale
    if type_oid in (1083, 1114, 1184, 1266):
        return f"({typmod})", None, typmod, None
    if type_oid == 1186:
        precision = typmod & 0xFFFF
        if precision == 0xFFFF:
            return "", None, None, None
        return f"({precision})", None, precision, None
    return "", None, None, None


def _scalar_source_type(type_oid: int, typmod: int, type_name: str) -> str:
    name = _SCALARS[type_oid][2]
    suffix = _typmod_suffix(type_oid, typmod)[0]
    if suffix and name.endswith(" time zone"):
        base, _, zone = name.partition(" with")
        if not zone:
            base, _, zone = name.partition(" without")
            return f"{base}{suffix} without{zone}"
        return f"{base}{suffix} with{zone}"
    return f"{name}{suffix}"


def describe_column(
    type_oid: int, typmod: int, type_name: str
) -> tuple[str, str, int | None, int | None, int | None, str | None]:
    """(source_type, kind, length, precision, scale, element) of a column, for the table schema.

    `source_type` is PG's `format_type` spelling (`character varying(20)`, `numeric(10,2)`,
    `timestamp(3) with time zone`, `integer[]`); `kind` is one of `cdc.events.KINDS`; `length` is the
    byte width of ints/floats, the character limit of char/varchar, the bit count of bit/varbit;
    `element` is the element kind of an array. Types this module does not know (enums, domains,
    composites, extensions) come back as `(type_name, "text", None, None, None, None)`: the caller
    knows from the catalog whether it is an enum or a domain and describes the base type instead.
    """
    scalar = _SCALARS.get(type_oid)
    if scalar is not None:
        _, length, precision, scale = _typmod_suffix(type_oid, typmod)
        length = _INT_WIDTHS.get(type_oid) or _FLOAT_WIDTHS.get(type_oid) or length
        return _scalar_source_type(type_oid, typmod, type_name), scalar[1], length, precision, scale, None
    element_oid = _ARRAYS.get(type_oid)
    if element_oid is not None:
        _, length, precision, scale = _typmod_suffix(element_oid, typmod)
        length = _INT_WIDTHS.get(element_oid) or _FLOAT_WIDTHS.get(element_oid) or length
        source_type = _scalar_source_type(element_oid, typmod, type_name) + "[]"
        return source_type, "array", length, precision, scale, _SCALARS[element_oid][1]
    return type_name, "text", None, None, None, None
