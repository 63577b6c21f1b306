"""Run `cdc capture` / `cdc apply` children for `cdc run`, restart them with back-off, stop them cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from cdc.metrics import COMPONENT_RESTARTS, COMPONENT_UP

log = logging.getLogger("cdc.run")


@dataclass(slots=True)
class Component:
    """One supervised child process: a name for logs/metrics and its `cdc` arguments."""

    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    last_exit: int | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold URLs with passwords: never shown
    metrics: tuple[str, ...] = ()  # the /metrics URLs it serves (merged into `cdc run`'s own /metrics)


def backoff_seconds(restarts: int) -> float:
    """1, 2, 4, ... seconds, capped at 60."""
    return float(min(60, 2 ** min(restarts, 6)))


class Supervisor:
    """Keeps every component running until `stop()`; a child that exits is restarted after a back-off."""

    def __init__(self, components: list[Component], *, log_format: str = "human") -> None:
        self.components = components
        self.log_format = log_format
        self.stopping = False

    def _start(self, component: Component) -> None:
        command = [sys.executable, "-m", "cdc.cli", "--log-format", self.log_format, *component.args]
        component.process = subprocess.Popen(command, env={**os.environ, **component.env})
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
                component.restarts += 1
                COMPONENT_RESTARTS.labels(component.name).inc()
                delay = backoff_seconds(component.restarts)
                component.next_start = now + delay
                log.warning("%s exited with %s; restarting in %.0fs", component.name, process.returncode, delay)
                continue
            if not self.stopping and now >= component.next_start:
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
