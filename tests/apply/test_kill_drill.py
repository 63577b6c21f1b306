"""Kill drill: SIGKILL `cdc apply` mid-batch, again and again, while changes keep arriving; restart; the
target must end with exactly the rows the stream describes (nothing missing, nothing doubled or stale)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.apply.kafka_stream import FAST_GROUP, KafkaStream, unique_prefix
from tests.apply.scenario import rows, simple_table

CDC = str(Path(sys.executable).with_name("cdc"))
KILLS = 3


def _start_apply(kafka: str, prefix: str, target: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CDC, "--log-level", "warning", "apply", "--kafka", kafka, "--prefix", prefix, "--target", target,
         "--create-tables", "--batch-size", "300", "--linger-ms", "20",
         "--session-timeout-ms", str(FAST_GROUP["session_timeout_ms"]),
         "--max-poll-interval-ms", str(FAST_GROUP["max_poll_interval_ms"]), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _applied(target: str, prefix: str) -> int:
    table = "public.cdc_offsets" if target.startswith("postgres") else f"`{target.rsplit('/', 1)[1]}`.cdc_offsets"
    try:
        return int(rows(target, f"SELECT coalesce(sum(next_offset), 0) FROM {table}")[0][0])
    except Exception:  # noqa: BLE001  (the table appears with the first worker)
        return 0


def _target_rows(target: str) -> list[tuple]:
    table = "public.items" if target.startswith("postgres") else f"`{target.rsplit('/', 1)[1]}`.items"
    return rows(target, f"SELECT id, name, qty, note FROM {table} ORDER BY id")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_sigkill_mid_batch_under_load_loses_and_doubles_nothing(engine, kafka_bootstrap, request):
    target = request.getfixturevalue("pg_database" if engine == "postgresql" else "mysql_database")
    prefix = unique_prefix("kd")
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=4)
    rng = random.Random(11)
    stream.random_load(2000, 1500, rng)  # a backlog, so the first worker is busy when killed

    killing = threading.Event()
    killing.set()

    def produce_more():  # load goes on for as long as workers are being killed
        while killing.is_set():
            stream.random_load(300, 1500, rng)
            time.sleep(0.2)

    producer = threading.Thread(target=produce_more)
    producer.start()
    kills = 0
    started = time.monotonic()
    try:
        while kills < KILLS:
            before = _applied(target, prefix)
            worker = _start_apply(kafka_bootstrap, prefix, target)
            deadline = time.monotonic() + 40
            while _applied(target, prefix) <= before and time.monotonic() < deadline and worker.poll() is None:
                time.sleep(0.05)
            assert worker.poll() is None, worker.stderr.read().decode()
            time.sleep(rng.uniform(0.05, 0.6))  # somewhere inside a later batch
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            kills += 1
            print(f"kill {kills} at {time.monotonic() - started:.1f}s, applied offsets {_applied(target, prefix)}")
    finally:
        killing.clear()
        producer.join(120)
    final = _start_apply(kafka_bootstrap, prefix, target, "--idle-exit", "3")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    assert kills == KILLS
    expected = stream.rows()
    got = _target_rows(target)
    assert len(got) == len(expected)
    assert got == expected
    stream.close()
