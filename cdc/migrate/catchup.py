"""Has one direction's replication reached a source position: capture acknowledged it, apply wrote all of it.

Capture: the engine says whether the capture of the prefix acknowledged the position (PG: its slot's
confirmed LSN; MySQL/MariaDB: the position stored in `__cdc-offsets.<prefix>`), which it does only
after Kafka acknowledged every event before it. Apply: every partition of the workflow's table topics
has its end offset (Kafka's) at or below the next offset apply stored in the target's `cdc_offsets`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cdc.errors import KafkaError
from cdc.kafka import make_admin
from cdc.migrate.workflow import Workflow, bare_table
from cdc.registry import migrate_module, status_module
from cdc.urls import parse_url

POLL_SECONDS = 0.05


@dataclass(slots=True)
class CatchUp:
    """The outcome of a wait: reached or not, how long it took, and how far behind it was at the end."""

    reached: bool
    seconds: float
    captured: bool = False
    events_behind: int | None = None
    partitions: dict[str, int] = field(default_factory=dict)  # "topic/partition" -> events not applied
    trouble: str | None = None  # the broker's last refusal, when it did not answer
    captured_seconds: float | None = None  # when capture had acknowledged the position (the rest: apply)

    def figure(self) -> str:
        """The figure a gate names: what was still missing."""
        if self.trouble:
            return f"Kafka did not answer: {self.trouble}"
        if not self.captured:
            return "capture has not acknowledged the position"
        return f"{self.events_behind} event(s) not applied"


class CatchUpProbe:
    """Answers "reached?" for one direction of one workflow, reusing one Kafka admin client."""

    def __init__(self, workflow: Workflow, direction: str) -> None:
        self.workflow = workflow
        self.direction = direction
        self.prefix = workflow.prefix(direction)
        reading, writing = workflow.sides(direction)
        self.reading, self.writing = parse_url(reading), writing
        self.engine = migrate_module(self.reading.engine)
        self.tables = {bare_table(t) for t in workflow.tables}
        self.admin = make_admin(workflow.kafka, backend=workflow.kafka_backend)
        self.topics: list[str] = []

    def close(self) -> None:
        self.admin.close()

    def _table_topics(self) -> list[str]:
        if not self.topics:
            self.topics = sorted(t for t in self.admin.list_topics() if t.startswith(self.prefix + ".")
                                 and t.count(".") == 2 and (not self.tables or t.rsplit(".", 1)[1] in self.tables))
        return self.topics

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> Kafka's end offset, for the workflow's table topics."""
        return {(topic, int(partition)): int(end) for topic in self._table_topics()
                for partition, end in self.admin.end_offsets(topic).items()}

    def behind(self, ends: dict[tuple[str, int], int] | None = None) -> dict[str, int]:
        """"topic/partition" -> events up to `ends` (default: the end now) apply has not written (only those behind)."""
        group = self.workflow.apply_group(self.direction)
        applied = {(topic, int(partition)): int(offset)
                   for grp, topic, partition, offset in status_module(self.writing).target_offsets(self.writing)
                   if grp == group}
        ends = self.end_offsets() if ends is None else ends
        return {f"{topic}/{partition}": end - applied.get((topic, partition), 0)
                for (topic, partition), end in ends.items() if end > applied.get((topic, partition), 0)}

    def wait(self, position: str, timeout: float) -> CatchUp:
        """Wait up to `timeout` seconds until capture acknowledged `position` and apply wrote every event."""
        started = time.monotonic()
        deadline = started + max(0.0, timeout)
        captured, ends, partitions, trouble, captured_at = False, None, {}, None, None
        while True:
            try:
                if not captured:
                    captured = self.engine.capture_reached(self.reading, self.workflow.kafka, self.prefix, position)
                    captured_at = round(time.monotonic() - started, 3) if captured else None
                if captured and ends is None:  # everything up to the position is below these offsets
                    ends = self.end_offsets()
                partitions = self.behind(ends) if captured else {}
                trouble = None
            except KafkaError as exc:  # a broker slow to answer: ask again until the deadline
                trouble = str(exc)
            if captured and ends is not None and not partitions and trouble is None:
                return CatchUp(True, round(time.monotonic() - started, 3), True, 0, captured_seconds=captured_at)
            if time.monotonic() >= deadline:
                return CatchUp(False, round(time.monotonic() - started, 3), captured,
                               sum(partitions.values()) if captured else None, partitions, trouble)
            time.sleep(POLL_SECONDS)


def current_position(url_text: str) -> str:
    """The database's current position (WAL LSN / binlog file:position)."""
    url = parse_url(url_text)
    engine = migrate_module(url.engine)
    conn = engine.connect(url)
    try:
        position = engine.current_position(conn)
        engine.nudge(conn)
        return position
    finally:
        conn.close()
