"""Kafka produce throughput (msg/s) of each cdc.kafka backend: keyed ~1 KB JSON values, acks=all, idempotent.

    .venv/bin/python benchmarks/bench_kafka_produce.py [--kafka HOST:PORT] [--messages 200000]
        [--backends confluent,kafka-python] [--partitions 6]

The broker is --kafka, else CDC_KAFKA_BOOTSTRAP, else a tansu started for the run (memory storage).
Timed: from the first produce() to flush() returning with every record acknowledged, delivery
callbacks included (what the capture loop does). Values are built before timing. kafka-python gets
a quarter of the messages (it is ~20x slower). Writes benchmarks/results/kafka-produce-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cdc  # noqa: E402
from cdc.kafka import TopicSpec, make_admin, make_producer  # noqa: E402
from cdc.kafka.compression import default_compression  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def change_event(i: int) -> tuple[bytes, bytes]:
    """A Debezium-shaped update event of about 1 KB and its key."""
    row = {
        "id": i,
        "customer_id": i % 9973,
        "status": "shipped",
        "amount": f"{i % 100000}.{i % 100:02d}",
        "note": "x" * 380,
        "created_at": "2024-02-29T13:45:00.123456",
        "paid_at": "2024-02-29T12:45:00.123456Z",
    }
    value = {
        "before": {**row, "status": "paid"},
        "after": row,
        "source": {"version": cdc.__version__, "connector": "postgresql", "name": "bench", "ts_ms": 1732400000000,
                   "snapshot": "false", "db": "shop", "schema": "public", "table": "orders", "txId": 771 + i,
                   "lsn": 24023128 + i, "sequence": f'["24023104","{24023128 + i}"]'},
        "transaction": None,
        "op": "u",
        "ts_ms": 1732400000123,
    }
    return orjson.dumps({"id": i}), orjson.dumps(value)


@contextmanager
def broker(bootstrap: str | None):
    """The broker to measure against: the given one, or a tansu started (and stopped) here."""
    if bootstrap:
        yield bootstrap
        return
    from cdc.sandbox import kafka as tansu
    from cdc.sandbox import processes
    from cdc.sandbox.ports import pick_free_port

    directory = Path(tempfile.mkdtemp(prefix="cdc-bench-kafka-"))
    server = tansu.start(directory, pick_free_port())
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        processes.stop(server.pid, server.program, server.marker, sig=tansu.STOP_SIGNAL)
        shutil.rmtree(directory, ignore_errors=True)


def measure(bootstrap: str, backend: str, events: list[tuple[bytes, bytes]], partitions: int) -> dict:
    """Produce `events` to a fresh topic; return the figures."""
    topic = f"bench-produce-{backend}-{uuid.uuid4().hex[:8]}"
    with make_admin(bootstrap, backend=backend) as admin:
        admin.create_topics([TopicSpec(topic, partitions)])
    acknowledged = 0
    failed = 0

    def delivered(error, report) -> None:
        nonlocal acknowledged, failed
        if error is None:
            acknowledged += 1
        else:
            failed += 1

    producer = make_producer(bootstrap, backend=backend)
    headers = [("cdc.schema.version", b"1")]
    try:
        producer.partition_count(topic)  # metadata outside the timed part
        started = time.perf_counter()
        for key, value in events:
            producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
        producer.flush(300)
        elapsed = time.perf_counter() - started
    finally:
        producer.close()
    with make_admin(bootstrap, backend=backend) as admin:
        stored = sum(admin.end_offsets(topic).values())
        admin.delete_topics([topic])
    volume = sum(len(k) + len(v) for k, v in events)
    return {
        "backend": backend,
        "messages": len(events),
        "acknowledged": acknowledged,
        "failed": failed,
        "stored": stored,
        "seconds": round(elapsed, 3),
        "msg_per_s": round(len(events) / elapsed),
        "mb_per_s": round(volume / elapsed / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default=os.environ.get("CDC_KAFKA_BOOTSTRAP"))
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--backends", default="confluent,kafka-python")
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()

    events = [change_event(i) for i in range(args.messages)]
    runs = []
    with broker(args.kafka) as bootstrap:
        for backend in args.backends.split(","):
            share = events if backend == "confluent" else events[: max(1, len(events) // 4)]
            result = measure(bootstrap, backend, share, args.partitions)
            runs.append(result)
            print(f"{backend:13} {result['msg_per_s']:>9,} msg/s  {result['mb_per_s']:>6} MB/s  "
                  f"({result['messages']:,} messages in {result['seconds']}s, {result['failed']} failed, "
                  f"{result['stored']:,} stored)")
    now = dt.datetime.now(dt.timezone.utc)
    report = {
        "benchmark": "kafka-produce",
        "time": now.isoformat(timespec="seconds"),
        "broker": "tansu (memory storage)" if not args.kafka else args.kafka,
        "value_bytes": round(sum(len(v) for _, v in events) / len(events)),
        "partitions": args.partitions,
        "compression": default_compression(),
        # kafka-python computes batch CRCs in pure Python unless the crc32c package is installed.
        "kafka_python_crc32c": importlib.util.find_spec("crc32c") is not None,
        "acks": "all",
        "idempotent": True,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"kafka-produce-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
