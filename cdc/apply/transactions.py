"""`--consistency transaction`: apply each source transaction atomically, in commit order.

Change events carry `transaction.id`; the capture side writes an END record per transaction on
`<prefix>.transaction` (with `event_count` and per-table `data_collections`) after its events, in
commit order. Events are held until their transaction's END has arrived and all its events with it;
then the whole transaction is one target transaction, in the order of the END records.

Offsets: a partition's stored offset never passes an event that is still held, so a restart reads
every unapplied event again. Events of transactions already applied can be read again too (they may
sit after a held one); `cdc_transactions` records each applied transaction, in the same target
transaction, with the positions of its records, and is pruned once none of them can be read again.
Events without transaction metadata (snapshot reads) are applied as they come, as in batch mode.
One worker only: a transaction's events span partitions that a group would split between members.

Memory is bounded: the held events may total at most `max_held_bytes` (their Kafka record sizes,
`--max-transaction-bytes`); a transaction that needs more stops apply with an error naming it (it
is not spilled to disk: run it with `--consistency batch`, or raise the bound). Nothing of it was
written, and a restart reads it again from the stored offsets.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import orjson

from cdc.apply.batch import BatchApplier, ChangeEvent
from cdc.apply.dlq import BadEvent
from cdc.apply.offsets import next_offsets
from cdc.errors import ResourceLimitError
from cdc.kafka import Record

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

DEFAULT_MAX_HELD_BYTES = 256 * 1024 * 1024  # of Kafka record values; the decoded events take a few times that


def _positions_key(tp: TopicPartition) -> str:
    return f"{tp[1]}:{tp[0]}"


def _positions_tp(key: str) -> TopicPartition:
    partition, topic = key.split(":", 1)
    return topic, int(partition)


class TransactionApplier:
    """Wraps a BatchApplier; `apply(records)` returns the offsets it stored (the low watermark)."""

    def __init__(self, batch: BatchApplier, prefix: str, max_held_bytes: int = DEFAULT_MAX_HELD_BYTES) -> None:
        self.batch = batch
        self.max_held_bytes = max_held_bytes
        self.writer = batch.writer
        self.group = batch.group
        self.topic = f"{prefix}.transaction"
        self.writer.ensure_transactions_table()
        self.applied: dict[str, dict[TopicPartition, int]] = {
            txn: {_positions_tp(k): v for k, v in orjson.loads(positions).items()}
            for txn, positions in self.writer.load_applied_transactions(self.group).items()
        }
        self.reset()

    @property
    def applied_rows(self) -> int:
        return self.batch.applied_rows

    def reset(self) -> None:
        """Forget everything held (after a rebalance the partitions are read again from the stored offsets)."""
        self.held: dict[str, list[ChangeEvent]] = {}
        self.held_bytes: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.ends: deque[tuple[str, int, Record]] = deque()
        self.consumed: dict[TopicPartition, int] = {}

    def _expected(self, value: dict[str, Any]) -> int:
        """Events of the transaction we will receive: all, or those of the wanted tables (--tables)."""
        wanted = self.batch.wanted
        collections = value.get("data_collections")
        if wanted is None or not isinstance(collections, list):
            return int(value.get("event_count") or 0)
        return sum(int(c.get("event_count") or 0) for c in collections if wanted(str(c.get("data_collection"))))

    def apply(self, records: list[Record]) -> dict[TopicPartition, int]:
        for tp, offset in next_offsets(records).items():
            self.consumed[tp] = max(offset, self.consumed.get(tp, 0))
        for record in records:
            if record.topic == self.topic and record.value is not None:
                self._take_marker(record)
        events, bad = self.batch.decode(records)
        loose: list[ChangeEvent] = []
        for event in events:
            txn = event.transaction_id
            if txn is None:
                loose.append(event)
            elif txn not in self.applied:
                self.held.setdefault(txn, []).append(event)
                self.received[txn] = self.received.get(txn, 0) + 1
                self.held_bytes[txn] = self.held_bytes.get(txn, 0) + len(event.record.value or b"")
        self._check_bound()
        if loose or bad:
            self._commit(loose, bad, None)
        while self.ends:
            txn, expected, end = self.ends[0]
            if txn in self.applied:
                self.ends.popleft()
                self.held.pop(txn, None)
                self.held_bytes.pop(txn, None)
                self.received.pop(txn, None)
                continue
            if self.received.get(txn, 0) < expected:
                break  # the rest of this transaction is still on its way: later ones wait (commit order)
            self.ends.popleft()
            self.received.pop(txn, None)
            self.held_bytes.pop(txn, None)
            events = sorted(self.held.pop(txn, []), key=lambda e: e.transaction_order)
            self._commit(events, [], (txn, end))
        if not self.ends and not self.held:
            self._commit([], [], None)  # only markers, tombstones or other topics: move the offsets on
        return self.watermark()

    def _check_bound(self) -> None:
        """TargetError when the held events total more than `max_held_bytes` (naming the largest transaction)."""
        total = sum(self.held_bytes.values())
        if total <= self.max_held_bytes:
            return
        txn, size = max(self.held_bytes.items(), key=lambda item: item[1])
        raise ResourceLimitError(
            f"--consistency transaction holds {total} bytes of events waiting for their transactions to end, over"
            f" --max-transaction-bytes {self.max_held_bytes}; the largest, transaction {txn}, has"
            f" {len(self.held.get(txn, ()))} events ({size} bytes) so far; nothing of them was written",
            fix="raise --max-transaction-bytes (apply's memory grows with it), or apply with --consistency batch")

    def _take_marker(self, record: Record) -> None:
        try:
            value = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            log.warning("skipping a malformed transaction record", extra={"offset": record.offset})
            return
        if isinstance(value, dict) and value.get("status") == "END" and value.get("id") is not None:
            self.ends.append((str(value["id"]), self._expected(value), record))

    def watermark(self) -> dict[TopicPartition, int]:
        """Per partition: the first held record's offset, else the next offset after what was consumed."""
        marks = dict(self.consumed)
        for events in self.held.values():
            for event in events:
                tp = (event.record.topic, event.record.partition)
                marks[tp] = min(marks.get(tp, event.record.offset), event.record.offset)
        for _, _, end in self.ends:
            tp = (end.topic, end.partition)
            marks[tp] = min(marks.get(tp, end.offset), end.offset)
        return marks

    def _commit(self, events: list[ChangeEvent], bad: list[BadEvent], transaction: tuple[str, Record] | None) -> None:
        marks = self.watermark()
        positions: dict[TopicPartition, int] = {}
        if transaction is not None:
            for event in events:
                tp = (event.record.topic, event.record.partition)
                positions[tp] = max(positions.get(tp, -1), event.record.offset)
            end = transaction[1]
            positions[(end.topic, end.partition)] = end.offset
        prunable = [txn for txn, where in self.applied.items()
                    if all(offset < marks.get(tp, 0) for tp, offset in where.items())]

        def record_transaction() -> None:
            if transaction is not None and any(offset >= marks.get(tp, 0) for tp, offset in positions.items()):
                self.writer.store_applied_transaction(
                    self.group, transaction[0],
                    orjson.dumps({_positions_key(tp): o for tp, o in positions.items()}).decode())
            self.writer.forget_applied_transactions(self.group, prunable)

        self.batch.write_unit(events, bad, marks, before_commit=record_transaction)
        for txn in prunable:
            self.applied.pop(txn, None)
        if transaction is not None and any(offset >= marks.get(tp, 0) for tp, offset in positions.items()):
            self.applied[transaction[0]] = positions
