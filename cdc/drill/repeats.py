"""Events repeated on Kafka: a table topic read from where the last read stopped, (id, version) counted."""

from __future__ import annotations

import time

import orjson

REPEATABLE_OPS = frozenset(("c", "u", "r"))


def count_repeats(seen: dict[tuple[int, int], int], values: list[bytes | None]) -> int:
    """Add change-event values to `seen` ((id, version) -> times); how many of them were repeats."""
    repeats = 0
    for value in values:
        if value is None:
            continue
        event = orjson.loads(value)
        event = event.get("payload", event)
        after = event.get("after")
        if event.get("op") not in REPEATABLE_OPS or not after:
            continue
        row = (int(after["id"]), int(after["version"]))
        times = seen.get(row, 0)
        repeats += times > 0
        seen[row] = times + 1
    return repeats


class RepeatCounter:
    """Reads one topic by assignment (no consumer group, nothing committed) and counts repeated events."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        import confluent_kafka as ck

        self.topic = topic
        self.seen: dict[tuple[int, int], int] = {}
        self.repeated = 0
        self._positions: dict[int, int] = {}
        self._consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "cdc-drill-repeats",
                                      "enable.auto.commit": False, "enable.partition.eof": False,
                                      "isolation.level": "read_committed", "log_level": 3})

    def read(self, timeout: float = 30.0) -> int:
        """Read up to the topic's current end; the repeats counted so far."""
        import confluent_kafka as ck

        metadata = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            return self.repeated
        ends = {p: self._consumer.get_watermark_offsets(ck.TopicPartition(self.topic, p), timeout=10)[1]
                for p in metadata.partitions}
        todo = {p: end for p, end in ends.items() if end > self._positions.get(p, 0)}
        if not todo:
            return self.repeated
        self._consumer.assign([ck.TopicPartition(self.topic, p, self._positions.get(p, ck.OFFSET_BEGINNING))
                               for p in todo])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for message in self._consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                partition = message.partition()
                self._positions[partition] = message.offset() + 1
                self.repeated += count_repeats(self.seen, [message.value()])
                if partition in todo and message.offset() + 1 >= todo[partition]:
                    del todo[partition]
        self._consumer.unassign()
        return self.repeated

    def close(self) -> None:
        self._consumer.close()
