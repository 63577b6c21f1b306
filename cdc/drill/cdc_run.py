"""The `cdc run` the drill drives: start, find its capture and apply children, SIGKILL and restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def cdc_command_of(pid: int) -> str | None:
    """The cdc sub-command a process runs (`capture`, `apply`, `verify-schedule`...), None if not a cdc child."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [part.decode(errors="replace") for part in argv]
    if "cdc.cli" not in words:
        return None
    for word in ("capture", "apply", "verify-schedule"):
        if word in words:
            return word
    return None


class CdcRun:
    """One `cdc run --config FILE` process (in its own session), with its log appended to `log_path`."""

    def __init__(self, config: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--config", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self, command: str) -> list[int]:
        """The pids of its running children of one kind (`capture`, `apply`)."""
        if not self.running():
            return []
        return [pid for pid in children_of(self.pid) if cdc_command_of(pid) == command]

    def wait_for_children(self, command: str, count: int = 1, timeout: float = 60.0) -> list[int]:
        """Wait until at least `count` children of that kind run; their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.children(command)
            if len(pids) >= count:
                return pids
            time.sleep(0.1)
        raise TimeoutError(f"cdc run started no {command} child within {timeout:.0f}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL `cdc run` itself (its children die with it: they ask for SIGTERM on their parent's death)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM and wait (the children flush and acknowledge); SIGKILL the session after `timeout`."""
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
