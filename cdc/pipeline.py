"""The capture loop's engine-neutral half: Change records -> Envelope -> Kafka, with acked positions.

A source connector (PG streaming, MySQL binlog, either's snapshot) drives one `CapturePipeline`:

    pipeline = CapturePipeline(producer, Envelope(prefix, compat=compat), acknowledged=resume_position)
    with StopSignal() as stop:
        pipeline.begin_transaction(txid, ts_ms)           # BEGIN on <prefix>.transaction before 1st event
        pipeline.emit(change)                             # schema first if new/changed, then the event(s)
        pipeline.end_transaction()                        # END record (when BEGIN went out)
        pipeline.checkpoint(position)                     # acknowledged once everything before is acked
        pipeline.heartbeat()                              # on __cdc-heartbeat.<prefix>
        pipeline.poll()                                   # serve delivery callbacks; raises on failure
        pipeline.acknowledged                             # what the source may be told
        if stop.requested: pipeline.flush(); ...

Delivery reports. With a producer that supports it (confluent-kafka: `producer.sparse`), not every
record carries a delivery report. Kafka acknowledges the records of one partition in order, and that
producer turns any failure that would leave a gap into a fatal error, so one acknowledged record
proves every earlier record of its partition. The pipeline therefore holds back the newest record of
each (topic, partition) "slot", produces the older ones without a report, and at a *seal* produces
the held ones with a report each (about one report per slot per seal instead of one per record).
Checkpoints taken since the last seal wait for that seal. Seals happen in `poll()` (the sources call
it between batches and when idle), in `flush()`, and every `SEAL_RECORDS` records; a held record
waits at most until then. With the kafka-python backend every record carries its report, as before.

`TransactionOrder` numbers events inside a transaction (Debezium's `total_order`,
`data_collection_order`) so `emit` can fill `Change.transaction`; a primary-key change counts as two
events (the envelope splits it into delete and create), in the orders and in END's `event_count`.
Nothing here names an engine.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import orjson

from cdc.capture_metrics import CaptureMetrics
from cdc.errors import KafkaError
from cdc.events import READ, UPDATE, Change, TableSchema
from cdc.kafka.base import TopicSpec
from cdc.kafka.sparse import hold_newest
from cdc.positions import PositionTracker

log = logging.getLogger(__name__)

SCHEMA_VERSION_HEADER = "cdc.schema.version"

# Produce blocks (serving callbacks) once this many records wait for Kafka: back-pressure on the source.
DEFAULT_MAX_IN_FLIGHT = 50_000

# Sparse delivery reports: seal (produce the held records, with reports) at least every this many records.
SEAL_RECORDS = 2_000
_NO_POSITION = object()


class TransactionOrder:
    """Debezium's transaction block: id, total_order and data_collection_order per table."""

    __slots__ = ("id", "total", "per_table")

    def __init__(self, transaction_id: str) -> None:
        self.id = transaction_id
        self.total = 0
        self.per_table: dict[str, int] = {}

    def next(self, data_collection: str) -> dict[str, Any]:
        """The transaction block for the next event on `data_collection` (`schema.table` / `db.table`)."""
        self.total += 1
        order = self.per_table.get(data_collection, 0) + 1
        self.per_table[data_collection] = order
        return {"id": self.id, "total_order": self.total, "data_collection_order": order}

    def next_tuple(self, data_collection: str) -> tuple[str, int, int]:
        """`next()` as the envelope's hot path takes it: `(id, total_order, data_collection_order)`."""
        self.total += 1
        per_table = self.per_table
        order = per_table.get(data_collection, 0) + 1
        per_table[data_collection] = order
        return (self.id, self.total, order)

    def skip(self, data_collection: str) -> None:
        """Count one more event on `data_collection` without a block: the create half of a primary-key
        change (the envelope numbers it `total_order` + 1 from the delete's block, as Debezium counts it)."""
        self.total += 1
        self.per_table[data_collection] = self.per_table.get(data_collection, 0) + 1


class CapturePipeline:
    """Builds records with the envelope, produces them, and tracks which source position is acknowledged."""

    def __init__(self, producer, envelope, *, acknowledged: Any = None, transactions: bool = True,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.producer = producer
        self.envelope = envelope
        self.tracker = PositionTracker(acknowledged)
        self.transactions = transactions
        self.max_in_flight = max_in_flight
        self.transaction: TransactionOrder | None = None
        self._published: dict[str, tuple] = {}
        self.schemas: dict[str, TableSchema] = {}  # latest schema per `namespace.table`, published or loaded
        self._transaction_ts_ms = 0
        self._begun = False
        self.events = 0
        self.waits_for_kafka = 0  # times produce waited for acks (max_in_flight reached): back-pressure
        # emit_row's memo: the table object whose schema is known published, and its name
        self._current_table: TableSchema | None = None
        self._current_name = ""
        # the producer's hot-path entry (confluent: librdkafka's delivery report straight to the tracker)
        self._produce_tracked = getattr(producer, "produce_tracked", None) or self._produce_generic
        self._acknowledge = self.tracker.acknowledge
        self.records = 0  # records produced (events, tombstones, schema and transaction records...)
        # sparse delivery reports (see the module docstring)
        self.sparse = bool(getattr(producer, "sparse", False))
        if self.sparse:
            self._partition_counts: dict[str, int] = producer.partition_counts
            # librdkafka's produce, positional: (topic, value, key, partition, on_delivery, callback, timestamp, headers)
            self._produce_raw = producer.produce_raw
            self._produce_untracked = producer.produce_untracked
        self._held: dict[tuple[str, int], tuple[bytes | None, bytes | None, Any]] = {}
        self._unsealed = 0  # records produced without a report since the last seal
        self._position_at_seal: Any = _NO_POSITION  # the newest checkpoint waiting for the next seal
        self._unknown_topics: dict[str, float] = {}  # topics without metadata yet -> when last looked up
        self._delivery_timeout = float(getattr(producer, "delivery_timeout", 120.0))
        self._head_seen = (-1, 0.0)  # (tracker head, when it last moved): the sparse watchdog
        # /metrics: events per table (a dict here, counters at poll), lag and Kafka acknowledgement latency
        self.metrics = CaptureMetrics(getattr(envelope, "prefix", ""))
        self._counts = self.metrics.counts
        self._stamp_at_seal: Any = None  # the source commit time (ms) of the checkpoint waiting for the seal
        self._ack_marks: deque[tuple[int, float]] = deque(maxlen=10_000)  # (records produced, when) per poll

    # -- what sources call ----------------------------------------------------------------------

    @property
    def acknowledged(self) -> Any:
        """Highest checkpointed position whose records Kafka acknowledged (None before the first)."""
        return self.tracker.acknowledged

    def seed_schemas(self, schemas: Iterable[TableSchema]) -> None:
        """Schemas already on `<prefix>.schemas` (from an earlier run): versions continue from them."""
        for table in schemas:
            self.schemas[table.qualified_name] = table
            self._published[table.qualified_name] = (table.version, table.columns, table.primary_key)

    def versioned(self, table: TableSchema) -> TableSchema:
        """`table` with its version: the known one when columns and key are unchanged, else the next one."""
        known = self.schemas.get(table.qualified_name)
        if known is None:
            version = table.version
        elif (known.columns, known.primary_key) == (table.columns, table.primary_key):
            if known.version == table.version:
                return table
            version = known.version
        else:
            version = known.version + 1
        return replace(table, version=version) if version != table.version else table

    def publish_schema(self, table: TableSchema) -> None:
        """Publish `table` on `<prefix>.schemas` unless this exact version was published already."""
        identity = (table.version, table.columns, table.primary_key)
        self.schemas[table.qualified_name] = table
        if self._published.get(table.qualified_name) == identity:
            return
        self._published[table.qualified_name] = identity
        self._current_table = None
        self.produce(self.envelope.schema_record(table))
        log.info("published table schema", extra={"table": table.qualified_name, "version": table.version})

    def begin_transaction(self, transaction_id: str, ts_ms: int) -> None:
        """Open a transaction; its BEGIN record goes out before its first event (none for an empty one)."""
        self.transaction = TransactionOrder(transaction_id)
        self._transaction_ts_ms = ts_ms
        self._begun = False

    def end_transaction(self, ts_ms: int | None = None) -> None:
        """Close the open transaction; END (when BEGIN went out) carries the event counts per table."""
        order = self.transaction
        self.transaction = None
        if order is None or not self._begun or not self.transactions:
            return
        self._begun = False
        self.send_many((self.envelope.transaction_record(
            "END", order.id, self._transaction_ts_ms if ts_ms is None else ts_ms,
            event_count=order.total, data_collections=list(order.per_table.items()),
        ),))

    def abandon_transaction(self) -> None:
        """Forget the open transaction without an END record (the source will send it again, whole)."""
        self.transaction = None
        self._begun = False

    def emit(self, change: Change) -> None:
        """Produce one change (its table's schema first when new or changed; tombstones as the envelope says)."""
        if change.table is not None:
            self.publish_schema(change.table)
            order = self.transaction
            if order is not None and change.transaction is None:
                if not self._begun:
                    self._begun = True
                    if self.transactions:
                        self.send_many((self.envelope.transaction_record("BEGIN", order.id, self._transaction_ts_ms),))
                name = change.table.qualified_name
                change.transaction = order.next(name)
                if self.envelope.is_key_change(change):
                    order.skip(name)  # delete + create: two events of the transaction, as in Debezium
            self._count(change.table.qualified_name, change.op, 1)
        self.events += 1
        for record in self.envelope.records(change):
            self.produce(record)

    def _enter(self, table: TableSchema) -> TransactionOrder | None:
        """Before an event of `table`: its schema published (checked when the table object changes),
        the open transaction's BEGIN sent before its first event. Returns the open transaction."""
        if table is not self._current_table:
            self.publish_schema(table)
            self._current_table = table
            self._current_name = table.qualified_name
        order = self.transaction
        if order is not None and not self._begun:
            self._begun = True
            if self.transactions:
                self.send_many((self.envelope.transaction_record("BEGIN", order.id, self._transaction_ts_ms),))
        return order

    def emit_row(self, table: TableSchema, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                 source, source_values: tuple[Any, ...]) -> None:
        """`emit(Change(op, table, before, after, source.render(source_values), ...))` without the Change.

        The streaming sources' hot path: `source` is the envelope's `SourceTemplate` for this
        transaction and table, `source_values` its variable fields. Same records, same bytes, same
        transaction numbering as `emit`; the table's schema is checked only when the table object
        changes from one call to the next.
        """
        order = self._enter(table)
        transaction = None
        if order is not None:
            transaction = order.next_tuple(self._current_name)
            if op == UPDATE and before is not None and self.envelope.is_row_key_change(table, op, before, after):
                order.skip(self._current_name)  # delete + create: two events, as in Debezium
        self.events += 1
        self._count(self._current_name, op, 1)
        self.send_many(self.envelope.row_records(table, op, before, after, source, source_values, transaction))

    def emit_prepared(self, table: TableSchema, op: str, parts: tuple, source, source_values: tuple[Any, ...]) -> None:
        """`emit_row` for a change prepared earlier with `envelope.row_parts` (its `parts`): the same
        records, numbering and schema check; only the source block and clock are filled in now."""
        order = self._enter(table)
        transaction = None if order is None else order.next_tuple(self._current_name)
        self.events += 1
        self._count(self._current_name, op, 1)
        topic, key, head, headers, tombstone = parts
        self.send(topic, key, self.envelope.finish_row(head, op, source, source_values, transaction), headers)
        if tombstone:
            self.send(topic, key, None, headers)

    def emit_rows(self, table: TableSchema, op: str, rows: list[tuple[Any, Any]], source, position: Any) -> None:
        """`emit_row(table, op, before, after, source, (position, n))` for the n-th `(before, after)` of
        `rows` (one binlog rows event): the same records and numbering, one call per event, not per row."""
        if not rows or self._emit_event(self.envelope.rows_records, table, op, rows, source, position):
            return  # the common case: every record of the event from one compiled call
        order = self.transaction
        name = self._current_name
        row_records = self.envelope.row_records
        key_change = self.envelope.is_row_key_change if op == UPDATE else None
        send_many = self.send_many
        transaction = None
        for index, (before, after) in enumerate(rows):
            if order is not None:
                transaction = order.next_tuple(name)
                if key_change is not None and before is not None and key_change(table, op, before, after):
                    order.skip(name)  # delete + create: two events, as in Debezium
            send_many(row_records(table, op, before, after, source, (position, index), transaction))
        self.events += len(rows)
        self._count(name, op, len(rows))

    def emit_json_rows(self, table: TableSchema, op: str, rows: list[tuple[Any, Any, Any, Any]], source,
                       position: Any) -> bool:
        """`emit_rows` of one binlog rows event already in JSON (`RowDecoder.rows_json`: row images
        and keys as bytes). False, with nothing sent, when the envelope needs the rows as dicts (a
        key change, a row converter): the caller then decodes them again and calls `emit_rows`."""
        return not rows or self._emit_event(self.envelope.json_rows_records, table, op, rows, source, position)

    def _emit_event(self, records_of, table: TableSchema, op: str, rows: list, source, position: Any) -> bool:
        """Send every record of one rows event from one envelope call (`records_of`: the envelope's
        `rows_records` or `json_rows_records`), numbered on in the open transaction. False, with no
        event sent, when that call leaves the rows to `row_records` (it gave None)."""
        order = self._enter(table)
        name = self._current_name
        if order is None:
            many = records_of(table, op, rows, source, position, None, 0, 0)
        else:
            many = records_of(table, op, rows, source, position, order.id, order.total, order.per_table.get(name, 0))
        if many is None:
            return False
        records, total, collection_order = many
        if order is not None:
            order.total = total
            order.per_table[name] = collection_order
        self.events += len(rows)
        self._count(name, op, len(rows))
        self.send_many(records)
        return True

    def _count(self, table: str, op: str, count: int) -> None:
        counts = self._counts
        counts[table] = counts.get(table, 0) + count
        if op == READ:
            self.metrics.snapshot_rows(table, count)

    def checkpoint(self, position: Any) -> None:
        """Everything produced so far belongs at or before `position` (e.g. the end of a transaction)."""
        stamp = self._transaction_ts_ms or None
        if self._held:
            self._position_at_seal = position  # its records' reports come with the next seal
            self._stamp_at_seal = stamp
        else:
            self.tracker.checkpoint(position, stamp)

    def heartbeat(self) -> None:
        """A heartbeat record (`__cdc-heartbeat.<prefix>`, or Debezium's topic in compat mode)."""
        self.produce(self.envelope.heartbeat_record())

    def poll(self, timeout: float = 0.0) -> None:
        """Seal, serve delivery callbacks; KafkaError once a record failed (the connector must stop)."""
        if self._held:
            self.seal()
        self.producer.poll(timeout)
        self._raise_if_failed()
        if self.sparse:
            self._check_progress()
        self._observe()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every produced record is acknowledged (then `acknowledged` is the last checkpoint)."""
        if self._held:
            self.seal()
        self.producer.flush(timeout)
        self.producer.poll(0)
        self._raise_if_failed()
        self._observe()

    def _observe(self) -> None:
        """Metrics after serving callbacks: counted events, lag of the acknowledged checkpoint, ack latency."""
        tracker = self.tracker
        now = time.monotonic()
        marks = self._ack_marks
        if not marks or marks[-1][0] < tracker._next:
            marks.append((tracker._next, now))
        head = tracker._head
        while marks and marks[0][0] <= head:
            produced, at = marks.popleft()
            if produced:
                self.metrics.ack_latency(now - at)
        self.metrics.publish(tracker.acknowledged, tracker.acknowledged_stamp, idle=tracker.idle)

    def seal(self) -> None:
        """Produce the held records, each with a delivery report, then attach the waiting checkpoint.

        Each held record is the newest of its (topic, partition): its acknowledgement proves every
        record produced before it there without a report.
        """
        tracker = self.tracker
        acknowledge = self._acknowledge
        produce = self._produce_tracked
        for (topic, partition), (value, key, headers) in self._held.items():
            ticket = tracker._next
            tracker._next = ticket + 1
            produce(topic, value, key, headers, partial(acknowledge, ticket), partition)
        self._held.clear()
        self._unsealed = 0
        if self._position_at_seal is not _NO_POSITION:
            tracker.checkpoint(self._position_at_seal, self._stamp_at_seal)
            self._position_at_seal = _NO_POSITION

    def _check_progress(self) -> None:
        """The sparse producer never times records out itself: fail when Kafka acknowledged nothing for
        its delivery timeout while reports were due (a restart resends from the acknowledged position)."""
        tracker = self.tracker
        now = time.monotonic()
        if tracker._head != self._head_seen[0] or tracker.idle:
            self._head_seen = (tracker._head, now)
        elif now - self._head_seen[1] > self._delivery_timeout:
            raise KafkaError(f"Kafka acknowledged no record for {self._delivery_timeout:.0f}s "
                             f"({tracker.in_flight} delivery reports outstanding)",
                             fix="check the broker; the connector resumes from the last acknowledged position")

    # -- inside ---------------------------------------------------------------------------------

    def produce(self, record) -> None:
        """Produce one envelope record `(topic, key, value, headers)`, tracked like every other."""
        if type(record) is tuple and len(record) == 4:
            self.send_many((record,))  # the envelope's records (their header lists are shared: passed, not changed)
        else:
            self.send(*_unpack(record))

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers) -> None:
        """Produce one record, tracked (see `send_many`)."""
        self.send_many(((topic, key, value, headers),))

    def send_many(self, records) -> None:
        """Produce `(topic, key, value, headers)` records in order, tracked: a delivery report moves the
        tracker (no per-record objects beyond the ticket's callback). Blocks, serving delivery
        reports, while `max_in_flight` records wait for Kafka: the back-pressure that slows reading
        from the source.

        Sparse: each record is held as the newest of its partition and the one it replaces is
        produced without a report (`hold_newest`; the producer's queue limit is then the back-pressure);
        a record of a topic whose partitions are not known yet is tracked one by one."""
        if not self.sparse:
            for record in records:
                self.records += 1
                self._send_tracked(record)
            return
        if type(records) is not list:
            records = list(records)
        end = len(records)
        self.records += end
        counts = self._partition_counts
        index = 0
        while index < end:
            index, produced = hold_newest(records, index, self._held, counts, self._produce_raw,
                                          self._produce_untracked, SEAL_RECORDS - self._unsealed)
            if produced:
                self._unsealed += produced
                if self._unsealed >= SEAL_RECORDS:
                    self.seal()
            if index < end:
                topic = records[index][0]
                if topic not in counts:
                    self._look_up(topic)  # a new topic (Kafka creates it on first use): tracked until known
                    if topic not in counts:
                        self._send_tracked(records[index])
                        index += 1

    def _send_tracked(self, record) -> None:
        """Produce one record with its own delivery report (waits while `max_in_flight` are due)."""
        topic, key, value, headers = record
        tracker = self.tracker
        # PositionTracker.produced(), inlined: this runs for every record of a non-sparse producer
        ticket = tracker._next
        if ticket - tracker._head >= self.max_in_flight:
            while tracker.in_flight >= self.max_in_flight:
                self.waits_for_kafka += 1
                self.producer.poll(0.1)
                self._raise_if_failed()
        tracker._next = ticket + 1
        self._produce_tracked(topic, value, key, headers or None, partial(self._acknowledge, ticket))

    def _look_up(self, topic: str) -> None:
        """Ask for an unknown topic's partitions again, at most once a second."""
        now = time.monotonic()
        if now - self._unknown_topics.get(topic, 0.0) >= 1.0:
            self._unknown_topics[topic] = now
            if self.producer.refresh_partitions(topic, timeout=0.5):
                del self._unknown_topics[topic]

    def _produce_generic(self, topic: str, value: bytes | None, key: bytes | None, headers, callback,
                         partition: int | None = None) -> None:
        """`produce_tracked` for producers without it: their `produce(..., on_delivery=(error, report))`."""
        self.producer.produce(topic, value, key, partition=partition, headers=list(headers) if headers else None,
                              on_delivery=callback)

    def _raise_if_failed(self) -> None:
        failed = self.tracker.failed
        if failed is not None:
            if isinstance(failed, KafkaError):
                raise failed
            raise KafkaError(f"Kafka did not acknowledge a record: {failed}",
                             fix="check the broker; the connector resumes from the last acknowledged position")


def _unpack(record) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None]:
    """(topic, key, value, headers) from the envelope's record (a tuple or an object with those fields)."""
    if isinstance(record, tuple):
        if len(record) == 3:
            return record[0], record[1], record[2], None
        return record[0], record[1], record[2], (list(record[3]) if record[3] else None)
    headers = getattr(record, "headers", None)
    return record.topic, record.key, record.value, (list(headers) if headers else None)


class StopSignal:
    """SIGINT/SIGTERM set `requested` (the loop then flushes, acknowledges and exits 0); a context manager."""

    def __init__(self, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, *_: object) -> None:
        """Ask the loop to stop (the signal handler; also callable directly)."""
        if not self._event.is_set():
            log.info("stop requested: flushing Kafka and acknowledging the source")
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early on a stop request; True when stop was requested."""
        return self._event.wait(timeout)

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self.request)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Every:
    """True once every `seconds` (monotonic clock): for heartbeats, status updates and progress logs."""

    __slots__ = ("seconds", "_next", "_clock")

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic, now: bool = False) -> None:
        self.seconds = seconds
        self._clock = clock
        self._next = clock() if now else clock() + seconds

    def due(self) -> bool:
        now = self._clock()
        if self.seconds <= 0 or now < self._next:
            return False
        self._next = now + self.seconds
        return True


SNAPSHOT_MODES = ("initial", "never", "initial_only", "when_needed")


@dataclass(slots=True, frozen=True)
class CaptureOptions:
    """What `cdc capture` asks of a source connector (engine-specific extras in `extra`)."""

    source: str
    kafka: str
    prefix: str
    tables: tuple[str, ...] = ()
    include: str | None = None
    snapshot: str = "initial"
    slot: str | None = None
    publication: str | None = None
    compat: str = "none"
    heartbeat_interval: float = 10.0
    status_interval: float = 1.0
    snapshot_workers: int = 2
    snapshot_chunk: int = 10_000
    kafka_backend: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_topics(admin, envelope) -> None:
    """Create the capture side's own topics (one partition each, so their order holds; schemas compacted).

    Table topics are left to the broker's auto-creation or to the operator (partition counts are theirs
    to choose). A broker that refuses is logged, not fatal: produce() reports what really fails.
    """
    specs = [
        (envelope.schemas_topic, True),
        (envelope.schema_change_topic(), False),
        (envelope.transaction_topic, False),
        (envelope.heartbeat_topic, False),
    ]
    try:
        existing = admin.list_topics()  # once: each metadata request costs a round trip at start-up
        missing = [TopicSpec(name, 1, compacted) for name, compacted in specs if name not in existing]
        if missing:
            admin.create_topics(missing, exist_ok=True)
    except Exception as exc:  # noqa: BLE001 - logged; the broker may still auto-create on produce
        log.warning("could not create topics", extra={"topics": [name for name, _ in specs], "error": str(exc)})


def load_schemas(bootstrap: str, topic: str, *, backend: str | None = None, timeout: float = 20.0,
                 admin=None) -> list[TableSchema]:
    """The latest schema per table on `<prefix>.schemas` (read by partition assignment: no group join).

    Returns [] when the topic does not exist yet. Versions then continue across restarts of capture.
    `admin`: an open admin client to use (else one is made for this call).
    """
    from cdc.kafka import choose_backend, make_admin

    if admin is None:
        with make_admin(bootstrap, backend=backend) as own:
            return load_schemas(bootstrap, topic, backend=backend, timeout=timeout, admin=own)
    if topic not in admin.list_topics():
        return []
    ends = admin.end_offsets(topic)
    if not any(ends.values()):
        return []
    if choose_backend(backend) == "confluent":
        values = _read_latest_confluent(bootstrap, topic, ends, timeout)
    else:
        values = _read_latest_kafka_python(bootstrap, topic, ends, timeout)
    schemas = []
    for value in values.values():
        if value:
            try:
                schemas.append(TableSchema.from_dict(orjson.loads(value)))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring an unreadable schema record", extra={"topic": topic, "error": str(exc)})
    return schemas


def _read_latest_confluent(bootstrap: str, topic: str, ends: dict[int, int], timeout: float) -> dict:
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"cdc-schemas-{topic}",
                            "enable.auto.commit": False})
    latest: dict = {}
    # Some brokers report the last batch's base offset + 1 as the end: read at least to there, then until quiet.
    needed = {partition: end - 1 for partition, end in ends.items() if end}
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in needed])
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                if all(seen.get(p, -1) >= n for p, n in needed.items()) and time.monotonic() - quiet_since > 0.5:
                    break
                continue
            quiet_since = time.monotonic()
            seen[message.partition()] = message.offset()
            latest[message.key()] = message.value()
        else:
            raise KafkaError(f"timed out reading {topic}", fix="check the broker (--kafka)")
    finally:
        consumer.close()
    return latest


def _read_latest_kafka_python(bootstrap: str, topic: str, ends: dict[int, int], timeout: float) -> dict:
    import kafka

    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    latest: dict = {}
    try:
        partitions = [kafka.TopicPartition(topic, p) for p, end in ends.items() if end]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(consumer.position(tp) >= ends[tp.partition] for tp in partitions):
                break
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    latest[record.key] = record.value
    finally:
        consumer.close()
    return latest
