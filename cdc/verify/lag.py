"""`--wait-for-lag SECONDS`: before judging, let replication catch up with the source's current position.

Two things must have happened for the target to hold every change up to the source's position P
taken now:

1. capture has published everything up to P. Where the source database records how far capture
   confirmed (`EngineDialect.capture_confirmed`: PostgreSQL's logical slots confirm a flush LSN >= P;
   capture acknowledges a position only after Kafka acknowledged every event up to it; docs/architecture.md, guarantees), verify
   waits for it. A source that keeps its position in Kafka, not in the database
   (MySQL), skips this step.
2. apply has written what capture published. The apply workers keep `cdc_offsets` (group, topic,
   partition, next_offset, updated_at) in the target; verify does not talk to Kafka, so it waits
   until those offsets stop moving (two consecutive polls alike, `QUIET_SECONDS` apart).

If `cdc_offsets` is not in the target, verify says so and goes on without waiting. If the deadline
passes first, the report says so and the re-check of differing rows (in-flight detection) still runs.
"""

from __future__ import annotations

import time
from typing import Any

POLL_SECONDS = 0.5
QUIET_SECONDS = 1.5


def _offsets_snapshot(dialect, conn) -> list[tuple] | None:
    """All rows of cdc_offsets in the target, or None when the table does not exist."""
    if "cdc_offsets" not in dialect.list_tables(conn):
        return None
    ref = dialect.table_ref("cdc_offsets")
    return sorted(tuple(str(v) for v in row) for row in dialect.execute(conn, f"SELECT * FROM {ref}"))


def wait_for_lag(source_dialect, source_conn, target_dialect, target_conn, seconds: float) -> dict[str, Any]:
    """Wait up to `seconds`; return what was waited for and whether the target caught up."""
    started = time.monotonic()
    deadline = started + max(0.0, seconds)
    info: dict[str, Any] = {"max_seconds": seconds, "caught_up": False, "steps": []}
    snapshot = _offsets_snapshot(target_dialect, target_conn)
    if snapshot is None:
        info["note"] = "no cdc_offsets table in the target: not replicated by cdc (or apply never ran); did not wait"
        info["waited_seconds"] = 0.0
        return info
    try:
        position = source_dialect.current_position(source_conn)
    except Exception as exc:  # noqa: BLE001 - a position we cannot read only weakens the wait
        position = None
        info["steps"].append(f"could not read the source position ({type(exc).__name__}: {exc})")
    info["source_position"] = position
    if source_dialect.records_capture_position and position:
        while True:
            reached = source_dialect.capture_confirmed(source_conn, position)
            if reached is None:
                info["steps"].append("no logical slot on the source database: skipped the capture check")
                break
            if reached:
                info["steps"].append(f"capture confirmed source position {position}")
                break
            if time.monotonic() >= deadline:
                info["steps"].append(f"capture had not confirmed {position} by the deadline")
                info["waited_seconds"] = round(time.monotonic() - started, 3)
                return info
            time.sleep(POLL_SECONDS)
    quiet_since = time.monotonic()
    while True:
        time.sleep(POLL_SECONDS)
        current = _offsets_snapshot(target_dialect, target_conn)
        if current != snapshot:
            snapshot, quiet_since = current, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            info["steps"].append(f"cdc_offsets unchanged for {QUIET_SECONDS:g}s: apply has caught up")
            info["caught_up"] = True
            break
        if time.monotonic() >= deadline:
            info["steps"].append("cdc_offsets still moving at the deadline; differing rows are re-checked")
            break
    info["waited_seconds"] = round(time.monotonic() - started, 3)
    return info
