"""The demo's main act: `cdc run` replicates a PostgreSQL shop into MariaDB and a MariaDB inventory into
PostgreSQL through Kafka while both take writes; then `cdc verify` proves parity and writes HTML reports.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pymysql
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdc.demo import drill_act
from cdc.demo.workload import run_load, seed_mariadb, seed_postgres
from cdc.errors import CdcError
from cdc.sandbox import Endpoints

LOAD_SECONDS = float(os.environ.get("CDC_DEMO_LOAD_SECONDS", "20"))
LOAD_RATE = float(os.environ.get("CDC_DEMO_RATE", "40"))  # transactions per second on each source
CATCH_UP_SECONDS = 90


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_pg_database(admin_url: str, name: str) -> None:
    """Drop (with its replication slots) and create a PostgreSQL database."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = %s AND active", (name,))
        time.sleep(0.2)
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (name,))
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def mariadb_connection(url: str, database: str | None = None) -> pymysql.connections.Connection:
    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           password=parts.password or "", database=database, charset="utf8mb4",
                           init_command="SET time_zone = '+00:00'")


def recreate_mariadb_database(url: str, name: str) -> None:
    conn = mariadb_connection(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()


def write_config(path: Path, endpoints: Endpoints, urls: dict[str, str], prefixes: dict[str, str], metrics: str) -> None:
    """The `cdc run` config of the demo: two sources, two targets, a scheduled parity check per direction.

    It holds the sandbox's password, so only its owner may read it (0600)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(f"""# written by the cdc demo
[kafka]
bootstrap = "{endpoints.kafka_bootstrap}"

[[source]]
url = "{urls['pg_source']}"
prefix = "{prefixes['pg']}"
tables = ["public.customers", "public.orders"]
snapshot = "initial"
heartbeat_seconds = 5

[[source]]
url = "{urls['my_source']}"
prefix = "{prefixes['my']}"
tables = ["demo_inventory.products", "demo_inventory.stock_moves"]
snapshot = "initial"

[[target]]
url = "{urls['my_target']}"
prefix = "{prefixes['pg']}"
create_tables = true
max_poll_interval_ms = 3000

[[target]]
url = "{urls['pg_target']}"
prefix = "{prefixes['my']}"
create_tables = true
max_poll_interval_ms = 3000

[[verify]]                        # parity checked while replicating: a slice of each table every 10 s
name = "{prefixes['pg']}"
source = "{urls['pg_source']}"
target = "{urls['my_target']}"
tables = ["customers", "orders"]
every = "10s"
wait_for_lag = "10s"
rows_per_run = 2000
full_every = "1m"
keep = 10
report_dir = "scheduled-parity/postgresql-to-mariadb"

[[verify]]
name = "{prefixes['my']}"
source = "{urls['my_source']}"
target = "{urls['pg_target']}"
tables = ["products", "stock_moves"]
every = "10s"
wait_for_lag = "10s"
rows_per_run = 2000
full_every = "1m"
keep = 10
report_dir = "scheduled-parity/mariadb-to-postgresql"

[metrics]
listen = "{metrics}"
""")


def pg_counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        out = {}
        for table in tables:
            try:
                out[table] = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table))).fetchone()[0]
            except psycopg.errors.UndefinedTable:
                out[table] = -1
        return out


def mariadb_counts(url: str, database: str, tables: list[str]) -> dict[str, int]:
    conn = mariadb_connection(url, database)
    try:
        out = {}
        with conn.cursor() as cursor:
            for table in tables:
                try:
                    cursor.execute(f"SELECT count(*) FROM `{table}`")
                    out[table] = cursor.fetchone()[0]
                except pymysql.err.ProgrammingError:
                    out[table] = -1
        return out
    finally:
        conn.close()


def wait_until_caught_up(urls: dict[str, str], console: Console) -> float:
    """Wait until every target table has as many rows as its source table; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < CATCH_UP_SECONDS:
        pairs = [
            (pg_counts(urls["pg_source"], ["customers", "orders"]), mariadb_counts(urls["my_target"], "demo_from_pg", ["customers", "orders"])),
            (mariadb_counts(urls["my_source"], "demo_inventory", ["products", "stock_moves"]), pg_counts(urls["pg_target"], ["products", "stock_moves"])),
        ]
        if all(source == target for source, target in pairs):
            return time.monotonic() - started
        time.sleep(0.5)
    console.print(f"[yellow]targets did not catch up within {CATCH_UP_SECONDS}s; verify will say what differs[/yellow]")
    return time.monotonic() - started


def show_run_status(metrics: str, console: Console) -> None:
    """What `cdc status --run` shows of the running chain (per pipeline: state, position, lag, rates, parity)."""
    from cdc.run_status import read_run, render_table

    try:
        console.print(render_table(read_run(metrics), metrics))
    except OSError as exc:
        console.print(f"[yellow]cannot read {metrics}/metrics: {exc}[/yellow]")
    console.print(f"  live: [bold]cdc status --run {metrics} --watch[/bold]")


def run_verify(name: str, source: str, target: str, tables: str, report_dir: Path, console: Console) -> int:
    """Run `cdc verify` for one direction, showing its summary; its exit code."""
    html = report_dir / f"parity-{name}.html"
    json_path = report_dir / f"parity-{name}.json"
    command = [sys.executable, "-m", "cdc.cli", "verify", "--tables", tables,
               "--wait-for-lag", "30", "--json", str(json_path), "--html", str(html)]
    console.print(f"[bold]cdc verify[/bold] {name}")
    # the URLs hold the sandbox's password: through the environment, never on the command line
    return subprocess.run(command, env={**os.environ, "CDC_SOURCE": source, "CDC_TARGET": target}).returncode


def run_chain(endpoints: Endpoints, console: Console) -> str:
    """Seed, replicate under load, catch up, verify; a one-line summary (raises when parity fails)."""
    run_id = uuid.uuid4().hex[:6]
    prefixes = {"pg": f"demo_pg_{run_id}", "my": f"demo_my_{run_id}"}
    urls = {
        "pg_source": with_database(endpoints.pg_url, "demo_shop"),
        "pg_target": with_database(endpoints.pg_url, "demo_from_mariadb"),
        "my_source": with_database(endpoints.mysql_url, "demo_inventory"),
        "my_target": with_database(endpoints.mysql_url, "demo_from_pg"),
    }
    for name in ("demo_shop", "demo_from_mariadb"):
        recreate_pg_database(endpoints.pg_url, name)
    for name in ("demo_inventory", "demo_from_pg"):
        recreate_mariadb_database(endpoints.mysql_url, name)

    rng = random.Random(2026)
    pg_conn = psycopg.connect(urls["pg_source"], autocommit=True)
    my_conn = mariadb_connection(endpoints.mysql_url, "demo_inventory")
    pg_seed = seed_postgres(pg_conn, rng)
    my_seed = seed_mariadb(my_conn, rng)
    console.print(f"  seeded PostgreSQL demo_shop (customers, orders: {pg_seed.inserts} rows) and "
                  f"MariaDB demo_inventory (products, stock_moves: {my_seed.inserts} rows)")

    report_dir = Path(os.environ.get("CDC_DEMO_REPORT_DIR", "demo-reports")).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    config = report_dir / "cdc-demo.toml"
    metrics = f"127.0.0.1:{free_port()}"
    write_config(config, endpoints, urls, prefixes, metrics)
    log_path = report_dir / "cdc-run.log"
    console.print(f"  [bold]cdc run --config {config}[/bold]  (log: {log_path}, metrics: http://{metrics}/metrics)")
    with open(log_path, "w") as log:
        runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--config", str(config)],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        act_thread, act = drill_act.schedule(runner.pid, LOAD_SECONDS / 2, console)
        with Progress(TextColumn("  mixed write load on both sources"), BarColumn(), TextColumn("{task.fields[tx]}"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("load", total=LOAD_SECONDS, tx="")
            pg_load, my_load = run_load(
                pg_conn, my_conn, LOAD_SECONDS, LOAD_RATE, pg_counts=pg_seed, my_counts=my_seed,
                tick=lambda elapsed: progress.update(task, completed=elapsed, tx=f"{pg_seed.transactions + my_seed.transactions} transactions"))
        act_thread.join(drill_act.RESUME_TIMEOUT)
        if runner.poll() is not None:
            raise CdcError(f"cdc run exited with {runner.returncode} during the load; see {log_path}")
        console.print(f"  {act.summary()}")
        table = Table(title="write load (seed + live changes)")
        for column in ("source", "transactions", "inserts", "updates", "deletes"):
            table.add_column(column)
        table.add_row("PostgreSQL demo_shop", str(pg_load.transactions), str(pg_load.inserts), str(pg_load.updates), str(pg_load.deletes))
        table.add_row("MariaDB demo_inventory", str(my_load.transactions), str(my_load.inserts), str(my_load.updates), str(my_load.deletes))
        console.print(table)
        waited = wait_until_caught_up(urls, console)
        console.print(f"  targets caught up {waited:.1f}s after the load stopped")
        show_run_status(metrics, console)
        codes = {
            "postgresql-to-mariadb": run_verify("postgresql-to-mariadb", urls["pg_source"], urls["my_target"], "customers,orders", report_dir, console),
            "mariadb-to-postgresql": run_verify("mariadb-to-postgresql", urls["my_source"], urls["pg_target"], "products,stock_moves", report_dir, console),
        }
    finally:
        pg_conn.close()
        my_conn.close()
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGTERM)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
    for name in codes:
        console.print(f"  parity report: {report_dir / f'parity-{name}.html'}")
    failed = {name: code for name, code in codes.items() if code != 0}
    if act.error:
        raise CdcError(act.summary())
    if failed:
        raise CdcError(f"verify found differences or could not check: {failed} (exit 1 = differences, 2 = could not check)")
    return (f"both directions replicated and verified equal, nothing lost to the capture SIGKILLed mid-load; "
            f"HTML reports in {report_dir}")
