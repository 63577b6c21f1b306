"""The client-side column pass: both sides streamed in the same order and merged, in constant memory.

Columns that cannot be compared inside the databases (floats with a tolerance or paired with a
decimal, JSON whose texts differ between the engines) are read as key + those columns from both sides
at once, each through a server-side cursor, in an order both engines agree on: the integer key (range
mode) or the 60-bit key hash (hash mode, where text keys would sort by each engine's collation).
A reader thread per side fills a small bounded queue of batches, so neither side is ever held in
memory, and the merge pairs rows with the same key as they pass. Values that are equal as read
(the usual case) cost one comparison; others are compared by value (`RowComparer.client_equal`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

BATCH_ROWS = 5000
QUEUE_BATCHES = 4  # batches buffered per side: memory is bounded by about 2 * 5 * BATCH_ROWS rows
_DONE = object()


class SideReader:
    """Streams one side's rows from a server-side cursor on a thread, a few batches ahead of the merge."""

    def __init__(self, pool, sql: str) -> None:
        self.pool = pool
        self.sql = sql
        self.batches: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, name="verify-stream", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        conn = self.pool.acquire()
        try:
            # closing(): the cursor is closed (and a PG transaction ended) before the connection goes back
            with contextlib.closing(self.pool.dialect.stream(conn, self.sql, batch=BATCH_ROWS)) as rows:
                batch: list[tuple] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= BATCH_ROWS:
                        if not self._put(batch):
                            return
                        batch = []
                if batch:
                    self._put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the merging thread, which raises it
            self.error = exc
        finally:
            self.pool.release(conn)
            self._put(_DONE, force=True)

    def _put(self, item, force: bool = False) -> bool:
        while not self.stopped.is_set() or force:
            try:
                self.batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                if force and self.stopped.is_set():
                    return False
        return False

    def rows(self) -> Iterator[tuple]:
        """The rows in the order the query returns them; raises what the reader met."""
        while True:
            batch = self.batches.get()
            if batch is _DONE:
                if self.error is not None:
                    raise self.error
                return
            yield from batch

    def stop(self) -> None:
        self.stopped.set()
        while self.thread.is_alive():
            try:
                self.batches.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()


def merge_by_order(source: Iterator[tuple], target: Iterator[tuple], order_of, identity_of) -> Iterator[tuple]:
    """(source row, target row) for each key on both sides, from two streams ascending by `order_of(row)`.

    Rows with the same order value (hash mode: two keys with the same 60-bit hash, practically never)
    are paired by `identity_of(row)`. Rows on one side only are skipped: the checksums report them.
    """
    a, b = next(source, None), next(target, None)
    while a is not None and b is not None:
        order_a, order_b = order_of(a), order_of(b)
        if order_a < order_b:
            a = next(source, None)
        elif order_b < order_a:
            b = next(target, None)
        else:
            group_a, group_b = [a], [b]
            a, b = next(source, None), next(target, None)
            while a is not None and order_of(a) == order_a:
                group_a.append(a)
                a = next(source, None)
            while b is not None and order_of(b) == order_a:
                group_b.append(b)
                b = next(target, None)
            if len(group_a) == 1 and len(group_b) == 1:
                if identity_of(group_a[0]) == identity_of(group_b[0]):
                    yield group_a[0], group_b[0]
                continue
            by_identity = {identity_of(row): row for row in group_b}
            for row in group_a:
                other = by_identity.get(identity_of(row))
                if other is not None:
                    yield row, other


def stream_pairs(session, source_sql: str, target_sql: str, order_of, identity_of) -> Iterator[tuple]:
    """Both sides' rows paired by key, streamed at once (see `merge_by_order`)."""
    readers = [SideReader(session.source, source_sql), SideReader(session.target, target_sql)]
    try:
        yield from merge_by_order(readers[0].rows(), readers[1].rows(), order_of, identity_of)
    finally:
        for reader in readers:
            reader.stop()
