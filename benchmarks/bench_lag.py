"""End-to-end lag: PostgreSQL source -> `cdc capture` -> Kafka -> `cdc apply` -> PG / MariaDB target.

    .venv/bin/python benchmarks/bench_lag.py [--targets pg,mysql] [--rate 5000] [--seconds 45] [--quick]

Servers: CDC_PG_URL / CDC_MYSQL_URL / CDC_KAFKA_BOOTSTRAP when set, else a sandbox in /tmp/cdc-bench-lag
(left running; `cdc sandbox down --dir /tmp/cdc-bench-lag` stops it). Per target, a fresh topic prefix,
source table, slot and target database:

1. `cdc capture` (snapshot never) and `cdc apply --create-tables` run as subprocesses;
2. warm-up: one row is written; apply start-up time = from spawning `cdc apply` until that row is in
   the target (consumer-group join + seek + first batch), then `--preload` rows (the live key set);
3. a log table and row triggers are added on the target (AFTER INSERT/UPDATE/DELETE: key, change
   sequence number, the target's clock at the write - a few ms before that batch's commit);
4. a writer issues `--rate` changes/s (80% update, 10% insert, 10% delete, in transactions of
   `--txn-size` changes, paced on a fixed schedule) for `--seconds` (`--quick`: 15 s). The writer
   records each transaction's source commit time (the client's clock right after COMMIT returns);
5. once the target has every change, lag per change = target write time - source commit time. A change
   folded into a later change of the same key within one apply batch takes that later change's time
   (that is when its effect became visible). p50/p95/p99/max are reported.

Source and target clocks are the same machine's. Results: benchmarks/results/lag-<UTC time>.json.
The machine is shared and noisy: the load average is recorded with the figures.
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
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
SANDBOX_DIR = "/tmp/cdc-bench-lag"
CDC = [sys.executable, "-m", "cdc.cli"]  # the running interpreter: works from any checkout or worktree

SOURCE_DDL = """
CREATE TABLE public.lag_items (
    id       bigint PRIMARY KEY,
    seq      bigint NOT NULL,
    account  integer,
    amount   numeric(12,2),
    ratio    double precision,
    name     varchar(40),
    note     text,
    active   boolean,
    created  timestamp(6),
    updated  timestamptz
)"""

PG_TRIGGERS = """
CREATE TABLE lag_log (id bigint, seq bigint, op "char", at timestamptz);
CREATE FUNCTION lag_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO lag_log VALUES (OLD.id, OLD.seq, 'd', clock_timestamp());
  ELSE
    INSERT INTO lag_log VALUES (NEW.id, NEW.seq, 'u', clock_timestamp());
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER lag_log_row AFTER INSERT OR UPDATE OR DELETE ON public.lag_items
    FOR EACH ROW EXECUTE FUNCTION lag_log_row();
"""

MYSQL_TRIGGERS = [
    "CREATE TABLE lag_log (id bigint, seq bigint, op char(1), at datetime(6))",
    "CREATE TRIGGER lag_log_ins AFTER INSERT ON lag_items FOR EACH ROW"
    " INSERT INTO lag_log VALUES (NEW.id, NEW.seq, 'u', SYSDATE(6))",
    "CREATE TRIGGER lag_log_upd AFTER UPDATE ON lag_items FOR EACH ROW"
    " INSERT INTO lag_log VALUES (NEW.id, NEW.seq, 'u', SYSDATE(6))",
    "CREATE TRIGGER lag_log_del AFTER DELETE ON lag_items FOR EACH ROW"
    " INSERT INTO lag_log VALUES (OLD.id, OLD.seq, 'd', SYSDATE(6))",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def with_database(url: str, database: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{database}"


def servers(args: argparse.Namespace) -> tuple[str, str, str]:
    pg, my, kafka = os.environ.get("CDC_PG_URL"), os.environ.get("CDC_MYSQL_URL"), os.environ.get("CDC_KAFKA_BOOTSTRAP")
    if pg and my and kafka:
        return pg, my, kafka
    subprocess.run([*CDC, "sandbox", "up", "--dir", args.sandbox_dir], check=True, stdout=subprocess.DEVNULL)
    env = subprocess.run([*CDC, "sandbox", "env", "--dir", args.sandbox_dir], check=True, capture_output=True,
                         text=True).stdout
    values = dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines() if "=" in line)
    return values["CDC_PG_URL"], values["CDC_MYSQL_URL"], values["CDC_KAFKA_BOOTSTRAP"]


class Target:
    """The target database of one run: created fresh, polled, given the log triggers."""

    def __init__(self, kind: str, admin_url: str, database: str) -> None:
        self.kind = kind
        self.admin_url = admin_url
        self.database = database
        self.url = with_database(admin_url, database)
        if kind == "pg":
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {database}")
        else:
            conn = self._mysql(admin_url)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {database}")
                cur.execute(f"CREATE DATABASE {database}")
            conn.close()
        self.conn = None

    @staticmethod
    def _mysql(url: str):
        from connectors.mysql.dialect import connect
        from cdc.urls import parse_url
        from cdc.errors import TargetError

        return connect(parse_url(url), error=TargetError, autocommit=True,
                       init_command="SET time_zone = '+00:00'")

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.kind == "pg":
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        else:
            conn = self._mysql(self.admin_url)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {self.database}")
            conn.close()

    def connect(self) -> None:
        self.conn = psycopg.connect(self.url, autocommit=True) if self.kind == "pg" else self._mysql(self.url)

    def scalar(self, sql: str, args=()):
        if self.conn is None:
            self.connect()
        if self.kind == "pg":
            return self.conn.execute(sql, args).fetchone()
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()

    def rows(self, sql: str) -> list[tuple]:
        if self.kind == "pg":
            return self.conn.execute(sql).fetchall()
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def has_table(self) -> bool:
        if self.kind == "pg":
            return self.scalar("SELECT to_regclass('public.lag_items') IS NOT NULL")[0]
        return bool(self.scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                                " AND TABLE_NAME = 'lag_items'")[0])

    def max_seq(self) -> int:
        return self.scalar("SELECT COALESCE(MAX(seq), -1) FROM lag_items")[0]

    def count(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM lag_items")[0]

    def add_triggers(self) -> None:
        if self.kind == "pg":
            self.conn.execute(PG_TRIGGERS)
        else:
            with self.conn.cursor() as cur:
                for statement in MYSQL_TRIGGERS:
                    cur.execute(statement)

    def log(self) -> list[tuple[int, int, str, float]]:
        if self.kind == "pg":
            return self.rows("SELECT id, seq, op::text, extract(epoch FROM at)::float8 FROM lag_log")
        return [(i, s, o, at.replace(tzinfo=dt.timezone.utc).timestamp())
                for i, s, o, at in self.rows("SELECT id, seq, op, at FROM lag_log")]


class Writer:
    """Source writer: paced transactions of mixed changes; records each change's commit time."""

    def __init__(self, url: str, seed: int = 7) -> None:
        self.conn = psycopg.connect(url, autocommit=False)
        self.rng = random.Random(seed)
        self.live: list[int] = []
        self.index: dict[int, int] = {}
        self.next_id = 0
        self.seq = 0
        self.changes: list[tuple[int, int, str]] = []  # (seq, id, op) in commit order
        self.commit_at: list[float] = []               # per change, the source commit time

    def _row(self, key: int) -> tuple:
        rng = self.rng
        return (key, self.seq, rng.randrange(10_000), f"{rng.randrange(-10**7, 10**7) / 100:.2f}", rng.random(),
                f"name-{rng.randrange(10**9)}", "n" * rng.randrange(0, 60), rng.random() < 0.5,
                dt.datetime(2024, 2, 29, 13, 45, 0, 123456), dt.datetime.now(dt.timezone.utc))

    def _remove(self, key: int) -> None:
        position = self.index.pop(key)
        last = self.live.pop()
        if last != key:
            self.live[position] = last
            self.index[last] = position

    def transaction(self, size: int, mixed: bool = True, record: bool = True) -> None:
        inserts, updates, deletes = [], {}, []
        rng = self.rng
        done: list[tuple[int, int, str]] = []
        for _ in range(size):
            self.seq += 1
            roll = rng.random() if mixed else 0.0
            if roll < 0.1 or len(self.live) < 100:
                key = self.next_id
                self.next_id += 1
                self.index[key] = len(self.live)
                self.live.append(key)
                inserts.append(self._row(key))
                done.append((self.seq, key, "c"))
            elif roll < 0.2:  # statements run inserts, updates, deletes: per key, in change order
                key = self.live[rng.randrange(len(self.live))]
                self._remove(key)
                deletes.append(key)
                done.append((self.seq, key, "d"))
            else:
                key = self.live[rng.randrange(len(self.live))]
                updates[key] = self._row(key)
                done.append((self.seq, key, "u"))
        with self.conn.cursor() as cur:
            if inserts:
                cur.executemany("INSERT INTO lag_items VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", inserts)
            if updates:
                cur.executemany("UPDATE lag_items SET seq = %s, account = %s, amount = %s, ratio = %s, name = %s,"
                                " note = %s, active = %s, created = %s, updated = %s WHERE id = %s",
                                [r[1:] + (r[0],) for r in updates.values()])
            if deletes:
                cur.execute("DELETE FROM lag_items WHERE id = ANY(%s)", (deletes,))
        self.conn.commit()
        now = time.time()
        if record:
            self.changes.extend(done)
            self.commit_at.extend([now] * len(done))


def lags(changes: list[tuple[int, int, str]], commit_at: list[float],
         log: list[tuple[int, int, str, float]]) -> tuple[list[float], int]:
    """Lag per change; a change without its own log row takes the time of the next logged change of its key."""
    upserts = {seq: at for _, seq, op, at in log if op == "u"}
    deletes = {key: at for key, _, op, at in log if op == "d"}
    pending: dict[int, list[int]] = {}
    result: list[float] = []
    unresolved = 0
    for position, (seq, key, op) in enumerate(changes):
        waiting = pending.setdefault(key, [])
        waiting.append(position)
        at = deletes.get(key) if op == "d" else upserts.get(seq)
        if at is not None:
            result.extend(at - commit_at[p] for p in waiting)
            waiting.clear()
    for waiting in pending.values():
        unresolved += len(waiting)
    return result, unresolved


def spawn(command: list[str], log_path: Path, env: dict) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(what: str, check, timeout: float, processes: list[subprocess.Popen], poll: float = 0.05) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {process.args[1]} exited with {process.returncode}")
        if check():
            return time.monotonic() - started
        time.sleep(poll)
    raise RuntimeError(f"{what}: not within {timeout}s")


def run(kind: str, pg_admin: str, mysql_admin: str, kafka: str, args: argparse.Namespace, logs: Path) -> dict:
    tag = uuid.uuid4().hex[:6]
    prefix = f"lag{tag}"
    source_db = f"lag_src_{tag}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {source_db}")
    source_url = with_database(pg_admin, source_db)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    target = Target(kind, pg_admin if kind == "pg" else mysql_admin, f"lag_tgt_{tag}")
    env = dict(os.environ, CDC_LOG_FORMAT="human")
    capture = spawn([*CDC, "capture", "--source", source_url, "--kafka", kafka, "--prefix", prefix,
                     "--tables", "public.lag_items", "--snapshot", "never", "--status-interval", "0.5",
                     "--heartbeat-interval", "5"], logs / f"capture-{kind}.log", env)
    processes = [capture]
    writer = Writer(source_url)
    try:
        # the slot exists once capture streams; a row written before that would be missed
        with psycopg.connect(source_url, autocommit=True) as conn:
            wait_for("capture start", lambda: conn.execute(
                "SELECT count(*) FROM pg_replication_slots WHERE active").fetchone()[0] > 0, 60, processes)
        writer.transaction(1, mixed=False, record=False)
        apply_command = [*CDC, "apply", "--kafka", kafka, "--prefix", prefix, "--target", target.url,
                         "--create-tables", "--linger-ms", str(args.linger_ms)]
        if args.metrics:
            apply_command += ["--metrics", args.metrics]
        if args.apply_args:
            apply_command += args.apply_args.split()
        apply_started = time.monotonic()
        apply = spawn(apply_command, logs / f"apply-{kind}.log", env)
        processes.append(apply)
        target.connect()
        startup_s = wait_for("apply start-up", lambda: target.has_table() and target.count() >= 1, 180, processes)
        for _ in range(0, args.preload, 1000):
            writer.transaction(1000, mixed=False, record=False)
        wait_for("preload", lambda: target.max_seq() >= writer.seq, 120, processes)
        target.add_triggers()

        seconds = 15.0 if args.quick else args.seconds
        per_txn = args.txn_size
        interval = per_txn / args.rate
        started = time.monotonic()
        ticks = 0
        behind_max = 0.0
        while True:
            due = started + ticks * interval
            now = time.monotonic()
            if due - started >= seconds:
                break
            if due > now:
                time.sleep(due - now)
            else:
                behind_max = max(behind_max, now - due)
            writer.transaction(per_txn)
            ticks += 1
        write_s = time.monotonic() - started
        last_seq = writer.seq
        drain_s = wait_for("catch-up", lambda: _caught_up(target, writer), 120, processes, poll=0.05)
        log = target.log()
        values, unresolved = lags(writer.changes, writer.commit_at, log)
        metrics_sample = None
        if args.metrics:
            metrics_sample = _scrape(args.metrics)
        result = {
            "target": "postgresql" if kind == "pg" else "mariadb",
            "apply_startup_s": round(startup_s, 2),
            "changes": len(writer.changes),
            "write_seconds": round(write_s, 2),
            "achieved_changes_per_s": round(len(writer.changes) / write_s),
            "writer_behind_schedule_max_s": round(behind_max, 3),
            "catch_up_after_writer_s": round(drain_s, 2),
            "measured": len(values),
            "unresolved": unresolved,
            "lag_p50_s": round(percentile(values, 50), 4),
            "lag_p95_s": round(percentile(values, 95), 4),
            "lag_p99_s": round(percentile(values, 99), 4),
            "lag_max_s": round(max(values), 4) if values else None,
            "lag_min_s": round(min(values), 4) if values else None,
        }
        if metrics_sample is not None:
            result["apply_metrics_sample"] = metrics_sample
        return result
    finally:
        writer.conn.close()
        for process in reversed(processes):
            stop(process)
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                         " WHERE database = %s AND NOT active", (source_db,))
            if not args.keep:
                conn.execute(f"DROP DATABASE IF EXISTS {source_db} WITH (FORCE)")
        if not args.keep:
            target.drop()


def _caught_up(target: Target, writer: Writer) -> bool:
    """The target has the last change (its row with that seq, or the log row of its delete)."""
    seq, key, op = writer.changes[-1]
    if op == "d":
        return target.scalar("SELECT COUNT(*) FROM lag_log WHERE id = %s AND op = 'd'", (key,))[0] > 0
    return target.max_seq() >= seq


def _scrape(listen: str) -> dict:
    import urllib.request

    host, _, port = listen.rpartition(":")
    text = urllib.request.urlopen(f"http://{host or '127.0.0.1'}:{port}/metrics", timeout=5).read().decode()
    keep = ("cdc_events_applied_total", "cdc_apply_lag_seconds_count", "cdc_apply_lag_seconds_sum",
            "cdc_events_dead_lettered_total")
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line.startswith(keep)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="pg,mysql", help="pg, mysql or both (comma-separated, run one after the other)")
    parser.add_argument("--rate", type=int, default=5000, help="source changes per second")
    parser.add_argument("--seconds", type=float, default=45.0, help="length of the sustained load")
    parser.add_argument("--quick", action="store_true", help="15 s of load")
    parser.add_argument("--txn-size", type=int, default=25, help="changes per source transaction")
    parser.add_argument("--preload", type=int, default=20_000, help="rows written (and applied) before the load")
    parser.add_argument("--linger-ms", type=int, default=50, help="cdc apply --linger-ms")
    parser.add_argument("--metrics", default="", help="pass --metrics HOST:PORT to cdc apply and scrape it at the end")
    parser.add_argument("--apply-args", default="", help="extra cdc apply arguments")
    parser.add_argument("--sandbox-dir", default=SANDBOX_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the source and target databases")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    pg, my, kafka = servers(args)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    logs = Path(f"/tmp/bench-lag-{stamp}")
    logs.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    results = []
    for kind in [k.strip() for k in args.targets.split(",") if k.strip()]:
        result = run(kind, pg, my, kafka, args, logs)
        results.append(result)
        print(f"{result['target']:10} start-up {result['apply_startup_s']:.2f}s  {result['achieved_changes_per_s']}"
              f" changes/s x {result['write_seconds']}s  lag p50 {result['lag_p50_s']:.3f}s p95 {result['lag_p95_s']:.3f}s"
              f" p99 {result['lag_p99_s']:.3f}s max {result['lag_max_s']:.3f}s  (measured {result['measured']},"
              f" unresolved {result['unresolved']})", flush=True)
    out = {
        "benchmark": "lag",
        "when": stamp,
        "label": args.label,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "workload": {"rate": args.rate, "seconds": 15.0 if args.quick else args.seconds, "txn_size": args.txn_size,
                     "mix": "80% update, 10% insert, 10% delete", "preload": args.preload,
                     "apply_linger_ms": args.linger_ms, "apply_args": args.apply_args},
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"lag-{stamp}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}; process logs in {logs}")


if __name__ == "__main__":
    main()
