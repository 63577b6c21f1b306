"""The MySQL/MariaDB capture end to end: sandbox MariaDB -> run_capture -> Kafka topics."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid

import orjson
import pytest

from cdc.pipeline import CaptureOptions, StopSignal
from connectors.mysql.dialect import connect
from connectors.mysql.offsets import file_number
from connectors.mysql.source import run_capture
from connectors.mysql.source_info import source_block
from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id

SOURCE_FIELDS = ["version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us", "ts_ns", "table",
                 "server_id", "gtid", "file", "pos", "row", "thread", "query"]


def test_source_block_has_debeziums_fields_in_order() -> None:
    block = source_block("shop", ts_ms=1, snapshot="false", db="d", table="t", server_id=1, gtid="0-1-5",
                         file="mysql-bin.000003", pos=4, row=0, thread=7)
    assert list(block) == SOURCE_FIELDS
    assert file_number("mysql-bin.000042") == 42


class Capture:
    """run_capture in a thread; stop() requests a stop and joins."""

    def __init__(self, options: CaptureOptions) -> None:
        self.stop_signal = StopSignal(signals=())
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(options,), daemon=True)
        self.thread.start()

    def _run(self, options: CaptureOptions) -> None:
        try:
            run_capture(options, self.stop_signal)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self) -> None:
        self.stop_signal.request()
        self.thread.join(60)
        assert not self.thread.is_alive(), "capture did not stop"
        if self.error:
            raise self.error


def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 60.0) -> list:
    """At least `want` records of `topic` from the beginning, as decoded (key, value), in order per partition.

    Reads by partition assignment (no consumer-group join, which is slow on the sandbox broker).
    """
    import confluent_kafka as ck

    from cdc.kafka import make_admin

    deadline = time.monotonic() + timeout
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        admin = make_admin(bootstrap)
        try:
            partitions = admin.list_topics().get(topic)
        finally:
            admin.close()
        if partitions is None:
            time.sleep(0.5)
    assert partitions, f"topic {topic} never appeared"
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex[:8]}",
                            "enable.auto.commit": False})
    records = []
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        while len(records) < want and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    records.append((orjson.loads(message.key()) if message.key() else None,
                                    orjson.loads(message.value()) if message.value() else None))
    finally:
        consumer.close()
    return records


def ops_by_key(records: list) -> dict:
    """{id: [op, ...]} in topic order per key (Kafka orders records per partition, so per key)."""
    found: dict = {}
    for key, value in records:
        found.setdefault(key["id"], []).append(value["op"] if value else None)
    return found


def execute(url: str, *statements: str) -> None:
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


@pytest.mark.timeout(240)
def test_snapshot_then_stream_then_resume_without_repeats(mysql_database: str, kafka_bootstrap: str) -> None:
    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"my{uuid.uuid4().hex[:8]}"
    execute(mysql_database,
            "CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(10,2), placed DATETIME(3), note VARCHAR(20))",
            "INSERT INTO orders VALUES (1, 10.50, '2024-02-29 13:45:00.123', 'a'), (2, 0.05, NULL, 'b')",
            "CREATE TABLE ignored (id INT PRIMARY KEY)")
    options = CaptureOptions(source=mysql_database, kafka=kafka_bootstrap, prefix=prefix, tables=(f"{database}.orders",),
                             snapshot="initial", heartbeat_interval=1.0, extra={"server_id": fresh_server_id()})
    topic = f"{prefix}.{database}.orders"
    capture = Capture(options)
    snapshot = read_topic(kafka_bootstrap, topic, 2)
    assert [value["op"] for _, value in snapshot] == ["r", "r"]
    assert snapshot[0][1]["after"] == {"id": 1, "amount": "10.50", "placed": "2024-02-29T13:45:00.123", "note": "a"}
    assert [value["source"]["snapshot"] for _, value in snapshot] == ["first", "last"]
    assert snapshot[0][1]["transaction"] is None  # as Debezium: snapshot reads belong to no transaction
    execute(mysql_database,
            "INSERT INTO orders VALUES (3, 7.00, '2024-03-01 00:00:00', 'c')",
            "UPDATE orders SET note = 'B' WHERE id = 2",
            "DELETE FROM orders WHERE id = 1",
            "INSERT INTO ignored VALUES (1)",
            "ALTER TABLE orders ADD COLUMN qty INT DEFAULT 1",
            "INSERT INTO orders VALUES (4, 1.00, NULL, 'd', 5)")
    records = read_topic(kafka_bootstrap, topic, 7)
    capture.stop()
    by_key = ops_by_key(records)
    assert by_key == {1: ["r", "d", None], 2: ["r", "u"], 3: ["c"], 4: ["c"]}  # None: the tombstone
    update = next(value for _, value in records if value and value["op"] == "u")
    assert update["before"]["note"] == "b" and update["after"]["note"] == "B"
    insert = next(value for key, value in records if key == {"id": 4})
    assert insert["after"] == {"id": 4, "amount": "1.00", "placed": None, "note": "d", "qty": 5}
    source = next(value for key, value in records if key == {"id": 3})["source"]
    assert list(source) == SOURCE_FIELDS
    assert source["connector"] == "mysql" and source["db"] == database and source["table"] == "orders"
    assert source["gtid"].count("-") == 2 and re.fullmatch(r".+\.\d{6}", source["file"]) and source["snapshot"] == "false"
    assert next(value for key, value in records if key == {"id": 3})["transaction"]["id"] == source["gtid"]
    ddl = read_topic(kafka_bootstrap, f"{prefix}.schema-changes", 1)
    assert any("ADD COLUMN qty" in value["ddl"] and value["table"] == "orders" for _, value in ddl)
    offsets = [value for key, value in read_topic(kafka_bootstrap, f"__cdc-offsets.{prefix}", 1)
               if key == {"prefix": prefix, "connector": "mysql"}]
    assert offsets[-1]["gtid"] and offsets[-1]["pos"] > 4

    execute(mysql_database, "INSERT INTO orders VALUES (5, 2.00, NULL, 'e', 1)")
    again = Capture(options)
    later = read_topic(kafka_bootstrap, topic, 8)
    again.stop()
    assert ops_by_key(later) == {**by_key, 5: ["c"]}


@pytest.mark.timeout(180)
def test_debezium_ddl_records_describe_the_table_only_when_no_later_ddl_changed_it(
        mysql_database: str, kafka_bootstrap: str, caplog) -> None:
    """compat "debezium": a DDL read after a later DDL changed its table again gets no tableChanges
    (the definition in information_schema is the later one); the latest DDL gets the table after it."""
    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"myddl{uuid.uuid4().hex[:8]}"
    execute(mysql_database, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")
    options = CaptureOptions(source=mysql_database, kafka=kafka_bootstrap, prefix=prefix, tables=(f"{database}.items",),
                             snapshot="never", compat="debezium", heartbeat_interval=0.2,
                             extra={"server_id": fresh_server_id()})
    capture = Capture(options)
    read_topic(kafka_bootstrap, f"__debezium-heartbeat.{prefix}", 1)  # streaming from the current position
    execute(mysql_database, "INSERT INTO items VALUES (1, 'a')")
    read_topic(kafka_bootstrap, f"{prefix}.{database}.items", 1)
    capture.stop()  # its position is stored; the next two DDLs run while it is down
    execute(mysql_database,
            "ALTER TABLE items ADD COLUMN price DECIMAL(8,2) NOT NULL DEFAULT 0 COMMENT 'in EUR'",
            "ALTER TABLE `items` ADD COLUMN qty TINYINT(1) AFTER id")
    again = Capture(options)
    ddl = read_topic(kafka_bootstrap, prefix, 2)
    again.stop()
    first, second = (value for _, value in ddl[-2:])
    assert "price" in first["ddl"] and "qty" in second["ddl"]
    assert first["source"]["table"] == second["source"]["table"] == "items"
    assert first["tableChanges"] == []  # described now, it would show qty, which came later
    assert any("later DDL changed" in record.getMessage() for record in caplog.records)
    [change] = second["tableChanges"]
    assert change["type"] == "ALTER" and change["id"] == f'"{database}"."items"'
    columns = {column["name"]: column for column in change["table"]["columns"]}
    assert list(columns) == ["id", "qty", "name", "price"]
    assert columns["qty"]["length"] == 1 and columns["qty"]["position"] == 2
    assert columns["price"]["defaultValueExpression"] == "0.00" and columns["price"]["comment"] == "in EUR"
    assert columns["price"]["optional"] is False and columns["name"]["optional"] is True
    assert change["table"]["primaryKeyColumnNames"] == ["id"]


@pytest.mark.timeout(180)
def test_purged_stored_position_stops_or_resnapshots_when_needed(mysql_database: str, kafka_bootstrap: str) -> None:
    from cdc.errors import SourceError
    from cdc.kafka import make_producer
    from cdc.offsets import OffsetStore
    from connectors.mysql.offsets import BinlogPosition, position_value

    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"my{uuid.uuid4().hex[:8]}"
    execute(mysql_database, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    offsets = OffsetStore(kafka_bootstrap, prefix, "mysql")
    offsets.ensure_topic()
    producer = make_producer(kafka_bootstrap)
    topic, key, value, _ = offsets.record(position_value(BinlogPosition("gone-bin.000001", 4), 1))
    producer.produce(topic, value, key)
    producer.flush(30)
    producer.close(10)

    options = CaptureOptions(source=mysql_database, kafka=kafka_bootstrap, prefix=prefix, snapshot="initial",
                             heartbeat_interval=1.0, extra={"server_id": fresh_server_id()})
    started = time.monotonic()
    failing = Capture(options)
    failing.thread.join(60)
    assert isinstance(failing.error, SourceError), failing.error
    assert "gone-bin.000001 was purged" in str(failing.error) and "new snapshot is needed" in str(failing.error)
    assert time.monotonic() - started < 30

    healing = Capture(dataclasses.replace(options, snapshot="when_needed"))
    first = read_topic(kafka_bootstrap, f"{prefix}.{database}.t", 1)
    execute(mysql_database, "INSERT INTO t VALUES (2)")
    records = read_topic(kafka_bootstrap, f"{prefix}.{database}.t", 2)
    healing.stop()
    assert first[0][1]["op"] == "r"
    assert ops_by_key(records) == {1: ["r"], 2: ["c"]}


def final_rows(records: list) -> dict:
    """{id: after image} once every record is applied in topic order (a delete removes, a tombstone is skipped)."""
    rows: dict = {}
    for key, value in records:
        if value is None:
            continue
        if value["op"] == "d":
            rows.pop(key["id"], None)
        else:
            rows[key["id"]] = value["after"]
    return rows


@pytest.mark.timeout(240)
def test_snapshot_after_an_unfinished_one_streams_from_where_the_first_began(
        mysql_database: str, kafka_bootstrap: str) -> None:
    """The unfinished snapshot's rows stay in Kafka: the deletes since it began are replayed after the new one."""
    from cdc.kafka import make_producer
    from cdc.offsets import OffsetStore
    from connectors.mysql.binlog import current_position
    from connectors.mysql.offsets import position_value
    from connectors.mysql.source import SNAPSHOT_KEY

    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"my{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.{database}.big"
    execute(mysql_database, "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO big SELECT seq, 'x' FROM seq_1_to_1000")
    # what a snapshot stopped midway leaves: where it began (its rows of ids 1-10, published, are now stale)
    began = OffsetStore(kafka_bootstrap, prefix, SNAPSHOT_KEY)
    began.ensure_topic()
    producer = make_producer(kafka_bootstrap)
    marker_topic, key, value, _ = began.record({"began_after": position_value(current_position(mysql_database), 1)})
    producer.produce(marker_topic, value, key)
    producer.flush(30)
    producer.close(10)
    execute(mysql_database, "DELETE FROM big WHERE id <= 10", "UPDATE big SET v = 'changed' WHERE id > 990",
            "INSERT INTO big VALUES (0, 'after')")
    options = CaptureOptions(source=mysql_database, kafka=kafka_bootstrap, prefix=prefix, tables=(f"{database}.big",),
                             snapshot="initial", heartbeat_interval=1.0, extra={"server_id": fresh_server_id()})
    capture = Capture(options)
    # the snapshot (991 rows), then the replay: 10 deletes and their tombstones, 10 updates, 1 insert
    records = read_topic(kafka_bootstrap, topic, 991 + 31)
    capture.stop()
    by_key = ops_by_key(records)
    assert all(by_key[i] == ["d", None] for i in range(1, 11))
    assert by_key[0] == ["r", "c"] and by_key[995] == ["r", "u"]
    assert final_rows(records) == {i: {"id": i, "v": "changed" if i > 990 else "after" if i == 0 else "x"}
                                   for i in [0, *range(11, 1001)]}
    assert began.load() == {"began_after": None}  # the finished snapshot clears it
