"""The binlog row decoder: TABLE_MAP bookkeeping around the compiled decoder or its pure-Python twin.

`cdc.impl.twin` picks the compiled `cdc._ext.binlog_rows` or its twin `connectors.mysql.decode` once,
at import; `CDC_PURE_PYTHON=1` forces the twin. `RowDecoder` keeps the TABLE_MAPs by table id, compiles
each table's column plan once (a TABLE_MAP repeats before every transaction: an identical body reuses
the compiled plan) and turns ROWS events into `(TableMap, [(before, after), ...])`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from cdc.impl import twin
from cdc.errors import DecodeError
from connectors.mysql.binlog import (
    DELETE_ROWS_V1,
    MARIADB_ROWS_COMPRESSED_V1,
    MARIADB_ROWS_COMPRESSED_V2,
    MAX_INFLATED_BYTES,
    UPDATE_ROWS_V1,
    WRITE_ROWS_V1,
    inflate,
)
from connectors.mysql.table_map import TableMap, parse_table_map

rows_impl: ModuleType = twin("connectors.mysql.decode")
IMPLEMENTATION: str = rows_impl.IMPLEMENTATION

# MariaDB compressed rows events (log_bin_compress=ON) -> the plain v1 type of their decompressed body.
_PLAIN_V1 = (WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1)
_UNCOMPRESSED = dict(zip(MARIADB_ROWS_COMPRESSED_V2 + MARIADB_ROWS_COMPRESSED_V1, _PLAIN_V1 + _PLAIN_V1))


def plain_rows_type(event_type: int) -> int:
    """The plain ROWS event type of a rows event type (a compressed one's uncompressed type)."""
    return _UNCOMPRESSED.get(event_type, event_type)


def decompress_rows_body(body: bytes, event_type: int, position: object = None) -> tuple[bytes, int]:
    """A MariaDB compressed ROWS event as its plain body and event type.

    MariaDB compresses only the row images: table id, flags, column count and bitmaps stay plain; then
    one byte 0x80|n, the uncompressed size in n big-endian bytes, and a zlib stream.
    """
    plain_type = _UNCOMPRESSED[event_type]
    at = 8
    if len(body) < at + 1:
        raise DecodeError("compressed rows event shorter than its header", position=position)
    count = body[at]
    at += 1
    if count >= 251:
        size = {252: 2, 253: 3, 254: 8}.get(count)
        if size is None or len(body) < at + size:
            raise DecodeError("compressed rows event has an invalid column count", position=position)
        count = int.from_bytes(body[at:at + size], "little")
        at += size
    at += ((count + 7) // 8) * (2 if plain_type == 24 else 1)
    if len(body) < at + 1:
        raise DecodeError("compressed rows event shorter than its header", position=position)
    flag = body[at]
    size_bytes = flag & 0x07
    if not flag & 0x80 or not 1 <= size_bytes <= 4 or len(body) < at + 1 + size_bytes:
        raise DecodeError("compressed rows event has an invalid compression header", position=position)
    expected = int.from_bytes(body[at + 1:at + 1 + size_bytes], "big")
    if expected > MAX_INFLATED_BYTES:
        raise DecodeError(f"compressed rows event claims {expected} bytes, over {MAX_INFLATED_BYTES}",
                          position=position)
    rows = inflate(body[at + 1 + size_bytes:], expected, "compressed rows event", position)
    if len(rows) != expected:
        raise DecodeError(f"compressed rows event inflates to {len(rows)} bytes, not {expected}", position=position)
    return body[:at] + rows, plain_type


class RowDecoder:
    """Decodes ROWS events against the TABLE_MAPs seen before them."""

    def __init__(
        self,
        *,
        implementation: ModuleType | None = None,
        mariadb: bool = True,
        collations: dict[int, str] | None = None,
        names_for: Callable[[str, str], tuple[str, ...] | None] | None = None,
    ) -> None:
        self.impl = implementation or rows_impl
        self.mariadb = mariadb
        self.collations = collations
        self.names_for = names_for  # (db, table) -> column names when the binlog lacks them
        self.tables: dict[int, TableMap] = {}
        self._plans: dict[int, Any] = {}
        self._bodies: dict[int, bytes] = {}

    def table_map(self, body: bytes, position: object = None) -> TableMap:
        """Record a TABLE_MAP event; returns the parsed TableMap (cached while its body is unchanged)."""
        table_id = int.from_bytes(body[:6], "little") if len(body) >= 6 else -1
        if self._bodies.get(table_id) == body:
            return self.tables[table_id]
        table = parse_table_map(body, position=position, mariadb=self.mariadb, collations=self.collations)
        if not table.has_names and self.names_for is not None:
            names = self.names_for(table.database, table.table)
            if names:
                table = parse_table_map(body, position=position, mariadb=self.mariadb,
                                        collations=self.collations, names=tuple(names))
        self.tables[table.table_id] = table
        self._plans[table.table_id] = self.impl.compile_plan(table.plan)
        self._bodies[table.table_id] = bytes(body)
        return table

    def forget_tables(self) -> None:
        """Drop every TABLE_MAP (table ids are reused after a server restart, which rotates the binlog)."""
        self.tables.clear()
        self._plans.clear()
        self._bodies.clear()

    def rows(self, body: bytes, event_type: int, position: object = None) -> tuple[TableMap, list[tuple]]:
        """Decode a ROWS event body: its TableMap and [(before, after), ...]."""
        body, event_type, table_id, plan = self._event(body, event_type, position)
        return self.tables[table_id], self.impl.decode_rows(plan, body, event_type, position)

    def _event(self, body: bytes, event_type: int, position: object) -> tuple[bytes, int, int, Any]:
        """A ROWS event's plain body and type, its table id and that table's compiled plan."""
        if event_type in _UNCOMPRESSED:
            body, event_type = decompress_rows_body(body, event_type, position)
        if len(body) < 6:
            raise DecodeError("rows event shorter than its table id", position=position)
        table_id = int.from_bytes(body[:6], "little")
        plan = self._plans.get(table_id)
        if plan is None:
            raise DecodeError(f"rows event for table id {table_id} without a TABLE_MAP before it", position=position)
        return body, event_type, table_id, plan

    def rows_json(self, body: bytes, event_type: int, key_names: tuple[str, ...], key_heads: tuple[bytes, ...],
                  position: object = None) -> tuple[TableMap, list[tuple]]:
        """`rows` with each row image as JSON bytes and each key as the envelope's key JSON:
        [(before, after, before_key, after_key), ...] (see `rows_json` of the decoder)."""
        body, event_type, table_id, plan = self._event(body, event_type, position)
        return self.tables[table_id], self.impl.rows_json(plan, body, event_type, key_names, key_heads, position)
