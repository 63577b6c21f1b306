"""The `source` block of PostgreSQL events, as Debezium's PostgreSQL connector writes it."""

from __future__ import annotations

from typing import Any

import orjson

from cdc import __version__

CONNECTOR = "postgresql"
# The `source` fields that change between events (the rest is fixed per table): SourceTemplate values.
SOURCE_VARIABLE_FIELDS = ("ts_ms", "sequence", "ts_us", "ts_ns", "txId", "lsn")


def source_block(prefix: str, database: str, ts_us: int, snapshot: str, schema: str, table: str,
                 txid: int | None, lsn: int | None, last_commit_lsn: int | None) -> dict[str, Any]:
    """Debezium's PG `source` block, fields in Debezium 3.6's order (`origin`, `origin_lsn`: replication
    origin name and LSN, null as Debezium writes them for changes without a replication origin)."""
    sequence = orjson.dumps(
        [None if last_commit_lsn is None else str(last_commit_lsn), None if lsn is None else str(lsn)]
    ).decode()
    return {
        "version": __version__,
        "connector": CONNECTOR,
        "name": prefix,
        "ts_ms": ts_us // 1000,
        "snapshot": snapshot,
        "db": database,
        "sequence": sequence,
        "ts_us": ts_us,
        "ts_ns": ts_us * 1000,
        "schema": schema,
        "table": table,
        "txId": txid,
        "lsn": lsn,
        "xmin": None,
        "origin": None,
        "origin_lsn": None,
    }


def event_position(value: dict[str, Any]) -> tuple[int, int] | None:
    """(commit LSN, LSN) of a streamed change event: strictly increasing in commit order, and the same
    when a restarted capture sends the event again; None for snapshot reads (no position of their own).

    The commit LSN comes from the transaction id (`"<txId>:<commit LSN>"`); without transaction
    metadata, from `sequence` (the previous commit's LSN, which orders transactions the same way).
    """
    source = value.get("source") or {}
    if source.get("snapshot") not in (None, "false") or source.get("lsn") is None:
        return None
    transaction = value.get("transaction")
    if isinstance(transaction, dict) and isinstance(transaction.get("id"), str) and ":" in transaction["id"]:
        return int(transaction["id"].rpartition(":")[2]), int(source["lsn"])
    last_commit = orjson.loads(source.get("sequence") or "[null]")[0]
    return int(last_commit or 0), int(source["lsn"])
