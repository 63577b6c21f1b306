"""A capture -> Kafka -> apply chain of `cdc` processes for the workload tests, driven by real clients.

Each process writes its log to a file (shown when something fails); `kill()` is a SIGKILL, so a test
can crash a part of the chain in the middle of the load and start it again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdc.urls import parse_url

ROOT = Path(__file__).resolve().parents[2]


def need(tool: str) -> str:
    """The path of a client program, or skip the test (scripts/install.sh installs it)."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/install.sh installs it)")
    return path


class CdcProcess:
    """One `cdc` subcommand as a child process, restartable with the same arguments."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> CdcProcess:
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"--- start {self.starts}\n".encode())
        log.flush()
        self.process = subprocess.Popen([sys.executable, "-m", "cdc.cli", "--log-level", "info", *self.args],
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        return self

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def since_start(self) -> str:
        """The log of the current run (after the last start)."""
        return self.text().rpartition(f"--- start {self.starts}\n")[2]

    def wait_for_log(self, needle: str, timeout: float) -> None:
        """Wait until the current run logged `needle`."""
        deadline = time.monotonic() + timeout
        while needle not in self.since_start():
            assert self.process.poll() is None, f"{self.name} exited ({self.process.returncode}):\n{self.text()[-4000:]}"
            assert time.monotonic() < deadline, f"no '{needle}' from {self.name} in {timeout}s:\n{self.text()[-4000:]}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL (the process must still be running: it did not die of something else)."""
        assert self.process.poll() is None, f"{self.name} died by itself ({self.process.returncode}):\n{self.text()[-4000:]}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def kill_each_during(load: subprocess.Popen, seconds: float, capture: CdcProcess, apply: CdcProcess,
                     capture_ready: str) -> None:
    """SIGKILL the capture at 30% of the load and apply at 55%, start each again, wait for the load to end
    and for the new apply to be assigned its partitions (verify sees apply's progress only in
    `cdc_offsets`: a worker still joining its group looks idle)."""
    time.sleep(seconds * 0.3)
    capture.kill()
    capture.start().wait_for_log(capture_ready, 60)
    time.sleep(seconds * 0.25)
    apply.kill()
    apply.start()
    out, _ = load.communicate(timeout=seconds + 60)
    assert load.returncode == 0, out
    apply.wait_for_log("partitions assigned", 60)


def verify(source: str, target: str, tables: list[str], log_dir: Path, wait_for_lag: float = 150) -> tuple[int, str]:
    """`cdc verify --wait-for-lag` over the tables: (exit code, its output and JSON report)."""
    report = log_dir / "verify.json"
    done = subprocess.run(
        [sys.executable, "-m", "cdc.cli", "verify", "--source", source, "--target", target, "--tables", ",".join(tables),
         "--wait-for-lag", str(wait_for_lag), "--json", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=wait_for_lag + 120)
    text = done.stdout + done.stderr + (report.read_text() if report.exists() else "")
    return done.returncode, text


def pg_client_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq command-line options and environment (the password, never on the command line) for a URL."""
    parsed = parse_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return ["-h", parsed.host, "-p", str(parsed.port), "-U", parsed.user or "postgres"], env


def mysql_client_args(url: str) -> tuple[list[str], dict[str, str]]:
    """sysbench's MySQL options for a URL and its environment (the password as MYSQL_PWD, never an argument)."""
    parsed = parse_url(url)
    args = [f"--mysql-host={parsed.host}", f"--mysql-port={parsed.port}", f"--mysql-user={parsed.user or 'root'}",
            f"--mysql-db={parsed.database}"]
    env = {**os.environ}
    if parsed.password:
        env["MYSQL_PWD"] = parsed.password
    return args, env
