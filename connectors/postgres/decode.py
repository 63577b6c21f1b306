"""Decode pgoutput logical replication messages into plain tuples (pure-Python twin).

This module is the readable specification of `cdc._ext.pgoutput` (ext/connectors/postgres/decode.pyx): same API, same
output, tested on the same cases. `cdc.impl.twin` picks one of the two.

One `PgoutputDecoder` follows one replication stream (protocol versions 1, 2 (streamed) and 4 (streamed in
parallel: Stream Abort carries the abort's LSN and time);
transactions). It caches the Relation messages it sees, chooses one value codec per column at that
time (`connectors.postgres.types`), and turns each message into a tuple whose first item is the
message tag (see `PgoutputDecoder.decode`). Row values come out in the readable JSON forms of
docs/event-format.md; the replication session is expected to run with the options of
`connectors.postgres.dialect.SESSION_OPTIONS` (TimeZone=UTC, DateStyle=ISO, IntervalStyle=iso_8601,
extra_float_digits=3).

Value forms (text columns, `'t'`, and binary columns, `'b'`, give the same output):

- int2/int4/int8/oid/xid: int; bool: True/False
- numeric: exact text, scale kept (`"10.50"`, `"NaN"`, `"Infinity"`, `"-Infinity"`)
- float4/float8: float; NaN and infinities as `"NaN"`, `"Infinity"`, `"-Infinity"`
- text, varchar, char, name, enums, json, jsonb, xml, uuid: str (json/jsonb: the document text)
- bytea: base64 str; bit/varbit: `"0101"`
- date: `"2024-02-29"`, `"infinity"`, `"-infinity"`; other years in ISO 8601 astronomical numbering
  as `cdc.codecs` writes them (`"-0043-03-15"` = 44 BC, `"+10000-01-01"`)
- time: `"13:45:00"`, `"13:45:00.100000"` (six fractional digits when the fraction is non-zero)
- timetz: the UTC clock with "Z" (`"08:15:00.100000Z"` for `13:45:00.1+05:30`), as Debezium does
- timestamp: `"2024-02-29T13:45:00.123456"`; timestamptz: UTC `"2024-02-29T12:45:00.123456Z"`;
  `"infinity"`/`"-infinity"` kept
- interval: ISO 8601 (`"P1Y2M3DT4H5M6.7S"`, `"PT0S"`), as PG writes it with IntervalStyle=iso_8601
- arrays: lists (nested for several dimensions, lower bounds dropped), elements decoded per element
  codec, NULL elements None
- everything else (inet, cidr, macaddr, money, tsvector, ranges, geometry, composites, extension
  types): the text form as str; never an exception
- SQL NULL: None; unchanged TOAST value (tuple kind `'u'`): `cdc.events.UNAVAILABLE_VALUE`

With pgoutput's `binary 'true'` the built-in codecs in `types.BINARY_CODECS` (and arrays of them) are
read from their binary send format; a binary value of another codec comes out as `"\\x<hex>"` of the
raw bytes, so only ask for binary when `PgoutputDecoder.binary_capable(type_oid)` holds for every
published column type.

A truncated or corrupted message raises `cdc.errors.DecodeError` naming the LSN and byte offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cdc import codecs
from cdc.errors import DecodeError
from cdc.events import UNAVAILABLE_VALUE
from connectors.postgres import types

IMPLEMENTATION = "python"  # which twin this is (cdc.impl.twin picks one)

# Microseconds between the Unix epoch and PG's epoch (2000-01-01 00:00:00 UTC).
PG_EPOCH_OFFSET_US = 946_684_800_000_000
_PG_EPOCH_DAYS = 10_957  # days from 1970-01-01 to 2000-01-01
_US_PER_DAY = 86_400_000_000
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT64 = struct.Struct(">q")
_UINT64 = struct.Struct(">Q")
_FLOAT4 = struct.Struct(">f")
_FLOAT8 = struct.Struct(">d")


@dataclass(slots=True, frozen=True)
class RelationInfo:
    """A table as the last Relation message described it.

    `replica_identity` is `'d'` (default: primary key), `'n'` (nothing), `'f'` (full) or `'i'`
    (index); `columns` holds `(flags, name, type_oid, typmod)` per column in tuple order, flags bit 1
    marking a replica identity (key) column.
    """

    relid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[tuple[int, str, int, int], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column[1] for column in self.columns)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Names of the replica identity columns (flags bit 1)."""
        return tuple(column[1] for column in self.columns if column[0] & 1)


def lsn_text(lsn: int) -> str:
    """PG's `X/X` spelling of an LSN."""
    return f"{(lsn >> 32) & 0xFFFFFFFF:X}/{lsn & 0xFFFFFFFF:X}"


def decode_error(message: str, lsn: int, offset: int) -> DecodeError:
    """A DecodeError at byte `offset` of the message at `lsn`; both implementations raise these."""
    error = DecodeError(f"pgoutput: {message}", position=f"LSN {lsn_text(lsn)} byte {offset}")
    error.lsn = lsn
    error.offset = offset
    return error


class PgoutputDecoder:
    """Decodes the pgoutput messages of one replication stream; keeps the Relation cache."""

    def __init__(self, *, binary: bool = False) -> None:
        """`binary`: the stream was started with pgoutput option `binary 'true'` (informative:
        every column says itself whether it is text or binary)."""
        self.binary = bool(binary)
        self._relations: dict[int, RelationInfo] = {}
        self._column_codecs: dict[int, tuple[int, ...]] = {}
        self._type_codecs: dict[int, int] = {}
        self._streaming = False

    # -- public API ------------------------------------------------------------------------------

    def set_type_codec(self, type_oid: int, codec: str) -> None:
        """Decode values of a non-built-in type with the named codec (`types.CODEC_NAMES`).

        Domains: the base type's codec name; enums: `"text"`; composites and other unknown types:
        `"text"` (or `"other"`, same in text mode); arrays of those: `"array:<codec>"`. Relations
        already cached that use the type switch codecs at once. ValueError for an unknown name.
        """
        self._type_codecs[type_oid] = types.codec_by_name(codec)
        for relid, relation in self._relations.items():
            if any(column[2] == type_oid for column in relation.columns):
                self._column_codecs[relid] = self._codecs_for(relation)

    def codec_of(self, type_oid: int) -> int:
        """The codec id used for a type: `set_type_codec`'s, the built-in one, else `types.OTHER`."""
        codec = self._type_codecs.get(type_oid)
        if codec is None:
            codec = types.codec_for_oid(type_oid)
        return types.OTHER if codec is None else codec

    def binary_capable(self, type_oid: int) -> bool:
        """True when values of this type decode from pgoutput's binary format."""
        return types.binary_capable(self.codec_of(type_oid))

    def relation(self, relid: int) -> RelationInfo:
        """The cached RelationInfo for relid; KeyError when no Relation message named it yet."""
        return self._relations[relid]

    def decode(self, data: bytes, lsn: int) -> tuple:
        """Decode one pgoutput message (an XLogData payload); `lsn` is the frame's WAL start.

        Returns a tuple whose first item is the message tag:

        - `("B", final_lsn, commit_ts_us, xid)`: Begin
        - `("C", flags, commit_lsn, end_lsn, commit_ts_us)`: Commit
        - `("O", origin_lsn, origin_name)`: Origin
        - `("R", RelationInfo, changed)`: Relation; `changed` is True when the relid was cached with a
          different description
        - `("Y", type_oid, namespace, name)`: Type (sent before a Relation that uses a
          non-built-in type; call `set_type_codec` for it)
        - `("I", relid, xid, after)`: Insert
        - `("U", relid, xid, before, before_kind, after)`: Update; `before_kind` is `'K'` (replica
          identity key columns, the others None), `'O'` (full old row) or None (no old tuple sent)
        - `("D", relid, xid, before, kind)`: Delete; `kind` `'K'` or `'O'` as for updates
        - `("T", xid, options, relids)`: Truncate; options bit 1 CASCADE, bit 2 RESTART IDENTITY
        - `("M", xid, transactional, message_lsn, prefix, content)`: logical decoding message
        - `("S", xid, first_segment)`: Stream Start; `("E",)`: Stream Stop
        - `("c", xid, flags, commit_lsn, end_lsn, commit_ts_us)`: Stream Commit
        - `("A", xid, subxid, abort_lsn, abort_ts_us)`: Stream Abort; the last two are None before protocol
          version 4 (which PostgreSQL 16+ speaks with `streaming 'parallel'`)

        `xid` in R/Y/I/U/D/T/M messages is set inside a streamed block (between Stream Start and
        Stream Stop) and None outside; it is the id of the (sub)transaction that made the change,
        while Stream Start names the top-level one. A Stream Abort with `subxid != xid` discards only
        that subtransaction's changes; with `subxid == xid` the whole streamed transaction. Timestamps are microseconds since the Unix
        epoch. Row values are dicts column name -> value (module docstring). DecodeError when the
        message is truncated, corrupted, of an unknown type, or names a relid never described.
        """
        if not data:
            raise decode_error("empty message", lsn, 0)
        reader = _Reader(data, lsn)
        tag = chr(data[0])
        handler = self._HANDLERS.get(tag)
        if handler is None:
            raise decode_error(f"unknown message type {tag!r}", lsn, 0)
        result = handler(self, reader)
        if reader.pos != len(data) and tag not in "AM":
            raise reader.error(f"{len(data) - reader.pos} unexpected bytes after a {tag!r} message")
        return result

    # -- messages --------------------------------------------------------------------------------

    def _begin(self, r: _Reader) -> tuple:
        final_lsn = r.uint64()
        commit_ts = r.int64()
        xid = r.uint32()
        return ("B", final_lsn, _unix_us(commit_ts), xid)

    def _commit(self, r: _Reader) -> tuple:
        flags = r.uint8()
        commit_lsn = r.uint64()
        end_lsn = r.uint64()
        commit_ts = r.int64()
        return ("C", flags, commit_lsn, end_lsn, _unix_us(commit_ts))

    def _origin(self, r: _Reader) -> tuple:
        origin_lsn = r.uint64()
        return ("O", origin_lsn, r.cstring())

    def _stream_xid(self, r: _Reader) -> int | None:
        return r.uint32() if self._streaming else None

    def _relation_message(self, r: _Reader) -> tuple:
        self._stream_xid(r)
        relid = r.uint32()
        namespace = r.cstring()
        name = r.cstring()
        replica_identity = chr(r.uint8())
        count = r.int16()
        if count < 0:
            raise r.error(f"negative column count {count}", -2)
        columns = []
        for _ in range(count):
            flags = r.uint8()
            column_name = r.cstring()
            type_oid = r.uint32()
            typmod = r.int32()
            columns.append((flags, column_name, type_oid, typmod))
        info = RelationInfo(relid, namespace, name, replica_identity, tuple(columns))
        previous = self._relations.get(relid)
        self._relations[relid] = info
        self._column_codecs[relid] = self._codecs_for(info)
        return ("R", info, previous is not None and previous != info)

    def _type(self, r: _Reader) -> tuple:
        self._stream_xid(r)
        type_oid = r.uint32()
        namespace = r.cstring()
        return ("Y", type_oid, namespace, r.cstring())

    def _insert(self, r: _Reader) -> tuple:
        xid = self._stream_xid(r)
        relid = r.uint32()
        codecs = self._codecs_of(relid, r)
        if r.uint8() != ord("N"):
            raise r.error("Insert without a new tuple ('N')", -1)
        return ("I", relid, xid, self._tuple(r, relid, codecs))

    def _update(self, r: _Reader) -> tuple:
        xid = self._stream_xid(r)
        relid = r.uint32()
        codecs = self._codecs_of(relid, r)
        kind = r.uint8()
        before = before_kind = None
        if kind in (ord("K"), ord("O")):
            before_kind = chr(kind)
            before = self._tuple(r, relid, codecs)
            kind = r.uint8()
        if kind != ord("N"):
            raise r.error(f"Update without a new tuple ('N'), got {kind!r}", -1)
        return ("U", relid, xid, before, before_kind, self._tuple(r, relid, codecs))

    def _delete(self, r: _Reader) -> tuple:
        xid = self._stream_xid(r)
        relid = r.uint32()
        codecs = self._codecs_of(relid, r)
        kind = r.uint8()
        if kind not in (ord("K"), ord("O")):
            raise r.error(f"Delete without an old tuple ('K' or 'O'), got {kind!r}", -1)
        return ("D", relid, xid, self._tuple(r, relid, codecs), chr(kind))

    def _truncate(self, r: _Reader) -> tuple:
        xid = self._stream_xid(r)
        count = r.int32()
        options = r.uint8()
        if count < 0 or count > r.remaining() // 4:
            raise r.error(f"relation count {count} does not fit the message", -5)
        return ("T", xid, options, tuple(r.uint32() for _ in range(count)))

    def _message(self, r: _Reader) -> tuple:
        xid = self._stream_xid(r)
        flags = r.uint8()
        message_lsn = r.uint64()
        prefix = r.cstring()
        length = r.int32()
        content = r.take(length)
        if r.remaining():
            raise r.error(f"{r.remaining()} unexpected bytes after an 'M' message")
        return ("M", xid, bool(flags & 1), message_lsn, prefix, bytes(content))

    def _stream_start(self, r: _Reader) -> tuple:
        xid = r.uint32()
        first_segment = r.uint8()
        self._streaming = True
        return ("S", xid, first_segment == 1)

    def _stream_stop(self, r: _Reader) -> tuple:
        self._streaming = False
        return ("E",)

    def _stream_commit(self, r: _Reader) -> tuple:
        xid = r.uint32()
        flags = r.uint8()
        commit_lsn = r.uint64()
        end_lsn = r.uint64()
        commit_ts = r.int64()
        return ("c", xid, flags, commit_lsn, end_lsn, _unix_us(commit_ts))

    def _stream_abort(self, r: _Reader) -> tuple:
        xid = r.uint32()
        subxid = r.uint32()
        if r.remaining() == 0:
            return ("A", xid, subxid, None, None)
        if r.remaining() != 16:
            raise r.error(f"{r.remaining()} unexpected bytes after an 'A' message")
        abort_lsn = r.uint64()  # protocol v4 (streaming 'parallel')
        abort_ts = r.int64()
        return ("A", xid, subxid, abort_lsn, _unix_us(abort_ts))

    _HANDLERS = {
        "B": _begin, "C": _commit, "O": _origin, "R": _relation_message, "Y": _type,
        "I": _insert, "U": _update, "D": _delete, "T": _truncate, "M": _message,
        "S": _stream_start, "E": _stream_stop, "c": _stream_commit, "A": _stream_abort,
    }

    # -- tuples ----------------------------------------------------------------------------------

    def copy_rows(self, relid: int, data: bytes, lsn: int = 0) -> list[dict]:
        """The rows of `COPY (SELECT <the relation's columns>) TO STDOUT` output (text format, `data`:
        whole lines) as dicts, each exactly as an Insert of the same text values decodes it: fields
        split on tabs, `\\N` is NULL, backslash escapes undone (`copy_unescape`); DecodeError for a
        line without the relation's column count. `lsn` only labels errors."""
        if relid not in self._relations:
            raise decode_error(f"relation {relid} was not described by a Relation message", lsn, 0)
        codecs = self._column_codecs[relid]
        names = [column[1] for column in self._relations[relid].columns]
        rows = []
        offset = 0
        data = bytes(data)
        if data and not data.endswith(b"\n"):
            raise decode_error("a COPY row runs past the end of the data", lsn, data.rfind(b"\n") + 1)
        for line in data.split(b"\n")[:-1]:
            fields = line.split(b"\t")
            if len(fields) != len(codecs):
                raise decode_error(f"a COPY row does not have the relation's {len(codecs)} columns", lsn, offset)
            row = {}
            for index, field in enumerate(fields):
                if field == b"\\N":
                    row[names[index]] = None
                    continue
                raw = copy_unescape(field) if b"\\" in field else field
                try:
                    row[names[index]] = decode_text(codecs[index], _utf8(raw))
                except (ValueError, IndexError, struct.error, OverflowError) as exc:
                    raise decode_error(f"column {names[index]!r}: cannot decode {raw[:40]!r}: {exc}", lsn,
                                       offset) from None
            rows.append(row)
            offset += len(line) + 1
        return rows

    def _codecs_for(self, relation: RelationInfo) -> tuple[int, ...]:
        return tuple(self.codec_of(column[2]) for column in relation.columns)

    def _codecs_of(self, relid: int, r: _Reader) -> tuple[int, ...]:
        codecs = self._column_codecs.get(relid)
        if codecs is None:
            raise r.error(f"relation {relid} was not described by a Relation message", -4)
        return codecs

    def _tuple(self, r: _Reader, relid: int, codecs: tuple[int, ...]) -> dict:
        count = r.int16()
        if count != len(codecs):
            raise r.error(f"tuple has {count} columns but relation {relid} has {len(codecs)}", -2)
        columns = self._relations[relid].columns
        row = {}
        for index in range(count):
            kind = r.uint8()
            if kind == ord("n"):
                value = None
            elif kind == ord("u"):
                value = UNAVAILABLE_VALUE
            elif kind == ord("t") or kind == ord("b"):
                length = r.int32()
                start = r.pos
                raw = r.take(length)
                try:
                    if kind == ord("t"):
                        value = decode_text(codecs[index], _utf8(raw))
                    else:
                        value = decode_binary(codecs[index], raw)
                except (ValueError, IndexError, struct.error, OverflowError) as exc:
                    raise decode_error(
                        f"column {columns[index][1]!r}: cannot decode {bytes(raw[:40])!r}: {exc}", r.lsn, start
                    ) from None
            else:
                raise r.error(f"unknown tuple column kind {kind!r}", -1)
            row[columns[index][1]] = value
        return row


class _Reader:
    """Bounds-checked big-endian reads from one message; every overrun is a DecodeError."""

    __slots__ = ("data", "pos", "lsn")

    def __init__(self, data: bytes, lsn: int) -> None:
        self.data = memoryview(data)
        self.pos = 1  # after the tag byte
        self.lsn = lsn

    def error(self, message: str, back: int = 0) -> DecodeError:
        return decode_error(message, self.lsn, self.pos + back)

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, count: int) -> memoryview:
        if count < 0 or count > len(self.data) - self.pos:
            raise self.error(f"length {count} runs past the end of the message ({self.remaining()} bytes left)")
        start = self.pos
        self.pos += count
        return self.data[start:self.pos]

    def _unpack(self, fmt: struct.Struct) -> int:
        if fmt.size > len(self.data) - self.pos:
            raise self.error(f"message truncated: {fmt.size} bytes needed, {self.remaining()} left")
        value = fmt.unpack_from(self.data, self.pos)[0]
        self.pos += fmt.size
        return value

    def uint8(self) -> int:
        if self.pos >= len(self.data):
            raise self.error("message truncated: 1 byte needed, 0 left")
        self.pos += 1
        return self.data[self.pos - 1]

    def int16(self) -> int:
        return self._unpack(_INT16)

    def int32(self) -> int:
        return self._unpack(_INT32)

    def uint32(self) -> int:
        return self._unpack(_UINT32)

    def int64(self) -> int:
        return self._unpack(_INT64)

    def uint64(self) -> int:
        return self._unpack(_UINT64)

    def cstring(self) -> str:
        end = bytes(self.data[self.pos:]).find(b"\0")
        if end < 0:
            raise self.error("string without its terminating NUL")
        start = self.pos
        self.pos += end + 1
        try:
            return _utf8(self.data[start:start + end])
        except ValueError as exc:
            raise decode_error(f"string is not UTF-8: {exc}", self.lsn, start) from None


_COPY_ESCAPES = {ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11}
_OCTAL = b"01234567"
_HEX_DIGITS = b"0123456789abcdefABCDEF"


def copy_unescape(field: bytes) -> bytes:
    """A field of COPY's text format with its backslash escapes undone: `\\b \\f \\n \\r \\t \\v`,
    one to three octal digits, `\\x` and one or two hex digits; any other escaped byte is itself."""
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        c = field[i]
        i += 1
        if c != 92 or i >= n:
            out.append(c)
            continue
        c = field[i]
        i += 1
        if c in _OCTAL:
            digits = bytes([c])
            while len(digits) < 3 and i < n and field[i] in _OCTAL:
                digits += field[i:i + 1]
                i += 1
            c = int(digits, 8) & 0xFF
        elif c == ord("x") and i < n and field[i] in _HEX_DIGITS:
            end = i + 2 if i + 1 < n and field[i + 1] in _HEX_DIGITS else i + 1
            c, i = int(field[i:end], 16), end
        else:
            c = _COPY_ESCAPES.get(c, c)
        out.append(c)
    return bytes(out)


def _utf8(raw) -> str:
    return bytes(raw).decode("utf-8")


def _unix_us(pg_us: int) -> int:
    return pg_us + PG_EPOCH_OFFSET_US


# -- text values -------------------------------------------------------------------------------------


def decode_text(codec: int, text: str):
    """The readable value of one column in PG's text output form."""
    if codec & types.ARRAY:
        return parse_array(text, codec & ~types.ARRAY)
    return _TEXT_DECODERS[codec](text)


def _text_float(text: str):
    if text in ("NaN", "Infinity", "-Infinity"):
        return text
    return float(text)


def _text_bool(text: str) -> bool:
    if text == "t":
        return True
    if text == "f":
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _text_int(text: str) -> int:
    if not text or not (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def _identity(text: str) -> str:
    return text


_TEXT_DECODERS = {
    types.TEXT: _identity,
    types.OTHER: _identity,
    types.INT: _text_int,
    types.OID: _text_int,
    types.BOOL: _text_bool,
    types.NUMERIC: _identity,
    types.FLOAT4: _text_float,
    types.FLOAT8: _text_float,
    types.BYTEA: codecs.pg_bytea_hex_to_base64,
    types.BITS: _identity,
    types.DATE: codecs.pg_date_text_to_iso,
    types.TIME: codecs.pg_time_text_to_iso,
    types.TIMETZ: codecs.pg_timetz_text_to_iso,
    types.TIMESTAMP: codecs.pg_timestamp_text_to_iso,
    types.TIMESTAMPTZ: codecs.pg_timestamptz_text_to_iso,
    types.INTERVAL: _identity,
    types.JSON: _identity,
    types.JSONB: _identity,
    types.UUID: _identity,
    types.BOX: _identity,
}


def parse_array(text: str, element_codec: int) -> list:
    """A list (nested per dimension) from PG's array text form `{1,NULL,"a \\"b\\""}`.

    An optional dimension decoration (`[0:1]={...}`) is dropped; unquoted NULL is None; quoted
    elements lose their quotes and backslash escapes; elements are decoded with `element_codec`.
    """
    pos = 0
    if text.startswith("["):
        pos = text.find("=") + 1
        if pos == 0:
            raise ValueError("array dimensions without '='")
    delimiter = ";" if element_codec == types.BOX else ","
    value, pos = _parse_array_level(text, pos, element_codec, delimiter)
    if pos != len(text):
        raise ValueError(f"unexpected text after the array at {pos}")
    return value


def _parse_array_level(text: str, pos: int, codec: int, delimiter: str) -> tuple[list, int]:
    if pos >= len(text) or text[pos] != "{":
        raise ValueError(f"expected '{{' at {pos}")
    pos += 1
    items: list = []
    if pos < len(text) and text[pos] == "}":
        return items, pos + 1
    while True:
        if pos >= len(text):
            raise ValueError("array text ends inside the array")
        char = text[pos]
        if char == "{":
            item, pos = _parse_array_level(text, pos, codec, delimiter)
        elif char == '"':
            chars = []
            pos += 1
            while True:
                if pos >= len(text):
                    raise ValueError("array text ends inside a quoted element")
                char = text[pos]
                if char == "\\":
                    if pos + 1 >= len(text):
                        raise ValueError("array text ends inside an escape")
                    chars.append(text[pos + 1])
                    pos += 2
                elif char == '"':
                    pos += 1
                    break
                else:
                    chars.append(char)
                    pos += 1
            item = _TEXT_DECODERS[codec]("".join(chars))
        else:
            start = pos
            while pos < len(text) and text[pos] != delimiter and text[pos] != "}":
                if text[pos] in '{"\\':
                    raise ValueError(f"unexpected {text[pos]!r} in an unquoted element at {pos}")
                pos += 1
            raw = text[start:pos]
            if not raw:
                raise ValueError(f"empty unquoted element at {start}")
            item = None if raw.upper() == "NULL" else _TEXT_DECODERS[codec](raw)
        items.append(item)
        if pos >= len(text):
            raise ValueError("array text ends inside the array")
        if text[pos] == delimiter:
            pos += 1
        elif text[pos] == "}":
            return items, pos + 1
        else:
            raise ValueError(f"expected {delimiter!r} or '}}' at {pos}")


# -- binary values -------------------------------------------------------------------------------------


def decode_binary(codec: int, raw) -> object:
    """The readable value of one column in PG's binary send format (same output as decode_text)."""
    if codec & types.ARRAY:
        return _binary_array(raw, codec & ~types.ARRAY)
    return _BINARY_DECODERS[codec](bytes(raw))


def _need(raw: bytes, size: int, what: str) -> None:
    if len(raw) != size:
        raise ValueError(f"{what} needs {size} bytes, got {len(raw)}")


def _binary_int(raw: bytes) -> int:
    if len(raw) not in (2, 4, 8):
        raise ValueError(f"integer of {len(raw)} bytes")
    return int.from_bytes(raw, "big", signed=True)


def _binary_oid(raw: bytes) -> int:
    if len(raw) not in (4, 8):
        raise ValueError(f"oid/xid of {len(raw)} bytes")
    return int.from_bytes(raw, "big", signed=False)


def _binary_bool(raw: bytes) -> bool:
    _need(raw, 1, "bool")
    return raw[0] != 0


def _binary_float8(raw: bytes):
    _need(raw, 8, "float8")
    return codecs.encode_float(_FLOAT8.unpack(raw)[0])


def _binary_float4(raw: bytes):
    """float4 as the double of its shortest round-tripping decimal, as PG's text output gives it."""
    _need(raw, 4, "float4")
    return codecs.encode_float4(_FLOAT4.unpack(raw)[0])


_NUMERIC_POS = 0x0000
_NUMERIC_NEG = 0x4000
_NUMERIC_SPECIAL = {0xC000: "NaN", 0xD000: "Infinity", 0xF000: "-Infinity"}


def _binary_numeric(raw: bytes) -> str:
    """PG's numeric_send (base-10000 digits, weight, sign, display scale) to its exact text."""
    if len(raw) < 8:
        raise ValueError(f"numeric of {len(raw)} bytes")
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHh", raw)
    if sign in _NUMERIC_SPECIAL:
        return _NUMERIC_SPECIAL[sign]
    if sign not in (_NUMERIC_POS, _NUMERIC_NEG) or ndigits < 0 or dscale < 0:
        raise ValueError("bad numeric header")
    _need(raw, 8 + 2 * ndigits, "numeric digits")
    digits = struct.unpack_from(f">{ndigits}h", raw, 8)
    if any(not 0 <= digit < 10000 for digit in digits):
        raise ValueError("numeric digit out of range")

    def group(i: int) -> int:
        return digits[i] if 0 <= i < ndigits else 0

    if weight >= 0:
        whole = str(group(0)) + "".join(f"{group(i):04d}" for i in range(1, weight + 1))
    else:
        whole = "0"
    text = ("-" if sign == _NUMERIC_NEG else "") + whole
    if dscale > 0:
        groups = (dscale + 3) // 4
        fraction = "".join(f"{group(weight + 1 + i):04d}" for i in range(groups))
        text += "." + fraction[:dscale]
    return text


def _binary_text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _binary_other(raw: bytes) -> str:
    return "\\x" + raw.hex()


def _binary_jsonb(raw: bytes) -> str:
    if not raw or raw[0] != 1:
        raise ValueError("jsonb binary format version is not 1")
    return raw[1:].decode("utf-8")


def _binary_bits(raw: bytes) -> str:
    if len(raw) < 4:
        raise ValueError(f"bit string of {len(raw)} bytes")
    count = _INT32.unpack_from(raw)[0]
    if count < 0 or (count + 7) // 8 != len(raw) - 4:
        raise ValueError(f"bit string of {count} bits in {len(raw) - 4} bytes")
    bits = "".join(f"{byte:08b}" for byte in raw[4:])
    return bits[:count]


def _binary_date(raw: bytes) -> str:
    _need(raw, 4, "date")
    days = _INT32.unpack(raw)[0]
    if days == _INT32_MAX:
        return "infinity"
    if days == _INT32_MIN:
        return "-infinity"
    return codecs.encode_date(days + _PG_EPOCH_DAYS)


def _binary_time(raw: bytes) -> str:
    _need(raw, 8, "time")
    us = _INT64.unpack(raw)[0]
    if not 0 <= us <= _US_PER_DAY:
        raise ValueError(f"time of day out of range: {us}")
    return codecs.encode_time(us)


def _binary_timetz(raw: bytes) -> str:
    """The UTC clock with "Z" (as pg_timetz_text_to_iso gives it); the zone is in seconds west."""
    _need(raw, 12, "timetz")
    us, zone_west = struct.unpack(">qi", raw)
    if not 0 <= us <= _US_PER_DAY or abs(zone_west) > 16 * 3600:
        raise ValueError("timetz out of range")
    return codecs.encode_time((us + zone_west * 1_000_000) % _US_PER_DAY) + "Z"


def _binary_timestamp(raw: bytes) -> str:
    _need(raw, 8, "timestamp")
    us = _INT64.unpack(raw)[0]
    if us == _INT64_MAX:
        return "infinity"
    if us == _INT64_MIN:
        return "-infinity"
    return codecs.encode_timestamp(us + PG_EPOCH_OFFSET_US)


def _binary_timestamptz(raw: bytes) -> str:
    _need(raw, 8, "timestamptz")
    us = _INT64.unpack(raw)[0]
    if us == _INT64_MAX:
        return "infinity"
    if us == _INT64_MIN:
        return "-infinity"
    return codecs.encode_timestamptz(us + PG_EPOCH_OFFSET_US)


def _binary_interval(raw: bytes) -> str:
    """ISO 8601 as PG writes it with IntervalStyle=iso_8601, from (microseconds, days, months)."""
    _need(raw, 16, "interval")
    micros, days, months = struct.unpack(">qii", raw)
    return codecs.encode_interval(months, days, micros)


def _binary_uuid(raw: bytes) -> str:
    _need(raw, 16, "uuid")
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_BINARY_DECODERS = {
    types.TEXT: _binary_text,
    types.OTHER: _binary_other,
    types.INT: _binary_int,
    types.OID: _binary_oid,
    types.BOOL: _binary_bool,
    types.NUMERIC: _binary_numeric,
    types.FLOAT4: _binary_float4,
    types.FLOAT8: _binary_float8,
    types.BYTEA: codecs.encode_bytes,
    types.BITS: _binary_bits,
    types.DATE: _binary_date,
    types.TIME: _binary_time,
    types.TIMETZ: _binary_timetz,
    types.TIMESTAMP: _binary_timestamp,
    types.TIMESTAMPTZ: _binary_timestamptz,
    types.INTERVAL: _binary_interval,
    types.JSON: _binary_text,
    types.JSONB: _binary_jsonb,
    types.UUID: _binary_uuid,
    types.BOX: _binary_other,
}


def _binary_array(raw, element_codec: int) -> list:
    """PG's array_send: ndim, has-null flag, element oid, (size, lower bound) per dimension, then
    each element as a length (-1 for NULL) and its binary form; nested lists per dimension."""
    raw = bytes(raw)
    if len(raw) < 12:
        raise ValueError(f"array of {len(raw)} bytes")
    ndim, _flags, _element_oid = struct.unpack_from(">iiI", raw)
    if ndim == 0:
        if len(raw) != 12:
            raise ValueError("bytes after an empty array")
        return []
    if not 0 < ndim <= 6 or len(raw) < 12 + 8 * ndim:
        raise ValueError(f"array with {ndim} dimensions")
    sizes = [struct.unpack_from(">i", raw, 12 + 8 * i)[0] for i in range(ndim)]
    total = 1
    for size in sizes:
        if size < 0:
            raise ValueError("negative array dimension")
        total *= size
    if total > len(raw):
        raise ValueError(f"array claims {total} elements in {len(raw)} bytes")
    pos = 12 + 8 * ndim
    decoder = _BINARY_DECODERS[element_codec]
    flat = []
    for _ in range(total):
        if pos + 4 > len(raw):
            raise ValueError("array element length runs past the end")
        length = _INT32.unpack_from(raw, pos)[0]
        pos += 4
        if length == -1:
            flat.append(None)
            continue
        if length < 0 or pos + length > len(raw):
            raise ValueError(f"array element of {length} bytes runs past the end")
        flat.append(decoder(raw[pos:pos + length]))
        pos += length
    if pos != len(raw):
        raise ValueError("bytes after the last array element")
    for size in reversed(sizes[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat
