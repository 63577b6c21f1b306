"""SIGSTOP the sandbox's Kafka broker for a while, then SIGCONT: a broker that hangs, then comes back."""

from __future__ import annotations

import os
import signal
import time

from cdc.drill.faults.base import SERVERS, DrillTarget, Fault


def server_pid(target: DrillTarget, name: str) -> int:
    """The pid of one sandbox server."""
    from cdc import sandbox

    assert target.sandbox_dir is not None
    row = next(row for row in sandbox.status(target.sandbox_dir) if row.name == name)
    if not row.running or row.pid is None:
        raise RuntimeError(f"the sandbox's {name} is not running")
    return row.pid


def inject(target: DrillTarget) -> str:
    pid = server_pid(target, "kafka")
    seconds = target.timings.stall_seconds
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP broker pid {pid} for {seconds:.0f}s, then SIGCONT"


FAULT = Fault("broker-stall", "SIGSTOP the Kafka broker, SIGCONT later", SERVERS, inject)
