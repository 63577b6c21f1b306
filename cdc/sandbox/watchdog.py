"""Stop a sandbox when the process that owns it dies, even by SIGKILL (e.g. pytest killed by a timeout).

`guard(directory)` starts `python -m cdc.sandbox.watchdog` in its own session; it polls the owner's pid
(and start time, so a reused pid does not fool it) and runs `down(directory, purge=True)` once it is gone.
The owner stops the watchdog with `.terminate()` when it cleans up by itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The start time of pid in clock ticks since boot (field 22 of /proc/PID/stat), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def owner_alive(pid: int, start_time: str) -> bool:
    """True while pid runs and (when start_time is known) is still the same process."""
    current = process_start_time(pid)
    return current is not None and (not start_time or current == start_time)


def guard(directory: str | Path, owner: int | None = None) -> subprocess.Popen:
    """Start a watchdog that stops and purges the sandbox in directory when owner (default: us) exits."""
    owner = owner or os.getpid()
    argv = [sys.executable, "-m", "cdc.sandbox.watchdog", "--dir", str(directory), "--owner", str(owner),
            "--owner-start", process_start_time(owner) or ""]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    """Wait for the owner to exit, then stop the sandbox."""
    parser = argparse.ArgumentParser(prog="python -m cdc.sandbox.watchdog")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--owner-start", default="")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    while owner_alive(args.owner, args.owner_start):
        time.sleep(args.interval)
    from cdc.sandbox import down, holds_sandbox

    if holds_sandbox(args.dir):  # never purge a dir that holds no sandbox
        down(args.dir, purge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
