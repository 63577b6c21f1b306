"""Stopping a capture loop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("cdc.pipeline")


class StopSignal:
    """SIGINT/SIGTERM set `requested` (the loop then flushes, acknowledges and exits 0); a context manager."""

    def __init__(self, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, *_: object) -> None:
        """Ask the loop to stop (the signal handler; also callable directly)."""
        if not self._event.is_set():
            log.info("stop requested: flushing Kafka and acknowledging the source")
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early on a stop request; True when stop was requested."""
        return self._event.wait(timeout)

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self.request)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
