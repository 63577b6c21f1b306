"""Benchmark `cdc verify`: rows/s verified, same engine and cross engine, with 10 seeded differences.

Compared in the same run with a naive full-download compare (stream both tables ordered by key and
compare canonical rows in Python) and, when it installs, reladiff 0.6.0 (in its own venv,
/tmp/reladiff-venv, to keep its dependencies away from ours).

    .venv/bin/python benchmarks/bench_verify.py --quick        # 1M rows
    .venv/bin/python benchmarks/bench_verify.py                # 10M rows

Servers: --pg-url/--mysql-url, else CDC_PG_URL/CDC_MYSQL_URL (e.g. from `cdc sandbox up` and
`eval "$(cdc sandbox env)"`). The databases bench_verify_a/_b are (re)created on both servers.
Results: benchmarks/results/verify-<rows>-<timestamp>.json
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
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cdc.verify.parity import verify  # noqa: E402
from cdc.verify.plan import VerifyOptions  # noqa: E402
from connectors.mysql import dialect as mysql_dialect  # noqa: E402
from connectors.postgres import dialect as pg_dialect  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RELADIFF_VENV = Path("/tmp/reladiff-venv")
SEEDED = 10

PG_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, customer integer NOT NULL, amount numeric(12,2),
 status varchar(20), created_at timestamp(6), paid boolean, note text)"""
MY_TABLE = """CREATE TABLE bench (id bigint PRIMARY KEY, customer int NOT NULL, amount decimal(12,2),
 status varchar(20), created_at datetime(6), paid tinyint(1), note text) ENGINE=InnoDB"""
PG_FILL = """INSERT INTO bench SELECT g, g %% 100000, (g %% 1000000) / 100.0, (ARRAY['new','paid','shipped'])[1 + g %% 3],
 timestamp '2024-01-01' + g * interval '1 second' + (g %% 1000) * interval '1 microsecond', g %% 2 = 0,
 CASE WHEN g %% 10 = 0 THEN NULL ELSE 'note ' || g END FROM generate_series(%s, %s) g"""
MY_FILL = """INSERT INTO bench SELECT seq, seq %% 100000, (seq %% 1000000) / 100.0, ELT(1 + seq %% 3, 'new','paid','shipped'),
 TIMESTAMPADD(MICROSECOND, seq %% 1000, TIMESTAMPADD(SECOND, seq, '2024-01-01 00:00:00')), seq %% 2 = 0,
 CASE WHEN seq %% 10 = 0 THEN NULL ELSE CONCAT('note ', seq) END FROM seq_%d_to_%d"""


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def pg_run(url: str, *sqls, params=None) -> None:
    with pg_dialect.connect(url) as conn:
        for sql in sqls:
            conn.execute(sql, params)


def my_run(url: str, *sqls) -> None:
    conn = mysql_dialect.connect(url)
    try:
        with conn.cursor() as cursor:
            for sql in sqls:
                cursor.execute(sql)
    finally:
        conn.close()


def fresh_pg(server: str, name: str, rows: int) -> str:
    pg_run(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    url = with_database(server, name)
    pg_run(url, PG_TABLE)
    step = 1_000_000
    for start in range(1, rows + 1, step):
        pg_run(url, PG_FILL, params=(start, min(start + step - 1, rows)))
    pg_run(url, "VACUUM ANALYZE bench")
    return url


def fresh_my(server: str, name: str, rows: int) -> str:
    my_run(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    url = with_database(server, name)
    my_run(url, MY_TABLE)
    step = 1_000_000
    for start in range(1, rows + 1, step):
        my_run(url, MY_FILL % (start, min(start + step - 1, rows)))
    my_run(url, "ANALYZE TABLE bench")
    return url


def seed(url: str, engine: str, rows: int) -> None:
    """10 differences spread over the table: 5 changed, 3 missing, 2 extra.

    (No NULL-vs-value change here: reladiff 0.6.0 stops early on one, which would make its time
    meaningless; tests/verify covers NULL vs empty vs value.)
    """
    run = pg_run if engine == "pg" else my_run
    ids = [rows * k // 11 for k in range(1, 11)]
    run(url,
        *(f"UPDATE bench SET amount = amount + 0.01 WHERE id = {i}" for i in ids[0:3]),
        *(f"DELETE FROM bench WHERE id = {i}" for i in ids[3:6]),
        *(f"INSERT INTO bench (id, customer) VALUES ({rows + k}, 1)" for k in (1, 2)),
        *(f"UPDATE bench SET status = 'refunded' WHERE id = {i}" for i in ids[8:10]))


def time_verify(source: str, target: str, workers: int) -> dict:
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    report = verify(source, target, VerifyOptions(workers=workers, recheck_delay=0))
    seconds = time.monotonic() - started
    [table] = report.tables
    found = table.different_rows
    rows = max(table.source_rows or 0, table.target_rows or 0)
    return {"seconds": round(seconds, 2), "rows": rows, "rows_per_s": round(rows / seconds), "differences": found,
            "segments_compared": table.segments_compared, "exit_code": report.exit_code, "checksum": table.checksum,
            # 1-minute load average before/after: the machine is shared, so read figures against it
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def _pg_rows(url: str):
    conn = pg_dialect.connect(url)
    conn.autocommit = False
    with conn.cursor(name="naive") as cursor:
        cursor.itersize = 20000
        cursor.execute("SELECT id, customer, amount, status, created_at, paid, note FROM bench ORDER BY id")
        for row in cursor:
            yield row
    conn.close()


def _my_rows(url: str):
    import pymysql.cursors
    conn = mysql_dialect.connect(url)
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute("SELECT id, customer, amount, status, created_at, paid, note FROM bench ORDER BY id")
        while rows := cursor.fetchmany(20000):
            yield from rows
    conn.close()


def _normal(row):
    """Make a row from either driver comparable (bool/int, Decimal scale, datetime)."""
    id_, customer, amount, status, created_at, paid, note = row
    return (id_, customer, None if amount is None else amount.normalize(), status, created_at,
            None if paid is None else int(paid), note)


def time_naive(source: str, source_engine: str, target: str, target_engine: str) -> dict:
    """Download both tables ordered by key and merge-compare in Python."""
    started = time.monotonic()
    left = (_pg_rows if source_engine == "pg" else _my_rows)(source)
    right = (_pg_rows if target_engine == "pg" else _my_rows)(target)
    a, b = next(left, None), next(right, None)
    rows = differences = 0
    while a is not None or b is not None:
        rows += 1
        if b is None or (a is not None and a[0] < b[0]):
            differences += 1
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            differences += 1
            b = next(right, None)
        else:
            differences += _normal(a) != _normal(b)
            a, b = next(left, None), next(right, None)
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 2), "rows": rows, "rows_per_s": round(rows / seconds), "differences": differences}


def reladiff_python() -> Path | None:
    """/tmp/reladiff-venv/bin/python with reladiff 0.6.0, installed on first use; None if it won't install."""
    python = RELADIFF_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(RELADIFF_VENV)], check=True, capture_output=True)
    probe = subprocess.run([str(python), "-c", "import reladiff"], capture_output=True)
    if probe.returncode != 0:
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "reladiff[postgresql,mysql]==0.6.0"],
                                   capture_output=True, text=True)
        if installed.returncode != 0:
            print(f"reladiff did not install: {installed.stderr.strip()[-300:]}", file=sys.stderr)
            return None
    return python


def _reladiff_uri(url: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql" if parts.scheme.startswith("postgres") else "mysql"
    return urlunsplit(parts._replace(scheme=scheme))


def time_reladiff(source: str, target: str, workers: int) -> dict | None:
    python = reladiff_python()
    if python is None:
        return None
    reladiff = python.parent / "reladiff"
    command = [str(reladiff), _reladiff_uri(source), "bench", _reladiff_uri(target), "bench",
               "-k", "id", "-c", "customer", "-c", "amount", "-c", "status", "-c", "created_at", "-c", "paid",
               "-c", "note", "-j", str(workers)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith(("+", "-"))]
    out = {"seconds": round(seconds, 2), "differences_lines": len(lines), "returncode": result.returncode}
    errors = [line for line in (result.stdout + result.stderr).splitlines() if " ERROR " in line]
    if result.returncode not in (0, 1) or errors:
        # reladiff 0.6.0 logs "'<' not supported between instances of 'str' and 'NoneType'" on a
        # NULL-vs-value difference and stops early (exit code 0): its time is then for a partial run.
        out["complete"] = False
        out["error"] = (errors[-1] if errors else result.stderr.strip())[-500:]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1M rows instead of 10M")
    parser.add_argument("--rows", type=int, help="row count (overrides --quick)")
    parser.add_argument("--pg-url", default=os.environ.get("CDC_PG_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("CDC_MYSQL_URL"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-reladiff", action="store_true")
    parser.add_argument("--keep", action="store_true", help="reuse databases loaded by a previous run")
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    if not (args.pg_url and args.mysql_url):
        sys.exit("set --pg-url and --mysql-url (or CDC_PG_URL/CDC_MYSQL_URL; `cdc sandbox up` then "
                 "`eval \"$(cdc sandbox env)\"`)")
    started = time.monotonic()
    print(f"loading {rows:,} rows x 4 tables ...", flush=True)
    if args.keep:
        pg_a, pg_b = with_database(args.pg_url, "bench_verify_a"), with_database(args.pg_url, "bench_verify_b")
        my_a, my_b = with_database(args.mysql_url, "bench_verify_a"), with_database(args.mysql_url, "bench_verify_b")
    else:
        pg_a, pg_b = fresh_pg(args.pg_url, "bench_verify_a", rows), fresh_pg(args.pg_url, "bench_verify_b", rows)
        my_a, my_b = fresh_my(args.mysql_url, "bench_verify_a", rows), fresh_my(args.mysql_url, "bench_verify_b", rows)
        seed(pg_b, "pg", rows)
        seed(my_b, "my", rows)
    print(f"loaded in {time.monotonic() - started:.0f}s", flush=True)
    cases = [
        ("pg->pg", pg_a, "pg", pg_b, "pg"),
        ("mariadb->mariadb", my_a, "my", my_b, "my"),
        ("pg->mariadb", pg_a, "pg", my_b, "my"),
    ]
    results = []
    for name, source, source_engine, target, target_engine in cases:
        entry = {"case": name, "cdc_verify": time_verify(source, target, args.workers)}
        print(name, "cdc verify", entry["cdc_verify"], flush=True)
        if not args.skip_naive:
            entry["naive_download"] = time_naive(source, source_engine, target, target_engine)
            print(name, "naive", entry["naive_download"], flush=True)
        if not args.skip_reladiff:
            entry["reladiff"] = time_reladiff(source, target, args.workers)
            print(name, "reladiff", entry["reladiff"], flush=True)
        results.append(entry)
    payload = {
        "benchmark": "verify", "rows": rows, "seeded_differences": SEEDED, "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "shared 2-core machine; other builders' jobs ran at the same time, so figures are lower bounds",
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"verify-{rows}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
