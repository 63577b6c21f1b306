"""Support for the PG capture tests: run `cdc capture` as a process, read topics back, replay events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.postgres.dialect import qualified


@dataclass(slots=True, frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple

    @property
    def event(self) -> dict | None:
        return orjson.loads(self.value) if self.value else None


def start_capture(source: str, bootstrap: str, prefix: str, *args: str, log_path: str | None = None) -> subprocess.Popen:
    """`cdc capture` in a child process (its own process group), logs to log_path."""
    argv = [sys.executable, "-m", "cdc.cli", "capture", "--source", source, "--kafka", bootstrap, "--prefix", prefix,
            *args]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def stop_capture(process: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM and wait; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll until predicate() is truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_topics(bootstrap: str, names: Callable[[str], bool], idle: float = 1.0, timeout: float = 60.0) -> list[Message]:
    """Every record of the topics whose name passes `names`, in (topic, partition, offset) order.

    Reads until every partition reached its high watermark's last batch and nothing came for `idle`s.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    topics = sorted(t for t in metadata.topics if names(t))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cdc-test-reader", "enable.auto.commit": False,
                         "enable.partition.eof": False})
    out: list[Message] = []
    try:
        parts = [TopicPartition(t, p, 0) for t in topics for p in metadata.topics[t].partitions]
        if not parts:
            return out
        # Some brokers (tansu) report the last batch's base offset + 1 as high watermark: read at least there.
        needed = {}
        for part in parts:
            high = consumer.get_watermark_offsets(TopicPartition(part.topic, part.partition), timeout=10)[1]
            if high > 0:
                needed[(part.topic, part.partition)] = high - 1
        consumer.assign(parts)
        seen: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                if all(seen.get(k, -1) >= v for k, v in needed.items()) and time.monotonic() - quiet_since > idle:
                    break
                continue
            quiet_since = time.monotonic()
            seen[(message.topic(), message.partition())] = message.offset()
            out.append(Message(message.topic(), message.partition(), message.offset(), message.key(),
                               message.value(), tuple(message.headers() or ())))
    finally:
        consumer.close()
    out.sort(key=lambda m: (m.topic, m.partition, m.offset))
    return out


def event_position(event: dict) -> tuple:
    """The event's stream position from its value: (commit LSN from the transaction id, lsn); snapshot rows (0, 0)."""
    if event["op"] == "r":
        return (0, 0)
    transaction = event.get("transaction")
    commit_lsn = int(transaction["id"].split(":")[1]) if transaction else event["source"]["lsn"]
    return (commit_lsn, event["source"]["lsn"])


def replay(messages: list[Message], key_columns: tuple[str, ...]) -> tuple[dict, list[tuple]]:
    """Apply a table topic's events per partition in order, dropping repeats by position.

    Returns (rows by key tuple, dropped repeats as (position, ts_ms when the repeat was built)).
    """
    rows: dict[tuple, dict] = {}
    repeats: list[tuple] = []
    highest: dict[int, tuple] = {}
    # A primary-key change is a delete and a create at one position: they may share a partition.
    at_highest: dict[int, set] = {}
    for message in messages:
        event = message.event
        if event is None:
            continue
        position = event_position(event)
        if event["op"] != "r":
            top = highest.get(message.partition, (0, 0))
            identity = (message.key, event["op"])
            if position < top or (position == top and identity in at_highest[message.partition]):
                repeats.append((position, event["ts_ms"]))
                continue
            if position != top:
                highest[message.partition] = position
                at_highest[message.partition] = set()
            at_highest[message.partition].add(identity)
        op = event["op"]
        if op in ("r", "c", "u"):
            if op == "u" and event["before"] is not None:
                old = tuple(event["before"][c] for c in key_columns)
                new = tuple(event["after"][c] for c in key_columns)
                if old != new:
                    rows.pop(old, None)
            rows[tuple(event["after"][c] for c in key_columns)] = event["after"]
        elif op == "d":
            rows.pop(tuple(event["before"][c] for c in key_columns), None)
        elif op == "t":
            rows.clear()
    return rows, repeats


def source_rows(conn, namespace: str, table: str, key_columns: tuple[str, ...]) -> dict[tuple, dict]:
    """The table's current rows by key, values as the JSON encodings compare (numbers, text)."""
    cursor = conn.execute(f"SELECT * FROM {qualified(namespace, table)}")
    names = [d.name for d in cursor.description]
    out = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row))
        out[tuple(record[c] for c in key_columns)] = record
    return out


def slot_confirmed(conn, slot: str) -> int | None:
    """The slot's confirmed_flush_lsn as an integer."""
    row = conn.execute("SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                       (slot,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def current_lsn(conn) -> int:
    return int(conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0])
