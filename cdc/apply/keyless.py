"""Tables without a primary key: their changes in source order, and repeats dropped by source position.

Nothing identifies a row of a keyless table but its whole content, so a batch is not folded: inserts
(runs of them) become plain bulk inserts, an update or delete changes exactly one row equal to its
before image (NULL matching NULL), a truncate empties the table. Upserts cannot make a repeated insert
harmless, so the last applied source position of each keyless table is kept in the target
(`cdc_table_state`, written in the batch's transaction) and events at or below it are dropped: after a
capture restart sends events again, each still takes effect once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from cdc.apply.target import TargetTable, TargetWriter
from cdc.events import DELETE, TRUNCATE, UPDATE

log = logging.getLogger(__name__)

INSERT_STEP, UPDATE_STEP, DELETE_STEP, TRUNCATE_STEP = "insert", "update", "delete", "truncate"


@dataclass(slots=True)
class KeylessBatch:
    """One keyless table's changes of a batch as steps in source order (see `keyless_steps`)."""

    steps: list[tuple] = field(default_factory=list)
    changes: int = 0

    def __len__(self) -> int:
        return self.changes


def image_values(table: TargetTable, image: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
    """A whole row image as (target column names, converted values), the target's columns only."""
    groups = table.row_groups([image])
    return groups[0][0], groups[0][1][0]


def keyless_steps(table: TargetTable, changes: list[tuple[str, dict | None, dict | None]]) -> KeylessBatch:
    """`(op, before, after)` of one keyless table, in order, as steps: consecutive inserts and snapshot
    reads as one `(insert, [(columns, rows), ..])`, then `(update, before, after)`, `(delete, before)`,
    `(truncate,)`, each image converted by `image_values`. ValueError/TypeError when a value does not fit."""
    batch = KeylessBatch(changes=len(changes))
    pending: list[dict[str, Any]] = []
    for op, before, after in changes:
        if op in (UPDATE, DELETE, TRUNCATE) and pending:
            batch.steps.append((INSERT_STEP, table.row_groups(pending)))
            pending = []
        if op == TRUNCATE:
            batch.steps.append((TRUNCATE_STEP,))
        elif op == DELETE:
            batch.steps.append((DELETE_STEP, image_values(table, before)))
        elif op == UPDATE:
            batch.steps.append((UPDATE_STEP, image_values(table, before), image_values(table, after)))
        else:
            pending.append(after)
    if pending:
        batch.steps.append((INSERT_STEP, table.row_groups(pending)))
    return batch


def write_keyless(writer: TargetWriter, table: TargetTable, batch: KeylessBatch) -> int:
    """Run a keyless batch's steps inside the open transaction; returns how many updates/deletes found no
    row equal to their before image (the target had drifted from the source; each is logged)."""
    unmatched = 0
    for step in batch.steps:
        kind = step[0]
        if kind == INSERT_STEP:
            for columns, rows in step[1]:
                writer.insert_rows(table, columns, rows)
        elif kind == TRUNCATE_STEP:
            writer.truncate(table)
        else:
            before = step[1]
            found = writer.delete_one(table, *before) if kind == DELETE_STEP else writer.update_one(table, *before, *step[2])
            if not found:
                unmatched += 1
                log.warning("no target row equals the before image of a keyless change",
                            extra={"table": table.title, "op": kind})
    return unmatched


def load_positions(writer: TargetWriter, group: str) -> dict[str, tuple]:
    """The last applied source position of each keyless table of the group (inside the open transaction)."""
    name = writer.table_state_sql()[0]
    rows = writer.query(f"SELECT table_name, source_position FROM {name}"
                        " WHERE group_id = %s AND source_position IS NOT NULL", (group,))
    return {table: tuple(orjson.loads(position)) for table, position in rows}


def drop_repeats(events: list, positions: dict[str, tuple]) -> list:
    """The events without the repeats of keyless tables: an event at or below its table's applied position,
    or below one seen earlier in the batch (a restarted capture's repeats may follow the originals in
    one batch). A keyless table's events are on one partition, in source order."""
    highest = dict(positions)
    kept = []
    for event in events:
        position = event.position
        if position is None:
            kept.append(event)
            continue
        name = event.schema.qualified_name
        applied = highest.get(name)
        if applied is None or position > applied:
            highest[name] = position
            kept.append(event)
    return kept


def newest_positions(events: list) -> dict[str, tuple]:
    """The highest source position per keyless table among the events."""
    newest: dict[str, tuple] = {}
    for event in events:
        position = event.position
        if position is not None:
            name = event.schema.qualified_name
            known = newest.get(name)
            if known is None or position > known:
                newest[name] = position
    return newest


def store_positions(writer: TargetWriter, group: str, positions: dict[str, tuple]) -> None:
    """Record each table's applied position (inside the transaction that applied the events)."""
    for table, position in positions.items():
        writer.store_table_state(group, table, "source_position", orjson.dumps(list(position)).decode())
