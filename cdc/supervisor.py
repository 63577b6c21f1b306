"""Run `cdc capture` / `cdc apply` children for `cdc run`, restart them with back-off, stop them cleanly."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from cdc.errors import PERMANENT_EXIT_CODE
from cdc.metrics import COMPONENT_RESTARTS, COMPONENT_UP

log = logging.getLogger("cdc.run")

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None  # loaded before any fork


def die_with_parent(parent: int):
    """A `preexec_fn`: the child gets SIGTERM when `cdc run` dies, even by SIGKILL (it flushes and stops
    instead of running on, orphaned, beside the children of the next `cdc run`)."""
    def arm() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: act as if it had come after
            os.kill(os.getpid(), signal.SIGTERM)
    return arm


@dataclass(slots=True)
class Component:
    """One supervised child process: a name for logs/metrics and its `cdc` arguments."""

    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    failures: int = 0  # exits in a row without a stable run between them: what the back-off grows with
    started_at: float = 0.0
    next_start: float = 0.0
    last_exit: int | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold URLs with passwords: never shown
    metrics: tuple[str, ...] = ()  # the /metrics URLs it serves (merged into `cdc run`'s own /metrics)
    failed: bool = False  # exited with PERMANENT_EXIT_CODE: not restarted (a restart would fail the same way)


# A child that ran this long before it exited was healthy: its next restart's back-off starts over.
STABLE_SECONDS = 60.0


def backoff_seconds(restarts: int) -> float:
    """1, 2, 4, ... seconds, capped at 60."""
    return float(min(60, 2 ** min(restarts, 6)))


class Supervisor:
    """Keeps every component running until `stop()`; a child that exits is restarted after a back-off.

    A child that exits with PERMANENT_EXIT_CODE (an event over the Kafka message limit) is not
    restarted: it would fail again at the same source position, forever. /healthz then reports it down.
    """

    def __init__(self, components: list[Component], *, log_format: str = "human") -> None:
        self.components = components
        self.log_format = log_format
        self.stopping = False

    def _start(self, component: Component) -> None:
        command = [sys.executable, "-m", "cdc.cli", "--log-format", self.log_format, *component.args]
        component.process = subprocess.Popen(command, env={**os.environ, **component.env},
                                             preexec_fn=die_with_parent(os.getpid()))
        component.started_at = time.monotonic()
        COMPONENT_UP.labels(component.name).set(1)
        log.info("started %s", component.name, extra={"pid": component.process.pid})

    def poll(self) -> None:
        """Start components that are due, note the ones that exited."""
        now = time.monotonic()
        for component in self.components:
            process = component.process
            if process is not None and process.poll() is None:
                continue
            if process is not None:
                component.last_exit = process.returncode
                component.process = None
                COMPONENT_UP.labels(component.name).set(0)
                if self.stopping:
                    continue
                if process.returncode == PERMANENT_EXIT_CODE:
                    component.failed = True
                    log.error("%s failed on something a restart cannot fix (exit code %s, see its error above);"
                              " not restarting it: fix the cause, then restart cdc run", component.name,
                              process.returncode)
                    continue
                component.restarts += 1
                COMPONENT_RESTARTS.labels(component.name).inc()
                if now - component.started_at >= STABLE_SECONDS:
                    component.failures = 0  # a fault after a healthy hour must not wait 60 s like a crash loop
                component.failures += 1
                delay = backoff_seconds(component.failures)
                component.next_start = now + delay
                log.warning("%s exited with %s; restarting in %.0fs", component.name, process.returncode, delay)
                continue
            if not self.stopping and not component.failed and now >= component.next_start:
                self._start(component)

    def metrics_urls(self) -> list[str]:
        """The /metrics URLs of the components running now."""
        return [url for c in self.components if c.process is not None and c.process.poll() is None for url in c.metrics]

    def healthy(self) -> tuple[bool, str]:
        """(True, "ok") when every component runs, else the names of those that do not."""
        down = [c.name for c in self.components if c.process is None or c.process.poll() is not None]
        return (not down, "ok" if not down else "down: " + ", ".join(down))

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every child (they flush and acknowledge), then SIGKILL what is left after `timeout`."""
        self.stopping = True
        running = [c.process for c in self.components if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("child %s did not stop within %.0fs; killing it", process.pid, timeout)
                process.kill()
                process.wait()
        for component in self.components:
            COMPONENT_UP.labels(component.name).set(0)
