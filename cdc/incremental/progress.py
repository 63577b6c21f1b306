"""Where an incremental snapshot stands, stored beside the capture's position in `__cdc-offsets.<prefix>`.

The record is written once Kafka acknowledged every event of the chunks it counts, so a capture
killed mid-snapshot resumes at the next chunk (the chunk in flight is read again: duplicates, never a gap).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cdc.offsets import OffsetStore

RUNNING, DONE, STOPPED, IDLE = "running", "done", "stopped", "idle"
SEEN_SIGNALS = 32  # signal ids remembered, so a signal read again after a restart is not run twice


@dataclass(slots=True, frozen=True)
class SnapshotProgress:
    """One incremental snapshot: its tables, the table and key range being read, the last key emitted."""

    signal_id: str
    tables: tuple[str, ...]
    where: str | None = None
    chunk_rows: int = 50_000
    max_rows_per_second: float = 0.0
    # per table index: the key ranges (low, high) to read, keys >= low and <= high (None: open); () the whole table
    ranges: tuple[tuple[tuple[Any, Any], ...], ...] = ()
    table_index: int = 0
    range_index: int = 0
    after: Any = None  # the last key emitted in the current range (a list of key values), None at its start
    rows: int = 0
    status: str = RUNNING
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    seen: tuple[str, ...] = ()
    known_tables: tuple[str, ...] = ()  # the captured tables last seen: one added later is snapshotted

    @property
    def table(self) -> str | None:
        """The table being read, None when every table is done."""
        return self.tables[self.table_index] if self.table_index < len(self.tables) else None

    def current_range(self) -> tuple[Any, Any, Any]:
        """(after, low, high) of the next chunk: keys > after (the last key emitted, None at the range's
        start), >= low and <= high (the range's ends, None: open)."""
        ranges = self.ranges[self.table_index] if self.table_index < len(self.ranges) else ()
        low, high = ranges[self.range_index] if ranges else (None, None)
        return self.after, low, high

    def advanced(self, last_key: Any, rows: int, exhausted: bool) -> SnapshotProgress:
        """After one chunk: its last key, or the next range/table when the range is exhausted."""
        now = time.time()
        if not exhausted:
            return replace(self, after=last_key, rows=self.rows + rows, updated_at=now)
        ranges = self.ranges[self.table_index] if self.table_index < len(self.ranges) else ()
        if self.range_index + 1 < len(ranges):
            index = self.range_index + 1
            return replace(self, range_index=index, after=None, rows=self.rows + rows, updated_at=now)
        table_index = self.table_index + 1
        after = None
        status = DONE if table_index >= len(self.tables) else RUNNING
        return replace(self, table_index=table_index, range_index=0, after=after, rows=self.rows + rows,
                       status=status, updated_at=now)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SnapshotProgress:
        """Read back what `to_dict` stored (unknown fields ignored)."""
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        known["tables"] = tuple(known.get("tables", ()))
        known["seen"] = tuple(known.get("seen", ()))
        known["known_tables"] = tuple(known.get("known_tables", ()))
        known["ranges"] = tuple(tuple(tuple(pair) for pair in table) for table in known.get("ranges", ()))
        return cls(**known)


class ProgressStore:
    """The incremental-snapshot record of one capture in `__cdc-offsets.<prefix>` (its own key)."""

    def __init__(self, bootstrap: str, prefix: str, backend: str | None = None) -> None:
        self.store = OffsetStore(bootstrap, prefix, "incremental-snapshot", backend)

    def record(self, progress: SnapshotProgress) -> tuple[str, bytes, bytes, list]:
        """The Kafka record storing `progress`."""
        return self.store.record(progress.to_dict())

    def ensure_topic(self) -> None:
        self.store.ensure_topic()

    def load(self, timeout: float = 30.0) -> SnapshotProgress | None:
        """The stored progress, None when no incremental snapshot ever ran."""
        value = self.store.load(timeout)
        return SnapshotProgress.from_dict(value) if value else None
