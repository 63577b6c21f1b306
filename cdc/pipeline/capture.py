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

Delivery reports. With a sparse producer (`cdc.kafka.SparseProducer`, e.g. confluent-kafka), not every
record carries a delivery report. Kafka acknowledges the records of one partition in order, and that
producer turns any failure that would leave a gap into a fatal error, so one acknowledged record
proves every earlier record of its partition. The pipeline therefore holds back the newest record of
each (topic, partition) "slot", produces the older ones without a report, and at a *seal* produces
the held ones with a report each (about one report per slot per seal instead of one per record).
Checkpoints taken since the last seal wait for that seal. Seals happen in `poll()` (the sources call
it between batches and when idle), in `flush()`, and every `SEAL_RECORDS` records; a held record
waits at most until then. With the kafka-python backend every record carries its report, as before.

Nothing here names an engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from functools import partial
from typing import Any

from cdc.capture_metrics import CaptureMetrics
from cdc.errors import KafkaError, OversizedEventError
from cdc.kafka.acknowledged_offsets import AcknowledgedOffsets, BrokerLostData, EndOffsets
from cdc.events import READ, UPDATE, Change, TableSchema
from cdc.kafka.base import DEFAULT_MAX_MESSAGE_BYTES, Producer, SparseProducer
from cdc.kafka.sparse import hold_newest
from cdc.pipeline.transaction_order import TransactionOrder
from cdc.positions import PositionTracker

log = logging.getLogger("cdc.pipeline")

# Produce blocks (serving callbacks) once this many records wait for Kafka: back-pressure on the source.
DEFAULT_MAX_IN_FLIGHT = 50_000

# Sparse delivery reports: seal (produce the held records, with reports) at least every this many records.
SEAL_RECORDS = 2_000

# How often the acknowledged offsets are compared with the broker's end offsets (a broker that lost data).
LOST_DATA_CHECK_SECONDS = 10.0
_NO_POSITION = object()


class CapturePipeline:
    """Builds records with the envelope, produces them, and tracks which source position is acknowledged."""

    def __init__(self, producer, envelope, *, acknowledged: Any = None, transactions: bool = True,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, end_offsets: EndOffsets | None = None) -> None:
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
        self._produce_tracked = producer.produce_tracked if isinstance(producer, Producer) else self._produce_generic
        self._acknowledge = self.tracker.acknowledge
        self.records = 0  # records produced (events, tombstones, schema and transaction records...)
        # sparse delivery reports (see the module docstring)
        self.sparse = isinstance(producer, SparseProducer) and bool(producer.sparse)
        self._delivery_timeout = float(producer.delivery_timeout) if self.sparse else 120.0
        if self.sparse:
            self._partition_counts: dict[str, int] = producer.partition_counts
            # librdkafka's produce, positional: (topic, value, key, partition, on_delivery, callback, timestamp, headers)
            self._produce_raw = producer.produce_raw
            self._produce_untracked = producer.produce_untracked
        self._held: dict[tuple[str, int], tuple[bytes | None, bytes | None, Any]] = {}
        self._unsealed = 0  # records produced without a report since the last seal
        self._position_at_seal: Any = _NO_POSITION  # the newest checkpoint waiting for the next seal
        self._unknown_topics: dict[str, float] = {}  # topics without metadata yet -> when last looked up
        self._head_seen = (-1, 0.0)  # (tracker head, when it last moved): the sparse watchdog
        # /metrics: events per table (a dict here, counters at poll), lag and Kafka acknowledgement latency
        self.metrics = CaptureMetrics(getattr(envelope, "prefix", ""))
        self._counts = self.metrics.counts
        self._stamp_at_seal: Any = None  # the source commit time (ms) of the checkpoint waiting for the seal
        self._ack_marks: deque[tuple[int, float]] = deque(maxlen=10_000)  # (records produced, when) per poll
        # a broker that lost acknowledged records (see cdc/kafka/acknowledged_offsets.py): sealed records' offsets
        self.offsets = AcknowledgedOffsets()
        self._end_offsets = end_offsets
        self._next_lost_check = time.monotonic() + LOST_DATA_CHECK_SECONDS
        self._lost_check: threading.Thread | None = None  # the periodic check, on a thread of its own
        self._lost_data: BrokerLostData | None = None  # what that thread found
        # an incremental snapshot's window (cdc/incremental): the keys produced on this topic since it opened
        self.window_topic: str | None = None
        self.window_keys: set[bytes | None] = set()

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

    def emit_reads(self, table: TableSchema, afters: list[dict[str, Any]], source,
                   source_values: tuple[Any, ...]) -> None:
        """`emit_row(table, READ, None, after, source, source_values)` for every `after` of a snapshot
        batch (no transaction), sent in one call."""
        self._enter(table)
        row_records = self.envelope.row_records
        records: list = []
        for after in afters:
            records += row_records(table, READ, None, after, source, source_values, None)
        self.events += len(afters)
        self._count(self._current_name, READ, len(afters))
        self.send_many(records)

    def emit_json_reads(self, table: TableSchema, rows: list[tuple[None, bytes, None, bytes | None]], source) -> None:
        """`emit_reads` of snapshot rows already in JSON (`(None, after, None, key)`, as the envelope's
        `json_reads_records` takes them; `source` a template without variable fields), sent in one call."""
        self._enter(table)
        records = self.envelope.json_reads_records(table, rows, source)
        if records is None:
            raise ValueError(f"the rows of {table.qualified_name} must reach the envelope as dicts")
        self.events += len(rows)
        self._count(self._current_name, READ, len(rows))
        self.send_many(records)

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

    def open_window(self, topic: str) -> None:
        """From now on note the key of every record produced on `topic` (an incremental snapshot's low watermark)."""
        self.window_topic = topic
        self.window_keys = set()

    def close_window(self) -> set[bytes | None]:
        """Stop noting keys (the high watermark); the keys produced on the window's topic since it opened."""
        keys = self.window_keys
        self.window_topic = None
        self.window_keys = set()
        return keys

    def count_snapshot_rows(self, table: str, count: int) -> None:
        """Count `count` incremental-snapshot rows of `table` (namespace.table) produced outside `emit`."""
        self.events += count
        self._count(table, READ, count)

    def sealed_ticket(self) -> int:
        """Seal, then the ticket past every record produced so far: once `tracker._head` reaches it,
        Kafka acknowledged all of them."""
        if self._held:
            self.seal()
        return self.tracker._next

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
        try:
            self.producer.poll(timeout)
            self._raise_if_failed()
            if self.sparse:
                self._check_progress()
        except KafkaError:
            self.check_broker_kept_data()  # the clearer error when the broker lost what it acknowledged
            raise
        if self._lost_data is not None:
            raise self._lost_data
        if time.monotonic() >= self._next_lost_check:
            self._start_lost_data_check()
        self._observe()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every produced record is acknowledged (then `acknowledged` is the last checkpoint)."""
        if self._held:
            self.seal()
        try:
            self.producer.flush(timeout)
            self.producer.poll(0)
            self._raise_if_failed()
        except KafkaError:
            self.check_broker_kept_data()
            raise
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

    def check_broker_kept_data(self) -> None:
        """BrokerLostData when a topic's end offset fell to or below an offset Kafka acknowledged to us."""
        self._next_lost_check = time.monotonic() + LOST_DATA_CHECK_SECONDS
        self._check_against_broker(self.offsets)

    def _start_lost_data_check(self) -> None:
        """`check_broker_kept_data` on a thread of its own; `poll` raises what it finds.

        Reading the end offsets opens a consumer and fetches from every partition (about a second on
        tansu): on the capture's own loop it held every change in flight, every 10 s (end-to-end lag
        p99 1.2 s at 1k changes/s against p50 0.2 s). The thread checks a copy of the acknowledged
        offsets taken now, so the loop goes on noting new ones meanwhile.
        """
        self._next_lost_check = time.monotonic() + LOST_DATA_CHECK_SECONDS
        if not self.offsets.highest or (self._lost_check is not None and self._lost_check.is_alive()):
            return
        taken = AcknowledgedOffsets()
        taken.highest = dict(self.offsets.highest)

        def check() -> None:
            try:
                self._check_against_broker(taken)
            except BrokerLostData as exc:
                self._lost_data = exc

        self._lost_check = threading.Thread(target=check, name="kafka-lost-data-check", daemon=True)
        self._lost_check.start()

    def _check_against_broker(self, offsets: AcknowledgedOffsets) -> None:
        if not offsets.highest:
            return
        try:
            if self._end_offsets is None:
                self._end_offsets = _end_offsets_of(self.producer)
                if self._end_offsets is None:
                    return
            offsets.check(self._end_offsets)
        except BrokerLostData:
            raise
        except KafkaError as exc:  # the broker does not answer now: the next check will tell
            log.debug("cannot read end offsets: %s", exc)

    def _acknowledge_noting(self, ticket: int, error: Any, report: Any = None) -> None:
        """`tracker.acknowledge`, remembering the acknowledged offset (sealed records only: one per slot and seal)."""
        if error is None and report is not None:
            self.offsets.note(report)
        self._acknowledge(ticket, error, report)

    def seal(self) -> None:
        """Produce the held records, each with a delivery report, then attach the waiting checkpoint.

        Each held record is the newest of its (topic, partition): its acknowledgement proves every
        record produced before it there without a report.
        """
        tracker = self.tracker
        acknowledge = self._acknowledge_noting
        produce = self._produce_tracked
        try:
            for (topic, partition), (value, key, headers) in self._held.items():
                ticket = tracker._next
                tracker._next = ticket + 1
                produce(topic, value, key, headers, partial(acknowledge, ticket), partition)
        except Exception as exc:
            self._raise_if_oversized([], exc)
            raise
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
        a record of a topic whose partitions are not known yet is tracked one by one.

        While an incremental snapshot's window is open, the keys of records on its topic are noted."""
        if (self.sparse or self.window_topic is not None) and type(records) is not list:
            records = list(records)
        if self.window_topic is not None:
            window_topic = self.window_topic
            note = self.window_keys.add
            for record in records:
                if record[0] == window_topic:
                    note(record[1])
        try:
            self._send_many(records)
        except Exception as exc:
            self._raise_if_oversized(records if isinstance(records, (list, tuple)) else [], exc)
            raise

    def _send_many(self, records) -> None:
        if not self.sparse:
            for record in records:
                self.records += 1
                self._send_tracked(record)
            return
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

    def _raise_if_oversized(self, records: list, exc: Exception) -> None:
        """OversizedEventError naming the table (topic), key and size when `exc` came from a record over
        the producer's message limit (both Kafka clients refuse such a record when it is produced)."""
        limit = int(getattr(self.producer, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
        held = [(topic, key, value, headers) for (topic, _), (value, key, headers) in self._held.items()]
        sizes = [(_record_size(record), record) for record in [*records, *held] if record[2] is not None]
        if not sizes:
            return
        size, (topic, key, _, _) = max(sizes, key=lambda pair: pair[0])
        if size <= limit and "too large" not in str(exc).lower():
            return
        shown = key.decode("utf-8", "replace")[:200] if key else "(none)"
        raise OversizedEventError(
            f"an event of topic {topic} with key {shown} is {size} bytes, over the Kafka message limit of"
            f" {limit} bytes (--max-message-bytes); capture stops here, at the same source position",
            fix="raise --max-message-bytes (and the broker's message.max.bytes / the topic's max.message.bytes)"
                " above the event's size, or exclude the table or its large column; see docs/security.md",
        ) from exc

    def _look_up(self, topic: str) -> None:
        """Ask for an unknown topic's partitions again, at most once a second."""
        now = time.monotonic()
        if now - self._unknown_topics.get(topic, 0.0) >= 1.0:
            self._unknown_topics[topic] = now
            if self.producer.refresh_partitions(topic, timeout=0.5):
                del self._unknown_topics[topic]

    def _produce_generic(self, topic: str, value: bytes | None, key: bytes | None, headers, callback,
                         partition: int | None = None) -> None:
        """`Producer.produce_tracked` for a producer that does not derive from `cdc.kafka.Producer` (test doubles)."""
        self.producer.produce(topic, value, key, partition=partition, headers=list(headers) if headers else None,
                              on_delivery=callback)

    def _raise_if_failed(self) -> None:
        failed = self.tracker.failed
        if failed is not None:
            if isinstance(failed, KafkaError):
                raise failed
            raise KafkaError(f"Kafka did not acknowledge a record: {failed}",
                             fix="check the broker; the connector resumes from the last acknowledged position")


def _record_size(record) -> int:
    """Key + value + header bytes of a `(topic, key, value, headers)` record (what the client's limit counts)."""
    _, key, value, headers = record
    size = len(value or b"") + len(key or b"")
    for name, data in headers or ():
        size += len(name) + len(data or b"")
    return size


def _end_offsets_of(producer) -> EndOffsets | None:
    """`topic -> end offsets` through an admin client on the producer's brokers (None when it has no address)."""
    bootstrap = getattr(producer, "_bootstrap", None)
    if not bootstrap:
        return None
    from cdc.kafka import make_admin

    admin = make_admin(bootstrap, backend=getattr(producer, "backend", None))
    return admin.end_offsets


def _unpack(record) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None]:
    """(topic, key, value, headers) from the envelope's record (a tuple or an object with those fields)."""
    if isinstance(record, tuple):
        if len(record) == 3:
            return record[0], record[1], record[2], None
        return record[0], record[1], record[2], (list(record[3]) if record[3] else None)
    headers = getattr(record, "headers", None)
    return record.topic, record.key, record.value, (list(headers) if headers else None)
