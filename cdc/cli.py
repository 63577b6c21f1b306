"""The `cdc` command line: one click group; each subcommand lives in `cdc/commands/<name>.py`.

Subcommands load lazily (so `cdc --help` is fast and a broken optional dependency only affects its
own command). A subcommand whose module is not built yet answers plainly with the issue that builds it.
"""

from __future__ import annotations

import importlib
import sys

import click

from cdc import __impl__, __version__
from cdc.errors import CdcError
from cdc.logs import setup_logging

# name -> (module path, short help, what builds it when the module is missing)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("cdc.commands.run", "Run sources -> Kafka -> targets from a TOML config.", "issues 4-6"),
    "capture": ("cdc.commands.capture", "Stream a source database's changes into Kafka.", "issues 4 and 5 (sources)"),
    "apply": ("cdc.commands.apply", "Apply a Kafka change stream to a target database.", "issue 6 (apply workers)"),
    "verify": ("cdc.commands.verify", "Compare source and target tables and write a parity report.", "issue 7 (verify)"),
    "verify-schedule": ("cdc.commands.verify_schedule", "Repeat a [[verify]] parity check of a config on its schedule.",
                        "issue 17 (monitoring)"),
    "status": ("cdc.commands.status", "Show slots, positions, lag and consumer offsets.", "issues 4-6"),
    "cutover": ("cdc.commands.cutover", "Drain, verify and switch writers to the target (and back).", "a later cutover issue"),
    "drill": ("cdc.commands.drill", "Inject faults under a ledger load; prove nothing is lost.", "issue 16 (drills)"),
    "tail": ("cdc.commands.tail", "Print change events from Kafka as they arrive.", "issues 4 and 5 (sources)"),
    "sandbox": ("cdc.commands.sandbox", "Start/stop throwaway PostgreSQL, MariaDB and Kafka servers.", "issue 3 (foundation)"),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_path, short_help, built_by = COMMANDS[name]
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name != module_path:
                raise
            return _not_built(name, short_help, built_by)
        return getattr(module, "command")


def _not_built(name: str, short_help: str, built_by: str) -> click.Command:
    @click.command(name=name, short_help=f"{short_help} [not built yet]", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args: tuple[str, ...]) -> None:
        click.echo(f"cdc {name}: not built yet; it comes with {built_by}.", err=True)
        sys.exit(2)

    stub.help = f"{short_help}\n\nNot built yet: it comes with {built_by}."
    return stub


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message=f"cdc %(version)s (decoder: {__impl__})")
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human", envvar="CDC_LOG_FORMAT",
              show_default=True, help="Log lines as text or as one JSON object per line.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              envvar="CDC_LOG_LEVEL", show_default=True)
def cli(log_format: str, log_level: str) -> None:
    """Change-data-capture: PostgreSQL / MySQL / MariaDB -> Kafka -> PostgreSQL / MySQL / MariaDB.

    \b
    Example:
      cdc sandbox up && eval "$(cdc sandbox env)"
      CDC_SOURCE="$CDC_PG_URL" cdc capture --kafka "$CDC_KAFKA_BOOTSTRAP" --prefix shop --tables public.orders
    """
    setup_logging(log_format, log_level)


def main() -> None:
    """Entry point: run the CLI, turning project errors into a message and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except CdcError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
