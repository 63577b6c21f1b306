"""Closed-set checks of a `<prefix>.schemas` record before it becomes a TableSchema (docs/security.md).

Anything that can write to Kafka can write a schema record, and apply turns schema records into DDL
(CREATE TABLE, ADD COLUMN, ALTER TYPE). So every field is checked against a closed set first: engine
and kinds from the known lists, `length`/`precision`/`scale`/`version` real integers in range (a bool
is not an integer), names bounded strings without NUL, flags real booleans, enum members bounded
strings. A record that fails is refused with the field and the reason; it never reaches SQL.
"""

from __future__ import annotations

import re
from typing import Any

from cdc.registry import ENGINES

MAX_NAME_CHARS = 128      # PG names are at most 63 bytes, MySQL 64 characters: 128 leaves room, bounds the rest
MAX_SOURCE_TYPE_CHARS = 256
MAX_COLUMNS = 4096        # MySQL's limit (PG: 1600)
MAX_MEMBERS = 65535       # MySQL ENUM's limit
MAX_MEMBER_CHARS = 1024
MAX_VERSION = 2**31 - 1
# Inclusive ranges of the integer parameters: the widest either engine accepts for any type.
RANGES = {
    "length": (0, 2**32),            # bytes of LONGBLOB; PG bit(n) up to 83886080; varchar(n) up to 10485760
    "precision": (0, 1000),          # PG numeric precision; time precision 0..6 is clamped later
    "scale": (-1000, 1000),          # PG 15 allows a negative scale
}
_CHARSET = re.compile(r"[A-Za-z0-9_]{1,64}")


class InvalidSchemaRecord(ValueError):
    """A schema record with a field outside its closed set: a bad event, never SQL."""


def check_table_record(data: Any, kinds: tuple[str, ...]) -> None:
    """Raise InvalidSchemaRecord naming the first field of a schema record that is not allowed."""
    if type(data) is not dict:
        raise InvalidSchemaRecord("a schema record must be a JSON object")
    engine = data.get("engine")
    if engine not in ENGINES:
        raise InvalidSchemaRecord(f"engine {_show(engine)} is not one of {', '.join(ENGINES)}")
    _name(data, "namespace", "namespace")
    _name(data, "table", "table")
    if data.get("database", "") != "":
        _name(data, "database", "database")
    version = data.get("version", 1)
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise InvalidSchemaRecord(f"version {_show(version)} is not an integer between 1 and {MAX_VERSION}")
    columns = data.get("columns")
    if type(columns) is not list or not 1 <= len(columns) <= MAX_COLUMNS:
        raise InvalidSchemaRecord(f"columns must be a list of 1 to {MAX_COLUMNS} column objects")
    names: set[str] = set()
    for column in columns:
        if type(column) is not dict:
            raise InvalidSchemaRecord("each column must be a JSON object")
        name = _name(column, "name", "column name")
        if name in names:
            raise InvalidSchemaRecord(f"column {name!r} appears twice")
        names.add(name)
        _column(column, name, kinds)
    primary_key = data.get("primary_key", [])
    if type(primary_key) is not list or any(type(k) is not str or k not in names for k in primary_key):
        raise InvalidSchemaRecord(f"primary_key {_show(primary_key)} must list names of the record's columns")


def _column(column: dict[str, Any], name: str, kinds: tuple[str, ...]) -> None:
    where = f"column {name!r}"
    if column.get("kind") not in kinds:
        raise InvalidSchemaRecord(f"{where}: kind {_show(column.get('kind'))} is not a known kind")
    element = column.get("element")
    if element is not None and element not in kinds:
        raise InvalidSchemaRecord(f"{where}: element {_show(element)} is not a known kind")
    source_type = column.get("source_type")
    if type(source_type) is not str or not 0 < len(source_type) <= MAX_SOURCE_TYPE_CHARS or _has_control(source_type):
        raise InvalidSchemaRecord(f"{where}: source_type must be a string of 1 to {MAX_SOURCE_TYPE_CHARS} characters")
    for field, (low, high) in RANGES.items():
        value = column.get(field)
        if value is not None and (type(value) is not int or not low <= value <= high):
            raise InvalidSchemaRecord(f"{where}: {field} {_show(value)} is not an integer between {low} and {high}")
    for field in ("nullable", "primary_key", "unsigned"):
        value = column.get(field)
        if value is not None and type(value) is not bool:
            raise InvalidSchemaRecord(f"{where}: {field} {_show(value)} is not true or false")
    charset = column.get("charset")
    if charset is not None and (type(charset) is not str or not _CHARSET.fullmatch(charset)):
        raise InvalidSchemaRecord(f"{where}: charset {_show(charset)} is not a character set name")
    values = column.get("values")
    if values is not None:
        if type(values) is not list or len(values) > MAX_MEMBERS:
            raise InvalidSchemaRecord(f"{where}: values must be a list of at most {MAX_MEMBERS} strings")
        for member in values:
            if type(member) is not str or len(member) > MAX_MEMBER_CHARS or "\x00" in member:
                raise InvalidSchemaRecord(f"{where}: values member {_show(member)} is not a string of at most"
                                          f" {MAX_MEMBER_CHARS} characters without NUL")


def _name(data: dict[str, Any], field: str, label: str) -> str:
    """A name field: a string of 1..MAX_NAME_CHARS characters without NUL (quoting does the rest)."""
    value = data.get(field)
    if type(value) is not str or not 0 < len(value) <= MAX_NAME_CHARS or "\x00" in value:
        raise InvalidSchemaRecord(f"{label} {_show(value)} is not a string of 1 to {MAX_NAME_CHARS} characters"
                                  " without NUL")
    return value


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 for ch in text)


def _show(value: Any) -> str:
    """The offending value for a message, cut short (it came from Kafka: it may be long or hostile)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
