"""Signals from Kafka: the topic `<prefix>.signals`, for users who cannot write to the source database.

A record's value is a signal's JSON (`cdc.incremental.signals`); its `prefix` must be the capture's.
SQL conditions are refused on this channel (see `parse_signal`). The consumer group
`cdc-signals.<prefix>` remembers what was read; the controller also drops a signal id it already ran.
The consumer joins its group only once the topic exists (`cdc snapshot --via kafka` creates it), so a
capture that never gets a Kafka signal pays nothing for the channel (a group member's close waits for
the broker's answer to its LeaveGroup).
"""

from __future__ import annotations

import logging
import time

from cdc.errors import ConfigError
from cdc.incremental.signals import SnapshotSignal, parse_signal
from cdc.kafka import make_admin, make_consumer

log = logging.getLogger("cdc.incremental")

POLL_INTERVAL = 1.0
TOPIC_CHECK_INTERVAL = 10.0


def signals_topic(prefix: str) -> str:
    """The Kafka topic a capture named `prefix` reads signals from."""
    return f"{prefix}.signals"


class SignalConsumer:
    """Reads `<prefix>.signals` without blocking, at most once a second."""

    def __init__(self, bootstrap: str, prefix: str, backend: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.backend = backend
        self.topic = signals_topic(prefix)
        self.admin = make_admin(bootstrap, backend=backend)
        self.consumer = None
        self._next_poll = 0.0
        self._next_topic_check = 0.0

    def _subscribed(self) -> bool:
        """True once subscribed; looks for the topic at most every TOPIC_CHECK_INTERVAL seconds."""
        if self.consumer is not None:
            return True
        now = time.monotonic()
        if now < self._next_topic_check:
            return False
        self._next_topic_check = now + TOPIC_CHECK_INTERVAL
        if self.topic not in self.admin.list_topics():
            return False
        self.consumer = make_consumer(self.bootstrap, group_id=f"cdc-signals.{self.prefix}", topics=[self.topic],
                                      backend=self.backend)
        return True

    def poll(self) -> list[SnapshotSignal]:
        """The signals that arrived since the last poll (invalid ones logged and skipped)."""
        now = time.monotonic()
        if now < self._next_poll:
            return []
        self._next_poll = now + POLL_INTERVAL
        if not self._subscribed():
            return []
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
        if self.consumer is not None:
            self.consumer.close()
        self.admin.close()
