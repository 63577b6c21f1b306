"""Sparse delivery reports against the broker: every record arrives, in order per key, and the
acknowledged position moves only over delivered records, with far fewer reports than records."""

from __future__ import annotations

import uuid

import orjson
import pytest

from cdc.envelope import Envelope
from cdc.errors import KafkaError
from cdc.events import CREATE, Change, Column, TableSchema
from cdc.kafka import make_admin, make_capture_producer, read_topic
from cdc.kafka.base import TopicSpec
from cdc.kafka.partitioner import partition_for
from cdc.pipeline import CapturePipeline


def _table(name: str) -> TableSchema:
    return TableSchema("postgresql", "public", name,
                       (Column("id", "integer", "int", nullable=False, primary_key=True), Column("v", "text", "string")),
                       primary_key=("id",), database="shop")


def _pipeline(kafka_broker: str, prefix: str, partitions: int) -> tuple[CapturePipeline, TableSchema]:
    table = _table("orders")
    envelope = Envelope(prefix)
    admin = make_admin(kafka_broker)
    try:
        admin.create_topics([TopicSpec(envelope.topic(table), partitions, False)])
    finally:
        admin.close()
    producer = make_capture_producer(kafka_broker, backend="confluent")
    return CapturePipeline(producer, envelope, acknowledged=0), table


def test_every_record_arrives_in_key_order_with_few_reports(kafka_broker: str) -> None:
    prefix = f"sparse{uuid.uuid4().hex[:8]}"
    pipeline, table = _pipeline(kafka_broker, prefix, partitions=3)
    assert pipeline.sparse
    source = {"version": "x", "connector": "postgresql", "name": prefix}
    position = 0
    for transaction in range(300):
        pipeline.begin_transaction(f"{transaction}:0", 0)
        for n in range(10):
            row_id = n % 7  # the same keys again and again: order per key matters
            pipeline.emit(Change(CREATE, table, None, {"id": row_id, "v": f"{transaction}-{n}"}, source, (position, n)))
        pipeline.end_transaction()
        position += 1
        pipeline.checkpoint(position)
        if transaction % 50 == 0:
            pipeline.poll()
    pipeline.flush()
    assert pipeline.acknowledged == position
    assert pipeline.records == 1 + 300 * 12  # schema, then BEGIN + 10 events + END per transaction
    assert pipeline.tracker._next < pipeline.records / 20  # delivery reports: a few per seal, not one per record

    records = read_topic(kafka_broker, pipeline.envelope.topic(table), backend="confluent")
    assert len(records) == 3000
    by_key: dict[int, list[str]] = {}
    for record in records:
        row = orjson.loads(record.value)["after"]
        assert record.partition == partition_for(record.key, 3)  # the Java client's partition for the key
        by_key.setdefault(row["id"], []).append(row["v"])
    for row_id, values in by_key.items():
        expected = [f"{t}-{n}" for t in range(300) for n in range(10) if n % 7 == row_id]
        assert values == expected


def test_a_record_kafka_refuses_stops_the_pipeline_unacknowledged(kafka_broker: str) -> None:
    prefix = f"sparse{uuid.uuid4().hex[:8]}"
    pipeline, table = _pipeline(kafka_broker, prefix, partitions=1)
    source = {"version": "x", "connector": "postgresql", "name": prefix}
    pipeline.emit(Change(CREATE, table, None, {"id": 1, "v": "small"}, source, (1, 0)))
    pipeline.checkpoint(1)
    pipeline.flush()
    assert pipeline.acknowledged == 1
    with pytest.raises(KafkaError):
        for n in range(3):  # larger than librdkafka's message.max.bytes (1 MB)
            pipeline.emit(Change(CREATE, table, None, {"id": 2, "v": "x" * 2_000_000}, source, (2, n)))
            pipeline.checkpoint(2)
        pipeline.flush()
    assert pipeline.acknowledged == 1
