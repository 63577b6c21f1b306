"""What `cdc capture` asks of a source connector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdc.kafka.base import DEFAULT_MAX_MESSAGE_BYTES

SNAPSHOT_MODES = ("initial", "never", "initial_only", "when_needed")


@dataclass(slots=True, frozen=True)
class CaptureOptions:
    """What `cdc capture` asks of a source connector (engine-specific extras in `extra`)."""

    source: str
    kafka: str
    prefix: str
    tables: tuple[str, ...] = ()
    include: str | None = None
    snapshot: str = "initial"
    slot: str | None = None
    publication: str | None = None
    compat: str = "none"
    heartbeat_interval: float = 10.0
    status_interval: float = 1.0
    snapshot_workers: int = 2
    snapshot_chunk: int = 10_000
    kafka_backend: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the largest Kafka record (docs/security.md)
    extra: dict[str, Any] = field(default_factory=dict)
