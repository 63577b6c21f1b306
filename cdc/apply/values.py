"""Turn the readable JSON forms of docs/event-format.md into Python values, per column kind.

The kind comes from the table schema on `<prefix>.schemas`, never from the JSON value itself: a string
in a `bytes` column is base64, in a `decimal` column an exact number, in a `timestamptz` column an
ISO 8601 UTC instant. Converters are chosen once per column (`converter`) and return None for kinds
whose JSON form is already the Python value (numbers, text), so the hot loop skips them.
A value that does not fit its kind raises `ValueError`; apply treats that row as a bad event.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from cdc.events import Column

Converter = Callable[[Any], Any]

_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# PG's special date/timestamp values stay text: only a PG target can store them.
_SPECIAL_TIMES = frozenset({"infinity", "-infinity"})
_TEXT_KINDS = frozenset({
    "string", "enum", "set", "json", "uuid", "inet", "cidr", "macaddr", "money", "xml", "tsvector",
    "range", "interval", "geometry", "text", "bits",
})


def to_int(value: Any) -> int:
    """A JSON integer (bool is refused: it is not an integer here)."""
    if type(value) is int:
        return value
    raise ValueError(f"expected an integer, got {value!r}")


def to_bool(value: Any) -> bool:
    """A JSON boolean (a MySQL TINYINT(1) is kind int, so numbers are refused)."""
    if type(value) is bool:
        return value
    raise ValueError(f"expected true/false, got {value!r}")


def to_decimal(value: Any) -> Decimal:
    """An exact decimal string such as "10.50" (scale kept); "NaN"/"Infinity" as PG writes them."""
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc


def to_float(value: Any) -> float:
    """A JSON number, or "NaN" / "Infinity" / "-Infinity"."""
    if type(value) is float or type(value) is int:
        return float(value)
    special = _SPECIAL_FLOATS.get(value) if isinstance(value, str) else None
    if special is None:
        raise ValueError(f"expected a floating-point number, got {value!r}")
    return special


def to_text(value: Any) -> str:
    """A JSON string, unchanged."""
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {value!r}")


def to_bytes(value: Any) -> bytes:
    """Base64 text to bytes."""
    if not isinstance(value, str):
        raise ValueError(f"expected a base64 string, got {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {value[:40]!r}") from exc


def to_date(value: Any) -> dt.date | str:
    """"2024-02-29" to a date; PG's "infinity"/"-infinity" stay text."""
    if isinstance(value, str):
        if value in _SPECIAL_TIMES:
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a date: {value!r}") from exc
    raise ValueError(f"expected a date string, got {value!r}")


def to_time(value: Any) -> dt.time | str:
    """"13:45:00.123456" to a time; MySQL's negative or over-24h durations stay text (only MySQL holds them)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a time string, got {value!r}")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        hours, _, rest = value.lstrip("-").partition(":")
        if hours.isdigit() and rest:
            return value
        raise ValueError(f"not a time: {value!r}") from None


def to_timestamp(value: Any) -> dt.datetime | str:
    """"2024-02-29T13:45:00.123456" (no zone) to a naive datetime; "infinity" stays text."""
    if isinstance(value, str):
        if value in _SPECIAL_TIMES:
            return value
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a timestamp: {value!r}") from exc
        if stamp.tzinfo is not None:
            raise ValueError(f"a timestamp without time zone carries a zone: {value!r}")
        return stamp
    raise ValueError(f"expected a timestamp string, got {value!r}")


def to_timestamptz(value: Any) -> dt.datetime | str:
    """"2024-02-29T12:45:00.123456Z" to an aware UTC datetime; "infinity" stays text."""
    if isinstance(value, str):
        if value in _SPECIAL_TIMES:
            return value
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a timestamp with time zone: {value!r}") from exc
        if stamp.tzinfo is None:
            raise ValueError(f"a timestamp with time zone has no zone: {value!r}")
        return stamp.astimezone(dt.timezone.utc)
    raise ValueError(f"expected a timestamp string, got {value!r}")


_SCALAR: dict[str, Converter] = {
    "int": to_int,
    "year": to_int,
    "boolean": to_bool,
    "decimal": to_decimal,
    "float": to_float,
    "bytes": to_bytes,
    "date": to_date,
    "time": to_time,
    "timestamp": to_timestamp,
    "timestamptz": to_timestamptz,
}


def kind_converter(kind: str, element: str | None = None) -> Converter:
    """The strict converter of one kind (text kinds check that the value is a string)."""
    if kind == "array":
        inner = kind_converter(element or "text")

        def to_array(value: Any) -> list:
            if not isinstance(value, list):
                raise ValueError(f"expected a JSON array, got {value!r}")
            return [None if item is None else (to_array(item) if isinstance(item, list) else inner(item))
                    for item in value]

        return to_array
    if kind in _SCALAR:
        return _SCALAR[kind]
    if kind in _TEXT_KINDS:
        return to_text
    raise ValueError(f"unknown column kind {kind!r}")


def _fast(convert: Converter, *accepted: type) -> Converter:
    """Skip the call for values already of an accepted type (the common case of ints and strings)."""

    def fast(value: Any) -> Any:
        if type(value) in accepted:
            return value
        return convert(value)

    return fast


def converter(column: Column) -> Converter | None:
    """The converter for a column's non-null values; None when the JSON value is used as it is.

    The identity kinds still get checked by the target database, which refuses a value of the wrong
    type (and apply turns that into a bad event with its reason).
    """
    kind = column.kind
    if kind in ("int", "year"):
        return None
    if kind in _TEXT_KINDS:
        return None
    if kind == "float":
        return _fast(to_float, float, int)
    return kind_converter(kind, column.element)
