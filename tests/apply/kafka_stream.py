"""Test helpers: put a change stream on a real Kafka broker (topics, schema record, events) and model its end state."""

from __future__ import annotations

import random
import uuid
from typing import Any

from cdc.envelope import Envelope
from cdc.events import Change, TableSchema
from cdc.kafka import make_admin, make_producer

# Small group timeouts: the test broker makes a JoinGroup wait for the rebalance timeout.
FAST_GROUP = {"session_timeout_ms": 3000, "max_poll_interval_ms": 3000}


def unique_prefix(name: str = "ap") -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


class KafkaStream:
    """Produces a table's changes under a prefix and remembers the rows the target should end with."""

    def __init__(self, bootstrap: str, prefix: str, schema: TableSchema, partitions: int = 3) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.schema = schema
        self.envelope = Envelope(prefix)
        self.expected: dict[Any, dict[str, Any]] = {}
        self.position = 0
        with make_admin(bootstrap) as admin:
            admin.ensure_topic(self.envelope.topic(schema), partitions)
            admin.ensure_topic(self.envelope.schemas_topic, 1, compacted=True)
        self.producer = make_producer(bootstrap, linger_ms=5)
        self.publish_schema(schema)

    def publish_schema(self, schema: TableSchema) -> None:
        self.schema = schema
        topic, key, value, headers = self.envelope.schema_record(schema)
        self.producer.produce(topic, value, key, headers=headers)
        self.producer.flush(30)

    def _send(self, op: str, before: dict | None, after: dict | None) -> None:
        self.position += 1
        source = {"connector": "postgresql", "name": self.prefix, "db": "src", "schema": self.schema.namespace,
                  "table": self.schema.name}
        for topic, key, value, headers in self.envelope.records(
                Change(op, self.schema, before, after, source, (self.position,))):
            self.producer.produce(topic, value, key, headers=headers)

    def upsert(self, row: dict[str, Any], op: str = "u") -> None:
        key = row["id"]
        self._send(op, self.expected.get(key), row)
        self.expected[key] = dict(row)

    def delete(self, key: Any) -> None:
        before = self.expected.pop(key, None) or {"id": key}
        self._send("d", before, None)

    def truncate(self) -> None:
        self.expected.clear()
        self._send("t", None, None)

    def random_load(self, count: int, keys: int, rng: random.Random) -> None:
        """`count` random changes on `keys` keys: ~80% updates, ~10% inserts, ~10% deletes."""
        for _ in range(count):
            key = rng.randrange(keys)
            roll = rng.random()
            if key in self.expected and roll < 0.1:
                self.delete(key)
            else:
                op = "u" if key in self.expected else "c"
                self.upsert({"id": key, "name": f"n{rng.randrange(10**6)}", "qty": rng.randrange(-1000, 1000),
                             "note": None if roll < 0.3 else "x" * rng.randrange(0, 40)}, op)
            self.producer.poll(0)
        self.producer.flush(60)

    def rows(self) -> list[tuple]:
        return sorted(tuple(row.get(c.name) for c in self.schema.columns) for row in self.expected.values())

    def close(self) -> None:
        self.producer.close()
