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


def test_stop_signal_on_sigterm_and_restores_the_previous_handlers():
    def earlier_term(*_):
        raise AssertionError("the earlier SIGTERM handler ran while StopSignal was active")

    def earlier_int(*_):
        raise AssertionError("the earlier SIGINT handler ran while StopSignal was active")

    original = signal.signal(signal.SIGTERM, earlier_term), signal.signal(signal.SIGINT, earlier_int)
    try:
        with StopSignal() as stop:
            assert signal.getsignal(signal.SIGTERM) == stop.request and signal.getsignal(signal.SIGINT) == stop.request
            assert not stop.requested and not stop.wait(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(2) and stop.requested
        assert signal.getsignal(signal.SIGTERM) is earlier_term
        assert signal.getsignal(signal.SIGINT) is earlier_int
    finally:
        signal.signal(signal.SIGTERM, original[0])
        signal.signal(signal.SIGINT, original[1])


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


class FakeSparseProducer(FakeProducer):
    """A producer with sparse delivery reports: untracked records have no callback; poll() delivers in order
    (or, for `fail_topic`, fails the tracked ones); `known` topics have `partitions` partitions."""

    sparse = True
    delivery_timeout = 120.0

    def __init__(self, fail_topic=None, known=("shop.schemas", "shop.transaction", "shop.public.orders"),
                 partitions=1, deliver=True):
        super().__init__(fail_topic)
        self.known = set(known)
        self.partitions = partitions
        self.deliver = deliver
        self.lookups = []
        self._counts = {topic: partitions for topic in self.known}

    @property
    def partition_counts(self):
        return self._counts

    def refresh_partitions(self, topic, timeout=1.0):
        self.lookups.append(topic)
        if topic in self.known:
            self._counts[topic] = self.partitions
        return topic in self.known

    def produce_raw(self, topic, value, key, partition, on_delivery, callback, timestamp, headers):
        assert on_delivery is None and callback is None and timestamp == 0  # librdkafka's positional order
        self.queued.append((topic, key, value, headers, None))

    def produce_untracked(self, topic, value, key, partition, headers):
        self.queued.append((topic, key, value, headers, None))

    def produce_tracked(self, topic, value, key, headers, callback, partition=None):
        self.queued.append((topic, key, value, headers, callback))

    def poll(self, timeout=0.0):
        if not self.deliver:
            return 0
        queued, self.queued = self.queued, []
        for topic, key, value, headers, callback in queued:
            self.sent.append((topic, key, value, headers))
            if callback is not None:
                callback(RuntimeError("broker said no") if topic == self.fail_topic else None, None)
        return len(queued)


def _emit_rows(pipeline, ids, position):
    pipeline.begin_transaction(f"7:{position}", 0)
    for n in ids:
        pipeline.emit(_change(CREATE, {"id": n, "v": "a"}, (position, n)))
    pipeline.end_transaction()
    pipeline.checkpoint(position)


def test_sparse_reports_one_per_partition_per_seal_and_acknowledge_after_it():
    producer = FakeSparseProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    assert pipeline.sparse
    _emit_rows(pipeline, range(100), 10)
    _emit_rows(pipeline, range(100, 150), 20)
    # the newest record of each partition is held back, the checkpoints wait for the seal
    assert pipeline.acknowledged == 1 and pipeline.tracker._next == 0
    producer.poll()  # Kafka acknowledges what was produced so far: still no report, no acknowledgement
    assert pipeline.acknowledged == 1
    pipeline.poll()  # seals: three reports (schemas, transaction, orders), then they come back
    assert pipeline.tracker._next == 3
    assert pipeline.acknowledged == 20
    assert pipeline.records == 1 + 2 * 2 + 150
    # every record went out, in produce order per topic
    orders = [orjson.loads(value)["after"]["id"] for topic, _, value, _ in producer.sent if topic == "shop.public.orders"]
    assert orders == list(range(150))
    assert [orjson.loads(v)["status"] for t, _, v, _ in producer.sent if t == "shop.transaction"] == ["BEGIN", "END"] * 2


def test_sparse_checkpoint_with_nothing_held_is_acknowledged_at_once():
    producer = FakeSparseProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    _emit_rows(pipeline, range(3), 10)
    pipeline.poll()
    assert pipeline.acknowledged == 10
    pipeline.checkpoint(11)  # an idle position (e.g. PG keepalive): nothing produced since the seal
    assert pipeline.acknowledged == 11


def test_sparse_seals_every_seal_records(monkeypatch):
    import cdc.pipeline.capture as pipeline_module

    monkeypatch.setattr(pipeline_module, "SEAL_RECORDS", 10)
    producer = FakeSparseProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"))
    _emit_rows(pipeline, range(95), 10)
    assert 9 <= pipeline.tracker._next <= 12  # about one report per 10 records, without any poll()


def test_sparse_failed_report_stops_and_never_acknowledges():
    producer = FakeSparseProducer(fail_topic="shop.public.orders")
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    _emit_rows(pipeline, range(10), 9)
    with pytest.raises(KafkaError, match="broker said no"):
        pipeline.poll()
        pipeline.poll()
    assert pipeline.acknowledged == 1


def test_sparse_unknown_topic_is_tracked_per_record_until_known():
    producer = FakeSparseProducer(known=("shop.schemas", "shop.transaction"))
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    _emit_rows(pipeline, range(3), 9)
    assert producer.lookups == ["shop.public.orders"]  # looked up once, not per record (at most once a second)
    assert [callback is not None for topic, _, _, _, callback in producer.queued
            if topic == "shop.public.orders"] == [True, True, True]
    pipeline.poll()
    assert pipeline.acknowledged == 9


def test_sparse_watchdog_fails_when_kafka_acknowledges_nothing(monkeypatch):
    producer = FakeSparseProducer(deliver=False)
    producer.delivery_timeout = 0.05
    pipeline = CapturePipeline(producer, Envelope("shop"), acknowledged=1)
    _emit_rows(pipeline, range(3), 9)
    pipeline.poll()
    import time as time_module

    time_module.sleep(0.1)
    with pytest.raises(KafkaError, match="acknowledged no record"):
        pipeline.poll()
    assert pipeline.acknowledged == 1


def _without_clock(records):
    out = []
    for topic, key, value, headers in records:
        body = orjson.loads(value) if value else None
        if isinstance(body, dict):
            for field in ("ts_ms", "ts_us", "ts_ns"):
                body.pop(field, None)
        out.append((topic, key, body, headers))
    return out


def _rows_of(op, rows):
    """`(before, after)` pairs as a rows event of `op` carries them (no before for a create, no after for a delete)."""
    if op == CREATE:
        return [(None, after) for _, after in rows]
    if op == DELETE:
        return [(before, None) for before, _ in rows]
    return rows


def _mysql_pipeline():
    """A pipeline on a fake producer, its producer and a MySQL-like source template (`pos`, `row` variable)."""
    producer = FakeProducer()
    envelope = Envelope("shop")
    template = envelope.source_template({"version": "x", "connector": "mysql", "name": "shop", "pos": 0, "row": 0},
                                        ("pos", "row"))
    return CapturePipeline(producer, envelope), producer, template


@pytest.mark.parametrize("op", [CREATE, UPDATE, DELETE])
def test_emit_rows_is_emit_row_per_row(op):
    """The binlog source's per-event call gives the records of one emit_row per row (clock fields aside)."""
    sent = []
    for batched in (False, True):
        pipeline, producer, template = _mysql_pipeline()
        rows = _rows_of(op, [({"id": 1, "v": "a"}, {"id": 2, "v": "a"}), ({"id": 3, "v": "a"}, {"id": 3, "v": "b"})])
        pipeline.begin_transaction("0-1-5", 0)
        if batched:
            pipeline.emit_rows(TABLE, op, rows, template, 120)
            pipeline.emit_rows(TABLE, op, [], template, 130)  # an empty event adds nothing
        else:
            for n, (before, after) in enumerate(rows):
                pipeline.emit_row(TABLE, op, before, after, template, (120, n))
        pipeline.end_transaction()
        pipeline.poll()
        sent.append(_without_clock(producer.sent))
        assert pipeline.events == 2
    assert sent[0] == sent[1]


@pytest.mark.parametrize("op", [CREATE, UPDATE, DELETE])
def test_emit_json_rows_is_emit_rows(op):
    """Rows handed over as JSON (the binlog decoder's `rows_json`) give emit_rows' records; an update
    whose key JSON changed sends nothing and says so, for the caller to send the rows as dicts."""
    rows = _rows_of(op, [({"id": 1, "v": "a"}, {"id": 1, "v": "b"}), ({"id": 3, "v": "a"}, {"id": 3, "v": "c"})])
    sent = []
    for as_json in (False, True):
        pipeline, producer, template = _mysql_pipeline()
        names, _ = pipeline.envelope.json_row_keys(TABLE)
        key = lambda row: None if row is None else orjson.dumps({name: row.get(name) for name in names})  # noqa: E731
        pipeline.begin_transaction("0-1-5", 0)
        if as_json:
            json_rows = [(None if b is None else orjson.dumps(b), None if a is None else orjson.dumps(a), key(b), key(a))
                         for b, a in rows]
            assert pipeline.emit_json_rows(TABLE, op, json_rows, template, 120)
        else:
            pipeline.emit_rows(TABLE, op, rows, template, 120)
        pipeline.end_transaction()
        pipeline.poll()
        sent.append(_without_clock(producer.sent))
    assert sent[0] == sent[1]

    pipeline, producer, template = _mysql_pipeline()
    changed = [(b'{"id":1,"v":"a"}', b'{"id":2,"v":"a"}', b'{"id":1}', b'{"id":2}')]
    assert pipeline.emit_json_rows(TABLE, UPDATE, changed, template, 130) is False
    pipeline.flush()
    assert pipeline.events == 0  # only the table's schema went out (emit_rows would publish it too)
    assert [topic for topic, *_ in producer.sent] == ["shop.schemas"]
