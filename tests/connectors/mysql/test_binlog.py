"""Reading the binlog from the sandbox MariaDB: row events come through; bad starts fail fast and clearly."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from cdc.errors import SourceError
from connectors.mysql.binlog import (
    MARIADB_GTID,
    ROWS_EVENTS,
    TABLE_MAP_EVENT,
    XID_EVENT,
    BinlogReader,
    current_position,
)
from connectors.mysql.offsets import BinlogPosition
from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id, record_events


def first_error(reader: BinlogReader, limit: float = 10.0) -> tuple[Exception | None, float]:
    """Read until an exception; (exception, seconds it took). Gives up after `limit` seconds."""
    outcome: list = [None, None]

    def run() -> None:
        started = time.monotonic()
        try:
            for _ in reader.events():
                pass
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever comes out
            outcome[0] = exc
        outcome[1] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        reader.close()
        thread.join(5)
        return None, limit
    return outcome[0], outcome[1]


def test_a_row_change_arrives_as_table_map_rows_and_xid(mysql_database: str) -> None:
    def work(cursor):
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        cursor.execute("INSERT INTO t VALUES (1, 'a')")

    events = record_events(mysql_database, work)
    types = [event.type for event in events]
    assert TABLE_MAP_EVENT in types and XID_EVENT in types and MARIADB_GTID in types
    rows = [event for event in events if event.type in ROWS_EVENTS]
    assert len(rows) == 1 and rows[0].file.startswith(rows[0].file.split(".")[0])
    assert rows[0].position < rows[0].next_position


def test_resume_after_a_boundary_reads_only_later_transactions(mysql_database: str) -> None:
    def work(cursor):
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO t VALUES (1)")

    record_events(mysql_database, work)
    start = current_position(mysql_database)
    events = record_events(mysql_database, lambda cursor: cursor.execute("INSERT INTO t VALUES (2)"))
    assert all(event.position >= start.position for event in events if event.type in ROWS_EVENTS)
    assert sum(event.type in ROWS_EVENTS for event in events) == 1


def test_start_inside_an_event_is_a_clear_error_within_seconds(mysql_url: str) -> None:
    end = current_position(mysql_url)
    reader = BinlogReader(mysql_url, fresh_server_id(), BinlogPosition(end.file, 5))
    error, seconds = first_error(reader)
    assert isinstance(error, SourceError), error
    assert seconds < 5
    assert "not the start of an event" in str(error) and f"{end.file}:5" in str(error)


def test_purged_binlog_file_says_a_new_snapshot_is_needed(mysql_url: str) -> None:
    reader = BinlogReader(mysql_url, fresh_server_id(), BinlogPosition("mysql-bin.999999", 4))
    error, seconds = first_error(reader)
    assert isinstance(error, SourceError), error
    assert seconds < 5
    assert "mysql-bin.999999 was purged" in str(error) and "new snapshot is needed" in str(error)


def test_unknown_gtid_says_a_new_snapshot_is_needed(mysql_url: str) -> None:
    reader = BinlogReader(mysql_url, fresh_server_id(), BinlogPosition("", 4, "0-1-999999999"))
    error, seconds = first_error(reader)
    assert isinstance(error, SourceError), error
    assert seconds < 5 and "new snapshot is needed" in str(error)


def test_duplicate_server_id_is_a_clear_error_within_seconds(mysql_url: str) -> None:
    server_id = fresh_server_id()
    end = current_position(mysql_url)
    first = BinlogReader(mysql_url, server_id, end, heartbeat_seconds=1)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(first_error(first, limit=15)), daemon=True)
    thread.start()
    time.sleep(1.0)
    second = BinlogReader(mysql_url, server_id, end, heartbeat_seconds=1)
    started = time.monotonic()
    stopper = threading.Thread(target=lambda: first_error(second, limit=8), daemon=True)
    stopper.start()
    thread.join(15)
    second.close()
    first.close()
    assert result, "the first reader never stopped"
    error, _ = result[0]
    assert isinstance(error, SourceError), error
    assert time.monotonic() - started < 10
    assert f"server_id {server_id}" in str(error) and "--server-id" in str(error)


@pytest.mark.parametrize("url_suffix", ["?ssl_verify_cert=false"])  # a URL option (no CA: no TLS) is fine
def test_reader_close_from_another_thread_ends_reading_quietly(mysql_url: str, url_suffix: str) -> None:
    reader = BinlogReader(mysql_url + url_suffix, fresh_server_id(), current_position(mysql_url), heartbeat_seconds=1)
    done = threading.Event()

    def run() -> None:
        for _ in reader.events():
            pass
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.5)
    reader.close()
    assert done.wait(5)


def test_killed_connection_reconnects_from_the_last_boundary(mysql_database: str) -> None:
    from connectors.mysql.dialect import connect

    admin = connect(mysql_database)
    with admin.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    reader = BinlogReader(mysql_database, fresh_server_id(), current_position(mysql_database), heartbeat_seconds=1)
    seen: list = []

    def run() -> None:
        for event in reader.events():
            if event.type in ROWS_EVENTS:
                seen.append(event)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while reader.connection_id is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with admin.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
            time.sleep(0.5)
            cursor.execute(f"KILL {reader.connection_id}")
            time.sleep(1.0)
            cursor.execute("INSERT INTO t VALUES (2)")
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        reader.close()
        admin.close()
        thread.join(5)
    assert len(seen) == 2, seen
    assert seen[0].position < seen[1].position


def test_gtid_event_bodies_give_their_gtids() -> None:
    import struct
    import uuid

    from connectors.mysql.binlog import mariadb_gtid, mysql_gtid

    source = uuid.UUID("3e11fa47-71ca-11e1-9e33-c80aa9429562")
    assert mysql_gtid(b"\x01" + source.bytes + struct.pack("<Q", 23)) == f"{source}:23"
    assert mariadb_gtid(struct.pack("<QIB", 42, 0, 1) + bytes(6), 7) == ("0-7-42", 0, 1)


def test_compressed_query_event_gives_its_sql() -> None:
    import struct
    import zlib

    from connectors.mysql.binlog import query_parts

    sql = b"ALTER TABLE t ADD COLUMN c INT"
    header = struct.pack("<IIBHH", 9, 0, 4, 0, 0)
    body = header + b"shop\x00" + bytes([0x81, len(sql)]) + zlib.compress(sql)
    assert query_parts(body, compressed=True) == (9, "shop", sql.decode())
    assert query_parts(header + b"shop\x00" + sql) == (9, "shop", sql.decode())


@pytest.mark.slow
def test_server_restart_is_survived_by_reconnecting(tmp_path) -> None:
    """A private MariaDB (the shared sandbox must not restart) stops and starts; reading resumes."""
    from cdc.sandbox import mariadb, ports, processes
    from connectors.mysql.binlog import RECONNECTED
    from connectors.mysql.dialect import connect

    port = ports.pick_free_port()
    server = mariadb.start(tmp_path, port)
    url = f"mysql://root@127.0.0.1:{port}/cdc"
    reader = None
    try:
        conn = connect(url)
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        conn.close()
        reader = BinlogReader(url, fresh_server_id(), current_position(url), heartbeat_seconds=1)
        seen: list = []

        def run() -> None:
            for event in reader.events():
                if event.type in ROWS_EVENTS or event.type == RECONNECTED:
                    seen.append(event.type)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        time.sleep(0.5)
        processes.stop(server.pid, server.program, server.marker)
        server = mariadb.start(tmp_path, port)
        conn = connect(url)
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
        conn.close()
        deadline = time.monotonic() + 20
        while ROWS_EVENTS.isdisjoint(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen[0] == RECONNECTED and seen[-1] in ROWS_EVENTS, seen
    finally:
        if reader is not None:
            reader.close()
        processes.stop(server.pid, server.program, server.marker)
        shutil.rmtree(mariadb.home_for(tmp_path, mariadb.run_as_user()), ignore_errors=True)  # may live in /tmp
