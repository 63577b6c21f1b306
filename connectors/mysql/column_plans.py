"""The decoder's column plans: for each TABLE_MAP column, the codec the row decoder applies to its values.

A column plan is the tuple `(name, codec, a, b, extra)`; the meaning of `a`, `b` and `extra` per codec
is listed next to the codec ids below. The ids are shared with `ext/connectors/mysql/decode.pyx` and
`connectors.mysql.decode`: the decoder never looks at a type code.
"""

from __future__ import annotations

from typing import Callable

from cdc.errors import DecodeError, UnsupportedError
from connectors.mysql.charsets import CHARSET_CODECS
from connectors.mysql.types import (
    BLOB_TYPES,
    T_BIT,
    T_DATE,
    T_DATETIME,
    T_DATETIME2,
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
    T_NULL,
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

# --- codec ids (same numbers in ext/connectors/mysql/decode.pyx) ---
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

# Integer types: (codec when signed, codec when unsigned).
_INT_CODECS = {
    T_TINY: (C_INT8, C_UINT8),
    T_SHORT: (C_INT16, C_UINT16),
    T_INT24: (C_INT24, C_UINT24),
    T_LONG: (C_INT32, C_UINT32),
    T_LONGLONG: (C_INT64, C_UINT64),
}


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
        signed, unsigned = _INT_CODECS[t]
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
    if t in BLOB_TYPES:
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
