"""Engine-neutral position tracking: which source position may be acknowledged, given Kafka's acks.

Records are produced in source order and acknowledged by Kafka in any order. The source may only be
told "done up to P" (PG flush LSN, MySQL offsets) once every record produced before the checkpoint P
was acknowledged. The tracker numbers records as they are produced, collects acks, and moves
`acknowledged` forward over the longest acknowledged prefix:

    tracker = PositionTracker()
    ticket = tracker.produced()            # for each record, in produce order
    tracker.checkpoint(position)           # after the last record of a transaction
    tracker.delivered(ticket)              # from the delivery callback
    tracker.acknowledged                   # highest checkpoint whose records are all acked
"""

from __future__ import annotations

from collections import deque
from typing import Any


class PositionTracker:
    """Highest checkpointed source position such that every record produced before it was acknowledged."""

    __slots__ = ("_next", "_head", "_done", "_checkpoints", "acknowledged", "acknowledged_stamp", "failed")

    def __init__(self, acknowledged: Any = None) -> None:
        self._next = 0
        self._head = 0
        self._done: set[int] = set()
        self._checkpoints: deque[tuple[int, Any, Any]] = deque()
        self.acknowledged = acknowledged
        self.acknowledged_stamp: Any = None  # what `checkpoint` was given with the acknowledged position
        self.failed: Exception | None = None

    def produced(self) -> int:
        """A ticket for one record about to be produced."""
        ticket = self._next
        self._next += 1
        return ticket

    def checkpoint(self, position: Any, stamp: Any = None) -> None:
        """`position` becomes acknowledged once every record produced so far is delivered.

        `stamp` rides along (the source commit time, for the lag metric) into `acknowledged_stamp`.
        """
        if self._head == self._next:
            self.acknowledged = position
            self.acknowledged_stamp = stamp
            self._checkpoints.clear()
        else:
            self._checkpoints.append((self._next, position, stamp))

    def delivered(self, ticket: int) -> None:
        """Kafka acknowledged the record holding `ticket`."""
        self.acknowledge(ticket, None)

    def acknowledge(self, ticket: int, error: Any, report: Any = None) -> None:
        """A delivery callback `(error, report)` bound to its ticket (`partial(tracker.acknowledge, ticket)`):
        `delivered(ticket)` when error is None, else `fail` (error wrapped when not an exception)."""
        if error is not None:
            self.fail(error if isinstance(error, Exception) else _delivery_error(error, report))
            return
        if ticket != self._head:
            self._done.add(ticket)
            return
        head = ticket + 1
        done = self._done
        if done:
            while head in done:
                done.remove(head)
                head += 1
        self._head = head
        checkpoints = self._checkpoints
        while checkpoints and checkpoints[0][0] <= head:
            _, self.acknowledged, self.acknowledged_stamp = checkpoints.popleft()

    def fail(self, error: Exception) -> None:
        """A record could not be delivered: nothing after it may ever be acknowledged."""
        if self.failed is None:
            self.failed = error

    @property
    def in_flight(self) -> int:
        """Records produced but not yet acknowledged."""
        return self._next - self._head - len(self._done)

    @property
    def idle(self) -> bool:
        """True when every produced record is acknowledged."""
        return self._head == self._next


def _delivery_error(error: Any, report: Any) -> Exception:
    """An exception for a delivery failure reported as a client error object (librdkafka's KafkaError)."""
    from cdc.errors import KafkaError

    detail = error.str() if hasattr(error, "str") else str(error)
    topic = getattr(report, "topic", None)
    topic = topic() if callable(topic) else topic
    return KafkaError(f"delivery to {topic} failed: {detail}" if topic else f"Kafka delivery failed: {detail}")
