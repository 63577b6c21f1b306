"""Helpers of the incremental-snapshot tests: source tables, a write load, the capture and apply processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from cdc.kafka.reader import read_topic

CDC = str(Path(sys.executable).with_name("cdc"))
ROOT = str(Path(__file__).resolve().parents[2])


def cdc(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a `cdc` command to its end."""
    result = subprocess.run([CDC, "--log-level", "warning", *args], capture_output=True, text=True, timeout=timeout,
                            env=_env())
    if check and result.returncode != 0:
        raise AssertionError(f"cdc {' '.join(args[:1])} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result


def start(*args: str) -> subprocess.Popen:
    """Start a long-running `cdc` command (capture, apply) with its log in a temporary file."""
    log = open(f"/tmp/cdc-incremental-{os.getpid()}-{args[0]}-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen([CDC, "--log-level", "info", *args], stdout=log, stderr=log, env=_env())
    process.log = log  # type: ignore[attr-defined]
    return process


def log_of(process: subprocess.Popen) -> str:
    process.log.flush()  # type: ignore[attr-defined]
    process.log.seek(0)  # type: ignore[attr-defined]
    return process.log.read()  # type: ignore[attr-defined]


def stop(process: subprocess.Popen, kill: bool = False) -> None:
    """SIGTERM (flush and exit) or SIGKILL a `cdc` process, and wait for it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def progress(kafka: str, prefix: str) -> dict | None:
    """The stored incremental-snapshot progress (`cdc snapshot --status`)."""
    return json.loads(cdc("snapshot", "--kafka", kafka, "--prefix", prefix, "--status").stdout)


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    """Poll `predicate` until it gives something truthy; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def events(kafka: str, topic: str) -> list[dict]:
    """The values of every record on `topic` (tombstones skipped)."""
    return [orjson.loads(record.value) for record in read_topic(kafka, topic, missing_ok=True) if record.value]


class WriteLoad:
    """Updates, deletes and re-inserts random rows of `[1, rows]` in a thread, until stopped."""

    def __init__(self, execute, rows: int, seed: int = 7) -> None:
        self.execute = execute  # execute(sql, params) on an autocommit connection of the source
        self.rows = rows
        self.random = random.Random(seed)
        self.changes = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WriteLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.halt.set()
        self.thread.join(30)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while not self.halt.is_set():
                key = self.random.randint(1, self.rows)
                action = self.random.random()
                if action < 0.6:
                    self.execute("UPDATE items SET qty = qty + 1, note = %s WHERE id = %s", (f"u{self.changes}", key))
                elif action < 0.8:
                    self.execute("DELETE FROM items WHERE id = %s", (key,))
                else:
                    self.execute("DELETE FROM items WHERE id = %s", (key,))
                    self.execute("INSERT INTO items (id, name, qty, note) VALUES (%s, %s, %s, %s)",
                                 (key, f"re{key}", key, "reinserted"))
                self.changes += 1
                if self.changes % 20 == 0:
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - re-raised by __exit__
            self.error = exc
