"""The snapshot markers every connector's snapshot writes in `source.snapshot`, as Debezium 3.6 does.

`first` on the first row of the snapshot, `first_in_data_collection` on a table's first row,
`true` inside a table, `last_in_data_collection` on a table's last row, `last` on the last row of the
snapshot (a table with one row: `first_in_data_collection`, unless it is the very first or last).

`key_ranges` splits one table by its integer first key column so several connections read it at once;
`read_in_parallel` runs those reads on one thread per connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from cdc.events import Change

FIRST = "first"
FIRST_IN_TABLE = "first_in_data_collection"
INSIDE = "true"
LAST_IN_TABLE = "last_in_data_collection"
LAST = "last"


class SnapshotEmitter:
    """Hands snapshot rows to `emit` with their marker set; rows of several tables may interleave.

    A row's marker depends on what follows it, so each table's latest row is held until the table's
    next row (or its end, `table_done`) shows it; the last row of a finished table is held until
    another table finishes, so the very last row of the snapshot gets `last` (`finish`). A snapshot
    that stops early calls no `finish`: what is held is not emitted.
    """

    def __init__(self, emit: Callable[[Change], None]) -> None:
        self._emit = emit
        self.emitted = 0
        self._held: dict[Hashable, tuple[Change, bool]] = {}  # table -> (its latest row, is it the table's first)
        self._started: set[Hashable] = set()
        self._last_of_table: tuple[Change, str] | None = None  # a finished table's last row, not yet emitted

    def row(self, table: Hashable, change: Change) -> None:
        """The next row of `table`; emits the table's previous row."""
        previous = self._held.get(table)
        if previous is not None:
            self._send(previous[0], FIRST_IN_TABLE if previous[1] else INSIDE)
        self._held[table] = (change, table not in self._started)
        self._started.add(table)

    def rows(self, table: Hashable, rows: list, change: Callable[[Any], Change],
             emit_inside: Callable[[list], None]) -> None:
        """`row(table, change(r))` for each of `rows` in order, except that the rows whose marker is `true`
        (all but a batch's edges) go to `emit_inside(rows)` in one call, built into no Change."""
        if not rows:
            return
        start = 0
        if table not in self._started:
            self.row(table, change(rows[0]))
            start = 1
            if len(rows) == 1:
                return
        held, is_first = self._held[table]
        self._send(held, FIRST_IN_TABLE if is_first else INSIDE)
        inside = rows[start:-1]
        if inside:
            emit_inside(inside)
            self.emitted += len(inside)
        self._held[table] = (change(rows[-1]), False)

    def table_done(self, table: Hashable) -> None:
        """`table` has no more rows; emits the last row of the table finished before it."""
        held = self._held.pop(table, None)
        if held is None:
            return
        change, is_first = held
        if self._last_of_table is not None:
            self._send(*self._last_of_table)
        self._last_of_table = (change, FIRST_IN_TABLE if is_first else LAST_IN_TABLE)

    def finish(self) -> None:
        """Every table is done: emits the snapshot's last row with `last`."""
        if self._last_of_table is not None:
            self._send(self._last_of_table[0], LAST)
            self._last_of_table = None

    def _send(self, change: Change, marker: str) -> None:
        change.source["snapshot"] = FIRST if self.emitted == 0 else marker
        self._emit(change)
        self.emitted += 1


@dataclass(slots=True, frozen=True)
class KeyRange:
    """The rows whose first key column is in [lower, upper); None: unbounded on that side."""

    lower: int | None = None
    upper: int | None = None

    def condition(self, column: str) -> tuple[str, list[int]]:
        """SQL (` AND ...`, `%s` placeholders) restricting the quoted `column` to the range, and its parameters."""
        sql, params = "", []
        if self.lower is not None:
            sql, params = f" AND {column} >= %s", [self.lower]
        if self.upper is not None:
            sql, params = sql + f" AND {column} < %s", params + [self.upper]
        return sql, params


WHOLE_TABLE = KeyRange()


def key_ranges(low: int | None, high: int | None, parts: int, min_width: int) -> list[KeyRange]:
    """`parts` ranges of equal width over [low, high] of an integer first key column, open at both ends so
    that together they hold every key; one whole-table range when a part would be narrower than `min_width`.

    Equal widths suit the dense keys of most tables (a sequence); a key is in exactly one range, so its
    events keep their order.
    """
    if low is None or high is None or parts < 2 or (high - low + 1) < parts * max(1, min_width):
        return [WHOLE_TABLE]
    width = -(-(high - low + 1) // parts)
    bounds = [low + width * n for n in range(1, parts)]
    return [KeyRange(lower, upper) for lower, upper in zip([None, *bounds], [*bounds, None])]


def put_unless_stopped(results: queue.Queue, entry: tuple, stop: threading.Event) -> None:
    """Put `entry` on a bounded queue, giving up once `stop` is set (its reader is gone: no deadlock)."""
    while not stop.is_set():
        try:
            results.put(entry, timeout=0.2)
            return
        except queue.Full:
            continue


def read_in_parallel(work: list[tuple[Hashable, Any]], connections: list[Any],
                     read: Callable[[Any, Any], Iterator[list]], stop: Callable[[], bool],
                     idle: Callable[[], None] = lambda: None) -> Iterator[tuple[Hashable, list | None]]:
    """Read the `work` items ((table, what to read)) on one thread per connection; yields (table, rows)
    batches as they come and (table, None) once every item of that table is read.

    `read(connection, item)` yields row batches; a reader's exception is raised here. `idle()` runs
    while no batch is ready (the caller's Kafka polling); `stop()` true ends the reading early.
    """
    items: queue.Queue = queue.Queue()
    unread: dict[Hashable, int] = {}
    for table, item in work:
        items.put((table, item))
        unread[table] = unread.get(table, 0) + 1
    results: queue.Queue = queue.Queue(maxsize=4 * len(connections))
    halt = threading.Event()

    def put(entry: tuple) -> None:
        put_unless_stopped(results, entry, halt)

    def reader(connection: Any) -> None:
        try:
            while not halt.is_set():
                try:
                    table, item = items.get_nowait()
                except queue.Empty:
                    break
                for rows in read(connection, item):
                    if halt.is_set():
                        break
                    put(("rows", table, rows))
                put(("done", table, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
            put(("error", None, exc))
        finally:
            put(("exit", None, None))

    threads = [threading.Thread(target=reader, args=(connection,), name=f"cdc-snapshot-{n}", daemon=True)
               for n, connection in enumerate(connections)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            if stop():
                return
            try:
                kind, table, payload = results.get(timeout=0.2)
            except queue.Empty:
                idle()
                continue
            if kind == "error":
                raise payload
            if kind == "exit":
                running -= 1
            elif kind == "rows":
                yield table, payload
            else:
                unread[table] -= 1
                if not unread[table]:
                    yield table, None
    finally:
        halt.set()
        for thread in threads:
            thread.join(timeout=5)
