"""Binlog row decoding speed: Cython vs pure-Python twin vs mysql-replication (rows/s, one core).

Run: `.venv/bin/python benchmarks/bench_mysql_decode.py --url mysql://root@127.0.0.1:3307/cdc [--rows N]`
(or with CDC_MYSQL_URL set). Writes N row changes (inserts in multi-row statements, then updates and
deletes) to a 10-column table of mixed types on a MariaDB with binlog_format=ROW and
binlog_row_metadata=FULL, records the real event bodies once, then replays the same bodies through:

- `cython`: RowDecoder over cdc._ext.binlog_rows (TABLE_MAP bookkeeping included),
- `twin`: RowDecoder over connectors.mysql.decode,
- `mysql-replication`: its BinLogPacketWrapper/RowsEvent classes on the same packets, rows read out
  (its own Python objects, no conversion to the readable forms).

A row change is one row of a write/delete or one before/after pair of an update. Also reported:
end-to-end streaming from the server (our reader + Cython decoder vs BinLogStreamReader), which
includes the network and the server. Results go to benchmarks/results/mysql-decode-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.mysql import decode as twin  # noqa: E402
from connectors.mysql.binlog import (  # noqa: E402
    ROWS_EVENTS,
    TABLE_MAP_EVENT,
    BinlogReader,
    current_position,
)
from connectors.mysql.decoder import RowDecoder  # noqa: E402
from connectors.mysql.dialect import connect  # noqa: E402

DATABASE = "bench_mysql_decode"
TABLE_DDL = """CREATE TABLE orders (
  id BIGINT UNSIGNED PRIMARY KEY,
  customer_id INT NOT NULL,
  status VARCHAR(20) NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  discount DOUBLE,
  created_at DATETIME(6) NOT NULL,
  paid_at TIMESTAMP(3) NULL,
  ship_date DATE,
  kind ENUM('retail','wholesale','online'),
  note TEXT
) CHARACTER SET utf8mb4"""


def server_url(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


def write_workload(url: str, rows: int) -> None:
    """Inserts in statements of 100 rows, then updates and deletes of every tenth row."""
    admin = connect(url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cursor.execute(f"CREATE DATABASE {DATABASE}")
    admin.close()
    conn = connect(server_url(url, DATABASE), autocommit=False)
    with conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute(TABLE_DDL)
        inserts = rows * 8 // 10
        for first in range(1, inserts + 1, 100):
            values = [
                (n, 4711 + n % 97, "shipped" if n % 3 else "new", f"{n % 100000}.{n % 100:02d}", n / 7,
                 "2024-02-29 13:45:00.123456", "2024-02-29 12:45:00.125" if n % 2 else None, "2024-03-01",
                 ("retail", "wholesale", "online")[n % 3], "leave at the door, ring twice é")
                for n in range(first, min(first + 100, inserts + 1))
            ]
            cursor.executemany("INSERT INTO orders VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", values)
            conn.commit()
        cursor.execute("UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id % 8 = 0")
        conn.commit()
        cursor.execute("DELETE FROM orders WHERE id % 8 = 1")
        conn.commit()
    conn.close()


def record(url: str, rows: int):
    """Write the workload and return (events, start, end) read from the binlog with our reader."""
    start = current_position(url)
    write_workload(url, rows)
    end = current_position(url)
    reader = BinlogReader(url, 4_000_000_007, start)
    events = []
    try:
        for event in reader.events():
            if event.type in (TABLE_MAP_EVENT, *ROWS_EVENTS):
                events.append(event)
            if event.file == end.file and event.next_position >= end.position:
                break
    finally:
        reader.close()
    return events, start, end


def count_changes(events, implementation) -> int:
    decoder = RowDecoder(implementation=implementation)
    total = 0
    for event in events:
        if event.type == TABLE_MAP_EVENT:
            decoder.table_map(event.body)
        else:
            total += len(decoder.rows(event.body, event.type, event.where)[1])
    return total


def time_ours(events, implementation, repeat: int) -> tuple[int, float]:
    best = float("inf")
    changes = 0
    for _ in range(repeat):
        started = time.perf_counter()
        changes = count_changes(events, implementation)
        best = min(best, time.perf_counter() - started)
    return changes, best


class _FakeControl:
    """What mysql-replication's event classes ask of their control connection, without a server."""

    charset = "utf8mb4"

    def _get_dbms(self) -> str:
        return "mariadb"


def time_mysql_replication(events, repeat: int) -> tuple[int, float]:
    """Replay the same packets through mysql-replication's own event classes."""
    from pymysql.connections import MysqlPacket
    from pymysqlreplication.packet import BinLogPacketWrapper
    from pymysqlreplication.row_event import (
        DeleteRowsEvent,
        TableMapEvent,
        UpdateRowsEvent,
        WriteRowsEvent,
    )

    packets = []
    for event in events:
        size = 19 + len(event.body) + 4
        header = struct.pack("<IBIIIH", event.timestamp, event.type, event.server_id, size, event.next_position,
                             event.flags)
        packets.append(b"\x00" + header + event.body + b"\x00\x00\x00\x00")
    allowed = frozenset({TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent})
    control = _FakeControl()
    best = float("inf")
    changes = 0
    for _ in range(repeat):
        table_map: dict = {}
        changes = 0
        started = time.perf_counter()
        for data in packets:
            wrapper = BinLogPacketWrapper(
                MysqlPacket(data, "utf8"), table_map, control, (10, 11, 0), True, allowed,
                None, None, None, None, False, False, False, True, False,
            )
            event = wrapper.event
            if isinstance(event, TableMapEvent):
                table_map[event.table_id] = event.get_table()
            elif event is not None:
                changes += len(event.rows)
        best = min(best, time.perf_counter() - started)
    return changes, best


def time_streaming(url: str, start, end, use_ours: bool) -> tuple[int, float]:
    """End to end from the server: rows/s including network and server."""
    started = time.perf_counter()
    changes = 0
    if use_ours:
        from cdc._ext import binlog_rows

        decoder = RowDecoder(implementation=binlog_rows)
        reader = BinlogReader(url, 4_000_000_008, start)
        try:
            for event in reader.events():
                if event.type == TABLE_MAP_EVENT:
                    decoder.table_map(event.body)
                elif event.type in ROWS_EVENTS:
                    changes += len(decoder.rows(event.body, event.type, event.where)[1])
                if event.file == end.file and event.next_position >= end.position:
                    break
        finally:
            reader.close()
    else:
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        from cdc.urls import parse_url

        parsed = parse_url(url)
        stream = BinLogStreamReader(
            connection_settings={"host": parsed.host, "port": parsed.port, "user": parsed.user,
                                 "password": parsed.password or ""},
            server_id=4_000_000_009, log_file=start.file, log_pos=start.position, resume_stream=True,
            blocking=True, end_log_pos=end.position,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], enable_logging=False,
        )
        try:
            for event in stream:
                changes += len(event.rows)
        finally:
            stream.close()
    return changes, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CDC_MYSQL_URL"), help="MariaDB URL (root user)")
    parser.add_argument("--rows", type=int, default=50_000, help="row changes to write (default 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="replays per implementation; best is kept")
    parser.add_argument("--no-streaming", action="store_true", help="skip the end-to-end streaming runs")
    args = parser.parse_args()
    if not args.url:
        parser.error("give --url or set CDC_MYSQL_URL (e.g. from `cdc sandbox env`)")

    events, start, end = record(args.url, args.rows)
    body_bytes = sum(len(event.body) for event in events)
    results: dict = {}
    try:
        from cdc._ext import binlog_rows
    except ImportError:
        binlog_rows = None
    contenders = [("twin", twin)] + ([("cython", binlog_rows)] if binlog_rows else [])
    for name, implementation in contenders:
        changes, seconds = time_ours(events, implementation, args.repeat)
        results[name] = {"row_changes": changes, "seconds": round(seconds, 4), "rows_per_s": round(changes / seconds)}
    changes, seconds = time_mysql_replication(events, args.repeat)
    results["mysql-replication"] = {"row_changes": changes, "seconds": round(seconds, 4),
                                    "rows_per_s": round(changes / seconds)}
    if binlog_rows and twin:
        assert count_changes(events, binlog_rows) == count_changes(events, twin)
    streaming = {}
    if not args.no_streaming:
        for name, ours in (("ours-cython", True), ("mysql-replication", False)):
            if ours and not binlog_rows:
                continue
            changes, seconds = time_streaming(args.url, start, end, ours)
            streaming[name] = {"row_changes": changes, "seconds": round(seconds, 4),
                               "rows_per_s": round(changes / seconds)}
    baseline = results["mysql-replication"]["rows_per_s"]
    report = {
        "benchmark": "mysql-decode",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "workload": {"table": "10 columns: bigint unsigned, int, varchar, decimal, double, datetime(6), "
                              "timestamp(3), date, enum, text", "row_changes": results["twin"]["row_changes"],
                     "events": len(events), "body_bytes": body_bytes},
        "replay": results,
        "speedup_vs_mysql_replication": {name: round(r["rows_per_s"] / baseline, 1) for name, r in results.items()},
        "streaming": streaming,
    }
    out = ROOT / "benchmarks" / "results" / f"mysql-decode-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {out}")
    admin = connect(args.url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin.close()


if __name__ == "__main__":
    main()
