"""The demo behind `scripts/demo.sh`: start the sandbox, replicate both ways under load, prove parity.

Each step is a function in STEPS taking the sandbox endpoints; later work appends steps (capture,
apply, verify) so `sudo bash scripts/demo.sh` always shows the whole product as far as it is built.
Run: `.venv/bin/python -m cdc.demo [--dir DIR] [--down]` (cdc/demo/__main__.py).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from cdc import sandbox
from cdc.errors import CdcError
from cdc.sandbox import Endpoints

console = Console(soft_wrap=True)  # long lines stay whole when piped to a log


@dataclass(slots=True, frozen=True)
class Step:
    """One demo step: a title and a function that does it and returns a line saying what it showed."""

    title: str
    run: Callable[[Endpoints], str]


def check_postgres(endpoints: Endpoints) -> str:
    """Write and read a row; show the settings logical replication needs."""
    from connectors.postgres.dialect import connect

    with connect(endpoints.pg_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS demo_hello (id int PRIMARY KEY, said text)")
        conn.execute("INSERT INTO demo_hello VALUES (1, 'hello from PostgreSQL') ON CONFLICT (id) DO NOTHING")
        said = conn.execute("SELECT said FROM demo_hello WHERE id = 1").fetchone()[0]
        version = conn.execute("SHOW server_version").fetchone()[0]
        wal_level = conn.execute("SHOW wal_level").fetchone()[0]
    return f"PostgreSQL {version}, wal_level={wal_level}: read back {said!r}"


def check_mariadb(endpoints: Endpoints) -> str:
    """Write and read a row; show the binlog settings and the GTID position it produced."""
    from connectors.mysql.dialect import connect

    conn = connect(endpoints.mysql_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS demo_hello (id int PRIMARY KEY, said text)")
            cursor.execute("INSERT IGNORE INTO demo_hello VALUES (1, 'hello from MariaDB')")
            cursor.execute("SELECT said FROM demo_hello WHERE id = 1")
            said = cursor.fetchone()[0]
            cursor.execute("SELECT @@version, @@binlog_format, @@binlog_row_image, @@gtid_current_pos")
            version, binlog_format, row_image, gtid = cursor.fetchone()
    finally:
        conn.close()
    return f"MariaDB {version}, binlog {binlog_format}/{row_image}, GTID {gtid}: read back {said!r}"


def check_kafka(endpoints: Endpoints) -> str:
    """Produce one message to a fresh topic and read it back."""
    from cdc.kafka import make_producer, read_topic

    topic = f"cdc-demo-{uuid.uuid4().hex[:8]}"
    with make_producer(endpoints.kafka_bootstrap) as producer:
        producer.produce(topic, b"hello from Kafka", b"hello", partition=0)
        producer.flush(15)
    # read by assignment, not as a group member: no group rebalance wait
    for record in read_topic(endpoints.kafka_bootstrap, topic, timeout=15):
        if record.value is not None:
            return f"broker {endpoints.kafka_bootstrap}: produced and consumed {record.value.decode()!r} on {topic}"
    raise CdcError(f"the message produced to {topic} did not come back within 15s")


def replicate_both_ways(endpoints: Endpoints) -> str:
    """The whole chain: PG -> Kafka -> MariaDB and MariaDB -> Kafka -> PG under load, then verify."""
    from cdc.demo.chain import run_chain

    return run_chain(endpoints, console)


def switch_and_back(endpoints: Endpoints) -> str:
    """`cdc migrate`: switch the PostgreSQL shop to MariaDB, write there, roll back, write the journal page."""
    from cdc.demo.switchover import run_switchover

    return run_switchover(endpoints, console)


STEPS: list[Step] = [
    Step("PostgreSQL answers", check_postgres),
    Step("MariaDB answers", check_mariadb),
    Step("Kafka round trip", check_kafka),
    Step("Replication both ways, then parity", replicate_both_ways),
    Step("Switch PostgreSQL -> MariaDB and back (cdc migrate)", switch_and_back),
]

NEXT = [
    ('eval "$(.venv/bin/cdc sandbox env --dir {dir})"', "CDC_PG_URL, CDC_MYSQL_URL, CDC_KAFKA_BOOTSTRAP"),
    (".venv/bin/cdc --help", "capture, apply, verify, run, ..."),
    (".venv/bin/cdc sandbox down --dir {dir}", "stop the servers (add --purge to delete their data)"),
]


def show_next(directory: str) -> None:
    """Print the commands to go on with."""
    commands = [(command.format(dir=directory), why) for command, why in NEXT]
    width = max(len(command) for command, _ in commands)
    console.print("[bold]What comes next[/bold]")
    for command, why in commands:
        console.print(f"  {command:<{width}}  # {why}", markup=False, highlight=False)


def show_status(directory: str) -> None:
    """Print the sandbox servers as a table."""
    table = Table(title="sandbox servers")
    for column in ("server", "port", "pid", "state"):
        table.add_column(column)
    for row in sandbox.status(directory):
        table.add_row(row.name, str(row.port), str(row.pid), "[green]running[/green]" if row.running else "[red]stopped")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every step worked."""
    parser = argparse.ArgumentParser(prog="python -m cdc.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=sandbox.DEFAULT_DIR, help="sandbox directory (default: %(default)s)")
    parser.add_argument("--down", action="store_true", help="stop the sandbox at the end")
    args = parser.parse_args(argv)

    console.rule("[bold]cdc demo")
    started = time.monotonic()
    try:
        result = sandbox.up(args.dir)
    except CdcError as exc:
        console.print(f"[red]sandbox failed:[/red] {exc}")
        return 1
    verb = "already running" if result.already_running else f"started in {time.monotonic() - started:.1f}s"
    console.print(f"sandbox {verb} in {result.state.dir}")
    for note in result.notes:
        console.print(note)
    show_status(args.dir)
    endpoints = result.state.endpoints()
    failures = 0
    for number, step in enumerate(STEPS, 1):
        try:
            console.print(f"[green]✓[/green] {number}. {step.title}: {step.run(endpoints)}")
        except Exception as exc:  # a demo step failing must not hide the others; the exit code reports it
            failures += 1
            console.print(f"[red]✗[/red] {number}. {step.title}: {type(exc).__name__}: {exc}")
    show_next(args.dir)
    console.print(f"demo finished in {time.monotonic() - started:.0f}s")
    if args.down:
        sandbox.down(args.dir)
        console.print(f"sandbox in {args.dir} stopped")
    return 1 if failures else 0
