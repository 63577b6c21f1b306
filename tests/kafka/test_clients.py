"""Producer, consumer and admin against a real broker; each test runs on both backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from cdc.errors import ConfigError, KafkaError
from cdc.kafka import (
    Admin,
    Consumer,
    DeliveryReport,
    Record,
    TopicSpec,
    choose_backend,
    make_admin,
    make_consumer,
    make_producer,
    partition_for,
)

# tansu answers JoinGroup only after the rebalance timeout (max.poll.interval.ms): keep it small.
GROUP_OPTIONS = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 3000}


def produce_all(bootstrap: str, backend: str, topic: str, records, **options) -> list[DeliveryReport]:
    """Produce (key, value, headers) triples, flush, and return the delivery reports in order of arrival."""
    reports: list[DeliveryReport] = []

    def delivered(error, report):
        assert error is None, error
        reports.append(report)

    producer = make_producer(bootstrap, backend=backend, **options)
    try:
        for key, value, headers in records:
            producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
        producer.flush(30)
    finally:
        producer.close()
    return reports


def consumer_for(bootstrap: str, backend: str, group_id: str, **kwargs) -> Consumer:
    return make_consumer(bootstrap, group_id=group_id, backend=backend, **GROUP_OPTIONS, **kwargs)


def consume_until(consumer: Consumer, count: int, timeout: float = 20.0, max_records: int = 500) -> list[Record]:
    """Consume until `count` records arrived (or fail after `timeout` seconds)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < count:
        assert time.monotonic() < deadline, f"only {len(records)} of {count} records after {timeout}s"
        records += consumer.consume(max_records=min(max_records, count - len(records)), timeout=0.5)
    return records


def test_produce_reports_every_delivery_and_flush_waits(kafka_broker, backend, new_topic) -> None:
    topic = new_topic(3)
    records = [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(200)]

    reports = produce_all(kafka_broker, backend, topic, records)

    assert len(reports) == 200
    assert {r.topic for r in reports} == {topic}
    by_partition: dict[int, list[int]] = {}
    for report in reports:
        by_partition.setdefault(report.partition, []).append(report.offset)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))


def test_keyed_records_land_on_the_java_murmur2_partition(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(6)
    keys = [b"", b"a", b"21", b"foobar", *(f'{{"id": {i}}}'.encode() for i in range(150))]
    records = [(key, b"value", None) for key in keys] + [(None, b"no key", None)] * 5

    reports = produce_all(kafka_broker, backend, topic, records)
    assert sorted((r.key or b"", r.partition) for r in reports) == sorted(
        (key or b"", partition_for(key, 6)) for key, _, _ in records
    )

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as consumer:
        consumed = consume_until(consumer, len(records))
    assert all(r.partition == partition_for(r.key, 6) for r in consumed)
    assert len({r.partition for r in consumed}) == 6
    assert [r.value for r in consumed if r.key is None] == [b"no key"] * 5


def test_headers_keys_and_tombstones_round_trip(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(1)
    headers = [("cdc.schema.version", b"3"), ("__debezium.oldkey", b'{"id": 1}'), ("empty", b"")]
    records = [(b'{"id": 1}', b'{"op": "d"}', headers), (b'{"id": 1}', None, None)]

    produce_all(kafka_broker, backend, topic, records)

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as consumer:
        first, tombstone = consume_until(consumer, 2)
    assert first.headers == tuple(headers)
    assert first.key == b'{"id": 1}' and first.value == b'{"op": "d"}'
    assert first.timestamp_ms > 1_600_000_000_000
    assert tombstone.key == b'{"id": 1}' and tombstone.value is None and tombstone.headers == ()


def test_create_compacted_topic_and_list_delete(admin: Admin, new_topic) -> None:
    compacted = new_topic(2, compacted=True)
    plain = new_topic(4)

    admin.create_topics([TopicSpec(compacted, 2, compacted=True)], exist_ok=True)
    topics = admin.list_topics()
    assert topics[compacted] == 2 and topics[plain] == 4
    assert admin.ensure_topic(plain, 9) == 4

    with pytest.raises(KafkaError, match="cannot create topic"):
        admin.create_topics([TopicSpec(plain, 4)], exist_ok=False)

    admin.delete_topics([plain, "no-such-topic-" + plain])
    deadline = time.monotonic() + 10
    while plain in admin.list_topics():
        assert time.monotonic() < deadline, "deleted topic still listed"
        time.sleep(0.1)


def test_compacted_topic_has_cleanup_policy_compact(kafka_broker, admin: Admin, new_topic) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    topic = new_topic(1, compacted=True)
    inspector = AdminClient({"bootstrap.servers": kafka_broker})
    describe = inspector.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    configs = next(iter(describe.values())).result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_end_offsets_are_high_watermarks(kafka_broker, backend, admin: Admin, new_topic) -> None:
    topic = new_topic(2)
    assert admin.end_offsets(topic) == {0: 0, 1: 0}
    # Several batches per partition: a broker's ListOffsets answer alone can lag behind the last batch.
    for count in (5, 1, 3):
        produce_all(kafka_broker, backend, topic, [(None, b"x", None)] * count)
    assert admin.end_offsets(topic) == {0: 9, 1: 0}


def test_group_member_resumes_from_committed_offsets(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(1)
    produce_all(kafka_broker, backend, topic, [(None, f"v{i}".encode(), None) for i in range(10)])

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as first:
        records = consume_until(first, 6, max_records=6)
        assert [r.offset for r in records] == list(range(6))
        first.commit()
        assert first.committed([(topic, 0)]) == {(topic, 0): 6}

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as second:
        rest = consume_until(second, 4)
        assert [r.value for r in rest] == [f"v{i}".encode() for i in range(6, 10)]
        second.commit({(topic, 0): 8})
        assert second.committed([(topic, 0)]) == {(topic, 0): 8}


def test_seek_rereads_from_the_given_offset(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(1)
    produce_all(kafka_broker, backend, topic, [(None, f"v{i}".encode(), None) for i in range(10)])

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as consumer:
        consume_until(consumer, 10)
        assert consumer.assignment() == {(topic, 0)}
        consumer.seek(topic, 0, 3)
        again = consume_until(consumer, 7)
        assert [r.offset for r in again] == list(range(3, 10))
        assert consumer.position([(topic, 0)]) == {(topic, 0): 10}


def test_seek_in_on_assign_applies_before_the_first_records(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(2)
    produce_all(kafka_broker, backend, topic, [(None, f"v{i}".encode(), None) for i in range(10)])
    stored = {(topic, 0): 7, (topic, 1): 0}  # what an apply worker keeps in its target database
    assigned_calls: list[list[tuple[str, int]]] = []

    def on_assign(consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
        assigned_calls.append(partitions)
        assert consumer.committed(partitions) == {tp: None for tp in partitions}
        for tp in partitions:
            consumer.seek(*tp, stored[tp])

    with consumer_for(kafka_broker, backend, group_id, topics=[topic], on_assign=on_assign) as consumer:
        records = consume_until(consumer, 3)
        time.sleep(0.3)
        assert consumer.consume(timeout=0.5) == []
    assert assigned_calls == [[(topic, 0), (topic, 1)]]
    assert [r.offset for r in records] == [7, 8, 9]


def test_pattern_subscription_reads_matching_topics(kafka_broker, backend, new_topic, group_id) -> None:
    prefix = f"p{group_id[-8:]}"
    orders = new_topic(1, name=f"{prefix}.public.orders")
    items = new_topic(1, name=f"{prefix}.public.items")
    other = new_topic(1, name=f"x{prefix}.public.items")
    for topic in (orders, items, other):
        produce_all(kafka_broker, backend, topic, [(b"k", topic.encode(), None)])

    with consumer_for(kafka_broker, backend, group_id, pattern=rf"^{prefix}\..*") as consumer:
        # A pattern member finds its topics by metadata refresh (every 5 s), then joins (and may rejoin
        # once more topics match): on a loaded 2-core CI box that took over 20 s once (kafka-python).
        records = consume_until(consumer, 2, timeout=60.0)
        assert consumer.consume(timeout=1.0) == []
    assert sorted(r.value for r in records) == sorted([orders.encode(), items.encode()])


def test_two_members_of_a_group_share_the_partitions(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(4)
    revoked: list[list[tuple[str, int]]] = []
    members: list[Consumer] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(consumer: Consumer) -> None:
        try:
            while not stop.is_set():
                consumer.consume(timeout=0.2)
        except BaseException as exc:
            errors.append(exc)

    def join() -> threading.Thread:
        member = consumer_for(kafka_broker, backend, group_id, topics=[topic], on_revoke=lambda c, p: revoked.append(p))
        members.append(member)
        thread = threading.Thread(target=run, args=(member,))
        thread.start()
        return thread

    threads = []
    try:
        threads.append(join())
        deadline = time.monotonic() + 20
        while len(members[0].assignment()) != 4:
            assert time.monotonic() < deadline, "first member never got all partitions"
            assert not errors, errors
            time.sleep(0.1)
        threads.append(join())
        while not (members[0].assignment() and members[1].assignment()):
            assert time.monotonic() < deadline, "the partitions were not shared"
            assert not errors, errors
            time.sleep(0.1)
        first, second = members[0].assignment(), members[1].assignment()
        assert first | second == {(topic, p) for p in range(4)}
        assert not first & second
        assert revoked, "the first member's partitions were not revoked before the rebalance"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for member in members:
            member.close()
    assert not errors, errors


def test_transaction_commit_is_visible_and_abort_is_not(kafka_broker, backend, new_topic, group_id) -> None:
    topic = new_topic(1)
    producer = make_producer(kafka_broker, backend=backend, transactional_id=f"tx-{group_id}")
    try:
        producer.begin_transaction()
        producer.produce(topic, b"aborted")
        producer.abort_transaction()
        producer.begin_transaction()
        producer.produce(topic, b"committed")
        producer.commit_transaction()
    finally:
        producer.close()

    with consumer_for(kafka_broker, backend, group_id, topics=[topic]) as consumer:
        records = consume_until(consumer, 1)
        records += consumer.consume(timeout=1.0)
    assert [r.value for r in records] == [b"committed"]


def test_full_local_queue_slows_produce_instead_of_failing(kafka_broker, backend, new_topic) -> None:
    topic = new_topic(2)
    records = [(f"{i}".encode(), b"x" * 200, None) for i in range(5000)]

    reports = produce_all(kafka_broker, backend, topic, records, queue_max_messages=100)

    assert len(reports) == 5000


def test_produce_to_a_missing_partition_raises_kafka_error(kafka_broker, backend, new_topic) -> None:
    topic = new_topic(1)
    producer = make_producer(kafka_broker, backend=backend)
    try:
        with pytest.raises(KafkaError):
            producer.produce(topic, b"x", partition=5)
            producer.flush(10)
    finally:
        producer.close(timeout=1)


@pytest.mark.parametrize("client", ["producer", "consumer", "admin"])
def test_unreachable_broker_is_a_kafka_error_within_seconds(backend: str, client: str) -> None:
    make: dict[str, Callable[[], object]] = {
        "producer": lambda: make_producer("127.0.0.1:9", backend=backend, connect_timeout=1),
        "consumer": lambda: make_consumer("127.0.0.1:9", group_id="g", topics=["t"], backend=backend, connect_timeout=1),
        "admin": lambda: make_admin("127.0.0.1:9", backend=backend, connect_timeout=1),
    }
    started = time.monotonic()
    with pytest.raises(KafkaError, match=r"cannot reach Kafka at 127\.0\.0\.1:9.*CDC_KAFKA_BOOTSTRAP"):
        make[client]()
    assert time.monotonic() - started < 5


def test_backend_comes_from_argument_then_environment(monkeypatch) -> None:
    monkeypatch.setenv("CDC_KAFKA_BACKEND", "kafka-python")
    assert choose_backend() == "kafka-python"
    assert choose_backend("confluent") == "confluent"
    monkeypatch.delenv("CDC_KAFKA_BACKEND")
    assert choose_backend() == "confluent"
    with pytest.raises(ConfigError, match="unknown Kafka backend"):
        choose_backend("jvm")


def test_consumer_needs_topics_or_pattern() -> None:
    with pytest.raises(ConfigError):
        make_consumer("127.0.0.1:9", group_id="g")


def test_read_topic_returns_everything_up_to_the_end(kafka_broker, backend, new_topic) -> None:
    from cdc.kafka import read_topic

    topic = new_topic(3)
    empty = new_topic(2)
    records = [(f"k{i}".encode(), f"v{i}".encode(), [("n", b"%d" % i)]) for i in range(50)] + [(b"k0", None, None)]
    produce_all(kafka_broker, backend, topic, records)

    read = read_topic(kafka_broker, topic, backend=backend, timeout=10)

    assert sorted((r.key, r.value or b"-") for r in read) == sorted((k, v or b"-") for k, v, _ in records)
    assert all(r.partition == partition_for(r.key, 3) for r in read)
    assert read_topic(kafka_broker, empty, backend=backend, timeout=10) == []
    with pytest.raises(KafkaError, match="does not exist"):
        read_topic(kafka_broker, "no-such-topic-" + topic, backend=backend, timeout=5)


def test_error_in_on_assign_reaches_the_caller_of_consume(kafka_broker, backend, new_topic, group_id) -> None:
    from cdc.errors import TargetError

    topic = new_topic(1)
    produce_all(kafka_broker, backend, topic, [(None, b"v", None)])

    def on_assign(consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
        raise TargetError("cannot read cdc_offsets")

    with consumer_for(kafka_broker, backend, group_id, topics=[topic], on_assign=on_assign) as consumer:
        deadline = time.monotonic() + 20
        with pytest.raises(TargetError, match="cannot read cdc_offsets"):
            while time.monotonic() < deadline:
                assert consumer.consume(timeout=0.5) == []
