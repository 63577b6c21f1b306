"""`cdc verify`: compare source and target tables and write a parity report."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cdc.commands.options import source_option, split_names, tables_option, target_option
from cdc.errors import CdcError


@click.command(name="verify")
@source_option(old_envvar="CDC_VERIFY_SOURCE")
@target_option(old_envvar="CDC_VERIFY_TARGET")
@tables_option("Tables to compare; default: all tables of the source schema/database.")
@click.option("--where", help="SQL condition applied on both sides (must be valid on both engines).")
@click.option("--columns", multiple=True, help="Compare only these columns (`col` or `table.col`); keys always.")
@click.option("--exclude-columns", multiple=True, help="Do not compare these columns (`col` or `table.col`).")
@click.option("--float-tolerance", type=float, help="Floats within this absolute or relative difference are equal.")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Connections per database for segment checksums.")
@click.option("--threshold", type=click.IntRange(1), default=1000, show_default=True,
              help="Differing segments above this many rows are split further before rows are fetched.")
@click.option("--segment-rows", type=click.IntRange(1), default=20000, show_default=True,
              help="Approximate rows per first-level segment (integer keys).")
@click.option("--max-diffs", type=click.IntRange(1), default=1000, show_default=True,
              help="Rows listed per table before verify stops fetching differing segments.")
@click.option("--wait-for-lag", type=float, metavar="SECONDS",
              help="Wait up to SECONDS for replication to reach the source's current position first.")
@click.option("--recheck-delay", type=float, default=2.0, show_default=True, metavar="SECONDS",
              help="Re-check differing rows after this delay; those that converge are reported in flight (0: off).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the JSON report here (mode 0600; `-`: to stdout, the summary then goes to stderr).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report here (mode 0600).")
@click.option("--quiet", is_flag=True, help="No terminal summary or progress (exit code and files only).")
def command(source_url, target_url, tables, where, columns, exclude_columns, float_tolerance, workers, threshold,
            segment_rows, max_diffs, wait_for_lag, recheck_delay, json_path, html_path, quiet) -> None:
    """Compare source and target tables; exit 0 parity, 1 differences, 2 could not check.

    Counts and checksums of key ranges are computed inside each database over a canonical row text
    that PostgreSQL and MySQL/MariaDB spell identically; differing ranges are bisected down to rows,
    which are then diffed exactly (missing, extra, changed columns). See docs/verify.md.

    \b
    Example:
      export CDC_SOURCE="postgresql://app:$PW@pg1/shop" CDC_TARGET="mysql://app:$PW@db2/shop"
      cdc verify --tables orders,customers --wait-for-lag 60 --json parity.json --html parity.html
    """
    from cdc.verify.parity import failed_report, verify
    from cdc.verify.plan import VerifyOptions
    from cdc.verify.report import json_bytes, print_summary, report_dict, write_html, write_json

    options = VerifyOptions(
        tables=tables, where=where, columns=split_names(columns), exclude_columns=split_names(exclude_columns),
        float_tolerance=float_tolerance, workers=workers, threshold=threshold, segment_rows=segment_rows,
        max_diffs=max_diffs, recheck_delay=recheck_delay, wait_for_lag=wait_for_lag,
    )
    to_stdout = json_path == "-"  # the report is the output; the human summary goes to stderr
    terminal = (sys.stderr if to_stdout else sys.stdout).isatty()
    console = Console(stderr=to_stdout) if terminal else Console(stderr=to_stdout, width=160)
    try:
        if quiet or not console.is_terminal:
            report = verify(source_url, target_url, options)
        else:
            with Progress(SpinnerColumn(), BarColumn(), MofNCompleteColumn(), TextColumn("tables"),
                          TimeElapsedColumn(), TextColumn("{task.description}"),
                          console=console, transient=True) as progress:
                task = progress.add_task("connecting", total=None)

                def show(table: str, message: str, total: int | None = None) -> None:
                    if total is not None:
                        progress.update(task, total=total)
                    elif message == "done":
                        progress.advance(task)
                    else:
                        progress.update(task, description=f"{table}: {message}" if table else message)

                report = verify(source_url, target_url, options, progress=show)
    except CdcError as exc:
        report = failed_report(source_url, target_url, options, str(exc))
    data = report_dict(report)  # the one report: JSON, HTML and the summary all render from it
    if to_stdout:
        sys.stdout.flush()
        sys.stdout.buffer.write(json_bytes(data))
        sys.stdout.buffer.flush()
    elif json_path:
        write_json(data, json_path)
    if html_path:
        write_html(data, html_path)
    if not quiet:
        print_summary(data, console)
    if report.error and quiet:
        click.echo(f"error: {report.error}", err=True)
    sys.exit(report.exit_code)
