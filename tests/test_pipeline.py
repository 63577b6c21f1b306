"""The engine-neutral capture glue: acknowledged positions, schemas first, transaction records, stop."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import orjson
import pytest

from cdc.envelope import Envelope
from cdc.errors import KafkaError
from cdc.events import CREATE, DELETE, UPDATE, Change, Column, TableSchema
from cdc.pipeline import CapturePipeline, Every, StopSignal
from cdc.positions import PositionTracker


def test_tracker_acknowledges_only_a_fully_delivered_prefix():
    tracker = PositionTracker(acknowledged=10)
    tickets = [tracker.produced() for _ in range(3)]
    tracker.checkpoint(20)
    fourth = tracker.produced()
    tracker.checkpoint(30)
    tracker.delivered(tickets[2])
    tracker.delivered(tickets[1])
    assert tracker.acknowledged == 10  # the first record is still out
    tracker.delivered(tickets[0])
    assert tracker.acknowledged == 20
    tracker.delivered(fourth)
    assert tracker.acknowledged == 30 and tracker.idle and tracker.in_flight == 0
    tracker.checkpoint(40)  # nothing in flight: acknowledged at once
    assert tracker.acknowledged == 40


class FakeProducer:
    """Records produce() calls; poll()/flush() deliver (or fail) them in order."""

    def __init__(self, fail_topic: str | None = None):
        self.queued = []
        self.sent = []
        self.fail_topic = fail_topic

    def produce(self, topic, value, key=None, *, partition=None, headers=None, on_delivery=None):
        self.queued.append((topic, key, value, headers, on_delivery))

    def poll(self, timeout=0.0):
        queued, self.queued = self.queued, []
        for topic, key, value, headers, callback in queued:
            self.sent.append((topic, key, value, headers))
            callback(RuntimeError("broker said no") if topic == self.fail_topic else None, None)
        return len(queued)

    def flush(self, timeout=None):
        self.poll()


TABLE = TableSchema("postgresql", "public", "orders",
                    (Column("id", "integer", "int", nullable=False, primary_key=True), Column("v", "text", "string")),
                    primary_key=("id",), database="shop")


def _change(op, row, position):
    source = {"version": "x", "connector": "postgresql", "name": "shop"}
    before, after = (row, None) if op == DELETE else (None, row)
    return Change(op, TABLE, before, after, source, position)


def test_schema_then_transaction_then_events_then_acknowledged():
    producer = FakeProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=100)
    pipeline.begin_transaction("7:200", 1_700_000_000_000)
    pipeline.emit(_change(CREATE, {"id": 1, "v": "a"}, (200, 150)))
    pipeline.emit(_change(DELETE, {"id": 1, "v": None}, (200, 160)))
    pipeline.end_transaction()
    pipeline.checkpoint(210)
    assert pipeline.acknowledged == 100  # nothing delivered yet
    pipeline.poll()
    assert pipeline.acknowledged == 210
    topics = [record[0] for record in producer.sent]
    assert topics == ["shop.schemas", "shop.transaction", "shop.public.orders", "shop.public.orders",
                      "shop.public.orders", "shop.transaction"]
    created = orjson.loads(producer.sent[2][2])
    assert created["transaction"] == {"id": "7:200", "total_order": 1, "data_collection_order": 1}
    assert producer.sent[4][2] is None  # tombstone after the delete
    end = orjson.loads(producer.sent[5][2])
    assert end["status"] == "END" and end["event_count"] == 2
    assert end["data_collections"] == [{"data_collection": "public.orders", "event_count": 2}]
    # the same schema is not published twice; an empty transaction writes no BEGIN/END
    pipeline.begin_transaction("8:300", 0)
    pipeline.end_transaction()
    pipeline.emit(_change(CREATE, {"id": 2, "v": "b"}, (300, 250)))
    pipeline.poll()
    assert [record[0] for record in producer.sent[6:]] == ["shop.public.orders"]


@pytest.mark.parametrize("path", ["emit", "emit_row"])
def test_primary_key_change_counts_as_two_events(path):
    """Debezium counts a key change's delete and create: later orders and END's event_count agree."""
    producer = FakeProducer()
    envelope = Envelope("shop")
    pipeline = CapturePipeline(producer, envelope)
    source = {"version": "x", "connector": "postgresql", "name": "shop"}
    template = envelope.source_template(source, ())
    rows = [(CREATE, None, {"id": 1, "v": "a"}), (UPDATE, {"id": 1, "v": "a"}, {"id": 2, "v": "a"}),
            (UPDATE, {"id": 2, "v": "a"}, {"id": 2, "v": "b"}), (CREATE, None, {"id": 3, "v": "c"})]
    pipeline.begin_transaction("7:200", 0)
    for n, (op, before, after) in enumerate(rows):
        if path == "emit":
            pipeline.emit(Change(op, TABLE, before, after, source, (200, n)))
        else:
            pipeline.emit_row(TABLE, op, before, after, template, ())
    pipeline.end_transaction()
    pipeline.poll()
    events = [orjson.loads(value) for topic, _, value, _ in producer.sent if topic == "shop.public.orders" and value]
    assert [(event["op"], event["transaction"]["total_order"], event["transaction"]["data_collection_order"])
            for event in events] == [("c", 1, 1), ("d", 2, 2), ("c", 3, 3), ("u", 4, 4), ("c", 5, 5)]
    end = orjson.loads(producer.sent[-1][2])
    assert end["status"] == "END" and end["event_count"] == 5
    assert end["data_collections"] == [{"data_collection": "public.orders", "event_count": 5}]


def test_failed_delivery_stops_and_never_acknowledges():
    producer = FakeProducer(fail_topic="shop.public.orders")
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    pipeline.emit(_change(CREATE, {"id": 1, "v": "a"}, (5, 5)))
    pipeline.checkpoint(9)
    with pytest.raises(KafkaError, match="broker said no"):
        pipeline.poll()
    assert pipeline.acknowledged == 1


def test_heartbeat_record():
    producer = FakeProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"))
    pipeline.heartbeat()
    pipeline.flush()
    assert producer.sent[0][0] == "__cdc-heartbeat.shop" and producer.sent[0][1] == b'{"serverName":"shop"}'


def test_stop_signal_on_sigterm():
    with StopSignal() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


def test_every():
    now = [0.0]
    every = Every(5, clock=lambda: now[0])
    assert not every.due()
    now[0] = 5.0
    assert every.due() and not every.due()


def test_versioned_keeps_or_bumps_the_known_version():
    pipeline = CapturePipeline(FakeProducer(), Envelope("shop"))
    pipeline.seed_schemas([replace(TABLE, version=4)])
    assert pipeline.versioned(TABLE).version == 4  # same columns: the known version
    wider = replace(TABLE, columns=TABLE.columns + (Column("w", "integer", "int"),))
    assert pipeline.versioned(wider).version == 5
    pipeline.publish_schema(pipeline.versioned(TABLE))  # known and unchanged: not published again
    pipeline.flush()
    assert pipeline.producer.sent == []
