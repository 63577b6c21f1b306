"""`cdc verify --resync`: turn a report's differences into an incremental-snapshot signal for the capture."""

from __future__ import annotations

from typing import Any

from cdc.incremental.signals import EXECUTE, SnapshotSignal, new_signal
from cdc.registry import incremental_module
from cdc.urls import parse_url


def resync_ranges(report: dict[str, Any], default_namespace: str) -> dict[str, list[tuple[Any, Any]] | None]:
    """Per differing table (namespace.table): the key ranges to snapshot again, one per differing key,
    or None for the whole table (differences not all listed, or a table without a key)."""
    ranges: dict[str, list[tuple[Any, Any]] | None] = {}
    for table in report["tables"]:
        if table["status"] in ("equal", "error"):
            continue
        name = table["name"] if "." in table["name"] else f"{default_namespace}.{table['name']}"
        rows = table["rows"]
        key = table["key"]
        if table["rows_truncated"] or not key or not rows or any(row.get("count", 1) != 1 for row in rows):
            ranges[name] = None
            continue
        keys = {tuple(row["key"][column] for column in key) for row in rows}
        try:
            keys = sorted(keys)
        except TypeError:  # mixed value types (a NULL in a key column): any fixed order will do
            keys = sorted(keys, key=repr)
        ranges[name] = [(list(k), list(k)) for k in keys]
    return ranges


def request_resync(report: dict[str, Any], source_url: str, prefix: str) -> SnapshotSignal | None:
    """Send the capture `prefix` an incremental snapshot of what `report` found different; None when nothing."""
    url = parse_url(source_url, what="--source")
    engine = incremental_module(source_url)
    ranges = resync_ranges(report, engine.default_namespace(url))
    if not ranges:
        return None
    signal = new_signal(EXECUTE, prefix, tuple(ranges),
                        key_ranges={table: r for table, r in ranges.items() if r is not None})
    engine.send_signal(url, signal)
    return signal
