"""The initial copy through Kafka: `cdc capture --snapshot initial` -> Kafka -> `cdc apply`, per engine pair.

    .venv/bin/python benchmarks/bench_kafka_snapshot.py [--rows 1000000] [--quick]
        [--cases pg-pg,pg-my,my-pg] [--tree base=/tmp/kp-base --tree new=.] [--apply-workers 1]

The table is benchmarks/bench_copy.py's 10 columns (bigint key, int, numeric, double, boolean, varchar,
text, timestamptz, date, jsonb). Each case starts capture and apply together on an empty target and
ends when the target holds every row (`SELECT count(*)` every 0.25 s). Per case:

- seconds / rows_per_s: from starting both processes until the count is reached;
- time_to_first_assignment_s: from starting apply until it logs "partitions assigned" (an old apply
  may first be assigned only the prefix's own topics: see first_row_s);
- first_row_s: from starting both processes until the target holds a row;
- revocations: "partitions revoked" lines apply logged before the end (rebalances, e.g. with 2 workers);
- apply_peak_rss_mb: the largest VmHWM of the apply process (and its worker children);
- capture_cpu_s / apply_cpu_s: user + system CPU seconds of each process (and its children), the
  figure that the machine's load disturbs least;
- server_cpu_s: the CPU seconds the sandbox's servers (kafka, postgres, mariadb: `--sandbox-dir`, default
  the bench's own sandbox) used during the case, with the children they reaped (PG backends).

`--tree NAME=PATH` (repeatable) runs the cdc of another checkout (e.g. a `git worktree` of an older
commit with its cdc/_ext/*.so) in the same run, interleaved case by case, so figures compare under
the same machine load. Servers: CDC_PG_URL / CDC_MYSQL_URL / CDC_KAFKA_BOOTSTRAP when set, else a
sandbox in /tmp/cdc-bench-kafka-snapshot (left running; `cdc sandbox down --dir ...` stops it).
Results: benchmarks/results/kafka-snapshot-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_copy import fresh_my, fresh_pg  # noqa: E402
from bench_verify import my_run, pg_run, with_database  # noqa: E402
from connectors.mysql import dialect as mysql_dialect  # noqa: E402
from connectors.postgres import dialect as pg_dialect  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SANDBOX_DIR = "/tmp/cdc-bench-kafka-snapshot"
CASES = {"pg-pg": ("PG->PG", "pg", "pg"), "pg-my": ("PG->MariaDB", "pg", "my"), "my-pg": ("MariaDB->PG", "my", "pg")}


def servers() -> tuple[str, str, str]:
    """PG, MariaDB and Kafka addresses: the environment's, else a sandbox of our own."""
    pg, my, kafka = (os.environ.get(name) for name in ("CDC_PG_URL", "CDC_MYSQL_URL", "CDC_KAFKA_BOOTSTRAP"))
    if pg and my and kafka:
        return pg, my, kafka
    from cdc.sandbox import up

    endpoints = up(SANDBOX_DIR).state.endpoints()
    return endpoints.pg_url, endpoints.mysql_url, endpoints.kafka_bootstrap


def target_count(url: str) -> int:
    """Rows of the table named `bench` in the target, wherever apply put it (0 while it does not exist)."""
    try:
        if url.startswith("postgres"):
            with pg_dialect.connect(url) as conn:
                row = conn.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'bench'"
                                   " AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchone()
                if row is None:
                    return 0
                return conn.execute(f'SELECT count(*) FROM "{row[0]}".bench').fetchone()[0]
        conn = mysql_dialect.connect(url)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = 'bench'"
                               " AND TABLE_SCHEMA = DATABASE()")
                if cursor.fetchone() is None:
                    return 0
                cursor.execute("SELECT COUNT(*) FROM bench")
                return cursor.fetchone()[0]
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - the table is being created: count again shortly
        return 0


def peak_rss_mb(pid: int) -> float:
    """VmHWM of `pid` and its children, the largest, in MB (0 when gone)."""
    best = 0.0
    for each in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return best


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live children (0 when gone)."""
    total = 0.0
    for each in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(sandbox_dir: str | None) -> dict[str, int]:
    """The pids of a sandbox's servers (`sandbox.json`), by name: kafka, postgres, mariadb."""
    path = Path(sandbox_dir or SANDBOX_DIR) / "sandbox.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {name: server["pid"] for name, server in state.get("servers", {}).items() if server.get("pid")}


def server_cpu(pid: int) -> float:
    """CPU seconds of a server: itself, its live children and the children it has reaped (PG backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def spawn(tree: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`cdc ARGS` with `tree` first on the path."""
    command = [sys.executable, "-c", "import sys; from cdc.cli import main; sys.argv[0] = 'cdc'; sys.exit(main())", *args]
    return subprocess.Popen(command, env={**os.environ, **env, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=str(tree))


def watch_assignment(process: subprocess.Popen, started: float, seen: dict, log: list[str]) -> threading.Thread:
    """A thread noting when apply first logs an assignment, counting revocations; keeps the log's tail."""

    def read() -> None:
        for line in process.stderr:
            log.append(line)
            del log[:-40]
            if "partitions assigned" in line and "first" not in seen:
                seen["first"] = time.monotonic() - started
            if "partitions revoked" in line and "done" not in seen:
                seen["revoked"] = seen.get("revoked", 0) + 1

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_case(tree: Path, source_engine: str, target_engine: str, sources: dict[str, str], servers_: dict[str, str],
             kafka: str, rows: int, args: argparse.Namespace) -> dict:
    """One initial copy through Kafka; its timings."""
    prefix = f"ks{uuid.uuid4().hex[:8]}"
    target_db = f"bench_ks_{prefix}"
    if target_engine == "pg":
        pg_run(servers_["pg"], f"CREATE DATABASE {target_db}")
    else:
        my_run(servers_["my"], f"CREATE DATABASE {target_db} CHARACTER SET utf8mb4")
    target = with_database(servers_[target_engine], target_db)
    tables = "public.bench" if source_engine == "pg" else "bench_ks_src.bench"
    load = os.getloadavg()[0]
    servers_before = {name: server_cpu(pid) for name, pid in args.server_pids.items()}
    started = time.monotonic()
    capture = spawn(tree, ["capture", "--kafka", kafka, "--prefix", prefix, "--tables", tables, "--snapshot", "initial",
                           "--snapshot-workers", str(args.snapshot_workers)], {"CDC_SOURCE": sources[source_engine]})
    apply = spawn(tree, ["apply", "--kafka", kafka, "--prefix", prefix, "--create-tables",
                         "--workers", str(args.apply_workers)], {"CDC_TARGET": target})
    seen: dict = {}
    apply_log: list[str] = []
    capture_log: list[str] = []
    watch_assignment(apply, started, seen, apply_log)
    threading.Thread(target=lambda: [capture_log.append(line) or capture_log.__delitem__(slice(None, -40))
                                     for line in capture.stderr], daemon=True).start()
    rss = 0.0
    cpu = {"capture": 0.0, "apply": 0.0}
    try:
        while True:
            rss = max(rss, peak_rss_mb(apply.pid))
            cpu = {"capture": max(cpu["capture"], cpu_seconds(capture.pid)),
                   "apply": max(cpu["apply"], cpu_seconds(apply.pid))}
            held = target_count(target)
            if held and "first_row" not in seen:
                seen["first_row"] = time.monotonic() - started
            if held >= rows:
                seen["done"] = True
                break
            if apply.poll() is not None or capture.poll() is not None:
                raise RuntimeError("a process exited early:\n" + "".join(apply_log[-10:] + capture_log[-10:]))
            if time.monotonic() - started > args.timeout:
                raise RuntimeError(f"timed out after {args.timeout} s at {target_count(target)} rows")
            time.sleep(0.25)
        seconds = time.monotonic() - started
        rss = max(rss, peak_rss_mb(apply.pid))
        cpu = {"capture": max(cpu["capture"], cpu_seconds(capture.pid)),
               "apply": max(cpu["apply"], cpu_seconds(apply.pid))}
        server_seconds = {name: round(server_cpu(pid) - servers_before[name], 1)
                          for name, pid in args.server_pids.items()}
    finally:
        stop(apply)
        stop(capture)
        if source_engine == "pg":
            with pg_dialect.connect(sources["pg"], autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                             (f"cdc_{prefix}",))
                conn.execute(f"DROP PUBLICATION IF EXISTS cdc_{prefix}")
        if target_engine == "pg":
            pg_run(servers_["pg"], f"DROP DATABASE IF EXISTS {target_db} WITH (FORCE)")
        else:
            my_run(servers_["my"], f"DROP DATABASE IF EXISTS {target_db}")
    return {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "time_to_first_assignment_s": round(seen["first"], 2) if "first" in seen else None,
            "first_row_s": round(seen.get("first_row", seconds), 2), "revocations": seen.get("revoked", 0),
            "apply_peak_rss_mb": round(rss), "capture_cpu_s": round(cpu["capture"], 1),
            "apply_cpu_s": round(cpu["apply"], 1), "server_cpu_s": server_seconds, "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="rows in the table (default 1M; --quick 200k)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", default=",".join(CASES), help="pg-pg,pg-my,my-pg")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a cdc checkout (repeatable)")
    parser.add_argument("--snapshot-workers", type=int, default=2)
    parser.add_argument("--apply-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--sandbox-dir", default=None,
                        help="the sandbox whose servers' CPU seconds to report (default: the bench's own)")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    trees = {name: Path(path).resolve() for name, _, path in (t.partition("=") for t in args.tree)} or {"": ROOT}
    pg, my, kafka = servers()
    servers_ = {"pg": pg, "my": my}
    args.server_pids = server_pids(args.sandbox_dir)
    print(f"loading {rows:,} rows into the PG and MariaDB sources ...", flush=True)
    sources = {"pg": fresh_pg(pg, "bench_ks_src", rows), "my": fresh_my(my, "bench_ks_src", rows)}
    results: dict[str, dict] = {}
    for case in args.cases.split(","):
        label, source_engine, target_engine = CASES[case]
        for name, tree in trees.items():
            key = f"{label} [{name}]" if name else label
            print(f"{key} ...", flush=True)
            results[key] = run_case(tree, source_engine, target_engine, sources, servers_, kafka, rows, args)
            print(f"  {results[key]}", flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"kafka-snapshot-{stamp}.json"
    path.write_text(json.dumps({"rows": rows, "trees": {k: str(v) for k, v in trees.items()},
                                "snapshot_workers": args.snapshot_workers, "apply_workers": args.apply_workers,
                                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                                "results": results}, indent=2))
    print(f"\n{'case':<26} {'seconds':>8} {'rows/s':>7} {'assigned s':>10} {'1st row s':>9} {'revoked':>7} "
          f"{'RSS MB':>6} {'capture CPU s':>13} {'apply CPU s':>11} {'load':>14} server CPU s")
    for key, r in results.items():
        print(f"{key:<26} {r['seconds']:>8} {r['rows_per_s']:>7} {str(r['time_to_first_assignment_s']):>10} "
              f"{r['first_row_s']:>9} {r['revocations']:>7} {r['apply_peak_rss_mb']:>6} {r['capture_cpu_s']:>13} "
              f"{r['apply_cpu_s']:>11} {str(r['load_avg']):>14} {r['server_cpu_s']}")
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
