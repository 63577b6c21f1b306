"""The `source` block of MySQL/MariaDB events, as Debezium's MySQL connector writes it."""

from __future__ import annotations

from typing import Any

from cdc import __version__

CONNECTOR = "mysql"


def source_block(prefix: str, *, ts_ms: int, snapshot: str, db: str, table: str | None, server_id: int,
                 gtid: str | None, file: str, pos: int, row: int, thread: int | None,
                 query: str | None = None) -> dict[str, Any]:
    """Debezium's MySQL `source` block, fields in Debezium 3.6's order."""
    return {
        "version": __version__,
        "connector": CONNECTOR,
        "name": prefix,
        "ts_ms": ts_ms,
        "snapshot": snapshot,
        "db": db,
        "sequence": None,
        "ts_us": ts_ms * 1000,
        "ts_ns": ts_ms * 1_000_000,
        "table": table,
        "server_id": server_id,
        "gtid": gtid,
        "file": file,
        "pos": pos,
        "row": row,
        "thread": thread,
        "query": query,
    }


def event_position(value: dict[str, Any]) -> tuple[int, int, int] | None:
    """(binlog file number, position, row) of a streamed change event: increasing in binlog order, and the
    same when a restarted capture reads the event again; None for snapshot reads."""
    source = value.get("source") or {}
    if source.get("snapshot") not in (None, "false") or not source.get("file"):
        return None
    number = source["file"].rpartition(".")[2]
    return int(number) if number.isdigit() else 0, int(source.get("pos") or 0), int(source.get("row") or 0)
