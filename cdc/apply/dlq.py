"""What apply does with a bad event: stop with its position and reason, or park it on `<prefix>.dlq`.

A bad event is a malformed message, a value that does not fit its target column, or a row the target
refuses (constraint violation). Nothing is skipped silently: under `stop` apply ends with an error
naming topic, partition, offset and reason; under `dlq` the original record goes to `<prefix>.dlq`
with those in headers, and the DLQ write is acknowledged before the batch's offsets are committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cdc.errors import TargetError
from cdc.kafka import Producer, Record
from cdc.kafka.headers import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC

log = logging.getLogger(__name__)

POLICIES = ("stop", "dlq", "skip-table")


@dataclass(slots=True, frozen=True)
class BadEvent:
    """A consumed record apply could not write, and why."""

    record: Record
    reason: str
    table: str | None = None  # the source table, when the event got far enough to name it

    @property
    def where(self) -> str:
        return f"{self.record.topic}[{self.record.partition}]@{self.record.offset}"


class BadEventError(TargetError):
    """Apply stopped on a bad event (policy `stop`)."""

    def __init__(self, bad: BadEvent) -> None:
        self.bad = bad
        table = f" of table {bad.table}" if bad.table else ""
        super().__init__(
            f"bad event{table} at topic {bad.record.topic} partition {bad.record.partition} offset {bad.record.offset}:"
            f" {bad.reason}",
            fix="fix the target table or the event, or run with --on-error dlq to park bad events on <prefix>.dlq"
                " (--on-error skip-table: park the whole table and keep the others flowing)",
        )


class StopPolicy:
    """`--on-error stop`: the first bad event ends apply; its batch is not committed."""

    name = "stop"

    def handle(self, bad: list[BadEvent]) -> None:
        if bad:
            raise BadEventError(bad[0])

    def close(self) -> None:
        pass


class SkipTablePolicy:
    """`--on-error skip-table`: a table with a bad event is parked (the applier records it and skips its
    events from then on); a bad event that names no table stops apply, as under `stop`."""

    name = "skip-table"

    def handle(self, bad: list[BadEvent]) -> None:
        for event in bad:
            if event.table is None:
                raise BadEventError(event)

    def close(self) -> None:
        pass


class DeadLetterPolicy:
    """`--on-error dlq`: bad events go to `<prefix>.dlq` (acknowledged before the batch commits)."""

    name = "dlq"

    def __init__(self, producer: Producer, prefix: str) -> None:
        self.producer = producer
        self.topic = f"{prefix}.dlq"

    def handle(self, bad: list[BadEvent]) -> None:
        if not bad:
            return
        for event in bad:
            record = event.record
            headers = [(name, value) for name, value in record.headers]
            headers += [
                (DLQ_TOPIC, record.topic.encode()),
                (DLQ_PARTITION, str(record.partition).encode()),
                (DLQ_OFFSET, str(record.offset).encode()),
                (DLQ_REASON, event.reason.encode("utf-8", "replace")[:4000]),
            ]
            self.producer.produce(self.topic, record.value, record.key, headers=headers)
            log.warning("bad event sent to the dead-letter topic",
                        extra={"event": event.where, "dlq": self.topic, "reason": event.reason})
        self.producer.flush(30.0)

    def close(self) -> None:
        self.producer.close()
