"""`cdc capture`: stream one source database's changes into Kafka until SIGINT/SIGTERM."""

from __future__ import annotations

import click

from cdc.commands.options import (kafka_backend_option, kafka_option, kafka_security_options, metrics_option,
                                  prefix_option, source_option,
                                  tables_option)
from cdc.errors import ConfigError
from cdc.gc_tuning import collect_less_often
from cdc.kafka import DEFAULT_MAX_MESSAGE_BYTES
from cdc.pipeline import SNAPSHOT_MODES, CaptureOptions, StopSignal
from cdc.registry import source_module


@click.command(name="capture")
@source_option(old_envvar="CDC_SOURCE_URL")
@kafka_option()
@prefix_option(help="Topic prefix (Debezium's topic.prefix / server name).")
@tables_option("Tables to capture, e.g. public.orders,public.items.")
@click.option("--include", default=None, help="Regular expression on schema.table (db.table) of tables to capture.")
@click.option("--snapshot", type=click.Choice(SNAPSHOT_MODES), default="initial", show_default=True,
              help="initial: snapshot then stream; never: stream only; initial_only: snapshot then exit; "
                   "when_needed: snapshot when no usable position exists.")
@click.option("--slot", default=None, help="PG replication slot name [default: cdc_<prefix>].")
@click.option("--publication", default=None, help="PG publication name [default: cdc_<prefix>].")
@click.option("--failover-slot/--no-failover-slot", "failover_slot", default=None,
              help="PG: make the slot a failover slot, which standbys with sync_replication_slots = on copy, so "
                   "capture resumes on a promoted standby [default: on for PostgreSQL 17+].")
@click.option("--keyless", type=click.Choice(["refuse", "insert-only"]), default="refuse", show_default=True,
              help="PG: a table without a primary key and with REPLICA IDENTITY DEFAULT/NOTHING (whose UPDATE/DELETE "
                   "the server refuses once published): refuse to start, or capture its inserts only "
                   "(a second publication, publish = 'insert, truncate').")
@click.option("--compat", type=click.Choice(["none", "debezium"]), default="none", show_default=True,
              help="Value encodings: readable (none) or exactly Debezium 3.6's (debezium).")
@click.option("--heartbeat-interval", type=float, default=10.0, show_default=True,
              help="Seconds between heartbeats (0 disables).")
@click.option("--snapshot-workers", type=int, default=2, show_default=True, help="Parallel snapshot connections.")
@click.option("--snapshot-chunk", type=int, default=10_000, show_default=True, help="Rows per snapshot query.")
@click.option("--server-id", type=int, default=None,
              help="MySQL/MariaDB: replica server id of the binlog connection [default: derived from --prefix].")
@click.option("--status-interval", type=float, default=1.0, show_default=True,
              help="Seconds between source acknowledgements (PG standby status updates / MySQL offsets).")
@click.option("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES, show_default=True,
              help="Largest Kafka record (librdkafka message.max.bytes / kafka-python max_request_size); checked"
                   " against the broker's limit at start. A larger event stops the capture (exit code 65).")
@click.option("--max-spool-bytes", type=click.IntRange(1024 * 1024), default=None,
              help="PostgreSQL: most bytes one streamed in-progress transaction may spool to a temporary file"
                   " [default: 16 GiB]; more stops the capture (exit code 65).")
@kafka_backend_option()
@kafka_security_options()
@metrics_option("Serve Prometheus /metrics (events per table, lag, Kafka acknowledgements, snapshot progress, "
                "source WAL/binlog lag) on HOST:PORT (or PORT, on 127.0.0.1).")
def command(source_url: str, kafka: str, prefix: str, tables: tuple[str, ...], include: str | None, snapshot: str,
            slot: str | None, publication: str | None, compat: str, heartbeat_interval: float,
            snapshot_workers: int, snapshot_chunk: int, kafka_backend: str | None,
            server_id: int | None = None, status_interval: float = 1.0, metrics: str = "",
            max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, max_spool_bytes: int | None = None,
            keyless: str = "refuse", failover_slot: bool | None = None) -> None:
    """Stream a source database's changes into Kafka (Debezium-compatible events) until stopped.

    Runs until SIGINT/SIGTERM, then flushes Kafka, acknowledges the source position and exits 0.

    \b
    Example:
      cdc capture --source postgresql://cdc@127.0.0.1:5432/shop --kafka 127.0.0.1:9092 \\
                  --prefix shop --tables public.orders,public.items --snapshot initial
    """
    if tables and include:
        raise ConfigError("--tables and --include are alternatives", fix="give one of them")
    options = CaptureOptions(
        source=source_url,
        kafka=kafka,
        prefix=prefix,
        tables=tables,
        include=include,
        snapshot=snapshot,
        slot=slot,
        publication=publication,
        compat=compat,
        heartbeat_interval=heartbeat_interval,
        snapshot_workers=max(1, snapshot_workers),
        snapshot_chunk=max(1, snapshot_chunk),
        status_interval=status_interval,
        kafka_backend=kafka_backend,
        max_message_bytes=max_message_bytes,
        extra={"keyless": keyless, **{name: value for name, value in (("server_id", server_id),
                                                                      ("max_spool_bytes", max_spool_bytes),
                                                                      ("failover_slot", failover_slot))
                                      if value is not None}},
    )
    connector = source_module(source_url)
    server = watch = None
    if metrics:
        from cdc.capture_metrics import watch_capture

        server, watch = watch_capture(metrics, source_url, prefix, slot)
    try:
        collect_less_often()
        with StopSignal() as stop:
            connector.run_capture(options, stop)
    finally:
        if watch is not None:
            watch.stop()
        if server is not None:
            server.shutdown()
