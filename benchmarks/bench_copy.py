"""The initial copy of a 10-column table: `cdc copy` per engine pair vs pgcopydb, pg_dump | psql, mariadb-dump | mariadb.

The table: bigint key, int, numeric(12,2), double, boolean, varchar, text, timestamptz, date, jsonb,
plus a secondary index on (qty). Each run starts from an empty target database and ends when the
target holds every row (each tool's own exit, then a row count check). Every tool creates the table
and builds the keys and indexes itself: `cdc copy --create-tables` (`cdc_copy`; it also creates the
capture's slot (PG) or stores its position (MariaDB)), pgcopydb clone, pg_dump | psql, mariadb-dump |
mariadb, pg_chameleon init_replica (MariaDB -> PG; benchmarks/chameleon_peer.py). `cdc_copy_precreated`:
`cdc copy` into a table created beforehand with its primary key and index.
Passwords reach the peers through the environment (PGPASSWORD, MYSQL_PWD, PGCOPYDB_*_PGURI) or a 0600
file (pg_chameleon), never their command lines.

    .venv/bin/python benchmarks/bench_copy.py --rows 1000000

Servers: --pg-url/--mysql-url/--kafka, else CDC_PG_URL/CDC_MYSQL_URL/CDC_KAFKA_BOOTSTRAP (`cdc sandbox up`).
Results go to benchmarks/results/copy-<rows>-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import chameleon_peer  # noqa: E402
from bench_verify import my_run, pg_run, with_database  # noqa: E402
from cdc.copy.run import copy_tables  # noqa: E402
from connectors.mysql import dialect as mysql_dialect  # noqa: E402
from connectors.postgres import dialect as pg_dialect  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PG_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty integer, price numeric(12,2), ratio double precision,
 active boolean, name varchar(40), note text, created timestamptz, day date, doc jsonb)"""
MY_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, qty int, price decimal(12,2), ratio double, active tinyint(1),
 name varchar(40), note text, created datetime(6), day date, doc json) ENGINE=InnoDB"""
INDEX = "CREATE INDEX bench_qty ON bench (qty)"
PG_FILL = """INSERT INTO bench SELECT g, g %% 100000, (g %% 1000000) / 100.0, g / 7.0::float8, g %% 2 = 0,
 'customer ' || g, CASE WHEN g %% 10 = 0 THEN NULL ELSE 'note ' || g END,
 timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', date '2024-01-01' + (g %% 1000),
 ('{"id": ' || g || ', "tags": ["a", "b"]}')::jsonb FROM generate_series(%s::int, %s::int) g"""
MY_FILL = """INSERT INTO bench SELECT seq, seq %% 100000, (seq %% 1000000) / 100.0, seq / 7e0, seq %% 2 = 0,
 CONCAT('customer ', seq), CASE WHEN seq %% 10 = 0 THEN NULL ELSE CONCAT('note ', seq) END,
 TIMESTAMPADD(SECOND, seq, '2024-01-01 00:00:00'), DATE_ADD('2024-01-01', INTERVAL seq %% 1000 DAY),
 CONCAT('{"id": ', seq, ', "tags": ["a", "b"]}') FROM seq_%d_to_%d"""


def fresh_pg(server: str, name: str, rows: int, *, table: bool = True) -> str:
    pg_run(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    url = with_database(server, name)
    if table:
        pg_run(url, PG_TABLE, INDEX)
    for start in range(1, rows + 1, 1_000_000):
        pg_run(url, PG_FILL, params=(start, min(start + 999_999, rows)))
    if rows:
        pg_run(url, "VACUUM ANALYZE bench")
    return url


def fresh_my(server: str, name: str, rows: int, *, table: bool = True) -> str:
    my_run(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    url = with_database(server, name)
    if table:
        my_run(url, MY_TABLE, INDEX)
    for start in range(1, rows + 1, 1_000_000):
        my_run(url, MY_FILL % (start, min(start + 999_999, rows)))
    return url


def count(url: str, schema: str = "public") -> int:
    if url.startswith("postgres"):
        with pg_dialect.connect(url) as conn:
            return conn.execute(f'SELECT count(*) FROM "{schema}".bench').fetchone()[0]
    conn = mysql_dialect.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM bench")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def drop_slot(url: str, prefix: str) -> None:
    with pg_dialect.connect(url) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                     (f"cdc_{prefix}",))


def _timed(run) -> dict:
    load = os.getloadavg()[0]
    started = time.monotonic()
    out = run() or {}
    return {"seconds": round(time.monotonic() - started, 2), **out,
            "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)]}


def _shell(command: str, env: dict | None = None) -> dict:
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"{command.split()[0]} failed: {result.stderr.strip()[-400:]}")
    return {}


def _pg_args(url: str) -> str:
    parts = urlsplit(url)
    return f"-h {parts.hostname} -p {parts.port} -U {parts.username or 'postgres'} {parts.path.lstrip('/')}"


def _my_args(url: str) -> str:
    parts = urlsplit(url)
    return f"-h {parts.hostname} -P {parts.port} -u {parts.username or 'root'} {parts.path.lstrip('/')}"


def _passwords(pg_url: str, my_url: str) -> dict:
    """The servers' passwords as the peers' clients read them from the environment."""
    return {"PGPASSWORD": urlsplit(pg_url).password or "", "MYSQL_PWD": urlsplit(my_url).password or ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg-url", default=os.environ.get("CDC_PG_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("CDC_MYSQL_URL"))
    parser.add_argument("--kafka", default=os.environ.get("CDC_KAFKA_BOOTSTRAP"))
    parser.add_argument("--no-precreated", action="store_true", help="skip `cdc copy` into pre-created tables")
    parser.add_argument("--one-reader", action="store_true",
                        help="also `cdc copy --workers 1` from MariaDB (one snapshot connection, as before 2026-12-07)")
    args = parser.parse_args()
    if not (args.pg_url and args.mysql_url and args.kafka):
        sys.exit("set --pg-url, --mysql-url and --kafka (or CDC_* from `cdc sandbox env`)")
    rows = args.rows
    print(f"loading {rows:,} rows into PG and MariaDB sources ...", flush=True)
    pg_src, my_src = fresh_pg(args.pg_url, "bench_copy_src", rows), fresh_my(args.mysql_url, "bench_copy_src", rows)
    results: dict[str, dict] = {}

    def cdc_copy(source: str, target_engine: str, precreated: bool, workers: int | None = None) -> dict:
        target = (fresh_pg(args.pg_url, "bench_copy_dst", 0, table=precreated) if target_engine == "pg"
                  else fresh_my(args.mysql_url, "bench_copy_dst", 0, table=precreated))
        prefix = "bc" + uuid.uuid4().hex[:8]

        def run():
            result = copy_tables(source, target, ["bench"] if not source.startswith("postgres") else ["public.bench"],
                                 prefix, workers=workers or args.workers, kafka=args.kafka,
                                 create_tables=not precreated)
            return {"rows": sum(result.rows.values()), "ranges": sum(result.ranges.values())}

        out = _timed(run)
        out["rows_per_s"] = round(rows / out["seconds"])
        assert count(target) == rows, "target does not hold every row"
        if source.startswith("postgres"):
            drop_slot(source, prefix)
        return out

    cases = [("pg->pg", pg_src, "pg"), ("pg->mariadb", pg_src, "my"), ("mariadb->pg", my_src, "pg"),
             ("mariadb->mariadb", my_src, "my")]
    for name, source, target_engine in cases:
        results[name] = {"cdc_copy": cdc_copy(source, target_engine, False)}
        print(name, "cdc copy", results[name]["cdc_copy"], flush=True)
        if args.one_reader and source == my_src:
            results[name]["cdc_copy_one_connection"] = cdc_copy(source, target_engine, False, workers=1)
            print(name, "cdc copy, one connection", results[name]["cdc_copy_one_connection"], flush=True)
        if not args.no_precreated:
            results[name]["cdc_copy_precreated"] = cdc_copy(source, target_engine, True)
            print(name, "cdc copy, pre-created table", results[name]["cdc_copy_precreated"], flush=True)

    # peers ---------------------------------------------------------------------------------------
    passwords = _passwords(args.pg_url, args.mysql_url)

    def peer(case: str, label: str, prepare, command, env=None) -> None:
        target = prepare()
        try:
            out = _timed(lambda: _shell(command(target), {**passwords, **(env or {})}))
            out["rows_per_s"] = round(rows / out["seconds"])
            assert count(target) == rows
        except (RuntimeError, AssertionError) as exc:
            out = {"error": str(exc)}
        results[case][label] = out
        print(case, label, out, flush=True)

    empty_pg = lambda: fresh_pg(args.pg_url, "bench_copy_dst", 0, table=False)  # noqa: E731
    empty_my = lambda: fresh_my(args.mysql_url, "bench_copy_dst", 0, table=False)  # noqa: E731
    if shutil.which("pgcopydb"):
        work = tempfile.mkdtemp(prefix="pgcopydb-", dir="/tmp")
        target_pg = with_database(args.pg_url, "bench_copy_dst")
        peer("pg->pg", "pgcopydb clone", empty_pg,
             lambda target: f"pgcopydb clone --dir {work} --table-jobs {args.workers} --index-jobs {args.workers} "
                            "--no-owner --no-acl --skip-extensions --restart --not-consistent",
             {"PGCOPYDB_SOURCE_PGURI": pg_src, "PGCOPYDB_TARGET_PGURI": target_pg})
        shutil.rmtree(work, ignore_errors=True)
    else:
        results["pg->pg"]["pgcopydb clone"] = {"error": "pgcopydb not installed (apt-get install -y pgcopydb)"}
    peer("pg->pg", "pg_dump | psql", empty_pg,
         lambda target: f"pg_dump -t bench {_pg_args(pg_src)} | psql -q -v ON_ERROR_STOP=1 {_pg_args(target)} > /dev/null")
    peer("mariadb->mariadb", "mariadb-dump | mariadb", empty_my,
         lambda target: f"mariadb-dump --single-transaction {_my_args(my_src)} bench | mariadb {_my_args(target)}")
    why = chameleon_peer.unavailable()
    if why:
        results["mariadb->pg"]["pg_chameleon init_replica"] = {"error": why}
    else:
        target = empty_pg()
        try:
            out = {**chameleon_peer.init_replica(my_src, target, "bench_copy_src", "bench_dst"),
                   "load_avg": [round(os.getloadavg()[0], 2)]}
            out["rows_per_s"] = round(rows / out["seconds"])
            assert count(target, "bench_dst") == rows, "target does not hold every row"
        except (RuntimeError, AssertionError) as exc:
            out = {"error": str(exc)}
        results["mariadb->pg"]["pg_chameleon init_replica"] = out
        print("mariadb->pg pg_chameleon", out, flush=True)

    payload = {"benchmark": "copy", "rows": rows, "workers": args.workers,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
               "note": "shared 2-core machine, both servers on it; other builders' jobs ran at the same time",
               "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"copy-{rows}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
