"""Debezium compat: readable values (docs/event-format.md) to the forms Debezium 3.6 writes.

Debezium settings matched: `decimal.handling.mode=string`, `binary.handling.mode=base64`,
`interval.handling.mode=string`, default `time.precision.mode` (PG `adaptive`, MySQL
`adaptive_time_microseconds`):

- date: days since 1970-01-01 (number);
- time: PG precision 0..3 milliseconds past midnight, 4..6 microseconds; MySQL always microseconds
  (negative and over-24h kept); timetz: UTC ISO time, fraction without trailing zeros ("11:45:00.12Z");
- timestamp without zone / DATETIME: precision 0..3 epoch milliseconds, 4..6 epoch microseconds;
- timestamptz / MySQL TIMESTAMP: ISO UTC string with exactly `precision` fraction digits (1..9),
  no fraction digits beyond the significant ones when the precision is 0;
- bit(1) / BIT(1): boolean; longer bit strings: little-endian bytes, base64 (PG: minimal length,
  MySQL: padded to ceil(n/8) bytes);
- interval: "P<y>Y<m>M<d>DT<h>H<m>M<s>S" with every field present;
- money: plain decimal string ("1234.56");
- PG numeric NaN/±Infinity: Debezium's special-value names "NAN", "POSITIVE_INFINITY",
  "NEGATIVE_INFINITY" (measured: Debezium 3.6 with `decimal.handling.mode=string`);
- rows: every column of the table, in table order, absent ones null (a PG delete under REPLICA
  IDENTITY DEFAULT carries only the key; Debezium writes the other columns as null);
- hstore: a JSON object string (`hstore.handling.mode=json`, Debezium's default);
- MySQL geometry: Debezium's `Geometry` struct `{"wkb": <base64 WKB>, "srid": ...}` (the decoder
  hands over the WKB without MySQL's SRID prefix, as a `Geometry` str carrying a non-zero SRID;
  Debezium writes null for SRID 0).

Where Debezium loses data we stay lossless and consistent (docs/event-format.md lists the cases):
PG `B'0000'` is one zero byte ("AA==") where Debezium writes "", 2-D arrays stay nested, MySQL
unsigned BIGINT stays exact, PG `infinity` dates and timestamps stay "infinity"/"-infinity" (as
Debezium's timestamptz does), and columns of types Debezium drops keep their readable text form.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

import orjson

from cdc.codecs import USECS_PER_DAY, USECS_PER_SEC, days_from_civil
from cdc.events import UNAVAILABLE_VALUE, Column, TableSchema
from cdc.registry import debezium_profile

__all__ = [
    "DebeziumProfile",
    "row_converter",
    "full_row_converter",
    "column_converter",
    "date_to_days",
    "time_to_micros",
    "timestamp_to_epoch_micros",
    "timestamptz_to_debezium",
    "timetz_to_debezium",
    "bits_to_debezium",
    "bits_value",
    "interval_to_debezium",
    "money_to_decimal_string",
    "decimal_to_debezium",
    "Geometry",
    "geometry_to_debezium",
    "geometry_value",
    "hstore_to_json",
    "debezium_table_change",
]

Converter = Callable[[Any], Any]


@dataclass(slots=True, frozen=True)
class DebeziumProfile:
    """What Debezium's connector for one engine writes differently; each connector declares its own
    (`connectors/<engine>/debezium.py`, found through `cdc.registry.debezium_profile`)."""

    # Fractional digits of a time/timestamp column whose type does not say (PG 6, MySQL 0).
    default_precision: int
    # `time.precision.mode=adaptive` (PG): time(0..3) as milliseconds past midnight; else always microseconds.
    time_millis_up_to_precision_3: bool
    # Longer bit strings padded to ceil(n/8) bytes (MySQL), else as few bytes as the value needs (PG).
    pad_bits: bool
    # Decimal special values NaN/±Infinity written by Debezium's names (PG numeric has them).
    decimal_special_names: bool
    # Geometry as Debezium's `{"wkb": ..., "srid": ...}` struct (MySQL spatial types).
    geometry_struct: bool

_EPOCH_ORDINAL = 719_163
_EPOCH = datetime(1970, 1, 1)
_ONE_MICROSECOND = timedelta(microseconds=1)
_date_fromisoformat = date.fromisoformat
_datetime_fromisoformat = datetime.fromisoformat
_UNAVAILABLE_BYTES = binascii.b2a_base64(UNAVAILABLE_VALUE.encode("utf-8"), newline=False).decode("ascii")
_INFINITIES = ("infinity", "-infinity")


# --- parsing the readable forms ---


def _parse_year(text: str) -> int:
    return int(text)  # "+10000", "-0043", "2024" all parse


def date_to_days(text: str) -> int | str:
    """Readable date ("2024-02-29", "-0043-03-15") to days since 1970-01-01; infinities kept."""
    if len(text) == 10 and text[4] == "-" and text[0] != "0":
        try:
            return _date_fromisoformat(text).toordinal() - _EPOCH_ORDINAL
        except ValueError:  # MySQL's partial zero dates ("2024-00-00") take the long way
            pass
    if text in _INFINITIES:
        return text
    year_text, month_text, day_text = text.rsplit("-", 2)
    return days_from_civil(_parse_year(year_text), int(month_text), int(day_text))


def time_to_micros(text: str) -> int:
    """Readable time ("13:45:00.123456", "-838:59:59", "24:00:00") to signed microseconds."""
    size = len(text)
    if size == 8 and text[2] == ":":
        return ((int(text[:2]) * 60 + int(text[3:5])) * 60 + int(text[6:8])) * USECS_PER_SEC
    if size == 15 and text[2] == ":":
        return ((int(text[:2]) * 60 + int(text[3:5])) * 60 + int(text[6:8])) * USECS_PER_SEC + int(text[9:])
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    hour_text, minute_text, second_text = text.split(":")
    seconds, _, fraction = second_text.partition(".")
    micros = ((int(hour_text) * 60 + int(minute_text)) * 60 + int(seconds)) * USECS_PER_SEC
    if fraction:
        micros += int((fraction + "000000")[:6])
    return -micros if negative else micros


def timestamp_to_epoch_micros(text: str) -> int | str:
    """Readable timestamp ("2024-02-29T13:45:00.123456", optional "Z") to epoch microseconds."""
    if text[4:5] == "-" and text[0] != "0" and (len(text) in (19, 26) or text[-1] == "Z" and len(text) in (20, 27)):
        try:
            return (_datetime_fromisoformat(text[:-1] if text[-1] == "Z" else text) - _EPOCH) // _ONE_MICROSECOND
        except ValueError:
            pass
    if text in _INFINITIES:
        return text
    day_text, _, clock = text.partition("T")
    if clock.endswith("Z"):
        clock = clock[:-1]
    days = date_to_days(day_text)
    return days * USECS_PER_DAY + time_to_micros(clock)  # type: ignore[operator]


def timestamptz_to_debezium(text: str, precision: int) -> str:
    """Readable UTC timestamp to Debezium's ZonedTimestamp: exactly `precision` fraction digits."""
    if precision == 6 and text[4:5] == "-":
        if len(text) == 27:
            return text
        if len(text) == 20:
            return text[:-1] + ".000000Z"
    if text in _INFINITIES:
        return text
    body = text[:-1] if text.endswith("Z") else text
    whole, _, fraction = body.partition(".")
    if 1 <= precision <= 9:
        return f"{whole}.{(fraction + '000000000')[:precision]}Z"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def timetz_to_debezium(text: str) -> str:
    """Readable UTC time ("11:45:00.120000Z") to Debezium's ZonedTime ("11:45:00.12Z")."""
    body = text[:-1] if text.endswith("Z") else text
    whole, _, fraction = body.partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def bits_to_debezium(text: str, length: int | None, engine: str) -> bool | str:
    """Readable bits ("0101") to Debezium as its connector for `engine` writes them (see `bits_value`)."""
    return bits_value(text, length, debezium_profile(engine).pad_bits)


def bits_value(text: str, length: int | None, pad: bool) -> bool | str:
    """Readable bits ("0101") to Debezium: bit(1) → boolean, else little-endian bytes in base64.

    `pad` (MySQL): padded to ceil(n/8) bytes, as Debezium does; else (PG) as few bytes as the highest
    set bit needs, but at least one (Debezium writes "" for an all-zero string, losing it).
    """
    if length == 1:
        return "1" in text
    if not text:
        return ""
    value = int(text, 2)
    if pad:
        size = ((length or len(text)) + 7) // 8
    else:
        size = max(1, (value.bit_length() + 7) // 8)
    return binascii.b2a_base64(value.to_bytes(size, "little"), newline=False).decode("ascii")


def _interval_fields(text: str) -> tuple[int, int, int, int, int, str]:
    """(years, months, days, hours, minutes, seconds text) of PG's iso_8601 interval output."""
    years = months = days = hours = minutes = 0
    seconds = "0"
    date_part, _, time_part = text[1:].partition("T")
    number = ""
    for char in date_part:
        if char in "YMD":
            if char == "Y":
                years = int(number)
            elif char == "M":
                months = int(number)
            else:
                days = int(number)
            number = ""
        else:
            number += char
    for char in time_part:
        if char in "HMS":
            if char == "H":
                hours = int(number)
            elif char == "M":
                minutes = int(number)
            else:
                seconds = number
            number = ""
        else:
            number += char
    return years, months, days, hours, minutes, seconds


def interval_to_debezium(text: str) -> str:
    """PG iso_8601 interval ("P1Y2M3DT4H5M6.7S", "PT0S") to Debezium's "P1Y2M3DT4H5M6.7S" (all fields)."""
    if text in _INFINITIES:
        return text
    years, months, days, hours, minutes, seconds = _interval_fields(text)
    if "." in seconds:
        seconds = seconds.rstrip("0").rstrip(".")
    if seconds in ("", "-", "-0"):
        seconds = "0"
    return f"P{years}Y{months}M{days}DT{hours}H{minutes}M{seconds}S"


def money_to_decimal_string(text: str) -> str:
    """PG money text ("$1,234.56", "-$1,234.56", "($1.00)") to a plain decimal string ("-1234.56")."""
    negative = text.startswith("-") or text.startswith("(")
    digits = "".join(char for char in text if char.isdigit() or char == ".")
    return "-" + digits if negative else digits


_DECIMAL_SPECIALS = {"NaN": "NAN", "Infinity": "POSITIVE_INFINITY", "-Infinity": "NEGATIVE_INFINITY"}


def decimal_to_debezium(text: str) -> str:
    """PG numeric text to Debezium's string mode: exact digits kept, NaN/±Infinity by their Java names."""
    return _DECIMAL_SPECIALS.get(text, text)


class Geometry(str):
    """A MySQL geometry's readable value with a non-zero SRID: the base64 WKB (a `str`, so compat
    "none" writes the same JSON string) that also carries the SRID MySQL stores before the WKB, for
    Debezium's Geometry struct. The decoders hand over a plain `str` for SRID 0."""

    srid: int

    def __new__(cls, wkb: str, srid: int) -> Geometry:
        value = super().__new__(cls, wkb)
        value.srid = srid
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Geometry, (str(self), self.srid))


def geometry_value(wkb: str, srid: int) -> str:
    """The readable geometry value: base64 WKB, a `Geometry` carrying `srid` when it is not 0."""
    return Geometry(wkb, srid) if srid else wkb


def geometry_to_debezium(wkb: str) -> dict[str, Any]:
    """MySQL geometry (base64 WKB) to Debezium's Geometry struct: `srid` null for SRID 0, as Debezium."""
    return {"wkb": wkb, "srid": getattr(wkb, "srid", None) or None}


def hstore_to_json(text: str) -> str:
    """PG hstore text (`"a"=>"1", "b"=>NULL`) to the JSON string Debezium's hstore mode json writes."""
    pairs: dict[str, str | None] = {}
    index, size = 0, len(text)

    def token() -> str | None:
        nonlocal index
        while text[index] in " ,":
            index += 1
        if text.startswith("NULL", index):
            index += 4
            return None
        index += 1  # opening quote
        out = []
        while text[index] != '"':
            if text[index] == "\\":
                index += 1
            out.append(text[index])
            index += 1
        index += 1
        return "".join(out)

    while index < size and text[index:].strip(" ,"):
        name = token()
        index = text.index("=>", index) + 2
        pairs[name or ""] = token()
    return orjson.dumps(pairs).decode("utf-8")


# --- per column ---


def _is_zoned_time(column: Column) -> bool:
    source = column.source_type.lower()
    return "tz" in source or "with time zone" in source


def column_converter(column: Column, engine: str, kind: str | None = None) -> Converter | None:
    """The readable → Debezium conversion for one column's values, or None when they are equal."""
    return _column_converter(column, debezium_profile(engine), kind)


def _column_converter(column: Column, profile: DebeziumProfile, kind: str | None = None) -> Converter | None:
    kind = kind or column.kind
    if column.source_type == "hstore" and kind != "array":
        return hstore_to_json
    precision = column.precision if column.precision is not None else profile.default_precision
    if kind == "date":
        return date_to_days
    if kind == "time":
        if _is_zoned_time(column):
            return timetz_to_debezium
        if profile.time_millis_up_to_precision_3 and precision <= 3:
            return lambda text: time_to_micros(text) // 1000
        return time_to_micros
    if kind == "timestamp":
        if precision <= 3:
            return _timestamp_to_epoch_millis
        return timestamp_to_epoch_micros
    if kind == "timestamptz":
        return lambda text: timestamptz_to_debezium(text, precision)
    if kind == "bits":
        length = column.length
        pad = profile.pad_bits
        return lambda text: bits_value(text, length, pad)
    if kind == "interval":
        return interval_to_debezium
    if kind == "money":
        return money_to_decimal_string
    if kind == "decimal" and profile.decimal_special_names:
        return decimal_to_debezium
    if kind == "geometry" and profile.geometry_struct:
        return geometry_to_debezium
    if kind == "array" and column.element:
        element = _column_converter(column, profile, column.element)
        if element is None:
            return None
        return lambda value: _convert_array(value, element)
    return None


def _timestamp_to_epoch_millis(text: str) -> int | str:
    micros = timestamp_to_epoch_micros(text)
    return micros if isinstance(micros, str) else micros // 1000


def _convert_array(value: Any, element: Converter) -> Any:
    if isinstance(value, list):
        return [_convert_array(item, element) for item in value]
    if value is None:
        return None
    return element(value)


def _placeholder(column: Column) -> Any:
    """What Debezium writes for an unchanged TOAST value of this column."""
    if column.kind == "bytes":
        return _UNAVAILABLE_BYTES
    if column.kind == "array":
        return [UNAVAILABLE_VALUE]
    return UNAVAILABLE_VALUE


def row_converter(table: TableSchema) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """A function turning a readable row (or key) dict into Debezium's forms; None if none differ."""
    plan = []
    profile = debezium_profile(table.engine)
    for column in table.columns:
        converter = _column_converter(column, profile)
        placeholder = _placeholder(column)
        if converter is not None or placeholder is not UNAVAILABLE_VALUE:
            plan.append((column.name, converter, placeholder))
    if not plan:
        return None
    steps = tuple(plan)

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for name, converter, placeholder in steps:
            value = row.get(name)
            if value is None:
                continue
            if value == UNAVAILABLE_VALUE:
                out[name] = placeholder
            elif converter is not None:
                out[name] = converter(value)
        return out

    return convert


def full_row_converter(table: TableSchema) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`row_converter` for whole rows: also every column of the table, in order, absent ones null.

    Debezium's JSON converter writes its row struct whole, so a row the source gave partly (PG
    `before` under REPLICA IDENTITY DEFAULT: the key only) has the other columns as null. Keys go
    through `row_converter`, which keeps only the fields given.
    """
    convert = row_converter(table)
    names = table.column_names
    count = len(names)

    def full_row(row: dict[str, Any]) -> dict[str, Any]:
        if len(row) != count:
            row = {name: row.get(name) for name in names}
        return convert(row) if convert is not None else row

    return full_row


# --- schema history (MySQL DDL topic in debezium compat) ---

# java.sql.Types as Debezium's MySQL connector reports them (measured against Debezium 3.6.3):
# TINYINT is reported as SMALLINT, FLOAT as FLOAT (6), BLOB as BLOB (2004).
_JDBC_TYPES = {
    "boolean": 16,
    "decimal": 3,
    "string": 12,
    "enum": 1,
    "set": 1,
    "bytes": -3,
    "bits": -7,
    "date": 91,
    "time": 92,
    "timestamp": 93,
    "timestamptz": 2014,
    "json": 1111,
    "year": 4,
}
_JDBC_INT = {1: 5, 2: 5, 3: 4, 4: 4, 8: -5}
# Display widths Debezium gives integer columns: (signed, unsigned) per byte width.
_INT_DISPLAY = {1: (4, 3), 2: (6, 5), 3: (9, 8), 4: (11, 10), 8: (20, 20)}
_LOB_PREFIXES = ("tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json")


def _jdbc_type(column: Column) -> int:
    source = column.source_type.lower()
    if column.kind == "int":
        return _JDBC_INT.get(column.length or 4, 4)
    if column.kind == "float":
        return 6 if column.length == 4 else 8
    if column.kind == "string" and source.startswith("char"):
        return 1
    if column.kind == "bytes":
        if source.startswith("binary"):
            return -2
        if "blob" in source:
            return 2004
    return _JDBC_TYPES.get(column.kind, 1111)


def _column_length(column: Column) -> int | None:
    """Debezium's `length`: display width of ints, digits of decimals, fraction digits of times, ..."""
    source = column.source_type.lower()
    if column.kind == "int":
        width = source.partition("(")[2].partition(")")[0]
        if width.isdigit():  # "tinyint(1)": a declared display width
            return int(width)
        signed, unsigned = _INT_DISPLAY.get(column.length or 4, (11, 10))
        return unsigned if column.unsigned else signed
    if column.kind == "decimal":
        return column.precision
    if column.kind == "float":
        return None
    if column.kind in ("time", "timestamp", "timestamptz"):
        return column.precision or None
    if column.kind == "year":
        return 4
    if column.kind in ("enum", "set") and column.values:
        if column.kind == "enum":
            return max(len(value) for value in column.values)
        return len(",".join(column.values))
    if source.startswith(_LOB_PREFIXES):
        return None
    return column.length


def _default_charset(table: TableSchema) -> str | None:
    """The table's default character set, as far as the columns tell: the most common text charset."""
    counts: dict[str, int] = {}
    for column in table.columns:
        if column.charset and column.charset != "binary" and column.kind in ("string", "enum", "set", "json"):
            counts[column.charset] = counts.get(column.charset, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None


def debezium_table_change(table: TableSchema, change_type: str = "ALTER",
                          details: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One `tableChanges` entry as Debezium's schema history writes it, from our schema (the table's
    default charset inferred from its columns). `details` (column name -> fields) gives what the
    schema does not carry, e.g. read from information_schema: defaults, comments, auto-increment,
    generated columns, declared display widths; without it those fields are null/false."""
    default_charset = _default_charset(table)
    columns = []
    for position, column in enumerate(table.columns, start=1):
        type_name = column.source_type.split("(")[0].upper()
        charset = None if column.charset == "binary" else column.charset
        if column.kind in ("enum", "set") and charset is None:
            charset = default_charset
        enum_values = None
        if column.values is not None:
            enum_values = ["'" + value.replace("'", "''") + "'" for value in column.values]
        columns.append(
            {
                "name": column.name,
                "jdbcType": _jdbc_type(column),
                "nativeType": None,
                "typeName": type_name,
                "typeExpression": type_name,
                "charsetName": charset,
                "length": _column_length(column),
                "scale": column.scale,
                "position": position,
                "optional": column.nullable,
                "autoIncremented": False,
                "generated": False,
                "comment": None,
                "defaultValueExpression": None,
                "enumValues": enum_values,
            }
        )
        if details and column.name in details:
            columns[-1].update(details[column.name])
    key = list(table.primary_key) or [c.name for c in table.columns if c.primary_key]
    return {
        "type": change_type,
        "id": f'"{table.namespace}"."{table.name}"',
        "table": {
            "defaultCharsetName": default_charset,
            "primaryKeyColumnNames": key,
            "columns": columns,
            "comment": None,
        },
    }
