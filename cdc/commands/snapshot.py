"""`cdc snapshot`: ask a running capture for an incremental snapshot of some tables, stop it, or show it."""

from __future__ import annotations

import click
import orjson

from cdc.commands.options import kafka_backend_option, kafka_option, prefix_option, source_option, tables_option
from cdc.errors import ConfigError
from cdc.incremental.kafka_signals import signals_topic
from cdc.incremental.progress import ProgressStore
from cdc.incremental.signals import DEFAULT_CHUNK_ROWS, EXECUTE, STOP, new_signal
from cdc.registry import incremental_module
from cdc.urls import parse_url


@click.command(name="snapshot")
@source_option(required=False, help="Source database URL: the signal is written there, ordered with the data.")
@kafka_option(required=False, help="Kafka bootstrap servers (for --via kafka and --status).")
@prefix_option(help="The running capture's topic prefix.")
@tables_option("Tables to snapshot (schema.table / db.table; bare names in the default schema or URL's database).")
@click.option("--where", default=None, help="SQL condition limiting the rows snapshotted (through the source only).")
@click.option("--chunk-rows", type=click.IntRange(1, 1_000_000), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows per chunk (between one pair of watermarks).")
@click.option("--max-rows-per-second", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Throttle the snapshot to this many rows/s (0: no limit).")
@click.option("--via", type=click.Choice(["source", "kafka"]), default="source", show_default=True,
              help="Where the signal travels: the source database, or the <prefix>.signals topic.")
@click.option("--stop", "stop", is_flag=True, help="Stop the running incremental snapshot.")
@click.option("--status", "status", is_flag=True, help="Show the stored progress of the incremental snapshot.")
@kafka_backend_option()
def command(source_url: str | None, kafka: str | None, prefix: str, tables: tuple[str, ...], where: str | None,
            chunk_rows: int, max_rows_per_second: float, via: str, stop: bool, status: bool,
            kafka_backend: str | None) -> None:
    """Ask the capture named --prefix for an incremental snapshot of --tables while it keeps streaming.

    \b
    Example:
      cdc snapshot --source postgresql://cdc@127.0.0.1/shop --prefix shop --tables public.orders
      cdc snapshot --kafka 127.0.0.1:9092 --via kafka --prefix shop --tables public.orders
      cdc snapshot --kafka 127.0.0.1:9092 --prefix shop --status
    """
    if status:
        if not kafka:
            raise ConfigError("--status reads the capture's progress from Kafka", fix="give --kafka")
        progress = ProgressStore(kafka, prefix, kafka_backend).load()
        click.echo(orjson.dumps(progress.to_dict() if progress else None, option=orjson.OPT_INDENT_2).decode())
        return
    if not stop and not tables:
        raise ConfigError("no table to snapshot", fix="give --tables (or --stop / --status)")
    if via == "source" and not source_url:
        raise ConfigError("--via source needs --source", fix="give --source URL, or --via kafka --kafka HOST:PORT")
    if via == "kafka" and (not kafka or where):
        raise ConfigError("--via kafka needs --kafka and takes no --where",
                          fix="give --kafka; send a conditional snapshot --via source")
    qualified = tables
    if source_url:
        namespace = incremental_module(source_url).default_namespace(parse_url(source_url, what="--source"))
        qualified = tuple(name if "." in name else f"{namespace}.{name}" for name in tables)
    elif any("." not in name for name in tables):
        raise ConfigError("without --source, name tables as schema.table / db.table")
    signal = new_signal(STOP if stop else EXECUTE, prefix, qualified, where=where, chunk_rows=chunk_rows,
                        max_rows_per_second=max_rows_per_second)
    if via == "source":
        incremental_module(source_url).send_signal(parse_url(source_url, what="--source"), signal)
    else:
        from cdc.kafka import make_admin, make_producer

        topic = signals_topic(prefix)
        with make_admin(kafka, backend=kafka_backend) as admin:
            admin.ensure_topic(topic, 1)
        producer = make_producer(kafka, backend=kafka_backend)
        try:
            producer.produce(topic, signal.to_json(), prefix.encode())
            producer.flush(30)
        finally:
            producer.close(10)
    click.echo(orjson.dumps({"signal": signal.id, "type": signal.type, "tables": list(signal.tables),
                             "via": via}).decode())
