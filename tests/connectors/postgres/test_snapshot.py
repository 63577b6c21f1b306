"""The initial snapshot: exported-snapshot reads in parallel, then streaming with no gap and no overlap."""

from __future__ import annotations

import random
import threading
import time
import uuid

from cdc.impl import twin
from connectors.postgres.dialect import connect
from connectors.postgres.schema import read_table, table_oid, type_codec
from connectors.postgres.setup import default_name
from connectors.postgres.snapshot import insert_message, relation_message
from tests.connectors.postgres.pg_capture_support import (
    current_lsn,
    read_topics,
    replay,
    slot_confirmed,
    source_rows,
    start_capture,
    stop_capture,
    wait_for,
)

PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder


def test_synthetic_messages_decode_like_the_stream(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, price numeric(6,2), at timestamptz, m mood, tags text[])")
        relid = table_oid(conn, "public", "t")
        table = read_table(conn, relid)
        decoder = PgoutputDecoder()
        decoder.set_type_codec(table.columns[3].type_oid, type_codec(conn, table.columns[3].type_oid))
        decoder.decode(relation_message(table), 0)
        row = decoder.decode(insert_message(relid, [b"1", b"1.50", b"2024-02-29 12:45:00+00", b"ok", b'{a,"b c"}']), 0)
    assert row[3] == {"id": 1, "price": "1.50", "at": "2024-02-29T12:45:00Z", "m": "ok", "tags": ["a", "b c"]}


def test_snapshot_with_concurrent_writers_has_no_gap_and_no_overlap(pg_database, kafka_bootstrap, tmp_path):
    prefix = "s" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    rng = random.Random(11)
    stop_writing = threading.Event()
    writes = [0]

    def writer():
        with connect(pg_database) as wconn:
            while not stop_writing.is_set():
                with wconn.transaction():
                    for _ in range(3):
                        table = rng.choice(("a", "b"))
                        key = rng.randint(1, 6000)
                        action = rng.random()
                        if action < 0.4:
                            wconn.execute(f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT (id) DO UPDATE "
                                          f"SET v = {table}.v + 1", (key, rng.randint(0, 9)))
                        elif action < 0.8:
                            wconn.execute(f"UPDATE {table} SET v = v + 1 WHERE id = %s", (key,))
                        else:
                            wconn.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
                writes[0] += 1

    with connect(pg_database) as conn:
        for table in ("a", "b"):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
            conn.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 5000) g")
        conn.execute("CREATE TABLE empty (id int PRIMARY KEY)")
        threads = [threading.Thread(target=writer, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot-chunk", "700",
                                "--snapshot-workers", "3", log_path=str(tmp_path / "capture.log"))
        try:
            wait_for(lambda: slot_confirmed(conn, slot), 30, "the slot to exist")
            time.sleep(2.0)
        finally:
            stop_writing.set()
            for thread in threads:
                thread.join(10)
        target = current_lsn(conn)
        wait_for(lambda: (slot_confirmed(conn, slot) or 0) >= target, 60, "capture to catch up")
        assert stop_capture(process) == 0, (tmp_path / "capture.log").read_text()
        print(f"\nsnapshot + catch-up of 10000 rows under {writes[0]} writer transactions: "
              f"{time.monotonic() - started:.1f}s")
        expected = {table: source_rows(conn, "public", table, ("id",)) for table in ("a", "b")}
    markers = []
    for table in ("a", "b"):
        messages = read_topics(kafka_bootstrap, lambda t, table=table: t == f"{prefix}.public.{table}")
        rows, repeats = replay(messages, ("id",))
        assert not repeats
        assert rows == expected[table]
        snapshot_keys = [m.key for m in messages if m.event and m.event["op"] == "r"]
        assert len(snapshot_keys) == len(set(snapshot_keys))  # each row read once
        markers += [m.event["source"]["snapshot"] for m in messages if m.event and m.event["op"] == "r"]
    assert markers.count("first") == 1 and markers.count("last") == 1
    assert markers.count("first_in_data_collection") == 1 and markers.count("last_in_data_collection") == 1
    schemas = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.schemas")
    assert {m.key for m in schemas} == {b'"public.a"', b'"public.b"', b'"public.empty"'}


def test_killed_during_snapshot_snapshots_again_and_replays_what_changed_since(pg_database, kafka_bootstrap, tmp_path):
    import signal

    from connectors.postgres.setup import pending_marker

    prefix = "k" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    log_path = str(tmp_path / "capture.log")
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 60000) g")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot-chunk", "50", log_path=log_path)
        wait_for(lambda: slot_confirmed(conn, slot), 30, "the slot to exist", interval=0.01)
        time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (pending_marker(slot),)).fetchone(), "the snapshot finished before the kill"
        conn.execute("DELETE FROM big WHERE id <= 10")
        conn.execute("UPDATE big SET v = 'changed' WHERE id > 29990")
        process = start_capture(pg_database, kafka_bootstrap, prefix, log_path=log_path)
        # the log, not the pending marker: the marker is also absent between its drop and its re-creation
        wait_for(lambda: "snapshot done" in open(log_path).read(), 60, "the second snapshot to finish")
        wait_for(lambda: conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                                      (pending_marker(slot),)).fetchone() is None, 60, "the pending marker to go")
        conn.execute("INSERT INTO big VALUES (0, 'after')")
        target = current_lsn(conn)
        wait_for(lambda: (slot_confirmed(conn, slot) or 0) >= target, 60, "capture to catch up")
        assert stop_capture(process) == 0, open(log_path).read()
        expected = source_rows(conn, "public", "big", ("id",))
    rows, _ = replay(read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.big"), ("id",))
    assert "snapshotting again" in open(log_path).read()
    assert len(expected) == 60000 - 10 + 1
    # rows the first (killed) snapshot published and that were deleted meanwhile are deleted again: streaming
    # starts at the slot's consistent point, from before the first snapshot, and replays those deletes
    assert rows == expected


def test_initial_only_snapshots_and_exits_leaving_no_slot(pg_database, kafka_bootstrap, tmp_path):
    prefix = "o" + uuid.uuid4().hex[:10]
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 300) g")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "initial_only",
                                log_path=str(tmp_path / "capture.log"))
        assert process.wait(60) == 0, (tmp_path / "capture.log").read_text()
        assert conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
                            ).fetchone() == (0,)
    messages = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t")
    assert sorted(m.event["after"]["id"] for m in messages) == list(range(1, 301))
    assert all(m.event["op"] == "r" for m in messages)


def test_one_table_split_into_key_ranges_reads_every_row_once_under_writes(pg_database, kafka_bootstrap, tmp_path):
    prefix = "r" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    stop_writing = threading.Event()

    def writer():
        rng = random.Random(5)
        with connect(pg_database) as wconn:
            while not stop_writing.is_set():
                key = rng.randint(-50, 12050)  # beyond both ends of the ranges too
                wconn.execute("INSERT INTO big VALUES (%s, 0) ON CONFLICT (id) DO UPDATE SET v = big.v + 1", (key,))
                wconn.execute("DELETE FROM big WHERE id = %s", (rng.randint(1, 12000),))

    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, v int)")
        conn.execute("INSERT INTO big SELECT g, 0 FROM generate_series(1, 12000) g")
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot-chunk", "500",
                                "--snapshot-workers", "3", log_path=str(log_path))
        try:
            wait_for(lambda: slot_confirmed(conn, slot), 30, "the slot to exist")
            wait_for(lambda: "snapshot done" in log_path.read_text(), 60, "the snapshot to finish")
        finally:
            stop_writing.set()
            thread.join(10)
        target = current_lsn(conn)
        wait_for(lambda: (slot_confirmed(conn, slot) or 0) >= target, 60, "capture to catch up")
        assert stop_capture(process) == 0, log_path.read_text()
        expected = source_rows(conn, "public", "big", ("id",))
    assert log_path.read_text().count("range=") == 3
    messages = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.big")
    snapshot_keys = [m.key for m in messages if m.event and m.event["op"] == "r"]
    assert len(snapshot_keys) == len(set(snapshot_keys))
    markers = [m.event["source"]["snapshot"] for m in messages if m.event and m.event["op"] == "r"]
    assert markers.count("first") == 1 and markers.count("last") == 1 and set(markers) == {"first", "true", "last"}
    rows, repeats = replay(messages, ("id",))
    assert not repeats and rows == expected
