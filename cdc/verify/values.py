"""Report values: the one rule that turns a database value into the JSON the parity report carries.

Every differing row, whichever path found it (range bisection, hash buckets, keyless multiset, the
client-side column pass, the re-check), gets its key and column values from `report_value`, typed
by the column pair (`value_type`), so one column always has one JSON type in the report:

| value type  | JSON                                                                       |
|-------------|----------------------------------------------------------------------------|
| integer     | number; a string of decimal digits beyond +/-(2^53 - 1), where JSON numbers lose digits |
| boolean     | true / false (both sides boolean; a boolean paired with an integer is an integer) |
| decimal     | string keeping the value's scale: `"52.50"` (also `"NaN"`, `"Infinity"`)  |
| float       | string, shortest round-trip text: `"0.1"`, `"1e-07"`, `"NaN"`, `"-Infinity"` |
| string      | string                                                                     |
| uuid        | string, lower case                                                         |
| binary      | string, base64                                                             |
| bits        | string of `0`/`1`                                                          |
| date        | string `YYYY-MM-DD`                                                        |
| time        | string `[-]HH:MM:SS.ffffff` (UTC for a time with zone; MySQL TIME may pass 24 h or be negative) |
| timestamp   | string ISO 8601 UTC with microseconds: `2024-02-29T13:45:00.000001Z`       |
| json        | the JSON value itself (a JSON/array column); its text when it is not valid JSON |

NULL is `null` in every type. docs/verify-report.schema.json states the same rule.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

from cdc.verify.canonical import canonical_bits, class_of
from cdc.verify.plan import ColumnPair, ColumnShape

MAX_SAFE_INTEGER = 2**53 - 1

VALUE_TYPES = ("integer", "boolean", "decimal", "float", "string", "uuid", "binary", "bits", "date", "time",
               "timestamp", "json")

_SINGLE_CLASS_TYPE = {"text": "string", "uuid": "uuid", "bytes": "binary", "bits": "bits", "date": "date",
                      "time": "time", "timestamp": "timestamp", "json": "json"}


def value_type(pair: ColumnPair) -> str:
    """The report type of a column pair, from both sides' kinds (so both sides' values get one type)."""
    kinds = {pair.source.kind, pair.target.kind}
    classes = {class_of(kind) for kind in kinds}
    if classes == {"number"}:
        if kinds == {"boolean"}:
            return "boolean"
        return "integer" if kinds <= {"int", "year", "boolean"} else "decimal"
    if "float" in classes and classes <= {"float", "number"}:
        return "float"
    if "json" in classes:
        return "json"
    if classes == {"uuid", "text"}:
        return "uuid"
    if len(classes) == 1:
        return _SINGLE_CLASS_TYPE.get(classes.pop(), "string")
    return "string"


def report_value(value: Any, vtype: str, shape: ColumnShape | None = None) -> Any:
    """`value` as read by the driver (or as the client-side pass streams it) in the report's JSON form."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    return _CONVERTERS.get(vtype, _string)(value, shape)


def _integer(value: Any, shape) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    number = int(value)
    return number if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER else str(number)


def _boolean(value: Any, shape) -> Any:
    if isinstance(value, str):
        return value.lower() in ("t", "true", "1")
    return bool(value)


def _decimal(value: Any, shape) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _float(value, shape)
    if isinstance(value, Decimal):
        if value.is_nan():
            return "NaN"
        if value.is_infinite():
            return "Infinity" if value > 0 else "-Infinity"
        return format(value, "f")  # keeps the scale: Decimal("52.50") -> "52.50", 0E-10 -> "0.0000000000"
    return str(value)


def _float(value: Any, shape) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _string(value: Any, shape) -> str:
    return _text(value)


def _uuid(value: Any, shape) -> str:
    return _text(value).lower()


def _binary(value: Any, shape) -> str:
    raw = value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _bits(value: Any, shape) -> str:
    return canonical_bits(value, shape.length if shape is not None else None)


def _date(value: Any, shape) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return _text(value)


def _time(value: Any, shape) -> str:
    if isinstance(value, dt.time):
        micros = (value.hour * 3600 + value.minute * 60 + value.second) * 1_000_000 + value.microsecond
        if value.utcoffset() is not None:
            micros = (micros - int(value.utcoffset().total_seconds() * 1_000_000)) % (86400 * 1_000_000)
    elif isinstance(value, dt.timedelta):
        micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    else:
        return _text(value)
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"


def _timestamp(value: Any, shape) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)  # a timestamp without zone counts as UTC (canonical.py)
        return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
                f"{value.second:02d}.{value.microsecond:06d}Z")
    if isinstance(value, dt.date):
        return f"{_date(value, shape)}T00:00:00.000000Z"
    return _text(value)  # PG 'infinity' / '-infinity'


def _json(value: Any, shape) -> Any:
    if isinstance(value, (bytes, bytearray, str)):
        text = _text(value)
        try:
            return json.loads(text, parse_int=_json_int)
        except ValueError:
            return text
    return value


def _json_int(text: str) -> int | float:
    number = int(text)
    return number if -2**63 <= number < 2**64 else float(text)  # the JSON writer takes 64-bit integers


_CONVERTERS = {
    "integer": _integer, "boolean": _boolean, "decimal": _decimal, "float": _float, "string": _string,
    "uuid": _uuid, "binary": _binary, "bits": _bits, "date": _date, "time": _time, "timestamp": _timestamp,
    "json": _json,
}
