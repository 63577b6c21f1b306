"""The MariaDB snapshot: consistent with its binlog position, chunked by key, tables without a key too."""

from __future__ import annotations

from cdc.snapshot import WHOLE_TABLE
from connectors.mysql.binlog import ROWS_EVENTS, BinlogReader, current_position
from connectors.mysql.decoder import RowDecoder
from connectors.mysql.dialect import connect
from connectors.mysql.snapshot import (
    begin_consistent_snapshot,
    describe_table,
    read_rows,
    snapshot_connection_kwargs,
)
from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id


def execute(url: str, *statements: str) -> None:
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


def test_chunks_by_composite_key_return_every_row_once_in_key_order(mysql_database: str) -> None:
    database = mysql_database.rsplit("/", 1)[1]
    execute(mysql_database, "CREATE TABLE t (a INT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))",
            "INSERT INTO t VALUES (2,'x',1),(1,'b',2),(1,'a',3),(3,'a',4),(2,'a',5),(1,'c',6),(3,'b',7)")
    conn = connect(mysql_database, **snapshot_connection_kwargs())
    try:
        table = describe_table(conn, database, "t")
        rows = list(read_rows(conn, table, chunk=2))
    finally:
        conn.close()
    assert table.key == ("a", "b")
    assert [(r["a"], r["b"]) for r in rows] == [(1, "a"), (1, "b"), (1, "c"), (2, "a"), (2, "x"), (3, "a"), (3, "b")]


def test_table_without_primary_key_is_read_in_one_pass(mysql_database: str) -> None:
    database = mysql_database.rsplit("/", 1)[1]
    execute(mysql_database, "CREATE TABLE log (line VARCHAR(10))", "INSERT INTO log VALUES ('a'),('b'),('a')")
    conn = connect(mysql_database, **snapshot_connection_kwargs())
    try:
        table = describe_table(conn, database, "log")
        rows = list(read_rows(conn, table, chunk=1))
    finally:
        conn.close()
    assert table.key == () and table.schema.primary_key == ()
    assert sorted(r["line"] for r in rows) == ["a", "a", "b"]


def test_snapshot_position_splits_changes_into_seen_and_streamed(mysql_database: str) -> None:
    """Rows committed before the snapshot are read; later ones are in the binlog after its position."""
    database = mysql_database.rsplit("/", 1)[1]
    execute(mysql_database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    conn = connect(mysql_database, **snapshot_connection_kwargs())
    try:
        position = begin_consistent_snapshot(conn, mariadb=True)
        execute(mysql_database, "INSERT INTO t VALUES (3)", "DELETE FROM t WHERE id = 1")
        rows = list(read_rows(conn, describe_table(conn, database, "t"), chunk=10))
        conn.commit()
    finally:
        conn.close()
    assert [r["id"] for r in rows] == [1, 2]
    assert position.gtid and position.file
    end = current_position(mysql_database)
    reader = BinlogReader(mysql_database, fresh_server_id(), position)
    decoder = RowDecoder()
    changes = []
    try:
        for event in reader.events():
            if event.type == 19:
                decoder.table_map(event.body)
            elif event.type in ROWS_EVENTS:
                table, rows_changed = decoder.rows(event.body, event.type, event.where)
                if table.database == database:
                    changes.extend(rows_changed)
            if event.file == end.file and event.next_position >= end.position:
                break
    finally:
        reader.close()
    assert changes == [(None, {"id": 3}), ({"id": 1}, None)]


def test_one_table_split_into_key_ranges_reads_every_row_once_under_writes(mysql_database: str, kafka_bootstrap: str,
                                                                           caplog) -> None:
    import logging
    import random
    import threading
    import time
    import uuid

    from cdc.pipeline import CaptureOptions
    from tests.connectors.mysql.test_source import Capture, final_rows, read_topic

    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"mr{uuid.uuid4().hex[:8]}"
    execute(mysql_database, "CREATE TABLE big (id BIGINT PRIMARY KEY, v INT)",
            "INSERT INTO big SELECT seq, 0 FROM seq_1_to_12000")
    stop_writing = threading.Event()

    def writer() -> None:
        rng = random.Random(5)
        conn = connect(mysql_database)
        try:
            with conn.cursor() as cursor:
                while not stop_writing.is_set():
                    cursor.execute("INSERT INTO big VALUES (%s, 0) ON DUPLICATE KEY UPDATE v = v + 1",
                                   (rng.randint(-50, 12050),))  # beyond both ends of the ranges too
                    cursor.execute("DELETE FROM big WHERE id = %s", (rng.randint(1, 12000),))
        finally:
            conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    caplog.set_level(logging.INFO, logger="connectors.mysql.snapshot")
    capture = Capture(CaptureOptions(source=mysql_database, kafka=kafka_bootstrap, prefix=prefix,
                                     tables=(f"{database}.big",), snapshot="initial", snapshot_workers=3,
                                     snapshot_chunk=500, heartbeat_interval=1.0,
                                     extra={"server_id": fresh_server_id()}))
    time.sleep(2.0)
    stop_writing.set()
    thread.join(10)
    conn = connect(mysql_database)
    with conn.cursor() as cursor:
        cursor.execute("SELECT id, v FROM big")
        expected = {id_: {"id": id_, "v": v} for id_, v in cursor.fetchall()}
    conn.close()
    deadline = time.monotonic() + 60
    records = read_topic(kafka_bootstrap, f"{prefix}.{database}.big", 10**9, timeout=3)
    while final_rows(records) != expected and time.monotonic() < deadline:
        records = read_topic(kafka_bootstrap, f"{prefix}.{database}.big", 10**9, timeout=3)
    capture.stop()
    started = next(r for r in caplog.records if r.getMessage() == "snapshot starting")
    assert (started.connections, started.ranges) == (3, 3)
    snapshot = [(key["id"], value["source"]["snapshot"]) for key, value in records if value and value["op"] == "r"]
    assert len(snapshot) == len({key for key, _ in snapshot})  # each row read once
    markers = [marker for _, marker in snapshot]
    assert markers.count("first") == 1 and markers.count("last") == 1 and set(markers) == {"first", "true", "last"}
    assert final_rows(records) == expected


MIXED_TABLE = ("CREATE TABLE mixed (id INT PRIMARY KEY, amount DECIMAL(12,3), ratio DOUBLE, note VARCHAR(60), "
               "raw BLOB, at DATETIME(6), day DATE, span TIME(3), doc JSON)")
MIXED_ROWS = (
    "(1, -123456789.125, 0.1, 'tab\\there\\nnew \"quote\" back\\\\slash', x'00ff0a', '2024-02-29 23:59:59.123456', "
    "'2024-02-29', '-838:59:59', '{\"k\": [1, 2.5, \"é\"]}')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, -1e300, 'ünïcödé ☃ 😀', '', '1970-01-01 00:00:00', '1000-01-01', '00:00:00.5', 'null')",
    "(4, 1.5, 2.25, '', x'5c22', '2038-01-19 03:14:07.999999', '9999-12-31', '12:00:00', '[]')",
)


def _events(records) -> list[tuple]:
    """Records with the value's own clock (its trailing ts_ms/ts_us/ts_ns, read at encoding) cut off."""
    return [(topic, key, value.rsplit(b',"ts_ms":', 1)[0], headers) for topic, key, value, headers in records]


def test_rows_read_as_json_make_the_same_events_as_rows_read_through_pymysql(mysql_database: str) -> None:
    """The fast path (`_json_batches`: rows straight off the socket into JSON, and a batch's edge rows
    decoded back for their Change) gives the old path's (`_batches`: PyMySQL rows as dicts) events."""
    from cdc.envelope import Envelope
    from cdc.events import READ, Change
    from cdc.snapshot import KeyRange
    from connectors.mysql.snapshot import BATCH_ROWS, _batches, _json_batches, json_plan

    import orjson

    execute(mysql_database, MIXED_TABLE, "INSERT INTO mixed VALUES " + ", ".join(MIXED_ROWS),
            "INSERT INTO mixed (id, note) SELECT seq + 10, CONCAT('n', seq) FROM seq_1_to_2500")
    conn = connect(mysql_database, **snapshot_connection_kwargs())
    try:
        table = describe_table(conn, mysql_database.rsplit("/", 1)[1], "mixed")
        envelope = Envelope("mx")
        plan = json_plan(table, envelope)
        template = envelope.source_template({"version": "1", "snapshot": "true", "db": table.database}, ())
        for key_range in (KeyRange(), KeyRange(2, 1000)):
            old = [row for batch in _batches(conn, (table, key_range), 7) for row in batch]
            new_batches = list(_json_batches(conn, table, plan, 7, key_range))
            assert all(len(batch) >= BATCH_ROWS for batch in new_batches[:-1])
            new = [row for batch in new_batches for row in batch]
            assert len(new) == len(old) > 4
            expected = [record for row in old for record in envelope.records(
                Change(READ, table.schema, None, row, dict(template.fields), (0, 0, 0)))]
            assert _events(envelope.json_reads_records(table.schema, new, template)) == _events(expected)
            edges = [record for row in new for record in envelope.records(
                Change(READ, table.schema, None, orjson.loads(row[1]), dict(template.fields), (0, 0, 0)))]
            assert _events(edges) == _events(expected)
    finally:
        conn.close()


def test_a_row_over_16_mb_is_read_as_json_like_the_rows_around_it(mysql_database: str) -> None:
    """A row split over several packets (over 16 MB) is put together by the fast path, the rows after it read on."""
    from cdc.envelope import Envelope
    from connectors.mysql.snapshot import _batches, _json_batches, json_plan

    import orjson

    conn = connect(mysql_database)
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.max_allowed_packet")
        (packet,) = cursor.fetchone()
    conn.close()
    execute(mysql_database, "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
    try:
        conn = connect(mysql_database, **snapshot_connection_kwargs())
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin = 0")  # an event over 16 MB would upset BINLOG_GTID_POS later
            cursor.execute("CREATE TABLE wide (id INT PRIMARY KEY, body LONGTEXT, tail VARCHAR(10))")
            cursor.execute("INSERT INTO wide VALUES (1, 'small', 'a'), (2, REPEAT('é', 9000000), 'b'), "
                           "(3, NULL, 'c'), (4, REPEAT('x', 16777210), 'd')")
        table = describe_table(conn, mysql_database.rsplit("/", 1)[1], "wide")
        old = [orjson.dumps(row) for batch in _batches(conn, (table, WHOLE_TABLE), 3) for row in batch]
        new = [row[1] for batch in _json_batches(conn, table, json_plan(table, Envelope("w")), 3) for row in batch]
        assert new == old and len(new) == 4
        assert [len(orjson.loads(row)["body"] or "") for row in new] == [5, 9000000, 0, 16777210]
        conn.close()
    finally:
        execute(mysql_database, f"SET GLOBAL max_allowed_packet = {int(packet)}")
