"""A broker that lost acknowledged records: its end offsets fell below offsets it acknowledged to us.

Capture keeps the highest offset Kafka acknowledged per (topic, partition) (from the delivery reports
it asks for anyway) and compares them now and then, and before it gives up on a Kafka error, with the
topics' end offsets. A broker restarted without its data (an in-memory broker, a wiped disk, an
unclean leader election) shows up as an end offset below one already acknowledged: capture must stop
with that error instead of running on, because the source was already told those records are safe.
"""

from __future__ import annotations

from collections.abc import Callable

from cdc.errors import KafkaError

EndOffsets = Callable[[str], dict[int, int]]  # topic -> {partition: end offset}


class BrokerLostData(KafkaError):
    """Kafka no longer has records it acknowledged."""


class AcknowledgedOffsets:
    """Highest acknowledged offset per (topic, partition), and the check against the broker's end offsets."""

    __slots__ = ("highest",)

    def __init__(self) -> None:
        self.highest: dict[tuple[str, int], int] = {}

    def note(self, report) -> None:
        """Remember one delivery report (librdkafka's Message, or a `DeliveryReport`)."""
        topic, partition, offset = report.topic, report.partition, report.offset
        if callable(offset):  # librdkafka's Message has methods
            topic, partition, offset = topic(), partition(), offset()
        if offset is None or offset < 0:
            return
        key = (topic, partition)
        if offset > self.highest.get(key, -1):
            self.highest[key] = offset

    def lost(self, end_offsets: EndOffsets) -> list[str]:
        """`topic[partition]: end E, acknowledged up to O` for each partition that lost records."""
        found = []
        for topic in sorted({topic for topic, _ in self.highest}):
            try:
                ends = end_offsets(topic)
            except KafkaError as exc:
                if "does not exist" not in str(exc):
                    raise
                ends = {}
            for (name, partition), offset in sorted(self.highest.items()):
                if name == topic and ends.get(partition, 0) <= offset:
                    found.append(f"{topic}[{partition}]: end offset {ends.get(partition, 0)}, "
                                 f"acknowledged up to {offset}")
        return found

    def check(self, end_offsets: EndOffsets) -> None:
        """BrokerLostData when any partition's end offset is at or below an offset it acknowledged."""
        lost = self.lost(end_offsets)
        if lost:
            raise BrokerLostData(
                f"Kafka lost records it had acknowledged ({len(lost)} partition(s); first: {lost[0]}); the source "
                "was told they were safe, so replaying from the source cannot bring them back",
                fix="find out why the broker lost data (restart without its log, unclean leader election); "
                    "then re-snapshot the affected tables (`--snapshot initial` with a new slot / prefix)")
