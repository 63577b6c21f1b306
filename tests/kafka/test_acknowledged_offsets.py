"""A broker that lost acknowledged records: unit checks, and a real broker restarted without its data."""

from __future__ import annotations

import time

import pytest

from cdc.kafka.acknowledged_offsets import AcknowledgedOffsets, BrokerLostData
from cdc.kafka.base import DeliveryReport


def test_end_offsets_at_or_below_an_acknowledged_offset_mean_lost_data():
    offsets = AcknowledgedOffsets()
    offsets.note(DeliveryReport("t", 0, 41, None))
    offsets.note(DeliveryReport("t", 0, 7, None))  # older report: the highest stays
    offsets.note(DeliveryReport("t", 1, 3, None))
    offsets.check(lambda topic: {0: 42, 1: 4})  # end = last acknowledged + 1: all there
    with pytest.raises(BrokerLostData, match=r"t\[0\]: end offset 41, acknowledged up to 41"):
        offsets.check(lambda topic: {0: 41, 1: 4})


def test_a_topic_that_vanished_lost_data():
    from cdc.errors import KafkaError

    offsets = AcknowledgedOffsets()
    offsets.note(DeliveryReport("gone", 0, 0, None))

    def missing(topic):
        raise KafkaError(f"topic {topic} does not exist")

    with pytest.raises(BrokerLostData):
        offsets.check(missing)


@pytest.mark.slow
def test_capture_stops_when_a_restarted_broker_lost_acknowledged_records(tmp_path, monkeypatch):
    from cdc.kafka import make_admin, make_capture_producer
    from cdc.kafka.base import TopicSpec
    from cdc.pipeline import CapturePipeline
    from cdc.sandbox import kafka, processes
    from cdc.sandbox.ports import pick_free_port

    monkeypatch.setattr("cdc.pipeline.capture.LOST_DATA_CHECK_SECONDS", 0.5)
    port = pick_free_port()
    broker = kafka.start(tmp_path, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        with make_admin(bootstrap) as admin:
            admin.create_topics([TopicSpec("lost.t", partitions=2)])
        producer = make_capture_producer(bootstrap)
        pipeline = CapturePipeline(producer, None)
        pipeline.send_many([("lost.t", b"k%d" % n, b"v", None) for n in range(200)])
        pipeline.flush()
        assert pipeline.offsets.highest  # the sealed records' offsets were noted
        pipeline.check_broker_kept_data()  # nothing lost yet
        processes.stop(broker.pid, broker.program, broker.marker)
        broker = kafka.start(tmp_path, port)  # memory storage: every record is gone
        deadline = time.monotonic() + 60
        with pytest.raises(BrokerLostData, match="lost records it had acknowledged"):
            while time.monotonic() < deadline:
                pipeline.send_many([("lost.t", b"again", b"v", None)])
                pipeline.poll(0.5)  # what the sources call between batches
        producer.close(1)
    finally:
        processes.stop(broker.pid, broker.program, broker.marker)


def test_the_periodic_check_runs_beside_the_capture_loop_and_its_finding_stops_it(kafka_broker, monkeypatch):
    """Reading end offsets takes about a second on tansu: poll must not wait for it (it held every change
    in flight every 10 s), and what the check finds still stops the capture at a later poll."""
    from cdc.kafka import make_admin, make_capture_producer
    from cdc.kafka.base import TopicSpec
    from cdc.pipeline import CapturePipeline

    monkeypatch.setattr("cdc.pipeline.capture.LOST_DATA_CHECK_SECONDS", 0.0)
    topic = f"lostcheck.{time.monotonic_ns()}"
    with make_admin(kafka_broker) as admin:
        admin.create_topics([TopicSpec(topic, partitions=1)])

    def slow_and_empty(name: str) -> dict[int, int]:
        time.sleep(1.0)
        return {0: 0}  # as a broker that lost everything would answer

    producer = make_capture_producer(kafka_broker)
    try:
        pipeline = CapturePipeline(producer, None, end_offsets=slow_and_empty)
        pipeline.send_many([(topic, b"k%d" % n, b"v", None) for n in range(10)])
        pipeline.flush()
        started = time.monotonic()
        pipeline.poll(0)
        assert time.monotonic() - started < 0.5  # the check went to its own thread
        deadline = time.monotonic() + 10
        with pytest.raises(BrokerLostData, match="lost records it had acknowledged"):
            while time.monotonic() < deadline:
                pipeline.poll(0.1)
    finally:
        producer.close(1)
