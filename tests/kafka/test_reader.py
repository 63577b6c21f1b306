"""Whole-topic reads on the broker: `read_topic(missing_ok=...)` and `latest_by_key` (both backends)."""

from __future__ import annotations

import uuid

import pytest

from cdc.errors import KafkaError
from cdc.kafka import latest_by_key, make_admin, read_topic
from tests.kafka.test_clients import produce_all


def test_latest_by_key_keeps_the_newest_value_and_drops_tombstoned_keys(kafka_broker, backend, new_topic) -> None:
    topic = new_topic(2, compacted=True)
    produce_all(kafka_broker, backend, topic, [
        (b"a", b"a1", None), (b"b", b"b1", None), (b"a", b"a2", None), (b"c", b"c1", None), (b"c", None, None),
    ])

    assert latest_by_key(kafka_broker, topic, backend=backend, timeout=20) == {b"a": b"a2", b"b": b"b1"}


def test_latest_by_key_of_a_missing_or_empty_topic_is_empty(kafka_broker, backend, new_topic) -> None:
    empty = new_topic(1, compacted=True)

    assert latest_by_key(kafka_broker, empty, backend=backend, timeout=10) == {}
    assert latest_by_key(kafka_broker, f"no-such-topic-{uuid.uuid4().hex[:8]}", backend=backend, timeout=10) == {}


def test_read_topic_missing_ok_returns_nothing_only_when_asked(kafka_broker, backend) -> None:
    missing = f"no-such-topic-{uuid.uuid4().hex[:8]}"

    assert read_topic(kafka_broker, missing, backend=backend, timeout=5, missing_ok=True) == []
    with make_admin(kafka_broker, backend=backend) as admin:
        assert read_topic(kafka_broker, missing, backend=backend, timeout=5, missing_ok=True, admin=admin) == []
    with pytest.raises(KafkaError, match="does not exist"):
        read_topic(kafka_broker, missing, backend=backend, timeout=5)


def test_read_topic_missing_ok_still_reads_a_topic_with_records(kafka_broker, backend, new_topic) -> None:
    topic = new_topic(1)
    produce_all(kafka_broker, backend, topic, [(b"k", b"v", [("cdc.schema.version", b"1")])])

    read = read_topic(kafka_broker, topic, backend=backend, timeout=20, missing_ok=True)

    assert [(r.key, r.value, r.headers) for r in read] == [(b"k", b"v", (("cdc.schema.version", b"1"),))]
