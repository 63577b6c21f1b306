"""The cost of capture on the source: pgbench and sysbench with no capture, with `cdc capture`, and with
Debezium 3.6 capturing the same tables, in one run.

    .venv/bin/python benchmarks/bench_source_cost.py [--seconds 20] [--rounds 2] [--no-debezium]
        [--workloads pgbench,sysbench] [--keep-sandbox]

Servers: a sandbox of its own (`cdc.sandbox.up`) in /tmp/cdc-bench-source-cost, stopped and purged at
the end unless --keep-sandbox. The machine has 2 cores; so that the figure is the source's cost and
not two programs fighting over one core:

- the database servers (every PostgreSQL process, MariaDB's every thread) and the load client
  (pgbench / sysbench, through `taskset -c 0`) run on core 0. PostgreSQL's walsender, which decodes
  the WAL for a logical slot, is a server process: it runs on core 0 too, because it is part of
  what capture costs the source;
- this script, the capture (`cdc capture`, or Debezium's embedded engine in its JVM) and the Kafka
  broker run on core 1.

Workloads: `pgbench -i -s 1` once, then `pgbench -T S -c 4 -j 2` (TPC-B-like: 3 updates, 1 select,
1 insert into pgbench_history per transaction; pgbench vacuums and truncates its history before each
run; pgbench_history gets REPLICA IDENTITY FULL so both captures take all four tables); sysbench `oltp_read_write` on 2 tables x 10k rows, 4 threads, S
seconds. Each round runs every mode of each workload once, the modes' order rotated per round.

Per run: transactions per second (the client's own figure) and the source server's CPU per
transaction (user + system time of the server's processes from /proc, including exited backends
through the postmaster's cutime/cstime): TPS on a shared machine is noisy, CPU per transaction much
less so. PostgreSQL: the part of it spent by the walsender that decodes for the slot, separately. For the capture modes also the capture's own CPU (on core 1) and, for PostgreSQL, how long
after the load the slot's confirmed position reached the end of the WAL (capture kept up when ~0).

Results: benchmarks/results/source-cost-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
SANDBOX_DIR = "/tmp/cdc-bench-source-cost"
DB_CPU, CAPTURE_CPU = 0, 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PGBENCH_TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
SYSBENCH_TABLES = ["sbtest1", "sbtest2"]
READY_TABLE = "bench_ready"


# --- processes and CPU --------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the state on (the name may hold spaces)


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants alive now."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children(current))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process tree: each live process's own time, plus the root's reaped children."""
    total = 0.0
    for pid in process_tree(root):
        fields = _stat(pid)
        if fields is None:
            continue
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        total += utime + stime + (cutime + cstime if pid == root else 0)
    return total / CLOCK_TICKS


def pin(root: int, cpu: int) -> None:
    """Every thread of every process of the tree on `cpu` (children forked later inherit it)."""
    for pid in process_tree(root):
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), {cpu})
        except OSError:
            pass  # exited meanwhile


# --- servers ------------------------------------------------------------------------------------

def start_servers(directory: str) -> tuple[dict[str, str], dict[str, int]]:
    """The sandbox's URLs and its server pids, with the databases on DB_CPU and the broker on CAPTURE_CPU."""
    from cdc import sandbox

    state = sandbox.up(directory).state
    endpoints = state.endpoints()
    pids = {name: server.pid for name, server in state.servers.items()}
    pin(pids["postgres"], DB_CPU)
    pin(pids["mariadb"], DB_CPU)
    pin(pids["kafka"], CAPTURE_CPU)
    return {"pg": endpoints.pg_url, "mysql": endpoints.mysql_url, "kafka": endpoints.kafka_bootstrap}, pids


def pg_execute(url: str, *statements: str) -> list[tuple]:
    from connectors.postgres.dialect import connect

    rows: list[tuple] = []
    with connect(url) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def mysql_execute(url: str, *statements: str) -> list[tuple]:
    from connectors.mysql.dialect import connect

    conn = connect(url)
    rows: list[tuple] = []
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()
    return rows


# --- workloads ----------------------------------------------------------------------------------

class Workload:
    """A load client on DB_CPU against one source server."""

    name = ""
    engine = ""
    tables: list[str] = []

    def __init__(self, url: str, server_pid: int, seconds: int) -> None:
        self.url, self.server_pid, self.seconds = url, server_pid, seconds
        self.database = url.rsplit("/", 1)[1]

    def execute(self, *statements: str) -> list[tuple]:
        return (pg_execute if self.engine == "postgresql" else mysql_execute)(self.url, *statements)

    def qualified(self, table: str) -> str:
        return f"public.{table}" if self.engine == "postgresql" else f"{self.database}.{table}"

    def poke(self) -> None:
        """Write a row to the ready table (capture readiness)."""
        self.execute(f"INSERT INTO {READY_TABLE} (at) VALUES (1)")

    def prepare(self) -> None: ...

    def run(self) -> tuple[int, float, str]:
        """(transactions, transactions per second, the client's output)."""
        raise NotImplementedError


class Pgbench(Workload):
    name, engine, tables = "pgbench", "postgresql", PGBENCH_TABLES

    def _client(self, *args: str) -> str:
        from cdc.urls import parse_url

        parsed = parse_url(self.url)
        env = {**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})}
        done = subprocess.run(["taskset", "-c", str(DB_CPU), "pgbench", "-h", parsed.host, "-p", str(parsed.port),
                               "-U", parsed.user or "postgres", *args, self.database],
                              env=env, capture_output=True, text=True, timeout=self.seconds + 300)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def prepare(self) -> None:
        self._client("-i", "-s", "1", "-q")
        self.execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL",
                     f"CREATE TABLE IF NOT EXISTS {READY_TABLE} (id serial PRIMARY KEY, at int)", "CHECKPOINT")

    def run(self) -> tuple[int, float, str]:
        # pgbench vacuums its tables and truncates pgbench_history before the run (no -n): every run starts
        # from the same table state, whatever ran before it
        out = self._client("-T", str(self.seconds), "-c", "4", "-j", "2")
        count = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
        return count, tps, out


class Sysbench(Workload):
    name, engine, tables = "sysbench", "mysql", SYSBENCH_TABLES

    def _client(self, command: str, *args: str) -> str:
        from cdc.urls import parse_url

        parsed = parse_url(self.url)
        env = {**os.environ, **({"MYSQL_PWD": parsed.password} if parsed.password else {})}
        done = subprocess.run(["taskset", "-c", str(DB_CPU), "sysbench", "oltp_read_write",
                               f"--mysql-host={parsed.host}", f"--mysql-port={parsed.port}",
                               f"--mysql-user={parsed.user or 'root'}", f"--mysql-db={self.database}",
                               f"--tables={len(SYSBENCH_TABLES)}", "--table-size=10000", *args, command],
                              env=env, capture_output=True, text=True, timeout=self.seconds + 300)
        if done.returncode != 0:
            raise RuntimeError(f"sysbench {command} failed:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def prepare(self) -> None:
        self._client("cleanup")
        self._client("prepare")
        self.execute(f"CREATE TABLE IF NOT EXISTS {READY_TABLE} (id int AUTO_INCREMENT PRIMARY KEY, at int)")

    def run(self) -> tuple[int, float, str]:
        out = self._client("run", "--threads=4", f"--time={self.seconds}")
        match = re.search(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec", out)
        return int(match.group(1)), float(match.group(2)), out


# --- captures -----------------------------------------------------------------------------------

def kafka_end(bootstrap: str, topic: str) -> int:
    """Records on a topic (0 when it does not exist yet)."""
    from cdc.kafka import make_admin

    with make_admin(bootstrap) as admin:
        if topic not in admin.list_topics():
            return 0
        return sum(admin.end_offsets(topic).values())


class NoCapture:
    name = "none"
    pid: int | None = None

    def start(self, workload: Workload) -> None: ...

    def stop(self, workload: Workload) -> dict[str, Any]:
        return {}


class CdcCapture:
    """`cdc capture --snapshot never` on core 1 (this script's affinity), through Kafka."""

    name = "cdc"

    def __init__(self, kafka: str, log_dir: Path) -> None:
        self.kafka, self.log_dir = kafka, log_dir
        self.process: subprocess.Popen | None = None
        self.round = 0

    def start(self, workload: Workload) -> None:
        self.round += 1
        self.prefix = f"cost{workload.name}{self.round}"
        tables = [workload.qualified(t) for t in workload.tables + [READY_TABLE]]
        args = [sys.executable, "-m", "cdc.cli", "--log-level", "warning", "capture", "--source", workload.url,
                "--kafka", self.kafka, "--prefix", self.prefix, "--tables", ",".join(tables), "--snapshot", "never"]
        if workload.engine == "mysql":
            args += ["--server-id", str(900_000 + self.round)]
        self.log = open(self.log_dir / f"capture-{self.prefix}.log", "wb")
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        topic = f"{self.prefix}.{workload.qualified(READY_TABLE)}"
        deadline = time.monotonic() + 120
        while kafka_end(self.kafka, topic) == 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cdc capture did not start:\n{(self.log_dir / f'capture-{self.prefix}.log').read_text()}")
            workload.poke()
            time.sleep(1.0)
        self.cpu_before = cpu_seconds(self.pid)

    def stop(self, workload: Workload) -> dict[str, Any]:
        result = {"capture_cpu_seconds": round(cpu_seconds(self.pid) - self.cpu_before, 2)}
        if workload.engine == "postgresql":
            result["catch_up_seconds"] = pg_catch_up(workload.url, f"cdc_{self.prefix}")
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.close()
        if workload.engine == "postgresql":
            pg_execute(workload.url, f"SELECT pg_drop_replication_slot('cdc_{self.prefix}')",
                       f'DROP PUBLICATION IF EXISTS "cdc_{self.prefix}"')
        return result


class DebeziumCapture:
    """Debezium 3.6's embedded engine (benchmarks/debezium_peer.py) on core 1, records counted in Python."""

    name = "debezium"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.round = 0

    def start(self, workload: Workload) -> None:
        from debezium_peer import DebeziumPeer

        self.round += 1
        self.prefix = f"dbz{workload.name}{self.round}"
        tables = [workload.qualified(t) for t in workload.tables + [READY_TABLE]]
        # Confirm the source position every second, as `cdc capture` does (--status-interval 1.0); the
        # peer's default (60 s) would hold WAL and make the catch-up figure meaningless
        options = {"offset.flush.interval.ms": "1000"}
        if workload.engine == "mysql":
            options["database.server.id"] = str(800_000 + self.round)
        self.peer = DebeziumPeer(workload.url, prefix=self.prefix, tables=tables, snapshot="no_data",
                                 keep_records=False, options=options,
                                 log_path=self.log_dir / f"debezium-{self.prefix}.log").start()
        self.pid = self.peer._process.pid
        self.peer.wait_ready(workload.poke, workload.qualified(READY_TABLE))
        self.cpu_before = cpu_seconds(self.pid)
        self.events_before = sum(self.peer.counts.values())

    def stop(self, workload: Workload) -> dict[str, Any]:
        result: dict[str, Any] = {"capture_cpu_seconds": round(cpu_seconds(self.pid) - self.cpu_before, 2)}
        if workload.engine == "postgresql":
            result["catch_up_seconds"] = pg_catch_up(workload.url, self.peer.properties["slot.name"])
        result["events"] = sum(self.peer.counts.values()) - self.events_before
        self.peer.stop()
        if workload.engine == "postgresql":
            pg_execute(workload.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                                     f" WHERE slot_name = '{self.peer.properties['slot.name']}'",
                       f'DROP PUBLICATION IF EXISTS "{self.peer.properties["publication.name"]}"')
        return result


def pg_catch_up(url: str, slot: str, timeout: float = 60.0) -> float | None:
    """Seconds until the slot's confirmed position passes the WAL position at the end of the load."""
    end = pg_execute(url, "SELECT pg_current_wal_lsn()::text")[0][0]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        row = pg_execute(url, f"SELECT confirmed_flush_lsn >= '{end}'::pg_lsn FROM pg_replication_slots"
                              f" WHERE slot_name = '{slot}'")
        if row and row[0][0]:
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    return None


# --- the run ------------------------------------------------------------------------------------

def walsenders(workload: Workload) -> list[int]:
    """PostgreSQL: the server processes decoding for the active logical slots (part of the server's CPU)."""
    if workload.engine != "postgresql":
        return []
    return [pid for (pid,) in pg_execute(workload.url, "SELECT active_pid FROM pg_replication_slots"
                                                       " WHERE active_pid IS NOT NULL")]


def measure(workload: Workload, capture: Any) -> dict[str, Any]:
    """One load run under one capture mode."""
    capture.start(workload)
    time.sleep(1.0)
    senders = walsenders(workload)
    before, senders_before = cpu_seconds(workload.server_pid), sum(cpu_seconds(pid) for pid in senders)
    count, tps, _ = workload.run()
    server_cpu = cpu_seconds(workload.server_pid) - before
    result = {"workload": workload.name, "mode": capture.name, "transactions": count, "tps": round(tps, 1),
              "server_cpu_seconds": round(server_cpu, 2),
              "server_cpu_ms_per_txn": round(1000 * server_cpu / count, 4) if count else None}
    if senders:
        sender_cpu = sum(cpu_seconds(pid) for pid in senders) - senders_before
        result["walsender_cpu_ms_per_txn"] = round(1000 * sender_cpu / count, 4) if count else None
    result.update(capture.stop(workload))
    print(json.dumps(result), flush=True)
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per workload and mode: mean TPS and CPU per transaction, and the ratios to no capture."""
    summary: dict[str, Any] = {}
    for workload in sorted({r["workload"] for r in runs}):
        modes: dict[str, Any] = {}
        for mode in ("none", "cdc", "debezium"):
            chosen = [r for r in runs if r["workload"] == workload and r["mode"] == mode]
            if chosen:
                modes[mode] = {
                    "tps": round(sum(r["tps"] for r in chosen) / len(chosen), 1),
                    "tps_runs": [r["tps"] for r in chosen],
                    "server_cpu_ms_per_txn": round(sum(r["server_cpu_ms_per_txn"] for r in chosen) / len(chosen), 4),
                }
                senders = [r["walsender_cpu_ms_per_txn"] for r in chosen if r.get("walsender_cpu_ms_per_txn") is not None]
                if senders:
                    modes[mode]["walsender_cpu_ms_per_txn"] = round(sum(senders) / len(senders), 4)
        base = modes.get("none")
        for mode, figures in modes.items():
            if base and mode != "none":
                figures["tps_vs_none"] = round(figures["tps"] / base["tps"], 3)
                figures["cpu_per_txn_vs_none"] = round(figures["server_cpu_ms_per_txn"] / base["server_cpu_ms_per_txn"], 3)
        summary[workload] = modes
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode per workload")
    parser.add_argument("--workloads", default="pgbench,sysbench")
    parser.add_argument("--no-debezium", action="store_true")
    parser.add_argument("--sandbox-dir", default=SANDBOX_DIR)
    parser.add_argument("--keep-sandbox", action="store_true")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("needs 2 cores (database + client on one, capture on the other)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {CAPTURE_CPU})  # this script and what it starts: the capture side
    started = dt.datetime.now(dt.timezone.utc)
    log_dir = Path(args.sandbox_dir) / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    urls, pids = start_servers(args.sandbox_dir)
    modes: list[Any] = [NoCapture(), CdcCapture(urls["kafka"], log_dir)]
    if not args.no_debezium:
        from debezium_peer import debezium_available

        reason = debezium_available()
        if reason:
            print(f"Debezium skipped: {reason}", file=sys.stderr)
        else:
            modes.append(DebeziumCapture(log_dir))
    workloads: list[Workload] = []
    for name in args.workloads.split(","):
        if name == "pgbench":
            workloads.append(Pgbench(urls["pg"], pids["postgres"], args.seconds))
        elif name == "sysbench":
            workloads.append(Sysbench(urls["mysql"], pids["mariadb"], args.seconds))
    runs: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        for workload in workloads:
            workload.prepare()
            pin(workload.server_pid, DB_CPU)  # processes the preparation started
        for round_number in range(args.rounds):
            order = modes[round_number % len(modes):] + modes[:round_number % len(modes)]
            for workload in workloads:
                for capture in order:
                    runs.append(measure(workload, capture) | {"round": round_number + 1})
    finally:
        if not args.keep_sandbox:
            from cdc import sandbox

            sandbox.down(args.sandbox_dir, purge=True)
    result = {
        "benchmark": "source-cost",
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "pinning": {"database_and_client_cpu": DB_CPU, "capture_and_broker_cpu": CAPTURE_CPU},
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "runs": runs,
        "summary": summarize(runs),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"source-cost-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
