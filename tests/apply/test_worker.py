"""The apply worker end to end: Kafka topics -> consumer group -> target database, resuming from cdc_offsets."""

from __future__ import annotations

import random
import threading
import time

import pytest

from cdc.apply.worker import ApplyOptions, ApplyWorker
from cdc.errors import TargetError
from connectors.postgres.dialect import connect
from tests.apply.kafka_stream import FAST_GROUP, KafkaStream, unique_prefix
from tests.apply.scenario import rows, simple_table


def _run(options: ApplyOptions) -> ApplyWorker:
    worker = ApplyWorker(options)
    worker.run()
    return worker


def _options(kafka: str, prefix: str, target: str, **extra) -> ApplyOptions:
    settings = dict(create_tables=True, batch_size=500, linger_ms=50, idle_exit_s=2.0,
                    session_timeout_ms=FAST_GROUP["session_timeout_ms"],
                    max_poll_interval_ms=FAST_GROUP["max_poll_interval_ms"])
    return ApplyOptions(kafka=kafka, prefix=prefix, target=target, **(settings | extra))


def _target_rows(url: str, table: str) -> list[tuple]:
    if url.startswith("postgres"):
        return rows(url, f"SELECT id, name, qty, note FROM public.{table} ORDER BY id")
    return rows(url, f"SELECT id, name, qty, note FROM `{url.rsplit('/', 1)[1]}`.{table} ORDER BY id")


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_worker_applies_topics_and_resumes_from_stored_offsets(engine, kafka_bootstrap, request):
    target = request.getfixturevalue("pg_database" if engine == "postgresql" else "mysql_database")
    prefix = unique_prefix()
    # one partition: the stream truncates, and a truncate (no key) is ordered only within its partition
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=1)
    rng = random.Random(7)
    stream.random_load(3000, 400, rng)
    first = _run(_options(kafka_bootstrap, prefix, target))
    assert _target_rows(target, "items") == stream.rows()
    # more changes, including a truncate, picked up by a new worker from the stored offsets
    stream.truncate()
    stream.random_load(500, 100, rng)
    second = _run(_options(kafka_bootstrap, prefix, target))
    assert _target_rows(target, "items") == stream.rows()
    assert first.records >= 3000 and second.records < first.records
    stream.close()


def test_worker_without_create_tables_stops_naming_the_missing_table(kafka_bootstrap, pg_database):
    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql", name="nowhere"))
    stream.upsert({"id": 1, "name": "a", "qty": 1, "note": None}, "c")
    stream.producer.flush(30)
    options = _options(kafka_bootstrap, prefix, pg_database, create_tables=False)
    with pytest.raises(TargetError, match=r"public\.nowhere .*does not exist.*--create-tables"):
        _run(options)
    stream.close()


def test_two_workers_share_partitions_and_apply_everything(kafka_bootstrap, pg_database):
    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=4)
    stream.random_load(2000, 300, random.Random(3))
    workers = [ApplyWorker(_options(kafka_bootstrap, prefix, pg_database, idle_exit_s=4.0)) for _ in range(2)]
    failures = []

    def run(worker):
        try:
            worker.run()
        except Exception as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert _target_rows(pg_database, "items") == stream.rows()
    assert sum(w.records for w in workers) >= 2000
    stream.close()


def test_bad_events_reach_the_dead_letter_topic_with_their_position(kafka_bootstrap, mysql_database):
    from cdc.kafka import read_topic

    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=1)
    stream.upsert({"id": 1, "name": "ok", "qty": 1, "note": None}, "c")
    stream.upsert({"id": 2, "name": "too long " * 10, "qty": 2, "note": None}, "c")  # varchar(50)
    stream.producer.produce(f"{prefix}.public.items", b"{not json", b'{"id":3}')
    stream.upsert({"id": 4, "name": "ok too", "qty": 4, "note": None}, "c")
    stream.producer.flush(30)
    _run(_options(kafka_bootstrap, prefix, mysql_database, on_error="dlq"))
    assert _target_rows(mysql_database, "items") == [(1, "ok", 1, None), (4, "ok too", 4, None)]
    dead = read_topic(kafka_bootstrap, f"{prefix}.dlq", timeout=60.0, missing_ok=True)
    headers = sorted((dict(record.headers) for record in dead), key=lambda h: int(h["cdc.dlq.offset"]))
    assert [(h["cdc.dlq.topic"], h["cdc.dlq.partition"], h["cdc.dlq.offset"]) for h in headers] == [
        (f"{prefix}.public.items".encode(), b"0", b"1"), (f"{prefix}.public.items".encode(), b"0", b"2")]
    assert b"Data too long" in headers[0]["cdc.dlq.reason"] and b"not JSON" in headers[1]["cdc.dlq.reason"]
    stream.close()


def test_cli_with_two_worker_processes_applies_everything(kafka_bootstrap, pg_database):
    import subprocess
    import sys
    from pathlib import Path

    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=4)
    stream.random_load(2000, 300, random.Random(5))
    cdc = str(Path(sys.executable).with_name("cdc"))
    done = subprocess.run(
        [cdc, "apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", pg_database, "--create-tables",
         "--workers", "2", "--idle-exit", "3", "--session-timeout-ms", "3000", "--max-poll-interval-ms", "3000"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("apply worker started") == 2
    assert _target_rows(pg_database, "items") == stream.rows()
    stream.close()


def test_cli_metrics_endpoint_counts_applied_events(kafka_bootstrap, pg_database):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=1)
    stream.random_load(300, 50, random.Random(9))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cdc = str(Path(sys.executable).with_name("cdc"))
    worker = subprocess.Popen(
        [cdc, "apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", pg_database, "--create-tables",
         "--metrics", f"127.0.0.1:{port}", "--session-timeout-ms", "3000", "--max-poll-interval-ms", "3000"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        applied = 0.0
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.3)
                continue
            applied = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                          if line.startswith("cdc_events_applied_total{") and f'pipeline="{prefix}"' in line)
            if applied >= 300:
                break
            time.sleep(0.3)
        assert applied >= 300, f"metrics showed {applied} applied events"
        assert "cdc_apply_lag_seconds_count" in body
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert health.status == 200
    finally:
        worker.terminate()
        worker.wait(30)
        stream.close()
    assert worker.returncode == 0, worker.stderr.read()


def test_worker_started_before_its_topics_is_assigned_soon_after_they_appear(kafka_bootstrap, pg_database):
    prefix = unique_prefix()
    worker = ApplyWorker(ApplyOptions(kafka=kafka_bootstrap, prefix=prefix, target=pg_database, create_tables=True,
                                      batch_size=500, linger_ms=50, idle_exit_s=2.0))  # default session timeout
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        time.sleep(1.0)  # the worker waits for a table topic
        created = time.monotonic()
        stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"))
        stream.random_load(200, 50, random.Random(3))
        stream.producer.flush(30)
        thread.join(60)
        assert not thread.is_alive()
        # before: a pattern subscription saw the topic at its next metadata refresh (4 s after it was created
        # here), then joined (3 s on tansu): 7 s; now about 2 s (kafka-python's join takes longer)
        assert worker.first_assigned_at is not None and worker.first_assigned_at - created < 5.5
        assert _target_rows(pg_database, "items") == stream.rows()
        stream.close()
    finally:
        worker.stop.set()
        thread.join(10)


def test_snapshot_reads_copied_straight_are_upserted_when_read_again(kafka_bootstrap, pg_database):
    prefix = unique_prefix()
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"))
    for key in range(300):
        stream.upsert({"id": key, "name": f"n{key}", "qty": key, "note": None}, "r")
    stream.producer.flush(30)
    _run(_options(kafka_bootstrap, prefix, pg_database))
    assert _target_rows(pg_database, "items") == stream.rows()
    with connect(pg_database) as conn:
        conn.execute("UPDATE items SET qty = -1 WHERE id < 10")
    # another group reads every snapshot read again: the straight COPY meets existing keys and upserts
    _run(_options(kafka_bootstrap, prefix, pg_database, group="again"))
    assert _target_rows(pg_database, "items") == stream.rows()
    stream.close()
