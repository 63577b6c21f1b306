"""Test helpers: record the binlog events a piece of SQL produces on the sandbox MariaDB."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from connectors.mysql.binlog import BinlogEvent, BinlogReader, current_position
from connectors.mysql.dialect import connect


def fresh_server_id() -> int:
    """A server id no other test (or builder sharing the sandbox) is likely to use at the same time."""
    return random.randint(100_000, 4_000_000_000) ^ (os.getpid() & 0xFFFF)


def record_events(url: str, work: Callable[[object], None]) -> list[BinlogEvent]:
    """Run `work(cursor)` on a UTC, sql_mode='' connection and return the binlog events it wrote."""
    start = current_position(url)
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")
            work(cursor)
    finally:
        conn.close()
    end = current_position(url)
    reader = BinlogReader(url, fresh_server_id(), start)
    events = []
    try:
        if (end.file, end.position) == (start.file, start.position):
            return events
        for event in reader.events():
            if event.position >= start.position or event.file != start.file:
                events.append(event)
            if event.file == end.file and event.next_position >= end.position:
                break
    finally:
        reader.close()
    return events
