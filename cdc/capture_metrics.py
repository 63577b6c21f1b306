"""What one capture reports on /metrics: events per table, lag, acknowledged position, Kafka ack latency,
snapshot progress, reconnects, and how far the source server is ahead (polled in a thread).

The pipeline counts events in a plain dict (no lock per event) and `publish` moves them to the
Prometheus counters when the source loop polls; lag is the source commit time of the newest
acknowledged checkpoint against the clock when its acknowledgement was seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cdc import metrics

log = logging.getLogger(__name__)


def position_number(position: Any) -> int | None:
    """A source position as one number: a PG LSN as is, a MySQL binlog position's offset in its file."""
    if isinstance(position, int):
        return position
    offset = getattr(position, "position", None)
    return offset if isinstance(offset, int) else None


class CaptureMetrics:
    """The metric updates of one capture pipeline (`pipeline` label = its topic prefix)."""

    __slots__ = ("pipeline", "counts", "snapshot_counts", "_captured", "_stamp", "_stamp_seen", "_lag", "_position",
                 "_ack", "clock")

    IDLE_SECONDS = 5.0  # acknowledged and nothing newer for this long: the lag reads 0

    def __init__(self, pipeline: str, clock: Callable[[], float] = time.time) -> None:
        self.pipeline = pipeline
        self.counts: dict[str, int] = {}
        self.snapshot_counts: dict[str, int] = {}
        self._captured: dict[str, Any] = {}
        self._stamp: Any = None
        self._stamp_seen = 0.0
        self._lag = metrics.CAPTURE_LAG_SECONDS.labels(pipeline)
        self._position = metrics.CAPTURE_ACKED_POSITION.labels(pipeline)
        self._ack = metrics.KAFKA_ACK_SECONDS.labels(pipeline)
        self.clock = clock

    def add_events(self, table: str, count: int = 1) -> None:
        counts = self.counts
        counts[table] = counts.get(table, 0) + count

    def publish(self, acknowledged: Any, stamp_ms: int | None, *, idle: bool = False) -> None:
        """Move counted events to the counters; lag and position when the acknowledged checkpoint moved.

        `idle`: every produced record is acknowledged; after IDLE_SECONDS of that with no newer
        checkpoint, nothing is behind and the lag reads 0 (not the last transaction's lag forever).
        """
        if self.snapshot_counts:
            counts, self.snapshot_counts = self.snapshot_counts, {}
            for table, count in counts.items():
                metrics.SNAPSHOT_ROWS_DONE.labels(self.pipeline, table).inc(count)
        if self.counts:  # emptied in place: the pipeline holds this dict
            counts = list(self.counts.items())
            self.counts.clear()
            for table, count in counts:
                child = self._captured.get(table)
                if child is None:
                    child = self._captured[table] = metrics.EVENTS_CAPTURED.labels(self.pipeline, table)
                child.inc(count)
        now = self.clock()
        if stamp_ms is not None and stamp_ms != self._stamp:
            self._stamp, self._stamp_seen = stamp_ms, now
            self._lag.set(max(0.0, now - stamp_ms / 1000))
        elif idle and now - self._stamp_seen > self.IDLE_SECONDS:
            self._lag.set(0.0)
        if acknowledged is not None:
            ACKNOWLEDGED[self.pipeline] = acknowledged
        number = position_number(acknowledged)
        if number is not None:
            self._position.set(number)

    def ack_latency(self, seconds: float) -> None:
        self._ack.observe(seconds)

    def snapshot_rows(self, table: str, rows: int) -> None:
        """Rows of `table` read by the snapshot (published at the next poll); the first asks for its estimate."""
        counts = self.snapshot_counts
        if table not in counts and table not in _ESTIMATED:
            _ESTIMATED.add(table)
            estimate_later(self.pipeline, table)
        counts[table] = counts.get(table, 0) + rows

    def reconnected(self) -> None:
        metrics.CAPTURE_RECONNECTS.labels(self.pipeline).inc()


# pipeline -> its last acknowledged position (what the source lag watch measures from; MySQL needs it).
ACKNOWLEDGED: dict[str, Any] = {}

# The source's row estimate per table (`connectors/<engine>/status.py` `estimate_rows`), set by `cdc capture`:
# one source database per capture process.
ROW_ESTIMATOR: Callable[[str], int | None] | None = None
_ESTIMATED: set[str] = set()


def estimate_later(pipeline: str, table: str) -> None:
    """cdc_snapshot_rows_estimated of a table, from ROW_ESTIMATOR in a daemon thread (never slows the snapshot)."""
    estimator = ROW_ESTIMATOR
    if estimator is None:
        return

    def run() -> None:
        try:
            rows = estimator(table)
        except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the snapshot goes on
            log.debug("no row estimate for %s: %s", table, exc)
            return
        if rows is not None:
            metrics.SNAPSHOT_ROWS_ESTIMATED.labels(pipeline, table).set(max(0, rows))

    threading.Thread(target=run, name="snapshot-estimate", daemon=True).start()


class SourceLagWatch:
    """Every `every` seconds, ask the source server how far it is ahead: cdc_source_lag_bytes, retained WAL.

    `measure()` returns (lag bytes, retained WAL bytes), either None when unknown (connectors/<engine>/
    status.py `source_lag`). A failed measurement is logged once per kind of error and retried.
    """

    def __init__(self, pipeline: str, measure: Callable[[], tuple[int | None, int | None]], every: float = 10.0) -> None:
        self.pipeline = pipeline
        self.measure = measure
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"source-lag-{pipeline}", daemon=True)
        self._last_error = ""

    def start(self) -> SourceLagWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def once(self) -> None:
        lag, retained = self.measure()
        if lag is not None:
            metrics.SOURCE_LAG_BYTES.labels(self.pipeline).set(max(0, lag))
        if retained is not None:
            metrics.SOURCE_RETAINED_BYTES.labels(self.pipeline).set(max(0, retained))

    def _loop(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.once()
                self._last_error = ""
            except Exception as exc:  # noqa: BLE001 - a monitoring query must never stop the capture
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    log.warning("cannot measure the source's lag: %s", text)
                self._last_error = text


def watch_capture(listen: str | None, source_url: str, prefix: str, slot: str | None = None,
                  every: float = 10.0) -> tuple[Any, SourceLagWatch]:
    """`cdc capture --metrics LISTEN`: serve /metrics, estimate snapshot tables, poll the source's lag.

    Returns (the HTTP server or None, the lag watch); stop both when the capture ends.
    """
    global ROW_ESTIMATOR
    from cdc.metrics import serve_metrics
    from cdc.registry import status_module

    status = status_module(source_url)
    ROW_ESTIMATOR = lambda table: status.estimate_rows(source_url, table)  # noqa: E731
    watch = SourceLagWatch(prefix, lambda: status.source_lag(source_url, prefix=prefix, slot=slot,
                                                             acknowledged=ACKNOWLEDGED.get(prefix)), every).start()
    return (serve_metrics(listen) if listen else None), watch
