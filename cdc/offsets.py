"""A capture's source position in Kafka: the compacted topic `__cdc-offsets.<prefix>`, key -> latest JSON.

For sources that keep no position themselves (MySQL/MariaDB: the binlog has no slot), the capture
writes its acknowledged position as a record of this topic, keyed by prefix and connector; a
restart reads the topic to its end and resumes from the newest value of its key. What a position
holds is the connector's business (`connectors/<engine>/offsets.py`); this store only keeps JSON.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from cdc.errors import KafkaError
from cdc.kafka import choose_backend, make_admin, make_consumer


def offsets_topic(prefix: str) -> str:
    """The compacted topic holding the source positions of the capture named `prefix`."""
    return f"__cdc-offsets.{prefix}"


class OffsetStore:
    """The newest position JSON of one capture (key: its prefix and connector) in `__cdc-offsets.<prefix>`."""

    def __init__(self, bootstrap: str, prefix: str, connector: str, backend: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.backend = backend
        self.topic = offsets_topic(prefix)
        self.key = orjson.dumps({"prefix": prefix, "connector": connector})

    def record(self, value: dict[str, Any]) -> tuple[str, bytes, bytes, list]:
        """The Kafka record (topic, key, value, headers) storing `value` as the newest position."""
        return (self.topic, self.key, orjson.dumps(value), [])

    def ensure_topic(self) -> None:
        admin = make_admin(self.bootstrap, backend=self.backend)
        try:
            admin.ensure_topic(self.topic, 1, compacted=True)
        finally:
            admin.close()

    def load(self, timeout: float = 30.0) -> dict[str, Any] | None:
        """The newest stored value of this capture's key, or None when nothing was stored yet."""
        admin = make_admin(self.bootstrap, backend=self.backend)
        try:
            if self.topic not in admin.list_topics():
                return None
            ends = admin.end_offsets(self.topic)
        finally:
            admin.close()
        if not any(ends.values()):
            return None
        if choose_backend(self.backend) == "confluent":
            return self._read_assigned(ends, timeout)
        return self._read_with_group(ends, timeout)

    def _read_assigned(self, ends: dict[int, int], timeout: float) -> dict | None:
        """Read every partition from the start by assignment: no consumer-group join to wait for."""
        import confluent_kafka as ck

        consumer = ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"cdc-offsets-{self.prefix}",
                                "enable.auto.commit": False, "enable.partition.eof": True})
        todo = {p for p, end in ends.items() if end}
        found = None
        deadline = time.monotonic() + timeout
        try:
            consumer.assign([ck.TopicPartition(self.topic, p, ck.OFFSET_BEGINNING) for p in todo])
            while todo:
                if time.monotonic() > deadline:
                    raise KafkaError(f"could not read the stored position from {self.topic} in {timeout:.0f}s",
                                     fix="check the Kafka broker")
                for message in consumer.consume(500, 0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == ck.KafkaError._PARTITION_EOF:
                            todo.discard(message.partition())
                        elif not error.retriable():
                            raise KafkaError(f"cannot read {self.topic}: {error.str()}")
                        continue
                    if message.key() == self.key and message.value():
                        found = orjson.loads(message.value())
        finally:
            consumer.close()
        return found

    def _read_with_group(self, ends: dict[int, int], timeout: float) -> dict | None:
        consumer = make_consumer(self.bootstrap, group_id=f"cdc-offsets-{self.prefix}-{uuid.uuid4().hex[:8]}",
                                 topics=[self.topic], backend=self.backend, auto_offset_reset="earliest")
        found = None
        reached: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        try:
            while any(reached.get(p, 0) < end for p, end in ends.items() if end):
                if time.monotonic() > deadline:
                    raise KafkaError(f"could not read the stored position from {self.topic} in {timeout:.0f}s",
                                     fix="check the Kafka broker")
                for record in consumer.consume(500, 1.0):
                    reached[record.partition] = record.offset + 1
                    if record.key == self.key and record.value:
                        found = orjson.loads(record.value)
        finally:
            consumer.close()
        return found
