"""What the envelope precomputes once per table schema: topic, key columns and their JSON heads,
headers, value converters; and the key tests every encoder shares."""

from __future__ import annotations

from typing import Any

import orjson

from cdc.envelope.record import SCHEMA_VERSION_HEADER
from cdc.events import TableSchema

_dumps = orjson.dumps


class _TablePlan:
    """What the envelope precomputes once per table schema: topic, key columns, headers, converters."""

    __slots__ = ("table", "topic", "key_columns", "key_single", "key_heads", "headers", "convert", "convert_row", "row")

    def __init__(self, table: TableSchema, topic: str, convert: Any, convert_row: Any = None) -> None:
        self.table = table
        self.topic = topic
        self.key_columns = _key_columns(table)
        self.key_single = self.key_columns[0] if len(self.key_columns) == 1 else None
        self.key_heads = _key_heads(self.key_columns)
        self.headers = [(SCHEMA_VERSION_HEADER, str(table.version).encode("ascii"))]
        self.convert = convert  # keys: the given fields only
        self.convert_row = convert_row  # before/after: every column, in table order
        self.row = self.row_parts()

    def row_parts(self) -> tuple:
        """What `RowEncoder.records` reads, in one tuple: table, topic, headers, key columns and heads, converter."""
        return (self.table, self.topic, self.headers, self.key_columns, self.key_heads, self.convert_row)


def _key_heads(columns: tuple[str, ...]) -> tuple[bytes, ...]:
    """What precedes each key value in the key's JSON: `{"id":`, then `,"region":`, ..."""
    return tuple((b"{" if index == 0 else b",") + _dumps(name) + b":" for index, name in enumerate(columns))


def _key_columns(table: TableSchema) -> tuple[str, ...]:
    """The key's columns: `TableSchema.primary_key` order, else the flagged columns in table order."""
    if table.primary_key:
        return tuple(table.primary_key)
    return tuple(column.name for column in table.columns if column.primary_key)


def _key_changed(columns: tuple[str, ...], before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    """True when `before` carries the key and it differs from `after`'s (a primary-key update)."""
    if after is None:
        return False
    for name in columns:
        old = before.get(name)
        if old is not None and old != after.get(name):
            return True
    return False
