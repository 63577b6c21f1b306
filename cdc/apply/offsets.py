"""Kafka offsets kept in the target (`cdc_offsets`): what a batch advances, and what was already applied.

The target, not Kafka, is the truth of what was applied: a batch's rows and its next offsets commit in
one target transaction; on start and after a rebalance the worker seeks to the stored offsets; and
inside the transaction, records below the stored offset (a stale member after a rebalance, a replay)
are dropped, so nothing is applied twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdc.kafka import Record

TopicPartition = tuple[str, int]


def next_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last record: what to store once the records are applied."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        if record.offset >= offsets.get(tp, 0):
            offsets[tp] = record.offset + 1
    return offsets


def advanced(offsets: dict[TopicPartition, int], stored: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The offsets that move forward from what is stored (never store one that goes back)."""
    return {tp: offset for tp, offset in offsets.items() if offset > stored.get(tp, -1)}


def start_offsets(partitions: Iterable[TopicPartition], stored: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Where to start each assigned partition: the stored next offset, else the beginning."""
    return {tp: stored.get(tp, 0) for tp in partitions}
