"""`cdc status`: where each part of the chain stands: source slots/positions, Kafka topics, apply offsets;
or, with `--run`, each pipeline of a running `cdc run` read from its /metrics (`--watch`: live)."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from cdc.commands.options import (
    json_option, kafka_backend_option, kafka_option, kafka_security_options, prefix_option, source_option,
    target_option, write_json_text,
)
from cdc.registry import status_module
from cdc.urls import parse_url


def apply_lag(offsets: list[tuple[str, str, int, int]], end_offsets: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    """Per (group, topic, partition): stored next offset, Kafka's end offset and how many events are behind."""
    return [
        {"group": group, "topic": topic, "partition": partition, "next_offset": next_offset,
         "end_offset": end_offsets.get((topic, partition)),
         "behind": max(0, end_offsets[(topic, partition)] - next_offset) if (topic, partition) in end_offsets else None}
        for group, topic, partition, next_offset in offsets
    ]


def kafka_topics(bootstrap: str, prefix: str, backend: str | None = None) -> dict[tuple[str, int], int]:
    """End offsets of every partition of the prefix's topics."""
    from cdc.kafka import make_admin

    admin = make_admin(bootstrap, backend=backend)
    ends: dict[tuple[str, int], int] = {}
    for topic in sorted(admin.list_topics()):
        if topic.startswith(prefix + ".") or topic.endswith("." + prefix):
            for partition, offset in admin.end_offsets(topic).items():
                ends[(topic, partition)] = offset
    return ends


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in rows[0] if rows else ["(none)"]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row.values()))
    return table


@click.command("status")
@source_option(required=False, multiple=True, help="A source database URL; repeatable.")
@target_option(required=False, multiple=True, help="A target database URL; repeatable.")
@kafka_option(required=False)
@prefix_option(required=False, help="Topic prefix (with --kafka: list its topics and how far apply is behind).")
@json_option("Write one JSON document instead of printing tables.")
@kafka_backend_option()
@kafka_security_options()
@click.option("--run", "run", metavar="HOST:PORT", envvar="CDC_RUN",
              help="A running `cdc run`'s [metrics] listen address: per pipeline state, position, lag, events/s, "
                   "last parity check. [env CDC_RUN]")
@click.option("--watch", is_flag=True, help="With --run: a live table, refreshed every 2 s, until Ctrl-C.")
def command(sources: tuple[str, ...], targets: tuple[str, ...], kafka: str | None, prefix: str | None,
            json_path: str | None, kafka_backend: str | None, run: str | None = None, watch: bool = False) -> None:
    """Show slots and positions of sources, the prefix's Kafka topics, and apply progress of targets.

    With --run HOST:PORT: each pipeline of a running `cdc run` instead (from its /metrics).

    \b
    Example:
      cdc status --source "$CDC_PG_URL" --target "$CDC_MYSQL_URL" --kafka "$CDC_KAFKA_BOOTSTRAP" --prefix shop
      cdc status --run 127.0.0.1:9187 --watch
    """
    if watch and not run:
        raise click.UsageError("--watch needs --run HOST:PORT (the [metrics] listen address of cdc run)")
    if run:
        show_run(run, watch=watch, json_path=json_path)
        return
    report: dict[str, Any] = {"sources": {}, "kafka": [], "targets": {}, "target_tables": {}}
    for url in sources:
        report["sources"][parse_url(url).redacted()] = status_module(url).source_status(url)
    ends = kafka_topics(kafka, prefix, kafka_backend) if kafka and prefix else {}
    report["kafka"] = [{"topic": t, "partition": p, "end_offset": o} for (t, p), o in sorted(ends.items())]
    for url in targets:
        report["targets"][parse_url(url).redacted()] = apply_lag(status_module(url).target_offsets(url), ends)
        report["target_tables"][parse_url(url).redacted()] = status_module(url).target_table_states(url)
    if json_path is not None:
        write_json_text(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode(), json_path)
        return
    console = Console()
    for name, rows in report["sources"].items():
        console.print(_table(f"source {name}", rows))
    if report["kafka"]:
        console.print(_table(f"kafka topics of {prefix}", report["kafka"]))
    for name, rows in report["targets"].items():
        console.print(_table(f"apply progress into {name}", rows))
    for name, rows in report["target_tables"].items():
        if rows:
            console.print(_table(f"keyless positions and parked tables in {name}", rows))


def show_run(run: str, *, watch: bool, json_path: str | None) -> None:
    """`cdc status --run`: the pipelines of a running `cdc run`, once (table or JSON) or live."""
    from cdc.errors import CdcError
    from cdc.run_status import metrics_url, read_run, render_table
    from cdc.run_status import watch as watch_run

    console = Console()
    if watch:
        try:
            watch_run(run, console)
        except KeyboardInterrupt:
            pass
        return
    try:
        rows = read_run(run)
    except OSError as exc:
        raise CdcError(f"cannot read {metrics_url(run)}: {exc}",
                       fix="pass the [metrics] listen address of a running `cdc run` to --run") from None
    if json_path is not None:
        document = {"run": metrics_url(run), "pipelines": [row.as_dict() for row in rows]}
        write_json_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(), json_path)
        return
    console.print(render_table(rows, run))
