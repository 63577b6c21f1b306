"""Binlog ROWS events -> row dicts in the readable JSON forms (pure-Python twin of ext/connectors/mysql/decode.pyx).

This is the readable specification of `cdc._ext.binlog_rows`: both take the same column plan (built
once per TABLE_MAP by `connectors.mysql.table_map.parse_table_map`) and the same event body, and give
identical rows — or raise the same `cdc.errors.DecodeError` naming the position and byte offset when
the body is truncated or corrupted. `rows_json` is `decode_rows` serialised (row images and keys as
JSON bytes), which the compiled module writes without building the dicts. Use
`connectors.mysql.decoder.RowDecoder`, which holds the implementation `cdc.impl.twin` picked.

Layout of a ROWS event body (after the 19-byte event header, without the checksum):
table id (6) | flags (2) | [v2: extra-data length (2, counts itself) + extra data] |
column count (length-encoded) | columns-present bitmap | [update: second bitmap] |
rows: null bitmap over the present columns, then each present non-null value.
"""

from __future__ import annotations

import math
import struct

import orjson

from cdc.codecs import encode_bytes, encode_float, encode_float4
from cdc.compat import geometry_value
from cdc.errors import DecodeError
from connectors.mysql.binlog import (
    DELETE_ROWS_V1,
    DELETE_ROWS_V2,
    ROWS_EVENTS,
    UPDATE_ROWS_V1,
    UPDATE_ROWS_V2,
    WRITE_ROWS_V1,
    WRITE_ROWS_V2,
)
from connectors.mysql.column_plans import (  # the codec ids; ext/connectors/mysql/decode.pyx has the same numbers
    C_BIT,
    C_BYTES,
    C_DATE,
    C_DATETIME,
    C_DATETIME2,
    C_DECIMAL,
    C_DOUBLE,
    C_ENUM,
    C_FLOAT,
    C_GEOMETRY,
    C_INT8,
    C_INT16,
    C_INT24,
    C_INT32,
    C_INT64,
    C_JSON,
    C_NULL,
    C_SET,
    C_TEXT,
    C_TIME,
    C_TIME2,
    C_TIMESTAMP,
    C_TIMESTAMP2,
    C_UINT8,
    C_UINT16,
    C_UINT24,
    C_UINT32,
    C_UINT64,
    C_YEAR,
    TEXT_UTF8,
)
from connectors.mysql.types import T_NEWDECIMAL

IMPLEMENTATION = "python"  # which twin this is (cdc.impl.twin picks one)

ROWS_EVENT_TYPES = ROWS_EVENTS

DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
POW10 = tuple(10**n for n in range(10))

_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class RowPlan:
    """The per-column codecs of one TABLE_MAP, in a form this implementation reads fast."""

    __slots__ = ("columns", "count")

    def __init__(self, columns: tuple[tuple, ...]) -> None:
        self.columns = tuple(tuple(column) for column in columns)
        self.count = len(self.columns)


def check_plan(columns: tuple[tuple, ...]) -> None:
    """ValueError when a column plan's parameters are out of the ranges the decoders read safely."""
    for name, codec, a, b, extra in columns:
        if not C_INT8 <= codec <= C_NULL:
            raise ValueError(f"column {name!r}: unknown codec {codec}")
        if codec == C_DECIMAL and not (0 <= b <= 30 and b <= a <= 65):
            raise ValueError(f"column {name!r}: DECIMAL({a},{b}) is out of range")
        if codec in (C_DATETIME2, C_TIMESTAMP2, C_TIME2) and not 0 <= a <= 6:
            raise ValueError(f"column {name!r}: fractional digits {a} out of range")
        if codec == C_BIT and not 0 <= a <= 64:
            raise ValueError(f"column {name!r}: BIT({a}) is out of range")
        if codec in (C_TEXT, C_BYTES, C_GEOMETRY, C_JSON) and not 1 <= a <= 4:
            raise ValueError(f"column {name!r}: length prefix of {a} bytes is out of range")
        if codec in (C_ENUM, C_SET) and not 1 <= a <= (2 if codec == C_ENUM else 8):
            raise ValueError(f"column {name!r}: pack length {a} is out of range")
        if codec == C_SET and extra is not None and len(extra) > 64:
            raise ValueError(f"column {name!r}: a SET has at most 64 members, not {len(extra)}")
        if codec == C_TEXT and b != TEXT_UTF8 and not isinstance(extra, str):
            raise ValueError(f"column {name!r}: text codec needs a Python codec name")
        if codec == C_JSON and not callable(extra):
            raise ValueError(f"column {name!r}: JSON codec needs a decoder")
        if codec == C_BYTES and not 0 <= b <= 0xFFFF:
            raise ValueError(f"column {name!r}: padding {b} is out of range")


def compile_plan(columns: tuple[tuple, ...]) -> RowPlan:
    """Prepare a TABLE_MAP's `(name, codec, a, b, extra)` column plan for `decode_rows`."""
    check_plan(columns)
    return RowPlan(columns)


class _Body:
    __slots__ = ("data", "offset", "end", "position")

    def __init__(self, data: bytes, position: object) -> None:
        self.data = data
        self.offset = 0
        self.end = len(data)
        self.position = position

    def error(self, message: str, offset: int | None = None) -> DecodeError:
        where = self.offset if offset is None else offset
        position = f"byte {where}" if self.position is None else f"{self.position} byte {where}"
        return DecodeError(f"rows event: {message}", position=position)

    def need(self, size: int, what: str) -> None:
        if size > self.end - self.offset:
            raise self.error(f"{what} needs {size} bytes, {self.end - self.offset} left")

    def uint_le(self, size: int, what: str) -> int:
        self.need(size, what)
        start = self.offset
        self.offset = start + size
        return int.from_bytes(self.data[start:start + size], "little")

    def uint_be(self, size: int, what: str) -> int:
        self.need(size, what)
        start = self.offset
        self.offset = start + size
        return int.from_bytes(self.data[start:start + size], "big")

    def take(self, size: int, what: str) -> bytes:
        self.need(size, what)
        start = self.offset
        self.offset = start + size
        return self.data[start:start + size]

    def lenenc(self, what: str) -> int:
        first = self.uint_le(1, what)
        if first < 251:
            return first
        if first == 252:
            return self.uint_le(2, what)
        if first == 253:
            return self.uint_le(3, what)
        if first == 254:
            return self.uint_le(8, what)
        raise self.error(f"{what} has an invalid length-encoded integer", self.offset - 1)


def _fraction(usec: int, fsp: int) -> str:
    if fsp == 0:
        return ""
    return "." + str(usec // POW10[6 - fsp]).zfill(fsp)


def _read_fraction(body: _Body, fsp: int, what: str) -> int:
    """Fractional seconds of DATETIME2/TIMESTAMP2 (big-endian, (fsp+1)//2 bytes) in microseconds."""
    if fsp == 0:
        return 0
    size = (fsp + 1) // 2
    value = body.uint_be(size, what)
    return value * (10000 if size == 1 else 100 if size == 2 else 1)


def _civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _timestamp_text(seconds: int, usec: int, fsp: int) -> str:
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{_fraction(usec, fsp)}Z"


def _decimal_text(body: _Body, precision: int, scale: int, what: str) -> str:
    intg = precision - scale
    intg0, intg0x = divmod(intg, 9)
    frac0, frac0x = divmod(scale, 9)
    size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x]
    start = body.offset
    raw = bytearray(body.take(size, what))
    if size == 0:
        return "0"
    negative = not raw[0] & 0x80
    raw[0] ^= 0x80
    if negative:
        raw = bytearray(b ^ 0xFF for b in raw)
    groups = []
    at = 0

    def group(nbytes: int, digits: int) -> int:
        nonlocal at
        value = int.from_bytes(raw[at:at + nbytes], "big")
        at += nbytes
        if value >= POW10[digits]:
            raise body.error(f"{what} holds an invalid DECIMAL digit group", start)
        return value

    if intg0x:
        groups.append(str(group(DIG2BYTES[intg0x], intg0x)))
    for _ in range(intg0):
        groups.append(str(group(4, 9)).zfill(9))
    text = "".join(groups).lstrip("0") or "0"
    if scale:
        fraction = [str(group(4, 9)).zfill(9) for _ in range(frac0)]
        if frac0x:
            fraction.append(str(group(DIG2BYTES[frac0x], frac0x)).zfill(frac0x))
        text += "." + "".join(fraction)
    return "-" + text if negative else text


def _bits_text(value: int, nbits: int) -> str:
    if nbits == 0:
        return ""
    return format(value & ((1 << nbits) - 1), f"0{nbits}b")


def _read_value(body: _Body, column: tuple):
    name, codec, a, b, extra = column
    what = f"column {name!r}"
    if codec <= C_UINT64:
        size = (1, 1, 2, 2, 3, 3, 4, 4, 8, 8)[codec - 1]
        value = body.uint_le(size, what)
        if not codec & 1:
            return value
        bits = size * 8
        return value - (1 << bits) if value >> (bits - 1) else value
    if codec == C_FLOAT:
        return encode_float4(_FLOAT.unpack(body.take(4, what))[0])
    if codec == C_DOUBLE:
        return encode_float(_DOUBLE.unpack(body.take(8, what))[0])
    if codec == C_DECIMAL:
        return _decimal_text(body, a, b, what)
    if codec == C_YEAR:
        value = body.uint_le(1, what)
        return 1900 + value if value else 0
    if codec == C_DATE:
        value = body.uint_le(3, what)
        if value == 0:
            return None
        return f"{value >> 9:04d}-{(value >> 5) & 15:02d}-{value & 31:02d}"
    if codec == C_DATETIME2:
        start = body.offset
        packed = body.uint_be(5, what) - 0x8000000000
        usec = _read_fraction(body, a, what)
        if packed < 0:
            raise body.error(f"{what} holds an invalid DATETIME", start)
        if packed == 0 and usec == 0:
            return None
        ymd = packed >> 17
        ym = ymd >> 5
        hms = packed & 0x1FFFF
        return (f"{ym // 13:04d}-{ym % 13:02d}-{ymd & 31:02d}"
                f"T{hms >> 12:02d}:{(hms >> 6) & 63:02d}:{hms & 63:02d}{_fraction(usec, a)}")
    if codec == C_DATETIME:
        value = body.uint_le(8, what)
        if value == 0:
            return None
        ymd, hms = divmod(value, 1000000)
        return (f"{ymd // 10000:04d}-{ymd // 100 % 100:02d}-{ymd % 100:02d}"
                f"T{hms // 10000:02d}:{hms // 100 % 100:02d}:{hms % 100:02d}")
    if codec == C_TIMESTAMP2:
        seconds = body.uint_be(4, what)
        usec = _read_fraction(body, a, what)
        if seconds == 0 and usec == 0:
            return None
        return _timestamp_text(seconds, usec, a)
    if codec == C_TIMESTAMP:
        seconds = body.uint_le(4, what)
        return None if seconds == 0 else _timestamp_text(seconds, 0, 0)
    if codec == C_TIME2:
        return _time2_text(body, a, what)
    if codec == C_TIME:
        value = body.uint_le(3, what)
        if value >> 23:
            value -= 1 << 24
        sign = "-" if value < 0 else ""
        value = abs(value)
        return f"{sign}{value // 10000:02d}:{value // 100 % 100:02d}:{value % 100:02d}"
    if codec == C_BIT:
        return _bits_text(body.uint_be((a + 7) // 8, what), a)
    if codec == C_TEXT or codec == C_BYTES or codec == C_GEOMETRY or codec == C_JSON:
        start = body.offset
        data = body.take(body.uint_le(a, what), what)
        if codec == C_TEXT:
            try:
                return data.decode("utf-8" if b == TEXT_UTF8 else extra)
            except UnicodeDecodeError:
                raise body.error(f"{what} is not valid {'utf-8' if b == TEXT_UTF8 else extra}", start) from None
        if codec == C_BYTES:
            if len(data) < b:
                data += bytes(b - len(data))
            return encode_bytes(data)
        if codec == C_GEOMETRY:
            if len(data) < 4:
                raise body.error(f"{what} holds a geometry shorter than its SRID", start)
            return geometry_value(encode_bytes(data[4:]), int.from_bytes(data[:4], "little"))
        if not data:
            return None
        try:
            return extra(data)
        except DecodeError as exc:
            raise body.error(f"{what} holds {exc.message}", start) from None
    if codec == C_ENUM:
        start = body.offset
        index = body.uint_le(a, what)
        if extra is None:
            return index
        if index == 0:
            return ""
        if index > len(extra):
            raise body.error(f"{what} holds ENUM index {index} of {len(extra)}", start)
        return extra[index - 1]
    if codec == C_SET:
        start = body.offset
        mask = body.uint_le(a, what)
        if extra is None:
            return mask
        if mask >> len(extra):
            raise body.error(f"{what} holds SET bits beyond its {len(extra)} members", start)
        return ",".join(member for n, member in enumerate(extra) if mask >> n & 1)
    if codec == C_NULL:
        return None
    raise body.error(f"{what} has unknown codec {codec}")


def _time2_text(body: _Body, fsp: int, what: str) -> str:
    """TIME2 as MySQL's my_time_packed_from_binary + TIME_from_longlong_time_packed read it."""
    intpart = body.uint_be(3, what) - 0x800000
    if fsp <= 0:
        packed = intpart << 24
    elif fsp <= 2:
        frac = body.uint_le(1, what)
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x100
        packed = (intpart << 24) + frac * 10000
    elif fsp <= 4:
        frac = body.uint_be(2, what)
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x10000
        packed = (intpart << 24) + frac * 100
    else:
        packed = (((intpart + 0x800000) << 24) | body.uint_be(3, what)) - 0x800000000000
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    hms = packed >> 24
    usec = packed & 0xFFFFFF
    hour = (hms >> 12) % 1024
    minute = (hms >> 6) % 64
    second = hms % 64
    return f"{sign}{hour:02d}:{minute:02d}:{second:02d}{_fraction(usec, fsp)}"


def _read_row(body: _Body, plan: RowPlan, present: list[int], present_count: int) -> dict:
    nulls = body.take((present_count + 7) // 8, "null bitmap")
    row = {}
    n = 0
    for index in present:
        column = plan.columns[index]
        if nulls[n >> 3] >> (n & 7) & 1:
            row[column[0]] = None
        else:
            row[column[0]] = _read_value(body, column)
        n += 1
    return row


def _present_columns(bitmap: bytes, count: int) -> list[int]:
    return [i for i in range(count) if bitmap[i >> 3] >> (i & 7) & 1]


def decode_rows(plan: RowPlan, body: bytes, event_type: int, position: object = None) -> list[tuple]:
    """Decode a ROWS event body: [(before, after), ...]; before is None for writes, after for deletes."""
    if event_type not in ROWS_EVENT_TYPES:
        raise DecodeError(f"event type {event_type} is not a rows event", position=position)
    cursor = _Body(bytes(body), position)
    cursor.take(8, "header")
    if event_type >= WRITE_ROWS_V2:
        extra_length = cursor.uint_le(2, "header")
        if extra_length < 2:
            raise cursor.error(f"header has extra-data length {extra_length}", cursor.offset - 2)
        cursor.take(extra_length - 2, "header")
    count = cursor.lenenc("column count")
    if count != plan.count:
        raise cursor.error(f"column count {count} differs from its TABLE_MAP's {plan.count}")
    bitmap_size = (count + 7) // 8
    present = _present_columns(cursor.take(bitmap_size, "column bitmap"), count)
    update = event_type in (UPDATE_ROWS_V1, UPDATE_ROWS_V2)
    present_after = _present_columns(cursor.take(bitmap_size, "column bitmap"), count) if update else present
    rows: list[tuple] = []
    while cursor.offset < cursor.end:
        if not present and not present_after:
            raise cursor.error("row data follows an empty column bitmap")
        first = _read_row(cursor, plan, present, len(present))
        if update:
            rows.append((first, _read_row(cursor, plan, present_after, len(present_after))))
        elif event_type in (DELETE_ROWS_V1, DELETE_ROWS_V2):
            rows.append((first, None))
        else:
            rows.append((None, first))
    return rows


# --- MySQL 8 binary JSON -> JSON text (shared by both implementations through the column plan) ---

_J_SMALL_OBJECT, _J_LARGE_OBJECT, _J_SMALL_ARRAY, _J_LARGE_ARRAY = 0, 1, 2, 3
_J_LITERAL, _J_INT16, _J_UINT16, _J_INT32, _J_UINT32, _J_INT64, _J_UINT64 = 4, 5, 6, 7, 8, 9, 10
_J_DOUBLE, _J_STRING, _J_OPAQUE = 11, 12, 15


class _JsonError(ValueError):
    pass


def rows_json(plan: RowPlan, body: bytes, event_type: int, key_names: tuple[str, ...], key_heads: tuple[bytes, ...],
              position: object = None) -> list[tuple]:
    """`decode_rows` as JSON, for the envelope: [(before, after, before_key, after_key), ...], each row
    image `orjson.dumps` of its dict, each key the JSON object of `key_names` in it (None for an absent
    image, and every key None without key columns; `key_heads` are the compiled twin's shortcut)."""
    if key_names is None or key_heads is None or len(key_names) != len(key_heads):
        raise ValueError("key names and key heads are needed, one head per name")

    def key(row: dict | None) -> bytes | None:
        return None if row is None or not key_names else orjson.dumps({name: row.get(name) for name in key_names})

    return [(None if before is None else orjson.dumps(before), None if after is None else orjson.dumps(after),
             key(before), key(after)) for before, after in decode_rows(plan, body, event_type, position)]


def _json_string(text: str) -> str:
    import orjson

    return orjson.dumps(text).decode()


def _json_varlen(data: bytes, at: int) -> tuple[int, int]:
    length = 0
    for n in range(5):
        if at + n >= len(data):
            raise _JsonError("truncated length")
        byte = data[at + n]
        length |= (byte & 0x7F) << (7 * n)
        if not byte & 0x80:
            return length, at + n + 1
    raise _JsonError("length too long")


def _json_value(kind: int, data: bytes, at: int, end: int, depth: int) -> str:
    if depth > 100:
        raise _JsonError("nested too deep")
    if kind in (_J_SMALL_OBJECT, _J_LARGE_OBJECT, _J_SMALL_ARRAY, _J_LARGE_ARRAY):
        return _json_container(kind, data, at, end, depth)
    if kind == _J_LITERAL:
        if at >= end:
            raise _JsonError("truncated literal")
        literal = data[at]
        if literal > 2:
            raise _JsonError(f"unknown literal {literal}")
        return ("null", "true", "false")[literal]
    sizes = {_J_INT16: ("<h", 2), _J_UINT16: ("<H", 2), _J_INT32: ("<i", 4), _J_UINT32: ("<I", 4),
             _J_INT64: ("<q", 8), _J_UINT64: ("<Q", 8), _J_DOUBLE: ("<d", 8)}
    if kind in sizes:
        fmt, size = sizes[kind]
        if at + size > end:
            raise _JsonError("truncated number")
        value = struct.unpack_from(fmt, data, at)[0]
        if kind == _J_DOUBLE:
            if math.isnan(value) or math.isinf(value):
                raise _JsonError("non-finite double")
            return repr(value)
        return str(value)
    if kind == _J_STRING:
        length, at = _json_varlen(data, at)
        if at + length > end:
            raise _JsonError("truncated string")
        return _json_string(data[at:at + length].decode("utf-8"))
    if kind == _J_OPAQUE:
        if at >= end:
            raise _JsonError("truncated opaque value")
        field_type = data[at]
        length, at = _json_varlen(data, at + 1)
        if at + length > end:
            raise _JsonError("truncated opaque value")
        return _json_opaque(field_type, data[at:at + length])
    raise _JsonError(f"unknown value type {kind}")


def _json_container(kind: int, data: bytes, at: int, end: int, depth: int) -> str:
    small = kind in (_J_SMALL_OBJECT, _J_SMALL_ARRAY)
    is_object = kind in (_J_SMALL_OBJECT, _J_LARGE_OBJECT)
    width = 2 if small else 4
    fmt = "<H" if small else "<I"
    if at + 2 * width > end:
        raise _JsonError("truncated container header")
    count = struct.unpack_from(fmt, data, at)[0]
    size = struct.unpack_from(fmt, data, at + width)[0]
    if at + size > end:
        raise _JsonError("container larger than its value")
    end = at + size
    key_entry = width + 2
    value_entry = 1 + width
    header = 2 * width + count * (value_entry + (key_entry if is_object else 0))
    if header > size:
        raise _JsonError("container header larger than the container")
    keys = []
    if is_object:
        for n in range(count):
            entry = at + 2 * width + n * key_entry
            key_offset = struct.unpack_from(fmt, data, entry)[0]
            key_length = struct.unpack_from("<H", data, entry + width)[0]
            if key_offset + key_length > size:
                raise _JsonError("key outside its container")
            keys.append(_json_string(data[at + key_offset:at + key_offset + key_length].decode("utf-8")))
    values = []
    for n in range(count):
        entry = at + 2 * width + (count * key_entry if is_object else 0) + n * value_entry
        value_kind = data[entry]
        inline = value_kind in (_J_LITERAL, _J_INT16, _J_UINT16) or (
            not small and value_kind in (_J_INT32, _J_UINT32))
        if inline:
            values.append(_json_value(value_kind, data, entry + 1, entry + 1 + width, depth + 1))
        else:
            value_offset = struct.unpack_from(fmt, data, entry + 1)[0]
            if value_offset >= size:
                raise _JsonError("value outside its container")
            values.append(_json_value(value_kind, data, at + value_offset, end, depth + 1))
    if is_object:
        return "{" + ",".join(f"{k}:{v}" for k, v in zip(keys, values)) + "}"
    return "[" + ",".join(values) + "]"


def _json_opaque(field_type: int, payload: bytes) -> str:
    if field_type == T_NEWDECIMAL and len(payload) >= 2:  # precision, scale, binary decimal
        body = _Body(payload[2:], None)
        try:
            return _decimal_text(body, payload[0], payload[1], "decimal")
        except DecodeError as exc:
            raise _JsonError("invalid decimal") from exc
    if field_type in (10, 11, 12, 7, 18, 19, 17) and len(payload) >= 8:
        packed = struct.unpack_from("<q", payload)[0]
        sign = "-" if packed < 0 else ""
        packed = abs(packed)
        usec = packed % (1 << 24)
        intpart = packed >> 24
        fraction = f".{usec:06d}" if usec else ""
        if field_type in (11, 19):  # TIME
            hms = intpart
            return _json_string(f"{sign}{(hms >> 12) % 1024:02d}:{(hms >> 6) % 64:02d}:{hms % 64:02d}{fraction}")
        ymd = intpart >> 17
        ym = ymd >> 5
        hms = intpart % (1 << 17)
        day = f"{ym // 13:04d}-{ym % 13:02d}-{ymd % 32:02d}"
        if field_type == 10:
            return _json_string(day)
        return _json_string(f"{day} {hms >> 12:02d}:{(hms >> 6) % 64:02d}:{hms % 64:02d}{fraction}")
    return _json_string(f"base64:type{field_type}:{encode_bytes(payload)}")


def json_text(data: bytes) -> str:
    """A MySQL binary JSON value as compact JSON text; DecodeError when it is malformed."""
    try:
        if not data:
            raise _JsonError("empty value")
        return _json_value(data[0], data, 1, len(data), 0)
    except (_JsonError, struct.error, IndexError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid binary JSON value ({exc})") from None
