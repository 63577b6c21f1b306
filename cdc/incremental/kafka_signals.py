"""Signals from Kafka: the topic `<prefix>.signals`, for users who cannot write to the source database.

A record's value is a signal's JSON (`cdc.incremental.signals`); its `prefix` must be the capture's.
SQL conditions are refused on this channel (see `parse_signal`). The consumer group
`cdc-signals.<prefix>` remembers what was read; the controller also drops a signal id it already ran.
"""

from __future__ import annotations

import logging
import time

from cdc.errors import ConfigError
from cdc.incremental.signals import SnapshotSignal, parse_signal
from cdc.kafka import make_admin, make_consumer

log = logging.getLogger("cdc.incremental")

POLL_INTERVAL = 1.0


def signals_topic(prefix: str) -> str:
    """The Kafka topic a capture named `prefix` reads signals from."""
    return f"{prefix}.signals"


class SignalConsumer:
    """Reads `<prefix>.signals` without blocking, at most once a second."""

    def __init__(self, bootstrap: str, prefix: str, backend: str | None = None) -> None:
        self.topic = signals_topic(prefix)
        with make_admin(bootstrap, backend=backend) as admin:
            admin.ensure_topic(self.topic, 1)
        self.consumer = make_consumer(bootstrap, group_id=f"cdc-signals.{prefix}", topics=[self.topic],
                                      backend=backend)
        self._next_poll = 0.0

    def poll(self) -> list[SnapshotSignal]:
        """The signals that arrived since the last poll (invalid ones logged and skipped)."""
        now = time.monotonic()
        if now < self._next_poll:
            return []
        self._next_poll = now + POLL_INTERVAL
        records = self.consumer.consume(100, 0.0)
        signals = []
        for record in records:
            if record.value is None:
                continue
            try:
                signals.append(parse_signal(record.value, allow_where=False))
            except ConfigError as exc:
                log.error("signal on %s ignored: %s", self.topic, exc.message, extra={"offset": record.offset})
        if records:
            self.consumer.commit()
        return signals

    def close(self) -> None:
        self.consumer.close()
