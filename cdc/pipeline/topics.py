"""The capture side's own topics: created at start, and the schemas already published on `<prefix>.schemas`."""

from __future__ import annotations

import logging

import orjson

from cdc.events import TableSchema
from cdc.kafka import latest_by_key
from cdc.kafka.base import TopicSpec

log = logging.getLogger("cdc.pipeline")


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
    schemas = []
    for value in latest_by_key(bootstrap, topic, backend=backend, timeout=timeout, admin=admin).values():
        if value:
            try:
                schemas.append(TableSchema.from_dict(orjson.loads(value)))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring an unreadable schema record", extra={"topic": topic, "error": str(exc)})
    return schemas
