"""The demo's drill act: SIGKILL the capture processes of `cdc run` mid-load; `cdc run` restarts them, they
resume from the last position Kafka acknowledged, and the parity check after the load shows nothing lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console

from cdc.drill.cdc_run import cdc_command_of, children_of

RESUME_TIMEOUT = 30.0


@dataclass(slots=True)
class KillAct:
    """What the act did: the pids killed, when, and how long until new captures ran."""

    killed: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    resume_seconds: float | None = None
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"drill act: {self.error}"
        return (f"drill act: SIGKILLed capture pid(s) {', '.join(map(str, self.killed))} mid-load; `cdc run` "
                f"restarted them ({', '.join(map(str, self.resumed))}) {self.resume_seconds:.1f}s later, "
                "resuming from the last position Kafka acknowledged")


def captures_of(run_pid: int) -> list[int]:
    """The capture children of a `cdc run`."""
    return [pid for pid in children_of(run_pid) if cdc_command_of(pid) == "capture"]


def kill_captures(run_pid: int, console: Console) -> KillAct:
    """SIGKILL every capture of `cdc run`, then wait until it has started new ones."""
    act = KillAct()
    act.killed = captures_of(run_pid)
    if not act.killed:
        act.error = "no capture process found to kill"
        return act
    killed_at = time.monotonic()
    for pid in act.killed:
        os.kill(pid, signal.SIGKILL)
    console.print(f"  [bold red]SIGKILL[/bold red] capture pid(s) {', '.join(map(str, act.killed))} while the load runs")
    while time.monotonic() - killed_at < RESUME_TIMEOUT:
        fresh = [pid for pid in captures_of(run_pid) if pid not in act.killed]
        if len(fresh) >= len(act.killed):
            act.resumed = fresh
            act.resume_seconds = time.monotonic() - killed_at
            return act
        time.sleep(0.1)
    act.error = f"cdc run started no new capture within {RESUME_TIMEOUT:.0f}s"
    return act


def schedule(run_pid: int, after: float, console: Console) -> tuple[threading.Thread, KillAct]:
    """Run the act `after` seconds from now in a thread; the KillAct is filled in when it is done."""
    act = KillAct()

    def play() -> None:
        time.sleep(after)
        done = kill_captures(run_pid, console)
        act.killed, act.resumed, act.resume_seconds, act.error = done.killed, done.resumed, done.resume_seconds, done.error

    thread = threading.Thread(target=play, name="demo-drill-act", daemon=True)
    thread.start()
    return thread, act
