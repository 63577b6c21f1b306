"""Reading a whole topic by partition assignment: the `<prefix>.schemas` topic, the MySQL offsets topic.

A consumer-group join costs seconds (up to the broker's rebalance delay), at start-up and at every
re-read; assigning the partitions and reading them from the beginning to their current end does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdc.kafka.backends import backend_module
from cdc.kafka.base import Admin, Record


def has_records(admin: Admin, topic: str) -> bool:
    """True when `topic` exists and holds at least one record."""
    if topic not in admin.list_topics():
        return False
    return any(end > 0 for end in admin.end_offsets(topic).values())


def read_topic(
    bootstrap: str | Sequence[str],
    topic: str,
    *,
    backend: str | None = None,
    timeout: float = 30.0,
    missing_ok: bool = False,
    admin: Admin | None = None,
) -> list[Record]:
    """Every record of `topic` from the start to its current end, read by assignment (no group join).

    KafkaError when the topic does not exist or its end is not reached in time; `missing_ok=True`:
    [] for a topic that does not exist or is empty. `admin`: an open admin client for that check.
    """
    module = backend_module(backend)
    if missing_ok:
        if admin is None:
            with module.make_admin(bootstrap) as own:
                if not has_records(own, topic):
                    return []
        elif not has_records(admin, topic):
            return []
    return module.read_topic(bootstrap, topic, timeout=timeout)


def latest_by_key(
    bootstrap: str | Sequence[str],
    topic: str,
    *,
    backend: str | None = None,
    timeout: float = 30.0,
    admin: Admin | None = None,
) -> dict[bytes | None, bytes]:
    """The newest value per key of a compacted topic, as compaction would keep it ({} when the topic
    does not exist or is empty); a tombstone (None value) removes its key."""
    latest: dict[bytes | None, bytes] = {}
    for record in read_topic(bootstrap, topic, backend=backend, timeout=timeout, missing_ok=True, admin=admin):
        if record.value is None:
            latest.pop(record.key, None)
        else:
            latest[record.key] = record.value
    return latest
