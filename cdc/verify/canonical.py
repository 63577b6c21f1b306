"""The canonical row text: one engine-neutral spelling of every value, so equal rows hash equally.

This module is the specification. Each engine's `connectors/<engine>/checksum.py` produces the same
text inside the database (SQL expressions); the functions here produce it from Python values, for
the columns compared client-side (JSON across engines, floats across engines or with a tolerance) and
as the reference the tests hold the SQL to.

A column pair (source column, target column) is compared as one *class*:

| class     | kinds                                  | canonical text                                     |
|-----------|----------------------------------------|----------------------------------------------------|
| number    | boolean, int, decimal, year            | plain decimal, no exponent, no trailing zeros: `10.5`, `1`/`0` for booleans |
| fixed     | decimal with the same scale both sides | the decimal with its scale's digits: `10.50` (no trimming needed) |
| float     | float                                  | shortest round-trip text (same engine, in SQL)     |
| float_exact| float on two engines, same width      | in 1e-4 <= |x| < 1e15 the shortest round-trip decimal, no exponent (`0.25`, `-1234.5`, `1`): both engines print these alike; else `b` and the IEEE-754 bits of `abs(x)` as an integer, negated when x < 0 (`b0` for 0.0 and -0.0) |
| text      | string, enum, set, inet, interval, ... | the UTF-8 text                                     |
| uuid      | uuid (or a CHAR(36) paired with uuid)  | lower-case text                                    |
| bytes     | bytes                                  | lower-case hex                                     |
| bits      | bits                                   | `0101...`                                          |
| date      | date                                   | `YYYY-MM-DD`                                       |
| time      | time                                   | microseconds since midnight (integer)              |
| timestamp | timestamp, timestamptz                 | microseconds since 1970-01-01 UTC (integer)        |
| json      | json, array                            | value compared: keys sorted, numbers normalised     |
| json_text | json across engines, when the stored texts agree | each engine's text of the document (PG `jsonb::text`, MariaDB as stored); rows whose texts differ are compared by value |

The row text joins the column tokens with `|`: a NULL is the token `N`; a non-NULL value of a
text-like class is `<length in UTF-8 bytes>:<text>` (so no text can fake a separator or a NULL); a
json_text value is its JSON text as it is (valid JSON delimits itself); any other non-NULL value is its
canonical text (which never contains `|` nor equals `N`).
The row hash is the first 15 hex digits of SHA-256(row text, UTF-8) as an integer (60 bits); a segment's
checksum is the row count and the XOR of those integers when the table has a key (its rows are a set,
so nothing cancels; PG 14+ `bit_xor`, MySQL `BIT_XOR`), else their exact sum, which both engines compute
without overflow (PG `sum(bigint)` -> numeric, MySQL `SUM(UNSIGNED)` -> DECIMAL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import struct
import uuid as uuid_module
from decimal import Decimal
from typing import Any

import orjson

NULL_TOKEN = "N"
SEPARATOR = "|"

CLASS_OF_KIND = {
    "boolean": "number",
    "int": "number",
    "decimal": "number",
    "year": "number",
    "float": "float",
    "string": "text",
    "enum": "text",
    "set": "text",
    "inet": "text",
    "cidr": "text",
    "macaddr": "text",
    "money": "text",
    "xml": "text",
    "tsvector": "text",
    "range": "text",
    "interval": "text",
    "geometry": "text",
    "text": "text",
    "uuid": "uuid",
    "bytes": "bytes",
    "bits": "bits",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "json": "json",
    "array": "json",
}

# Classes whose canonical text may contain anything, so their tokens carry a length prefix.
# Not json_text: its texts are always valid JSON (PG jsonb/json/array_to_json output, MariaDB text that
# passed json_valid, JSON_LOOSE/JSON_COMPACT), and a JSON text delimits itself: a parser finds where the
# value ends (a `|` inside a string is inside quotes), and no JSON text is `N` or starts with it. Its
# length would cost PostgreSQL a second `jsonb::text` per row (~40% of a cross-engine row hash).
LENGTH_PREFIXED = frozenset({"text", "uuid", "json"})

# Classes whose canonical texts may differ for equal values: a fetched row's texts that differ are compared
# again by value (`canonical_json`) before the row counts as changed.
COMPARED_BY_VALUE = frozenset({"json_text"})

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def class_of(kind: str) -> str:
    """The comparison class of an engine-neutral column kind (unknown kinds compare as text)."""
    return CLASS_OF_KIND.get(kind, "text")


def canonical_number(value: Any) -> str:
    """`10.50` -> `10.5`, `100` -> `100`, `True` -> `1`, `-0.0` -> `0`; NaN/Infinity spelled as PG does."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = Decimal(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def canonical_fixed(value: Any) -> str:
    """A decimal of a declared scale, printed with that scale (as both engines do)."""
    return str(value) if isinstance(value, Decimal) else str(Decimal(str(value)))


def canonical_float(value: Any, *, single: bool = False) -> float:
    """A float as compared client-side; `single` rounds to IEEE single precision (a 4-byte column)."""
    number = float(value)
    if single and math.isfinite(number):
        number = struct.unpack("<f", struct.pack("<f", number))[0]
    return number


def floats_equal(a: float | None, b: float | None, tolerance: float) -> bool:
    """Equal when both are NULL, both NaN, identical, or within `tolerance` (absolute, or relative to the larger)."""
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    difference = abs(a - b)
    return difference <= tolerance or difference <= tolerance * max(abs(a), abs(b))


# Where both engines print a double's shortest round-trip digits without an exponent (PostgreSQL below
# 1e15, MariaDB's own rule agrees there; both from 1e-4 up); outside it their exponent spellings differ.
FIXED_FLOAT_RANGE = (1e-4, 1e15)


def canonical_float_exact(value: Any) -> str:
    """A double compared exactly across engines, in the cheapest text both engines produce alike.

    In `FIXED_FLOAT_RANGE` (absolute value): the shortest round-trip decimal without exponent, which
    identifies the double exactly and is what both engines print (PG with `extra_float_digits` > 0,
    MariaDB `CAST(.. AS CHAR)`). Elsewhere (0, tiny, huge, NaN, the infinities): `b` and the bits of
    abs(x) as an integer, negated when x < 0, which PG reads with `float8send` and MariaDB computes
    by exact power-of-two arithmetic; -0.0 and 0.0 both give `b0` (MariaDB cannot store -0.0).
    """
    number = float(value)
    low, high = FIXED_FLOAT_RANGE
    if low <= abs(number) < high:
        text = repr(number)
        return text[:-2] if text.endswith(".0") else text
    bits = struct.unpack(">q", struct.pack(">d", abs(number)))[0]
    return f"b{-bits if number < 0 else bits}"


def canonical_text(value: Any) -> str:
    """Text as UTF-8 text; bytes from a driver are decoded as UTF-8."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def canonical_uuid(value: Any) -> str:
    """Lower-case 8-4-4-4-12 text."""
    if isinstance(value, uuid_module.UUID):
        return str(value)
    return canonical_text(value).lower()


def canonical_bytes(value: Any) -> str:
    """Lower-case hex."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return bytes(value).hex()


def canonical_date(value: Any) -> str:
    """`YYYY-MM-DD`."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return str(value)


def canonical_time(value: Any) -> str:
    """Microseconds since midnight (MySQL TIME values may be negative or over 24 hours)."""
    if isinstance(value, dt.timedelta):
        return str((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds)
    if isinstance(value, dt.time):
        micros = (value.hour * 3600 + value.minute * 60 + value.second) * 1_000_000 + value.microsecond
        if value.utcoffset() is not None:
            micros -= int(value.utcoffset().total_seconds() * 1_000_000)
        return str(micros)
    return str(value)


def canonical_timestamp(value: Any) -> str:
    """Microseconds since 1970-01-01 UTC; a timestamp without zone counts as UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            delta = value - EPOCH_UTC
        else:
            delta = value - EPOCH
        return str((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    return str(value)


def _normalise_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _normalise_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise_json(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        return _JsonNumber(canonical_number(value))
    return value


class _JsonNumber(float):
    """A JSON number printed as its canonical decimal text (so 1.50 and 1.5 and 1.5E0 agree)."""

    def __new__(cls, text: str) -> _JsonNumber:
        number = super().__new__(cls, float(text) if text not in ("NaN", "Infinity", "-Infinity") else 0.0)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


def canonical_json(value: Any) -> str:
    """A JSON document by value: keys sorted, no spaces, numbers as canonical decimals."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8")
    if isinstance(value, str):
        value = json.loads(value, parse_float=Decimal, parse_int=Decimal)
    normalised = _normalise_json(value)
    return _dump_json(normalised)


# A number of 16 or more digits (dots count: harmless over-matching) may differ from another beyond a
# double's precision, where orjson's parse would call them equal.
_LONG_NUMBER = re.compile(r"[0-9][0-9.]{15}")


def json_equal(a: Any, b: Any) -> bool:
    """Two JSON texts (or parsed values) are the same document by value (`canonical_json` decides).

    Fast paths, all exact: equal texts; else orjson's parse, dumped with sorted keys, when neither text
    holds a number of more than 15 digits (then two numbers parse to the same double only when they
    are the same decimal; orjson keeps 1 and 1.0 apart, which falls through to the exact check).
    """
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str) and not _LONG_NUMBER.search(a) and not _LONG_NUMBER.search(b):
        try:
            if orjson.dumps(orjson.loads(a), option=orjson.OPT_SORT_KEYS) == orjson.dumps(
                    orjson.loads(b), option=orjson.OPT_SORT_KEYS):
                return True
        except orjson.JSONDecodeError:
            pass
    try:
        return canonical_json(a) == canonical_json(b)
    except ValueError:
        return False


def _dump_json(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(json.dumps(key, ensure_ascii=False) + ":" + _dump_json(item) for key, item in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump_json(item) for item in value) + "]"
    if isinstance(value, _JsonNumber):
        return value.text
    return json.dumps(value, ensure_ascii=False)


def canonical_bits(value: Any, length: int | None = None) -> str:
    """`0101...`: PG returns bit strings as text, MySQL BIT(n) as big-endian bytes."""
    if isinstance(value, (bytes, bytearray)):
        return format(int.from_bytes(value, "big"), f"0{length or len(value) * 8}b")
    if isinstance(value, int):
        return format(value, f"0{length or 1}b")
    return str(value)


CANONICALISERS = {
    "number": canonical_number,
    "fixed": canonical_fixed,
    "text": canonical_text,
    "uuid": canonical_uuid,
    "bytes": canonical_bytes,
    "date": canonical_date,
    "time": canonical_time,
    "timestamp": canonical_timestamp,
    "json": canonical_json,
    "bits": canonical_bits,
}


def canonical_value(value: Any, cls: str, length: int | None = None) -> str | None:
    """The canonical text of one value of class `cls` (None stays None); `length` is a bit column's width."""
    if value is None:
        return None
    if cls == "float":
        return repr(canonical_float(value))
    if cls == "float_exact":
        return canonical_float_exact(value)
    if cls == "json_text":
        return canonical_text(value)
    if cls == "bits":
        return canonical_bits(value, length)
    return CANONICALISERS.get(cls, canonical_text)(value)


def token(text: str | None, cls: str) -> str:
    """One column's token in the row text."""
    if text is None:
        return NULL_TOKEN
    if cls in LENGTH_PREFIXED:
        return f"{len(text.encode('utf-8', errors='surrogateescape'))}:{text}"
    return text


def row_text(texts: list[str | None], classes: list[str]) -> str:
    """The canonical row text from per-column canonical texts."""
    return SEPARATOR.join(token(text, cls) for text, cls in zip(texts, classes))


def row_hash(text: str) -> int:
    """The 60-bit row hash both engines compute: first 15 hex digits of SHA-256(row text).

    SHA-256 rather than MD5: both engines have it built in (PG `sha256()`, MySQL/MariaDB `SHA2()`),
    and MariaDB evaluates `SHA2(x, 256)` about 4x faster than `MD5(x)` (0.1 vs 0.45 us a row here).
    """
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)
