"""A monotonic "once every N seconds" gate for heartbeats, status updates and progress logs."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """True once every `seconds` (monotonic clock): for heartbeats, status updates and progress logs."""

    __slots__ = ("seconds", "_next", "_clock")

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic, now: bool = False) -> None:
        self.seconds = seconds
        self._clock = clock
        self._next = clock() if now else clock() + seconds

    def due(self) -> bool:
        now = self._clock()
        if self.seconds <= 0 or now < self._next:
            return False
        self._next = now + self.seconds
        return True
