"""`cdc capture` from PostgreSQL into Kafka, end to end against real servers."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid

import pytest

from cdc.envelope import Envelope
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal
from cdc.tables import TableFilter
from cdc.urls import parse_url
from connectors.postgres.dialect import connect
from connectors.postgres.replication import ReplicationConnection
from connectors.postgres.setup import default_name, prepare_source
from connectors.postgres.streaming import PostgresStream
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


def _prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


def _wait_slot_active(conn, slot: str) -> None:
    """Wait (30 s at most) until the capture streams from its slot."""
    wait_for(lambda: conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                  (slot,)).fetchone() == (True,), 30, "the slot to be streamed")


def _decode_in_small_chunks(conn) -> None:
    """Make the server stream transactions over 64 kB before they commit (proto v2; PG 14 and later)."""
    if conn.info.server_version < 140000:
        pytest.skip("streaming needs PostgreSQL 14")
    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET logical_decoding_work_mem = '64kB'")


def _streamed_transactions(conn, slot: str) -> int:
    """How many transactions the server streamed to the slot before their commit."""
    row = conn.execute("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return row[0] if row else 0


def _caught_up(conn, slot: str):
    """A check: the slot confirmed everything written so far (the capture acknowledged all of it)."""
    target = current_lsn(conn)
    return lambda: (slot_confirmed(conn, slot) or 0) >= target


def test_capture_insert_update_delete_truncate(pg_database, kafka_bootstrap, tmp_path):
    prefix = _prefix()
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, name text, price numeric(10,2))")
        conn.execute("CREATE TABLE audit (at int, note text)")  # no primary key
        conn.execute("ALTER TABLE audit REPLICA IDENTITY FULL")
        conn.execute("CREATE TABLE full_rows (id int PRIMARY KEY, v text)")
        conn.execute("ALTER TABLE full_rows REPLICA IDENTITY FULL")
        conn.execute("INSERT INTO orders VALUES (1, 'ann', 10.50)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--heartbeat-interval", "1",
                                log_path=str(tmp_path / "capture.log"))
        try:
            wait_for(lambda: slot_confirmed(conn, default_name(prefix)), 30, "the slot to exist")
            with conn.transaction():
                conn.execute("INSERT INTO orders VALUES (2, 'bob', 3.00)")
                conn.execute("UPDATE orders SET name = 'ann2' WHERE id = 1")
            conn.execute("DELETE FROM orders WHERE id = 2")
            conn.execute("UPDATE orders SET id = 5 WHERE id = 1")
            conn.execute("INSERT INTO audit VALUES (1, 'x')")
            conn.execute("UPDATE audit SET note = 'y'")
            conn.execute("INSERT INTO full_rows VALUES (1, 'a')")
            conn.execute("UPDATE full_rows SET v = 'b'")
            conn.execute("TRUNCATE audit")
            conn.execute("ALTER TABLE orders ADD COLUMN qty int")
            conn.execute("INSERT INTO orders VALUES (7, 'cy', 1.00, 3)")
            time.sleep(1.5)  # a heartbeat goes by
            wait_for(_caught_up(conn, default_name(prefix)), 30, "capture to catch up")
        finally:
            assert stop_capture(process) == 0, (tmp_path / "capture.log").read_text()
    messages = read_topics(kafka_bootstrap, lambda t: t.startswith(prefix + "."))
    by_topic: dict[str, list] = {}
    for message in messages:
        by_topic.setdefault(message.topic, []).append(message)

    orders = [m for m in by_topic[f"{prefix}.public.orders"]]
    ops = [m.event["op"] for m in orders if m.event]
    assert ops.count("r") == 1 and ops.count("c") == 3 and ops.count("u") == 1 and ops.count("d") == 2
    snapshot = next(m.event for m in orders if m.event and m.event["op"] == "r")
    assert snapshot["after"] == {"id": 1, "name": "ann", "price": "10.50"}
    assert snapshot["source"]["snapshot"] in ("first", "last")
    update = next(m for m in orders if m.event and m.event["op"] == "u")
    assert update.key == b'{"id":1}'
    assert update.event["before"] is None  # REPLICA IDENTITY DEFAULT, key unchanged
    source = update.event["source"]
    assert list(source) == ["version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us", "ts_ns",
                            "schema", "table", "txId", "lsn", "xmin", "origin", "origin_lsn"]
    assert source["origin"] is None and source["origin_lsn"] is None
    assert source["connector"] == "postgresql" and source["name"] == prefix and source["snapshot"] == "false"
    assert source["db"] == parse_url(pg_database).database and source["table"] == "orders"
    sequence = json.loads(source["sequence"])
    assert sequence[1] == str(source["lsn"])
    transaction = update.event["transaction"]
    assert transaction["id"] == f"{source['txId']}:{transaction['id'].split(':')[1]}"
    assert transaction["total_order"] == 2 and transaction["data_collection_order"] == 2
    # delete of id 2: key-only before, then a tombstone
    deletes = [i for i, m in enumerate(orders) if m.key == b'{"id":2}' and m.event and m.event["op"] == "d"]
    assert deletes and orders[deletes[0]].event["before"] == {"id": 2, "name": None, "price": None}
    assert orders[deletes[0] + 1].value is None
    # primary-key change: delete + tombstone under the old key, create under the new, with Debezium headers
    moved = next(m for m in orders if m.key == b'{"id":5}')
    assert moved.event["op"] == "c" and dict(moved.headers)["__debezium.oldkey"] == b'{"id":1}'
    # the added column: a new schema version, then events carry it
    last = orders[-1].event if orders[-1].key == b'{"id":7}' else next(m.event for m in orders if m.key == b'{"id":7}')
    assert last["after"] == {"id": 7, "name": "cy", "price": "1.00", "qty": 3}
    assert dict(next(m for m in orders if m.key == b'{"id":7}').headers)["cdc.schema.version"] == b"2"
    schemas = [m.event for m in by_topic[f"{prefix}.schemas"] if m.key == b'"public.orders"']
    assert [s["version"] for s in schemas] == [1, 2]
    assert [c["name"] for c in schemas[1]["columns"]] == ["id", "name", "price", "qty"]
    changes = [m.event for m in by_topic[f"{prefix}.schema-changes"]]
    assert any("ADD COLUMN qty" in c["ddl"] for c in changes)

    audit = by_topic[f"{prefix}.public.audit"]
    assert all(m.key is None and m.partition == 0 for m in audit)
    assert [m.event["op"] for m in audit] == ["c", "u", "t"]
    assert audit[1].event["before"] == {"at": 1, "note": "x"}  # REPLICA IDENTITY FULL: whole old row
    truncate = audit[2].event
    assert truncate["before"] is None and truncate["after"] is None
    full = [m.event for m in by_topic[f"{prefix}.public.full_rows"]]
    assert full[1]["before"] == {"id": 1, "v": "a"}

    transactions = [m.event for m in by_topic[f"{prefix}.transaction"]]
    first_id = transaction["id"]
    begin = next(t for t in transactions if t["id"] == first_id and t["status"] == "BEGIN")
    end = next(t for t in transactions if t["id"] == first_id and t["status"] == "END")
    assert begin and end["event_count"] == 2
    assert end["data_collections"] == [{"data_collection": "public.orders", "event_count": 2}]
    heartbeats = read_topics(kafka_bootstrap, lambda t: t == f"__cdc-heartbeat.{prefix}")
    assert heartbeats and heartbeats[0].key == ('{"serverName":"%s"}' % prefix).encode()


def test_sigterm_flushes_and_exits_zero(pg_database, kafka_bootstrap, tmp_path):
    prefix = _prefix()
    slot = default_name(prefix)
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "never",
                                log_path=str(tmp_path / "capture.log"))
        _wait_slot_active(conn, slot)
        conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 2000) g")
        end = current_lsn(conn)
        time.sleep(0.5)
        started = time.monotonic()
        assert stop_capture(process) == 0, (tmp_path / "capture.log").read_text()
        print(f"\nSIGTERM -> exit 0 in {time.monotonic() - started:.2f}s")
        assert slot_confirmed(conn, slot) >= end - 200  # the commit's end was acknowledged on the way out
    messages = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t")
    assert len({m.key for m in messages}) == 2000


class HeldProducer:
    """A producer whose deliveries wait until `release()`: Kafka that has not acknowledged yet."""

    def __init__(self):
        self.pending = []
        self.released = False
        self.records = []

    def produce(self, topic, value, key=None, *, partition=None, headers=None, on_delivery=None):
        self.records.append((topic, key, value))
        self.pending.append(on_delivery)

    def poll(self, timeout=0.0):
        if not self.released:
            if timeout:
                time.sleep(min(timeout, 0.05))
            return 0
        served = len(self.pending)
        for callback in self.pending:
            callback(None, None)
        self.pending.clear()
        return served

    def flush(self, timeout=None):
        self.poll()

    def release(self):
        self.released = True


def test_flush_lsn_waits_for_kafka_acks(pg_database):
    """confirmed_flush_lsn never passes events Kafka has not acknowledged."""
    prefix = _prefix()
    slot = default_name(prefix)
    url = parse_url(pg_database)
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        captured, state = prepare_source(conn, slot=slot, publication=slot, tables=["public.t"], include=None)
        replication = ReplicationConnection(url)
        start = replication.create_slot(slot, export_snapshot=False).consistent_point
        producer = HeldProducer()
        options = CaptureOptions(source=pg_database, kafka="unused:1", prefix=prefix, status_interval=0.1,
                                 heartbeat_interval=0.2)
        pipeline = CapturePipeline(producer, Envelope(prefix))
        stream = PostgresStream(url, options, pipeline, TableFilter(captured, None), slot=slot, publication=slot,
                                database=url.database)
        stop = StopSignal(signals=())
        runner = threading.Thread(target=stream.run, args=(stop, start, replication), daemon=True)
        runner.start()
        try:
            time.sleep(0.5)
            before_insert = current_lsn(conn)
            conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
            wait_for(lambda: len(producer.records) >= 100, 20, "the events to be produced")
            time.sleep(1.0)  # several status updates, keepalives and heartbeats go by
            assert start <= slot_confirmed(conn, slot) <= before_insert
            producer.release()
            written = current_lsn(conn)
            wait_for(lambda: slot_confirmed(conn, slot) >= written, 20, "the flush LSN to advance after acks")
        finally:
            stop.request()
            runner.join(10)
            stream.close()


def test_replica_identity_index_gives_the_identity_columns_as_before(pg_database, kafka_bootstrap, tmp_path):
    prefix = _prefix()
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE ix (id int PRIMARY KEY, code text NOT NULL, v text)")
        conn.execute("CREATE UNIQUE INDEX ix_code ON ix (code)")
        conn.execute("ALTER TABLE ix REPLICA IDENTITY USING INDEX ix_code")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "never",
                                log_path=str(tmp_path / "capture.log"))
        try:
            wait_for(lambda: slot_confirmed(conn, default_name(prefix)), 30, "the slot to exist")
            time.sleep(0.5)
            conn.execute("INSERT INTO ix VALUES (1, 'a', 'x')")
            conn.execute("UPDATE ix SET code = 'b' WHERE id = 1")
            conn.execute("DELETE FROM ix WHERE id = 1")
            wait_for(_caught_up(conn, default_name(prefix)), 30, "capture to catch up")
        finally:
            assert stop_capture(process) == 0, (tmp_path / "capture.log").read_text()
    events = [m.event for m in read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.ix") if m.event]
    assert [e["op"] for e in events] == ["c", "u", "d"]
    assert events[1]["before"] == {"id": None, "code": "a", "v": None}  # INDEX: the identity columns only
    assert events[2]["before"] == {"id": None, "code": "b", "v": None}
    # (a table with REPLICA IDENTITY NOTHING is refused at start: test_setup_checks)


@pytest.mark.slow
def test_crash_drill_replays_to_the_final_rows(pg_database, kafka_bootstrap, tmp_path):
    """SIGKILL the capture 4 times under write load; after dropping repeats the stream equals the table."""
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = str(tmp_path / "capture.log")
    rng = random.Random(7)
    stop_writing = threading.Event()
    written = [0]

    def writer():
        with connect(pg_database) as wconn:
            while not stop_writing.is_set():
                with wconn.transaction():
                    for _ in range(rng.randint(1, 5)):
                        key = rng.randint(1, 300)
                        action = rng.random()
                        if action < 0.5:
                            wconn.execute("INSERT INTO t VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET v = t.v + 1",
                                          (key, rng.randint(0, 1000)))
                        elif action < 0.75:
                            wconn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (key,))
                        elif action < 0.8:  # a primary-key change: delete + tombstone + create
                            other = rng.randint(1, 300)
                            wconn.execute("UPDATE t SET id = %s WHERE id = %s AND NOT EXISTS "
                                          "(SELECT 1 FROM t WHERE id = %s)", (other, key, other))
                        else:
                            wconn.execute("DELETE FROM t WHERE id = %s", (key,))
                written[0] += 1
                time.sleep(0.002)

    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 100) g")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--heartbeat-interval", "1",
                                log_path=log_path)
        wait_for(lambda: slot_confirmed(conn, slot), 30, "the slot to exist")
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        kills = []
        try:
            for _ in range(4):
                time.sleep(rng.uniform(3.0, 5.0))  # past start-up (~1-2 s), so each run acknowledges something
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                kills.append(time.time() * 1000)
                process = start_capture(pg_database, kafka_bootstrap, prefix, "--heartbeat-interval", "1",
                                        log_path=log_path)
            time.sleep(2)
        finally:
            stop_writing.set()
            thread.join(10)
        wait_for(_caught_up(conn, slot), 60, "capture to catch up after the last restart")
        assert stop_capture(process) == 0, open(log_path).read()
        expected = source_rows(conn, "public", "t", ("id",))
    messages = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t")
    rows, repeats = replay(messages, ("id",))
    assert rows == expected
    per_crash = [0] * len(kills)
    for _, built_ms in repeats:  # a repeat is sent by the run that followed its crash
        per_crash[max((i for i, killed_ms in enumerate(kills) if killed_ms <= built_ms), default=0)] += 1
    print(f"\ncrash drill: {written[0]} transactions, {len(messages)} records, repeats per crash {per_crash}")


def test_reconnects_when_the_walsender_goes_away(pg_database, kafka_bootstrap, tmp_path):
    """The server ends the stream (as on restart): capture reconnects and resumes from the flushed LSN."""
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "never", log_path=str(log_path))
        try:
            _wait_slot_active(conn, slot)
            conn.execute("INSERT INTO t SELECT generate_series(1, 50)")
            for _ in range(2):
                conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s",
                             (slot,))
                conn.execute("INSERT INTO t SELECT generate_series((SELECT max(id) + 1 FROM t), (SELECT max(id) + 50 FROM t))")
                time.sleep(0.5)
            wait_for(_caught_up(conn, slot), 30, "capture to catch up after reconnecting")
        finally:
            assert stop_capture(process) == 0, log_path.read_text()
        expected = source_rows(conn, "public", "t", ("id",))
    rows, _ = replay(read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t"), ("id",))
    assert rows == expected and len(rows) == 150
    assert "reconnecting" in log_path.read_text()


def test_streamed_large_transactions_commit_abort_and_subtransactions(pg_database, kafka_bootstrap, tmp_path):
    """Proto v2 streaming: a transaction larger than logical_decoding_work_mem arrives in chunks before commit."""
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        _decode_in_small_chunks(conn)
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "never", log_path=str(log_path))
        try:
            _wait_slot_active(conn, slot)
            with conn.transaction():
                conn.execute("INSERT INTO t SELECT g, repeat('p', 100) FROM generate_series(1, 3000) g")
                try:
                    with conn.transaction():
                        conn.execute("INSERT INTO t SELECT g, repeat('q', 100) FROM generate_series(5001, 7000) g")
                        raise RuntimeError("roll back the savepoint")
                except RuntimeError:
                    pass
                conn.execute("INSERT INTO t SELECT g, 'z' FROM generate_series(3001, 4000) g")
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO t SELECT g, repeat('a', 100) FROM generate_series(8001, 11000) g")
                    raise RuntimeError("abort the whole transaction")
            except RuntimeError:
                pass
            conn.execute("INSERT INTO t VALUES (0, 'last')")
            wait_for(_caught_up(conn, slot), 60, "capture to catch up")
            streamed = _streamed_transactions(conn, slot)
        finally:
            assert stop_capture(process) == 0, log_path.read_text()
        expected = source_rows(conn, "public", "t", ("id",))
    messages = read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t")
    rows, repeats = replay(messages, ("id",))
    assert not repeats and rows == expected and len(rows) == 4001
    assert streamed >= 1  # the big transactions really were streamed
    big = [m.event for m in messages if m.event and m.event["after"]["id"] != 0]
    assert len({e["transaction"]["id"] for e in big}) == 1
    assert sorted(e["transaction"]["total_order"] for e in big) == list(range(1, 4001))


def test_streamed_transaction_mixes_prepared_and_whole_changes(pg_database, kafka_bootstrap, tmp_path):
    """Inside one streamed transaction: inserts, updates and deletes (prepared as they arrive), primary-key
    changes (kept whole: delete + tombstone + create), an uncaptured table; the stream replays to the rows."""
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        _decode_in_small_chunks(conn)
        conn.execute("CREATE TABLE m (id int PRIMARY KEY, pad text)")
        conn.execute("CREATE TABLE skipped (id int PRIMARY KEY, pad text)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--snapshot", "never", "--tables", "public.m",
                                log_path=str(log_path))
        try:
            _wait_slot_active(conn, slot)
            with conn.transaction():
                conn.execute("INSERT INTO m SELECT g, repeat('p', 100) FROM generate_series(1, 3000) g")
                conn.execute("INSERT INTO skipped SELECT g, repeat('s', 100) FROM generate_series(1, 2000) g")
                conn.execute("UPDATE m SET pad = 'u' WHERE id % 3 = 0")
                conn.execute("UPDATE m SET id = id + 10000 WHERE id % 10 = 1")  # key changes
                conn.execute("DELETE FROM m WHERE id % 7 = 0")
            wait_for(_caught_up(conn, slot), 60, "capture to catch up")
            streamed = _streamed_transactions(conn, slot)
        finally:
            assert stop_capture(process) == 0, log_path.read_text()
        expected = source_rows(conn, "public", "m", ("id",))
    messages = read_topics(kafka_bootstrap, lambda t: t.startswith(f"{prefix}."))
    assert not [m for m in messages if m.topic == f"{prefix}.public.skipped"]
    table = [m for m in messages if m.topic == f"{prefix}.public.m"]
    rows, repeats = replay(table, ("id",))
    assert not repeats and rows == expected
    assert streamed >= 1
    events = [m.event for m in table if m.event]
    orders = sorted(e["transaction"]["total_order"] for e in events)
    assert orders == list(range(1, len(orders) + 1))  # key changes count twice, as Debezium counts them
    ends = [m.event for m in messages if m.topic == f"{prefix}.transaction" and m.event["status"] == "END"]
    assert ends[-1]["event_count"] == len(orders)
    assert sum(1 for m in table if m.event is None) == sum(1 for e in events if e["op"] == "d")  # tombstones


def test_slot_advances_while_captured_tables_are_idle(pg_database, kafka_bootstrap, tmp_path):
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE captured (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--tables", "public.captured",
                                "--heartbeat-interval", "0.5", log_path=str(log_path))
        try:
            first = wait_for(lambda: slot_confirmed(conn, slot), 30, "the slot to exist")
            conn.execute("INSERT INTO other SELECT generate_series(1, 20000)")
            written = current_lsn(conn)
            wait_for(lambda: (slot_confirmed(conn, slot) or 0) >= written, 20, "the slot to pass idle WAL")
            # the heartbeats (every 0.5 s here) keep it moving where no keepalive gets that far
            heartbeats = wait_for(lambda: read_topics(kafka_bootstrap, lambda t: t == f"__cdc-heartbeat.{prefix}",
                                                      idle=0.3), 20, "heartbeat records")
        finally:
            assert stop_capture(process) == 0, log_path.read_text()
    assert written > first
    assert heartbeats
    assert not read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.other")


def test_decode_error_stops_the_stream(pg_database):
    """A corrupted frame raises DecodeError with its LSN; it is never skipped or retried as a disconnect."""
    from cdc.errors import DecodeError
    from connectors.postgres.streaming import _transient

    url = parse_url(pg_database)
    options = CaptureOptions(source=pg_database, kafka="unused:1", prefix="x")
    stream = PostgresStream(url, options, CapturePipeline(HeldProducer(), Envelope("x")), TableFilter([], None),
                            slot="unused", publication="unused", database=url.database)
    try:
        with pytest.raises(DecodeError, match="0/1234"):
            stream.handle(b"I\x00\x00\x00\x07N\x00", 0x1234)
        assert not _transient(DecodeError("x"))
    finally:
        stream.close()


def test_schema_versions_continue_across_restarts(pg_database, kafka_bootstrap, tmp_path):
    prefix = _prefix()
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        for step, column in enumerate(("a", "b")):
            process = start_capture(pg_database, kafka_bootstrap, prefix, log_path=str(log_path))
            try:
                _wait_slot_active(conn, slot)
                conn.execute("INSERT INTO t (id) VALUES (%s)", (step * 10 + 1,))
                conn.execute(f"ALTER TABLE t ADD COLUMN {column} int")
                conn.execute("INSERT INTO t (id) VALUES (%s)", (step * 10 + 2,))
                wait_for(_caught_up(conn, slot), 30, "capture to catch up")
            finally:
                assert stop_capture(process) == 0, log_path.read_text()
    schemas = [m.event["version"] for m in read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.schemas")]
    assert schemas == [1, 2, 3]
    versions = {m.event["after"]["id"]: dict(m.headers)["cdc.schema.version"]
                for m in read_topics(kafka_bootstrap, lambda t: t == f"{prefix}.public.t") if m.event}
    assert versions == {1: b"1", 2: b"2", 11: b"2", 12: b"3"}
