"""The DBLog chunk loop: low watermark, chunk read, high watermark; keys the stream changed in between dropped.

For each chunk of the table being snapshotted (primary-key order, `chunk_rows` rows):

1. the connector writes a low watermark into its own change stream (`ChunkSource.write_watermark`),
2. reads the chunk with a plain SELECT and builds its `r` records (`ChunkSource.read_chunk`),
3. writes a high watermark.

The stream goes on meanwhile. When it reaches the low watermark the pipeline starts noting every key it
produces on the table's topic (`CapturePipeline.open_window`); at the high watermark the chunk's
records whose key the stream changed in between are dropped (the stream carries a newer image of
them), the rest are produced right there, in stream order, and the next chunk starts. The stream never
pauses for longer than one chunk read, and per key the `r` event sits where the chunk's image was
current. Progress is stored once Kafka acknowledged a chunk (`cdc.incremental.progress`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cdc.errors import CdcError, ConfigError
from cdc.incremental.progress import DONE, IDLE, RUNNING, SEEN_SIGNALS, STOPPED, ProgressStore, SnapshotProgress
from cdc.incremental.signals import EXECUTE, SnapshotSignal, new_signal

log = logging.getLogger("cdc.incremental")

LOW, HIGH = "low", "high"
TABLES_CHECK_INTERVAL = 5.0  # seconds between looks for tables added to the capture
WATERMARK_KINDS = (LOW, HIGH)


@dataclass(slots=True)
class Chunk:
    """One chunk read from a table: its `r` records (one per row, key order) and the last key read."""

    table: str  # namespace.table
    topic: str
    records: list[tuple[str, bytes | None, bytes | None, Any]]
    last_key: list[Any] | None
    rows: int
    exhausted: bool  # fewer rows than asked: the key range is done


class ChunkSource(Protocol):
    """What a connector supplies: watermarks into its change stream, chunks by primary-key range."""

    def topic_of(self, table: str) -> str:
        """The topic of `table`'s events (its schema published first); called on the stream's thread."""

    def write_watermark(self, chunk_id: str, kind: str) -> None:
        """Write the `kind` (low/high) watermark of `chunk_id` where the capture's stream will read it
        (on the chunk reader's thread, like `read_chunk`)."""

    def read_chunk(self, table: str, after: list[Any] | None, low: list[Any] | None, high: list[Any] | None,
                   where: str | None, limit: int) -> Chunk:
        """Up to `limit` rows of `table` with key > `after`, >= `low` and <= `high` (None: no bound), in key order."""

    def captures(self, table: str) -> bool:
        """True when `table` (namespace.table) is one the capture streams."""

    def captured_tables(self) -> list[str]:
        """Every table (namespace.table) the capture streams now (PG: of the publication)."""


@dataclass(slots=True)
class _InFlight:
    """The chunk between its watermarks: read on a thread while the stream goes on."""

    chunk_id: str
    topic: str
    chunk: Chunk | None = None  # set before the high watermark is written
    next_progress: SnapshotProgress | None = None  # the progress `next` reads from
    opened: bool = False
    error: BaseException | None = None
    thread: threading.Thread | None = None
    times: list[float] = field(default_factory=list)  # monotonic: started, low written, read, high written
    next: _InFlight | None = None  # the chunk read ahead, its low watermark written after this one's high
    done: threading.Event = field(default_factory=threading.Event)  # emitted or abandoned
    cancelled: bool = False
    events_at_low: int = 0  # the pipeline's event count when the stream reached the low watermark


class IncrementalSnapshot:
    """Runs incremental snapshots inside a capture's streaming loop (see the module docstring)."""

    def __init__(self, pipeline, source: ChunkSource, store: ProgressStore | None, prefix: str) -> None:
        self.pipeline = pipeline
        self.source = source
        self.store = store
        self.prefix = prefix
        self.progress: SnapshotProgress | None = None
        self.in_flight: _InFlight | None = None
        self.queued: deque[SnapshotSignal] = deque()
        self._pending: deque[tuple[int, SnapshotProgress]] = deque()  # (ticket, progress) waiting for Kafka
        self._not_before = 0.0  # the rows/s limit: no chunk starts before this (monotonic)
        self.signal_consumer = None  # a cdc.incremental.kafka_signals.SignalConsumer, polled by tick
        self._reader: threading.Thread | None = None  # the newest chunk reader's thread
        self.known_tables: set[str] | None = None  # None: not looked yet
        self._next_tables_check = 0.0
        self.stream_quiet = True  # the stream produced nothing in the last window: read ahead
        self.chunks = 0
        self.rows_emitted = 0
        self.rows_dropped = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def resume(self) -> None:
        """Load the stored progress; a snapshot that was running goes on at its next chunk."""
        if self.store is None:
            return
        self.progress = self.store.load()
        if self.progress is not None and self.progress.known_tables:
            self.known_tables = set(self.progress.known_tables)
        if self.progress is not None and self.progress.status == RUNNING:
            log.info("incremental snapshot resumes", extra={"signal": self.progress.signal_id,
                                                            "table": self.progress.table, "rows": self.progress.rows})

    @property
    def running(self) -> bool:
        """True while an incremental snapshot has chunks left."""
        return self.progress is not None and self.progress.status == RUNNING

    # -- what the stream calls -----------------------------------------------------------------

    def signal(self, signal: SnapshotSignal) -> None:
        """A signal read from the stream or the signal topic (one for another prefix is ignored)."""
        if signal.prefix != self.prefix:
            return
        seen = self.progress.seen if self.progress is not None else ()
        if signal.id in seen or any(q.id == signal.id for q in self.queued):
            return
        if signal.type == EXECUTE:
            unknown = [t for t in signal.tables if not self.source.captures(t)]
            if unknown:
                log.error("incremental snapshot refused: tables not captured",
                          extra={"signal": signal.id, "tables": unknown})
                self._remember(signal.id)
                return
            if self.running:
                log.info("incremental snapshot queued behind the running one", extra={"signal": signal.id})
                self.queued.append(signal)
                return
            self._start(signal)
        else:
            self.queued.clear()
            if self.running:
                self._abandon_chunk()
                self.progress = replace(self.progress, status=STOPPED, updated_at=time.time())
                log.info("incremental snapshot stopped", extra={"signal": self.progress.signal_id})
            self._remember(signal.id)

    def watermark_read(self, payload: bytes | str) -> bool:
        """A watermark row/message read from the stream (any capture's); True when it was a watermark."""
        parsed = parse_watermark(payload)
        if parsed is None:
            return False
        if parsed[0] == self.prefix:
            self.watermark(parsed[1], parsed[2])
        return True

    def watermark(self, chunk_id: str, kind: str) -> None:
        """The stream reached a watermark: open the window (low) or close it and emit the chunk (high)."""
        flight = self.in_flight
        if flight is None or flight.chunk_id != chunk_id:
            return  # an earlier run's or a stopped snapshot's watermark
        if kind == LOW:
            flight.opened = True
            flight.events_at_low = self.pipeline.events
            self.pipeline.open_window(flight.topic)
        elif kind == HIGH and flight.opened:
            changed = self.pipeline.close_window()
            self.stream_quiet = self.pipeline.events == flight.events_at_low
            self._emit(flight, changed)

    def tick(self) -> None:
        """Between stream batches: store acknowledged progress, read signals, start the next chunk."""
        if self._pending:
            self._store_acknowledged()
        if self.in_flight is not None and self.in_flight.error is not None:
            self._reader_failed(self.in_flight)
        if self.signal_consumer is not None:
            for signal in self.signal_consumer.poll():
                self.signal(signal)
        if time.monotonic() >= self._next_tables_check:
            self._next_tables_check = time.monotonic() + TABLES_CHECK_INTERVAL
            self.check_added_tables()
        if self.in_flight is not None or not self.running or time.monotonic() < self._not_before:
            if not self.running and self.queued and self.in_flight is None:
                self._start(self.queued.popleft())
            return
        self._read_next_chunk()

    def check_added_tables(self) -> None:
        """Snapshot the tables the capture streams now but did not before (added to the publication or
        to --tables / --include since the last look, even across restarts); the first look only records."""
        current = set(self.source.captured_tables())
        known = self.known_tables
        self.known_tables = current
        if known is None:
            self._remember_tables()
            return
        added = sorted(current - known)
        if added:
            log.info("tables added to the capture: snapshotting them incrementally", extra={"tables": added})
            self.signal(new_signal(EXECUTE, self.prefix, tuple(added)))
        if current != known:
            self._remember_tables()

    # -- inside ----------------------------------------------------------------------------------

    def _remember_tables(self) -> None:
        if self.progress is None:
            self.progress = SnapshotProgress("", (), status=IDLE)
        self.progress = replace(self.progress, known_tables=tuple(sorted(self.known_tables or ())))
        if not self._pending:
            self._store_now()

    def _start(self, signal: SnapshotSignal) -> None:
        ranges_by_table = dict(signal.key_ranges)
        ranges = tuple(tuple(ranges_by_table.get(t, ())) for t in signal.tables)
        seen = (self.progress.seen if self.progress is not None else ())
        self.progress = SnapshotProgress(signal.id, signal.tables, signal.where, signal.chunk_rows,
                                         signal.max_rows_per_second, ranges,
                                         seen=(*seen, signal.id)[-SEEN_SIGNALS:],
                                         known_tables=tuple(sorted(self.known_tables or ())))
        self._not_before = 0.0
        log.info("incremental snapshot starts", extra={"signal": signal.id, "tables": list(signal.tables),
                                                       "chunk_rows": signal.chunk_rows})
        self._store_now()

    def _remember(self, signal_id: str) -> None:
        if self.progress is None:
            self.progress = SnapshotProgress(signal_id, (), status=IDLE)
        self.progress = replace(self.progress, seen=(*self.progress.seen, signal_id)[-SEEN_SIGNALS:])
        self._store_now()

    def _read_next_chunk(self) -> None:
        """Start the next chunk: its watermarks and SELECT on a thread, so the stream never waits for them."""
        progress = self.progress
        chunk_id = f"{progress.signal_id}-{secrets.token_hex(4)}"
        try:
            topic = self.source.topic_of(progress.table)
        except ConfigError as exc:
            self._stop_on(exc)
            return
        if self._reader is not None:
            # the stream may read a high watermark before its writer returned: one reader at a time
            self._reader.join()
        flight = _InFlight(chunk_id, topic)
        self.in_flight = flight
        self._reader = flight.thread = threading.Thread(target=self._read, args=(flight, progress), name="cdc-incremental-chunk",
                                         daemon=True)
        flight.thread.start()

    def _read(self, flight: _InFlight, progress: SnapshotProgress) -> None:
        """The chunk reader's thread: low watermark, SELECT and records, high watermark; then, while the
        stream is quiet (nothing produced in the last window), the next chunk of the same key range at
        once (read ahead), so reading it overlaps the stream emitting this one. Its low watermark follows
        this chunk's high one in the stream, so the windows never overlap; at most two chunks are held
        (the reader waits for the one before the previous)."""
        behind: _InFlight | None = None  # the chunk before the previous one
        previous: _InFlight | None = None
        while flight is not None:
            if behind is not None:
                behind.done.wait()
            if flight.cancelled:
                return
            flight = self._read_one(flight, progress)
            if flight is None:
                return
            behind, previous = previous, flight
            progress, flight = flight.next_progress, flight.next

    def _read_one(self, flight: _InFlight, progress: SnapshotProgress) -> _InFlight | None:
        """One chunk between its watermarks; the flight (with `next` set when read ahead), None on failure."""
        times = flight.times
        try:
            times.append(time.monotonic())
            after, low, high = progress.current_range()
            self.source.write_watermark(flight.chunk_id, LOW)
            times.append(time.monotonic())
            chunk = self.source.read_chunk(progress.table, after, low, high, progress.where, progress.chunk_rows)
            times.append(time.monotonic())
            flight.chunk = chunk
            flight.next_progress = None
            if chunk.rows == progress.chunk_rows and not progress.max_rows_per_second and self.stream_quiet \
                    and not flight.cancelled:
                # a full chunk: the range goes on, read its next chunk while the stream emits this one; only
                # while the stream is quiet: under a write load it needs the process (the GIL) to keep its lag
                flight.next_progress = progress.advanced(chunk.last_key, chunk.rows, False)
                flight.next = _InFlight(f"{progress.signal_id}-{secrets.token_hex(4)}", flight.topic)
                flight.next.thread = flight.thread
                if flight.cancelled:  # cancelled while `next` was made: `_cancel` may not have seen it
                    self._cancel(flight.next)
            self.source.write_watermark(flight.chunk_id, HIGH)
            times.append(time.monotonic())
            return flight
        except BaseException as exc:  # noqa: BLE001 - handed to the stream's thread by tick()
            flight.error = exc
            return None

    def _reader_failed(self, flight: _InFlight) -> None:
        """The chunk reader failed: a bad table or condition stops the snapshot; anything else stops the capture."""
        self._abandon_chunk()
        if isinstance(flight.error, ConfigError):
            self._stop_on(flight.error)
            return
        raise flight.error

    def _stop_on(self, error: ConfigError) -> None:
        log.error("incremental snapshot stopped: %s", error.message, extra={"signal": self.progress.signal_id})
        self.progress = replace(self.progress, status=STOPPED, updated_at=time.time())
        self._store_now()

    def _emit(self, flight: _InFlight, changed: set[bytes]) -> None:
        reached = time.monotonic()
        chunk = flight.chunk
        records = chunk.records
        if changed:
            records = [record for record in records if record[1] not in changed]
        pipeline = self.pipeline
        if records:
            pipeline.send_many(records)
            pipeline.count_snapshot_rows(chunk.table, len(records))
        self.rows_emitted += len(records)
        self.rows_dropped += chunk.rows - len(records)
        if log.isEnabledFor(logging.DEBUG) and len(flight.times) == 4:
            started, low, read, high = flight.times
            log.debug("chunk emitted", extra={"rows": chunk.rows, "dropped": chunk.rows - len(records),
                                              "low_s": round(low - started, 3), "read_s": round(read - low, 3),
                                              "high_s": round(high - read, 3),
                                              "to_high_read_s": round(reached - high, 3),
                                              "emit_s": round(time.monotonic() - reached, 3)})
        self.chunks += 1
        self.in_flight = None
        flight.chunk = None  # the reader may go on to the chunk after the next
        flight.done.set()
        progress = self.progress.advanced(chunk.last_key, len(records), chunk.exhausted)
        if progress.status == DONE:
            log.info("incremental snapshot done", extra={"signal": progress.signal_id, "rows": progress.rows,
                                                         "seconds": round(time.time() - progress.started_at, 2)})
        elif progress.table_index != self.progress.table_index:
            log.info("incremental snapshot: table done", extra={"table": self.progress.table})
        self.progress = progress
        if progress.max_rows_per_second:
            self._not_before = time.monotonic() + chunk.rows / progress.max_rows_per_second
        self._pending.append((pipeline.sealed_ticket(), progress))
        if not self.running or progress.max_rows_per_second:
            self._cancel(flight.next)
        elif flight.next is not None and flight.next_progress is not None and \
                flight.next_progress.current_range() == progress.current_range():
            self.in_flight = flight.next  # read ahead: its watermarks follow in the stream
        else:
            self._cancel(flight.next)
            self._read_next_chunk()  # at once: the stream is at the high watermark, no reason to wait for a tick

    def _abandon_chunk(self) -> None:
        if self.in_flight is not None:
            if self.in_flight.opened:
                self.pipeline.close_window()
            self._cancel(self.in_flight)
            self.in_flight = None

    @staticmethod
    def _cancel(flight: _InFlight | None) -> None:
        """Tell the reader to stop at `flight` and the chunks read ahead of it."""
        while flight is not None:
            flight.cancelled = True
            flight.done.set()
            flight = flight.next

    def _store_now(self) -> None:
        """Store the progress now (a start, a stop: nothing of Kafka's to wait for)."""
        self._pending.clear()
        if self.store is not None and self.progress is not None:
            self.pipeline.produce(self.store.record(self.progress))

    def _store_acknowledged(self) -> None:
        """Store the newest progress whose chunks Kafka acknowledged."""
        head = self.pipeline.tracker._head
        newest = None
        while self._pending and self._pending[0][0] <= head:
            newest = self._pending.popleft()[1]
        if newest is not None and self.store is not None:
            self.pipeline.produce(self.store.record(newest))

    def close(self) -> None:
        """Close the signal channel and the chunk source's connections (after the chunk reader stopped)."""
        self._cancel(self.in_flight)
        if self._reader is not None:
            self._reader.join(30)
        if self.signal_consumer is not None:
            self.signal_consumer.close()
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def status(self) -> dict[str, Any]:
        """What `cdc snapshot --status` shows of this controller (in memory)."""
        return {"progress": self.progress.to_dict() if self.progress else None, "chunks": self.chunks,
                "rows_emitted": self.rows_emitted, "rows_dropped": self.rows_dropped}


def parse_watermark(payload: bytes | str) -> tuple[str, str, str] | None:
    """(prefix, chunk id, kind) of a watermark written by `watermark_payload`, None for anything else."""
    text = payload.decode() if isinstance(payload, (bytes, bytearray, memoryview)) else payload
    parts = text.split(" ")
    if len(parts) != 4 or parts[0] != "watermark" or parts[3] not in WATERMARK_KINDS:
        return None
    return parts[1], parts[2], parts[3]


def watermark_payload(prefix: str, chunk_id: str, kind: str) -> str:
    """The text of a watermark (in a PG logical message or a signal-table row)."""
    if kind not in WATERMARK_KINDS:
        raise CdcError(f"unknown watermark kind {kind!r}")
    return f"watermark {prefix} {chunk_id} {kind}"
