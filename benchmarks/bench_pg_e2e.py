"""End-to-end PostgreSQL -> Kafka: `cdc capture` against pg_recvlogical and Debezium on the same WAL.

    .venv/bin/python benchmarks/bench_pg_e2e.py [--rows 1000000] [--txns 200000] [--quick]
        [--shapes big,small] [--no-debezium] [--compare-v1] [--kafka-backend confluent]

Servers: CDC_PG_URL / CDC_KAFKA_BOOTSTRAP when set, else a sandbox (`cdc.sandbox.up`) in
/tmp/cdc-bench-pg-e2e (left running for the next run; `cdc sandbox down --dir ...` stops it).

Load shapes, on a 10-column mixed-type table (bigint key, int, text, numeric, smallint, float8,
bool, timestamptz, varchar, jsonb):

- big: one transaction inserting `--rows` rows (default 1M; `--quick` 200k);
- small: `--txns` single-row transactions (default 200k; `--quick` 50k).

For each shape, three logical slots (pgoutput) are created before the load, so every reader
decodes the same backlog from the WAL:

- pg_recvlogical (`-o proto_version=1 -o publication_names=...`) writes to /dev/null, from the
  slot's start to `--endpos` = the WAL insert position after the load: the server's decoding
  ceiling plus a minimal client;
- ours: `cdc capture --snapshot never` on its slot (proto v2 streaming on PG 14+), timed from the
  process start until the slot's confirmed_flush_lsn passes the last transaction's commit: the
  capture moves it only after Kafka acknowledged every event up to it (status interval 0.2 s).
  "stream" also gives the rate from START_REPLICATION (the slot turning active) on, without
  Python start-up and Kafka connection. Peak RSS is the capture process's VmHWM;
- Debezium 3.6 (benchmarks/debezium_peer.py, embedded engine, records piped to Python, no Kafka),
  rate from its first to its last record, JVM start excluded (as debezium_peer measures it).

Results: benchmarks/results/pg-e2e-<UTC time>.json. The machine is shared: compare ratios within
one run, not absolute rates across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
SANDBOX_DIR = "/tmp/cdc-bench-pg-e2e"
DATABASE = "bench_pg_e2e"

TABLE_DDL = """
CREATE TABLE {table} (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    status      text NOT NULL,
    amount      numeric(12,2),
    qty         smallint,
    price       double precision,
    active      boolean,
    created_at  timestamptz NOT NULL,
    note        varchar(64),
    payload     jsonb
)"""

ROW_SQL = """
    {i}, ({i} % 9973)::int, (ARRAY['new','paid','shipped','returned'])[1 + {i} % 4],
    (({i} % 100000) / 100.0)::numeric(12,2), ({i} % 500)::smallint, {i} * 0.25, {i} % 2 = 0,
    timestamptz '2024-02-29 12:45:00+00' + {i} * interval '1 second', 'note ' || {i},
    jsonb_build_object('k', {i}, 'tag', 'x')"""


def lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def servers(args: argparse.Namespace) -> tuple[str, str, str]:
    """(admin PG URL, Kafka bootstrap, where they come from)."""
    pg_url = args.pg_url or os.environ.get("CDC_PG_URL")
    kafka = args.kafka or os.environ.get("CDC_KAFKA_BOOTSTRAP")
    if pg_url and kafka:
        return pg_url, kafka, "given"
    from cdc import sandbox

    endpoints = sandbox.up(args.sandbox_dir).state.endpoints()
    return pg_url or endpoints.pg_url, kafka or endpoints.kafka_bootstrap, f"sandbox {args.sandbox_dir}"


def prepare_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                                    (DATABASE,)).fetchall():
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return with_database(admin_url, DATABASE)


class Shape:
    """One load: its table, publication, slots, and the LSNs around it."""

    def __init__(self, name: str, count: int, run_id: str) -> None:
        self.name = name
        self.count = count
        self.table = f"bench_{name}"
        self.publication = f"bench_pub_{name}"
        self.prefix = f"pge2e{run_id}{name}"
        self.slots = {who: f"bench_{who}_{name}" for who in ("recv", "cdc", "dbz", "cdcv1")}
        self.start_lsn = 0
        self.end_lsn = 0  # WAL insert position after the load (pg_recvlogical --endpos)
        self.last_commit_floor = 0  # inside the last transaction, before its commit record
        self.load_seconds = 0.0

    def setup(self, url: str, debezium: bool, proto_v1: bool = False) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.table}")
            conn.execute(TABLE_DDL.format(table=self.table))
            conn.execute(f"CREATE PUBLICATION {self.publication} FOR TABLE {self.table}")
            for who, slot in self.slots.items():
                if (who == "dbz" and not debezium) or (who == "cdcv1" and not proto_v1):
                    continue
                conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
            self.start_lsn = lsn_int(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])

    def load(self, url: str) -> None:
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            if self.name == "big":
                with conn.transaction():
                    conn.execute(f"INSERT INTO {self.table} SELECT {ROW_SQL.format(i='i')} "
                                 f"FROM generate_series(1, {self.count}) AS i")
                    self.last_commit_floor = self._insert_lsn(conn)
            else:
                # single-row transactions, committed one by one inside a DO block (PG 11+)
                conn.execute(f"""DO $$ BEGIN
                    FOR i IN 1..{self.count - 1} LOOP
                        INSERT INTO {self.table} VALUES ({ROW_SQL.format(i='i')}); COMMIT;
                    END LOOP; END $$""")
                with conn.transaction():
                    conn.execute(f"INSERT INTO {self.table} VALUES ({ROW_SQL.format(i=self.count)})")
                    self.last_commit_floor = self._insert_lsn(conn)
            self.end_lsn = self._insert_lsn(conn)
        self.load_seconds = time.monotonic() - started

    @staticmethod
    def _insert_lsn(conn: psycopg.Connection) -> int:
        return lsn_int(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])

    def wal_bytes(self) -> int:
        return self.end_lsn - self.start_lsn


def pg_recvlogical_binary() -> str:
    found = shutil.which("pg_recvlogical")
    if found:
        return found
    from cdc.sandbox.postgres import bindir

    return str(bindir() / "pg_recvlogical")


def run_pg_recvlogical(url: str, shape: Shape) -> dict:
    command = [pg_recvlogical_binary(), "-d", url, "--slot", shape.slots["recv"], "--start", "--no-loop",
               "-o", "proto_version=1", "-o", f"publication_names={shape.publication}",
               "--endpos", lsn_text(shape.end_lsn), "-f", "/dev/null", "-s", "1", "-F", "1"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed ({result.returncode}): {result.stderr.strip()}")
    return {"seconds": round(seconds, 3), "rows_per_s": round(shape.count / seconds)}


def _proc_status(pid: int) -> dict[str, int]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, amount = line.split(":", 1)
                    values[name] = int(amount.split()[0]) * 1024
    except FileNotFoundError:
        pass
    return values


def _cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a process (or one of its threads) so far, from /proc; 0 when gone."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, IndexError, ValueError):
        return 0.0


def run_ours(url: str, kafka: str, shape: Shape, args: argparse.Namespace, log_path: Path,
             slot: str = "cdc") -> dict:
    prefix = shape.prefix if slot == "cdc" else f"{shape.prefix}{slot}"
    command = [sys.executable, "-m", "cdc.cli", "capture", "--source", url, "--kafka", kafka,
               "--prefix", prefix, "--tables", f"public.{shape.table}", "--snapshot", "never",
               "--slot", shape.slots[slot], "--publication", shape.publication, "--status-interval", "0.2"]
    if args.kafka_backend:
        command += ["--kafka-backend", args.kafka_backend]
    env = dict(os.environ)
    if slot == "cdcv1":
        env["CDC_PG_STREAMING"] = "off"  # pgoutput proto v1: the server buffers the transaction, as for pg_recvlogical
    with psycopg.connect(url, autocommit=True) as conn, open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        active_at = None
        peak_rss = 0
        deadline = started + args.timeout
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"cdc capture exited with {process.returncode}; see {log_path}")
                active_pid, flushed = conn.execute(
                    "SELECT active_pid, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                    (shape.slots[slot],)).fetchone()
                now = time.monotonic()
                if active_at is None and active_pid is not None:
                    active_at = now
                peak_rss = max(peak_rss, _proc_status(process.pid).get("VmHWM", 0))
                if flushed and lsn_int(flushed) > shape.last_commit_floor:
                    done = now
                    break
                if now > deadline:
                    raise RuntimeError(f"cdc capture did not acknowledge the load within {args.timeout}s; see {log_path}")
                time.sleep(0.02)
            peak_rss = max(peak_rss, _proc_status(process.pid).get("VmHWM", 0))
            cpu = _cpu_seconds(process.pid)
            main_cpu = _cpu_seconds(process.pid, process.pid)  # the Python thread (librdkafka's are the rest)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    seconds = done - started
    stream_seconds = done - (active_at or started)
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(shape.count / seconds),
        "stream_seconds": round(stream_seconds, 3),
        "stream_rows_per_s": round(shape.count / stream_seconds),
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "cpu_seconds": round(cpu, 2),
        "main_thread_cpu_seconds": round(main_cpu, 2),
        "rows_per_cpu_second": round(shape.count / cpu) if cpu else None,
        "backend": args.kafka_backend or os.environ.get("CDC_KAFKA_BACKEND") or "confluent",
    }


def kafka_count(kafka: str, topic: str) -> int | None:
    """Events stored on the table topic (end offsets; a check that everything arrived)."""
    try:
        from cdc.kafka import make_admin

        with make_admin(kafka) as admin:
            return sum(admin.end_offsets(topic).values())
    except Exception:  # noqa: BLE001 - informative only
        return None


def run_debezium(url: str, shape: Shape, args: argparse.Namespace) -> dict:
    try:
        import debezium_peer
    except ImportError:
        return {"skipped": "benchmarks/debezium_peer.py is not there"}
    reason = debezium_peer.debezium_available()
    if reason:
        return {"skipped": reason}
    started = time.monotonic()
    result = debezium_peer.measure_events_per_second(
        url, shape.count, tables=[f"public.{shape.table}"], prefix=f"dbz{shape.prefix}", snapshot="no_data",
        slot=shape.slots["dbz"], timeout=args.timeout,
        options={"publication.name": shape.publication, "publication.autocreate.mode": "disabled"},
    )
    wall = time.monotonic() - started
    return {"events": result.events, "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.events_per_second), "wall_seconds_with_jvm_start": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the one big transaction")
    parser.add_argument("--txns", type=int, default=200_000, help="single-row transactions")
    parser.add_argument("--quick", action="store_true", help="200k-row transaction, 50k single-row ones")
    parser.add_argument("--shapes", default="big,small", help="big, small or both (comma-separated)")
    parser.add_argument("--no-debezium", action="store_true")
    parser.add_argument("--compare-v1", action="store_true",
                        help="also run cdc capture with pgoutput proto v1 (CDC_PG_STREAMING=off), as pg_recvlogical")
    parser.add_argument("--pg-url", help="default CDC_PG_URL, else a sandbox")
    parser.add_argument("--kafka", help="default CDC_KAFKA_BOOTSTRAP, else a sandbox")
    parser.add_argument("--kafka-backend", help="confluent (default) or kafka-python")
    parser.add_argument("--sandbox-dir", default=SANDBOX_DIR)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--label", default="", help="free text stored with the results")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.txns = 200_000, 50_000
    admin_url, kafka, origin = servers(args)
    url = prepare_database(admin_url)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%H%M%S")
    logs = Path("/tmp") / f"bench-pg-e2e-{run_id}"
    logs.mkdir(exist_ok=True)
    counts = {"big": args.rows, "small": args.txns}
    runs = []
    for name in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        shape = Shape(name, counts[name], run_id)
        shape.setup(url, not args.no_debezium, args.compare_v1)
        shape.load(url)
        print(f"[{name}] loaded {shape.count} rows in {shape.load_seconds:.1f}s, "
              f"WAL {shape.wal_bytes() / 2**20:.0f} MB", flush=True)
        recv = run_pg_recvlogical(url, shape)
        print(f"[{name}] pg_recvlogical: {recv}", flush=True)
        ours = run_ours(url, kafka, shape, args, logs / f"capture-{name}.log")
        ours["kafka_events"] = kafka_count(kafka, f"{shape.prefix}.public.{shape.table}")
        print(f"[{name}] cdc capture: {ours}", flush=True)
        ours_v1 = None
        if args.compare_v1:
            ours_v1 = run_ours(url, kafka, shape, args, logs / f"capture-{name}-v1.log", slot="cdcv1")
            print(f"[{name}] cdc capture, proto v1 (CDC_PG_STREAMING=off): {ours_v1}", flush=True)
        if args.no_debezium:
            dbz = {"skipped": "--no-debezium"}
        else:
            try:
                dbz = run_debezium(url, shape, args)
            except Exception as exc:  # noqa: BLE001 - reported, the rest of the run still counts
                dbz = {"skipped": f"failed: {exc}"}
        print(f"[{name}] debezium: {dbz}", flush=True)
        run = {
            "shape": name,
            "description": (f"one transaction of {shape.count} rows" if name == "big"
                            else f"{shape.count} single-row transactions"),
            "rows": shape.count,
            "wal_mb": round(shape.wal_bytes() / 2**20, 1),
            "pg_recvlogical": recv,
            "cdc": ours,
            "debezium": dbz,
            **({"cdc_proto_v1": ours_v1,
                "proto_v1_ratio_vs_pg_recvlogical": round(ours_v1["rows_per_s"] / recv["rows_per_s"], 3)}
               if ours_v1 else {}),
            "ratio_vs_pg_recvlogical": round(ours["rows_per_s"] / recv["rows_per_s"], 3),
            "stream_ratio_vs_pg_recvlogical": round(ours["stream_rows_per_s"] / recv["rows_per_s"], 3),
        }
        if "rows_per_s" in dbz:
            run["ratio_vs_debezium"] = round(ours["rows_per_s"] / dbz["rows_per_s"], 2)
        runs.append(run)
        with psycopg.connect(url, autocommit=True) as conn:  # free the WAL the slots hold
            for slot in shape.slots.values():
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = %s AND NOT active", (slot,))
    now = dt.datetime.now(dt.timezone.utc)
    result = {
        "benchmark": "pg-e2e",
        "time": now.isoformat(timespec="seconds"),
        "label": args.label,
        "servers": origin,
        "pg_server": _server_version(url),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pg-e2e-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {path}; capture logs in {logs}")
    return 0


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
