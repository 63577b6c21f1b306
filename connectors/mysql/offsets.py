"""MySQL/MariaDB source positions: a binlog file and position, with the MariaDB GTID state.

The GTID state (domain-server-seq per domain) is preferred to resume, file:pos is the fallback. A
transaction's end (XID, COMMIT, or a standalone DDL) is a checkpoint; once Kafka acknowledged every
record before it, the position is stored as JSON through `cdc.offsets.OffsetStore` (the compacted
topic `__cdc-offsets.<prefix>`), and a restart resumes there. Every event carries `(binlog file
number, event position, row)`, strictly increasing, so consumers can drop the repeats a crash may
cause.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class BinlogPosition:
    """Where to (re)start reading: file + position of the next event, and the MariaDB GTID state."""

    file: str
    position: int
    gtid: str | None = None  # MariaDB gtid_binlog_pos style: "0-1-42[,1-1-7]"

    def __str__(self) -> str:
        return f"{self.file}:{self.position}"


def file_number(file: str) -> int:
    """The sequence number of a binlog file name (mysql-bin.000042 -> 42)."""
    try:
        return int(file.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def parse_gtid_state(text: str | None) -> dict[int, str]:
    """MariaDB GTID state text ("0-1-42,1-2-7") -> {domain: gtid}."""
    state: dict[int, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if part:
            state[int(part.split("-")[0])] = part
    return state


def format_gtid_state(state: dict[int, str]) -> str | None:
    """{domain: gtid} -> MariaDB GTID state text, domains in order; None when empty."""
    return ",".join(state[domain] for domain in sorted(state)) if state else None


def position_value(position: BinlogPosition, server_id: int) -> dict[str, Any]:
    """The JSON value stored for a position (`cdc.offsets.OffsetStore.record`)."""
    return {"file": position.file, "pos": position.position, "gtid": position.gtid, "server_id": server_id,
            "ts_ms": time.time_ns() // 1_000_000}


def position_from_value(value: dict[str, Any] | None) -> BinlogPosition | None:
    """The position a stored JSON value holds (None for None)."""
    if value is None:
        return None
    return BinlogPosition(value["file"], int(value["pos"]), value.get("gtid"))


def missing_gtids(position: str | None, binlog_state: str | None) -> list[str]:
    """The GTIDs of a stored position that a server's @@gtid_binlog_state does not contain.

    `binlog_state` holds the last GTID per (domain, server id) of the server's binlog; a stored GTID
    d-s-n is contained when the server logged d-s-m with m >= n (MariaDB numbers a domain's
    transactions in order). A missing one means the server never had a transaction capture read
    elsewhere: after a failover, one the old primary committed and the new one lost.
    """
    logged: dict[tuple[int, int], int] = {}
    for part in (binlog_state or "").split(","):
        if part.strip():
            domain, server, sequence = (int(x) for x in part.strip().split("-"))
            logged[(domain, server)] = max(sequence, logged.get((domain, server), 0))
    missing = []
    for gtid in parse_gtid_state(position).values():
        domain, server, sequence = (int(x) for x in gtid.split("-"))
        if logged.get((domain, server), -1) < sequence:
            missing.append(gtid)
    return missing
