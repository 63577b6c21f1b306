"""Fold a table's batch of change events by primary key into the least work for the target.

Within a batch, per key: the last write wins, a delete after an upsert wins, an upsert after a delete
wins (the row is written again). A truncate drops every earlier event of the batch, because the
truncate erases their effect anyway. An update that carries PG's unchanged-TOAST placeholder takes the
column's value from an earlier upsert of the same key in the batch; with none, the placeholder stays
and the writer leaves that column of the target row as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cdc.events import DELETE, READ, TRUNCATE, UNAVAILABLE_VALUE

_DELETED = None  # marks a key whose last event is a delete


@dataclass(slots=True)
class FoldedBatch:
    """One table's batch after folding: truncate first (if any), then deletes, then upserts.

    Keys are disjoint between `deletes` and `upserts`, so their relative order does not matter.
    """

    truncate: bool = False
    upserts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[tuple] = field(default_factory=list)
    reads_only: bool = False  # every event was a snapshot read (op r): rows that are usually new to the target

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


def fold_batch(events: Iterable[tuple[str, tuple | None, dict[str, Any] | None]]) -> FoldedBatch:
    """Fold `(op, key, after)` triples (in consumption order) of one table; see the module docstring.

    `key` is the tuple of primary-key values; `after` is the after image for c/u/r, None for d/t.
    """
    truncate = False
    reads_only = True
    latest: dict[tuple, dict[str, Any] | None] = {}
    for op, key, after in events:
        if op != READ:
            reads_only = False
        if op == TRUNCATE:
            latest.clear()
            truncate = True
        elif op == DELETE:
            latest[key] = _DELETED
        else:
            earlier = latest.get(key)
            if earlier is not None and UNAVAILABLE_VALUE in after.values():
                after = _fill_unavailable(after, earlier)
            latest[key] = after
    folded = FoldedBatch(truncate=truncate, reads_only=reads_only and bool(latest))
    for key, after in latest.items():
        if after is _DELETED:
            folded.deletes.append(key)
        else:
            folded.upserts.append(after)
    return folded


def _fill_unavailable(after: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """`after` with each placeholder replaced by the earlier image's value of that column, when known."""
    return {
        name: earlier.get(name, value) if value == UNAVAILABLE_VALUE else value
        for name, value in after.items()
    }
