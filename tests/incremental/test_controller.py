"""The DBLog window: chunk rows whose key the stream produced between the watermarks are dropped, the
rest emitted at the high watermark; progress stored only once Kafka acknowledged the chunk."""

from __future__ import annotations

import time

import orjson

from cdc.envelope import Envelope
from cdc.events import CREATE, READ, Change
from cdc.incremental.controller import Chunk, IncrementalSnapshot
from cdc.incremental.signals import EXECUTE, STOP, new_signal
from cdc.pipeline import CapturePipeline
from tests.test_pipeline import TABLE, FakeProducer

TOPIC = "shop.public.orders"


class Store:
    """Keeps the progress records the controller produces."""

    def record(self, progress):
        return ("__cdc-offsets.shop", b"k", orjson.dumps(progress.to_dict()), [])

    def load(self):
        return None


class Chunks:
    """A table of keys 1..n read in chunks; watermarks recorded in the order written."""

    def __init__(self, pipeline, keys):
        self.pipeline = pipeline
        self.keys = keys
        self.watermarks = []
        self.tables = {"public.orders"}

    def topic_of(self, table):
        return TOPIC

    def write_watermark(self, chunk_id, kind):
        self.watermarks.append((chunk_id, kind))

    def captures(self, table):
        return table in self.tables

    def captured_tables(self):
        return sorted(self.tables)

    def read_chunk(self, table, after, low, high, where, limit):
        keys = [k for k in self.keys if (after is None or k > after[0]) and (after is not None or low is None
                                                                             or k >= low[0])
                and (high is None or k <= high[0])][:limit]
        envelope = self.pipeline.envelope
        records = [r for k in keys for r in envelope.records(Change(READ, TABLE, None, {"id": k, "v": "old"},
                                                                    {"snapshot": "incremental"}, ()))]
        return Chunk("public.orders", TOPIC, records, [keys[-1]] if keys else None, len(keys), len(keys) < limit)


def _setup(keys=range(1, 8)):
    producer = FakeProducer()
    pipeline = CapturePipeline(producer, Envelope("shop"))
    chunks = Chunks(pipeline, list(keys))
    controller = IncrementalSnapshot(pipeline, chunks, Store(), "shop")
    controller._next_tables_check = float("inf")  # the added-tables look has its own test
    return producer, pipeline, chunks, controller


def _read(controller):
    """Wait until the chunk in flight is read and its high watermark written (the reader's thread may
    go on reading the next chunk ahead)."""
    flight = controller.in_flight
    deadline = time.monotonic() + 10
    while flight is not None and len(flight.times) < 4 and flight.error is None and time.monotonic() < deadline:
        time.sleep(0.005)


def _values(producer, topic=TOPIC):
    return [orjson.loads(value) for t, _, value, _ in producer.sent if t == topic and value]


def test_keys_changed_between_the_watermarks_are_dropped_from_the_chunk():
    producer, pipeline, chunks, controller = _setup()
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=4))
    controller.tick()
    _read(controller)
    chunk_id = chunks.watermarks[0][0]
    pipeline.emit(Change(CREATE, TABLE, None, {"id": 1, "v": "before low"}, {}, ()))  # before the window
    controller.watermark(chunk_id, "low")
    pipeline.emit(Change(CREATE, TABLE, None, {"id": 2, "v": "new"}, {}, ()))  # inside: key 2 dropped
    controller.watermark(chunk_id, "high")
    pipeline.flush()
    reads = [v["after"]["id"] for v in _values(producer) if v["op"] == "r"]
    assert reads == [1, 3, 4]
    assert controller.rows_dropped == 1
    _read(controller)
    assert len(chunks.watermarks) == 4  # the next chunk started at once


def test_a_watermark_of_another_chunk_or_prefix_changes_nothing():
    producer, pipeline, chunks, controller = _setup()
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=4))
    controller.tick()
    _read(controller)
    controller.watermark_read("watermark other " + chunks.watermarks[0][0] + " low")
    controller.watermark("stale-chunk", "low")
    assert pipeline.window_topic is None
    controller.watermark(chunks.watermarks[0][0], "high")  # high without low: not emitted
    pipeline.flush()
    assert not [v for v in _values(producer) if v["op"] == "r"]


def test_progress_is_stored_after_kafka_acknowledged_the_chunk_and_done_at_the_end():
    producer, pipeline, chunks, controller = _setup(range(1, 4))
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=5))
    controller.tick()
    _read(controller)
    chunk_id = chunks.watermarks[0][0]
    controller.watermark(chunk_id, "low")
    controller.watermark(chunk_id, "high")
    stored = lambda: [orjson.loads(v) for t, _, v, _ in producer.sent + [q[:4] for q in producer.queued]
                      if t == "__cdc-offsets.shop"]
    assert [p["status"] for p in stored()] == ["running"]  # the start only: the chunk is not acknowledged yet
    pipeline.poll()
    controller.tick()
    _read(controller)
    assert [(p["status"], p["rows"]) for p in stored()][-1] == ("done", 3)


def test_stop_signal_ends_the_snapshot_and_a_repeated_signal_is_ignored():
    producer, pipeline, chunks, controller = _setup()
    execute = new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=2)
    controller.signal(execute)
    controller.tick()
    _read(controller)
    controller.watermark(chunks.watermarks[0][0], "low")
    controller.signal(new_signal(STOP, "shop"))
    assert not controller.running and pipeline.window_topic is None
    controller.signal(execute)
    assert not controller.running
    controller.signal(new_signal(EXECUTE, "shop", ("public.missing",)))
    assert not controller.running


def test_a_table_added_to_the_capture_is_snapshotted_and_the_first_look_only_records():
    producer, pipeline, chunks, controller = _setup()
    chunks.tables = {"public.other"}
    controller._next_tables_check = 0
    controller.tick()  # first look: the tables captured at start are known, not snapshotted
    assert not controller.running and controller.known_tables == {"public.other"}
    chunks.tables = {"public.other", "public.orders"}
    controller._next_tables_check = 0
    controller.tick()
    _read(controller)
    assert controller.running and controller.progress.tables == ("public.orders",)
    assert controller.progress.known_tables == ("public.orders", "public.other")


def test_key_ranges_read_only_those_keys_low_and_high_included():
    producer, pipeline, chunks, controller = _setup(range(1, 20))
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=2,
                                 key_ranges={"public.orders": [([3], [5]), ([9], [9])]}))
    while controller.running:
        controller.tick()
        _read(controller)
        controller.watermark(controller.in_flight.chunk_id, "low")
        controller.watermark(controller.in_flight.chunk_id, "high")
        _read(controller)
    pipeline.flush()
    assert sorted(v["after"]["id"] for v in _values(producer) if v["op"] == "r") == [3, 4, 5, 9]


def test_the_next_chunk_is_read_ahead_while_the_stream_emits_and_at_most_two_are_held():
    producer, pipeline, chunks, controller = _setup(range(1, 11))
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=3))
    controller.tick()
    wait = lambda count: _wait_for(lambda: len(chunks.watermarks) >= count)
    wait(4)  # chunk 1 and, read ahead, chunk 2: its low watermark after chunk 1's high
    first, second = chunks.watermarks[0][0], chunks.watermarks[2][0]
    assert [kind for _, kind in chunks.watermarks] == ["low", "high", "low", "high"] and first != second
    time.sleep(0.2)
    assert len(chunks.watermarks) == 4  # chunk 3 waits until chunk 1 is emitted
    controller.watermark(first, "low")
    controller.watermark(first, "high")
    assert controller.in_flight.chunk_id == second
    wait(6)
    controller.watermark(second, "low")
    pipeline.emit(Change(CREATE, TABLE, None, {"id": 5, "v": "new"}, {}, ()))  # inside chunk 2's window
    controller.watermark(second, "high")
    pipeline.flush()
    assert [v["after"]["id"] for v in _values(producer) if v["op"] == "r"] == [1, 2, 3, 4, 6]


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_no_read_ahead_while_the_stream_produces_changes():
    producer, pipeline, chunks, controller = _setup(range(1, 20))
    controller.signal(new_signal(EXECUTE, "shop", ("public.orders",), chunk_rows=3))
    controller.tick()
    _wait_for(lambda: len(chunks.watermarks) >= 4)  # quiet at the start: chunk 2 read ahead
    first = controller.in_flight
    controller.watermark(first.chunk_id, "low")
    pipeline.emit(Change(CREATE, TABLE, None, {"id": 100, "v": "load"}, {}, ()))  # the stream is busy
    controller.watermark(first.chunk_id, "high")
    assert not controller.stream_quiet
    _wait_for(lambda: len(chunks.watermarks) >= 6)  # chunk 3 had been read ahead while still quiet
    time.sleep(0.2)
    third = controller.in_flight.next
    assert third is not None and third.next is None and len(chunks.watermarks) == 6  # no chunk 4 ahead
