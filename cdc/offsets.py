"""A capture's source position in Kafka: the compacted topic `__cdc-offsets.<prefix>`, key -> latest JSON.

For sources that keep no position themselves (MySQL/MariaDB: the binlog has no slot), the capture
writes its acknowledged position as a record of this topic, keyed by prefix and connector; a
restart reads the topic to its end and resumes from the newest value of its key. What a position
holds is the connector's business (`connectors/<engine>/offsets.py`); this store only keeps JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from cdc.kafka import latest_by_key, make_admin


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
        value = latest_by_key(self.bootstrap, self.topic, backend=self.backend, timeout=timeout).get(self.key)
        return orjson.loads(value) if value else None
