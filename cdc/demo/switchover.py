"""The demo's last act: `cdc migrate` switches the PostgreSQL shop to MariaDB, writes there, and rolls back.

A workflow `demo_switch_<run>` copies demo_shop's customers and orders into MariaDB `demo_shop_switch`, is
verified, switched (the hook prints the new primary), takes orders on MariaDB (replicated back to
PostgreSQL by the reverse pipeline), is verified again and reversed; the journal page is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymysql
from rich.console import Console

from cdc.demo.chain import mariadb_connection, recreate_mariadb_database, with_database
from cdc.errors import CdcError
from cdc.sandbox import Endpoints

NAME = f"demo_switch_{uuid.uuid4().hex[:6]}"  # topics outlive a run on the sandbox broker: a name per run
TABLES = "customers,orders"
HOOK = 'echo "    --on-switch: applications now write to $CDC_PRIMARY_URL ($CDC_MIGRATION)"'


def _migrate(env: dict[str, str], console: Console, *args: str) -> dict:
    """One `cdc migrate` command, its JSON answer; its step lines (stderr) are shown."""
    command = [sys.executable, "-m", "cdc.cli", "migrate", *args, "--json"]
    console.print(f"  [bold]cdc migrate {' '.join(args)}[/bold]", highlight=False)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise CdcError(f"cdc migrate {args[0]} exited {done.returncode}")
    return json.loads(done.stdout)


def _wait_running(env: dict[str, str], runner: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise CdcError(f"cdc migrate run exited with {runner.returncode}; see {log_path}")
        done = subprocess.run([sys.executable, "-m", "cdc.cli", "migrate", "status", NAME, "--json"], env=env,
                              capture_output=True, text=True)
        if done.returncode == 0 and json.loads(done.stdout)["state"] == "running":
            return
        time.sleep(1.0)
    raise CdcError(f"the workflow did not reach state running within {timeout:.0f}s; see {log_path}")


def _take_orders(mariadb_url: str, database: str, count: int) -> int:
    """Orders written on MariaDB while it is the primary (ids after the highest)."""
    conn: pymysql.connections.Connection = mariadb_connection(mariadb_url, database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0), MIN(customer_id) FROM orders")
            top, customer = cursor.fetchone()
            cursor.execute("SHOW COLUMNS FROM orders")
            columns = [row[0] for row in cursor.fetchall()]
            cursor.execute(f"SELECT * FROM orders WHERE id = {int(top)}")
            template = dict(zip(columns, cursor.fetchone()))
            for offset in range(1, count + 1):
                row = {**template, "id": top + offset, "customer_id": customer}
                marks = ", ".join(["%s"] * len(row))
                cursor.execute(f"INSERT INTO orders ({', '.join(f'`{c}`' for c in row)}) VALUES ({marks})",
                               tuple(row.values()))
        conn.commit()
    finally:
        conn.close()
    return count


def run_switchover(endpoints: Endpoints, console: Console) -> str:
    """Create, copy, verify, switch, write on MariaDB, verify, reverse; the journal page's path."""
    source = with_database(endpoints.pg_url, "demo_shop")
    target = with_database(endpoints.mysql_url, "demo_shop_switch")
    recreate_mariadb_database(endpoints.mysql_url, "demo_shop_switch")
    report_dir = Path(os.environ.get("CDC_DEMO_REPORT_DIR", "demo-reports")).resolve()
    env = {**os.environ, "CDC_SOURCE": source, "CDC_TARGET": target, "CDC_KAFKA": endpoints.kafka_bootstrap}
    env.pop("CDC_KAFKA_BOOTSTRAP", None)
    _migrate(env, console, "create", NAME, "--tables", TABLES, "--create-tables")
    log_path = report_dir / "cdc-migrate-run.log"
    with open(log_path, "w") as log:
        runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "migrate", "run", NAME], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        console.print(f"  [bold]cdc migrate run {NAME}[/bold]  (log: {log_path})", highlight=False)
        _wait_running(env, runner, log_path)
        verified = _migrate(env, console, "verify", NAME, "--report-dir", str(report_dir))
        console.print(f"    {verified['summary']['text']}")
        switched = _migrate(env, console, "switch", NAME, "--on-switch", HOOK)
        console.print(f"    switched: primary {switched['primary']}, write pause "
                      f"[bold]{switched['write_pause_seconds']:.2f}s[/bold]")
        taken = _take_orders(endpoints.mysql_url, "demo_shop_switch", 50)
        console.print(f"    {taken} orders written on MariaDB (the reverse pipeline copies them to PostgreSQL)")
        verified = _migrate(env, console, "verify", NAME, "--report-dir", str(report_dir))
        console.print(f"    {verified['summary']['text']}")
        reversed_ = _migrate(env, console, "reverse", NAME, "--on-switch", HOOK)
        console.print(f"    rolled back: primary {reversed_['primary']}, write pause "
                      f"[bold]{reversed_['write_pause_seconds']:.2f}s[/bold]")
        page = report_dir / f"migration-{NAME}.html"
        _migrate(env, console, "status", NAME, "--html", str(page))
        _migrate(env, console, "cancel", NAME, "--drop-topics")
    finally:
        if runner.poll() is None:
            runner.terminate()
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                runner.kill()
        reopen = mariadb_connection(endpoints.mysql_url)
        try:
            with reopen.cursor() as cursor:
                cursor.execute("SET GLOBAL read_only = OFF")  # the sandbox server stays open for what comes next
        finally:
            reopen.close()
    return f"switched to MariaDB and back; journal page {page}"
