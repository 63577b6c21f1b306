"""Signals that start or stop an incremental snapshot: their JSON form, parsed against a closed set.

A signal is `{"id": "...", "type": "execute-snapshot" | "stop-snapshot", "prefix": "...", "data": {...}}`
with `data` = `{"data-collections": ["ns.table", ...], "additional-condition": "...", "chunk-rows": N,
"max-rows-per-second": N}` (Debezium's names where Debezium has one). It travels in the source
(PG: a logical message; MySQL/MariaDB: a row of the signal table) or on `<prefix>.signals`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from cdc.errors import ConfigError

EXECUTE = "execute-snapshot"
STOP = "stop-snapshot"
SIGNAL_TYPES = (EXECUTE, STOP)
DEFAULT_CHUNK_ROWS = 50_000
MAX_CHUNK_ROWS = 1_000_000
_TABLE = re.compile(r"[^.\s]+\.[^.\s]+")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DATA_FIELDS = {"data-collections", "additional-condition", "chunk-rows", "max-rows-per-second", "key-ranges"}


@dataclass(slots=True, frozen=True)
class SnapshotSignal:
    """One signal for the capture named `prefix`: start (`execute-snapshot`) or stop an incremental snapshot."""

    id: str
    type: str
    prefix: str
    tables: tuple[str, ...] = ()
    where: str | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    max_rows_per_second: float = 0.0
    # per table: [(low key, high key)], keys as lists of values, both ends inclusive, None: open (`cdc verify --resync`)
    key_ranges: tuple[tuple[str, tuple[tuple[Any, Any], ...]], ...] = ()

    def to_json(self) -> bytes:
        """The signal's JSON form (what `parse_signal` reads back)."""
        data: dict[str, Any] = {"data-collections": list(self.tables), "chunk-rows": self.chunk_rows}
        if self.where:
            data["additional-condition"] = self.where
        if self.max_rows_per_second:
            data["max-rows-per-second"] = self.max_rows_per_second
        if self.key_ranges:
            data["key-ranges"] = {table: [list(r) for r in ranges] for table, ranges in self.key_ranges}
        return orjson.dumps({"id": self.id, "type": self.type, "prefix": self.prefix, "data": data})


def new_signal(type_: str, prefix: str, tables: tuple[str, ...] = (), *, where: str | None = None,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, max_rows_per_second: float = 0.0,
               key_ranges: dict[str, list[tuple[Any, Any]]] | None = None) -> SnapshotSignal:
    """A new signal with a fresh id, validated as `parse_signal` would."""
    signal = SnapshotSignal(uuid.uuid4().hex[:16], type_, prefix, tuple(tables), where, chunk_rows,
                            max_rows_per_second,
                            tuple((t, tuple((lo, hi) for lo, hi in r)) for t, r in (key_ranges or {}).items()))
    return parse_signal(signal.to_json(), allow_where=True)


def parse_signal(raw: bytes | str | dict[str, Any], *, allow_where: bool) -> SnapshotSignal:
    """The signal in `raw`; ConfigError naming what is wrong. `allow_where=False` (signals from Kafka,
    whose writer need not be trusted with SQL on the source) refuses an additional condition."""
    try:
        message = raw if isinstance(raw, dict) else orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"signal is not JSON: {exc}", fix="send the JSON `cdc snapshot` writes") from None
    if not isinstance(message, dict):
        raise ConfigError("signal is not a JSON object", fix="send the JSON `cdc snapshot` writes")
    signal_id, type_, prefix = message.get("id"), message.get("type"), message.get("prefix")
    if not isinstance(signal_id, str) or not _ID.fullmatch(signal_id):
        raise ConfigError(f"signal id {signal_id!r} is not 1-64 letters, digits or _.:-", fix="give a short id")
    if type_ not in SIGNAL_TYPES:
        raise ConfigError(f"signal type {type_!r} is not one of {', '.join(SIGNAL_TYPES)}")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError("signal has no prefix", fix="name the capture's --prefix in the signal")
    data = message.get("data") or {}
    if not isinstance(data, dict) or set(data) - _DATA_FIELDS:
        raise ConfigError(f"signal data has unknown fields {sorted(set(data) - _DATA_FIELDS) if isinstance(data, dict) else data!r}",
                          fix=f"use only {', '.join(sorted(_DATA_FIELDS))}")
    tables = data.get("data-collections") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) and _TABLE.fullmatch(t) for t in tables):
        raise ConfigError(f"signal tables {tables!r} are not a list of namespace.table names",
                          fix="name tables as schema.table (PostgreSQL) or db.table (MySQL/MariaDB)")
    if type_ == EXECUTE and not tables:
        raise ConfigError("execute-snapshot names no table", fix="give --tables")
    where = data.get("additional-condition")
    if where is not None and (not isinstance(where, str) or not where.strip()):
        raise ConfigError("the additional condition must be a non-empty SQL condition")
    if where is not None and not allow_where:
        raise ConfigError("a signal from Kafka may not carry an SQL condition (additional-condition)",
                          fix="send conditional snapshots through the source (`cdc snapshot --source ... --where`)")
    chunk_rows = data.get("chunk-rows", DEFAULT_CHUNK_ROWS)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        raise ConfigError(f"chunk-rows {chunk_rows!r} is not an integer from 1 to {MAX_CHUNK_ROWS}")
    rate = data.get("max-rows-per-second", 0)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
        raise ConfigError(f"max-rows-per-second {rate!r} is not a number >= 0 (0: no limit)")
    ranges = data.get("key-ranges") or {}
    if not isinstance(ranges, dict) or any(
            t not in tables or not isinstance(r, list)
            or not all(isinstance(pair, list) and len(pair) == 2 and all(end is None or isinstance(end, list)
                                                                        for end in pair) for pair in r)
            for t, r in ranges.items()):
        raise ConfigError("key-ranges must map a signalled table to [[low key, high key], ...] (key = list of values)")
    return SnapshotSignal(signal_id, type_, prefix, tuple(tables), where, chunk_rows, float(rate),
                          tuple((t, tuple((lo, hi) for lo, hi in r)) for t, r in ranges.items()))
