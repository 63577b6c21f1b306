"""`cdc apply`: consume a prefix's change topics and write them into a target database."""

from __future__ import annotations

import logging
import os
import sys

import click

from cdc.apply.dlq import POLICIES
from cdc.apply.target import DROP_POLICIES
from cdc.apply.worker import CONSISTENCY_MODES, ApplyOptions, run_workers
from cdc.commands.options import (kafka_backend_option, kafka_option, kafka_security_options, prefix_option,
                                  tables_option, target_option)


@click.command(name="apply")
@kafka_option()
@prefix_option(help="Topic prefix the capture side writes (topics <prefix>.*).")
@target_option()
@tables_option("Only these tables (`table` or `schema.table`, globs allowed).")
@click.option("--create-tables", is_flag=True,
              help="Create missing target tables from <prefix>.schemas (see docs/type-mapping.md).")
@click.option("--drop-columns", type=click.Choice(DROP_POLICIES), default="keep", show_default=True,
              help="When a source column is dropped: keep the target column (made nullable) or drop it.")
@click.option("--group", default="", help="Consumer group id [default: cdc-apply-<prefix>].")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the partitions.")
@click.option("--on-error", type=click.Choice(POLICIES), default="stop", show_default=True,
              help="Bad event or unwritable table: stop with its position, table and reason; send the event to "
                   "<prefix>.dlq and go on; or (skip-table) park its table and keep the others flowing.")
@click.option("--consistency", type=click.Choice(CONSISTENCY_MODES), default="batch", show_default=True,
              help="batch: rows in batches per table; transaction: each source transaction atomically.")
@click.option("--max-transaction-bytes", type=click.IntRange(1024), default=256 * 1024 * 1024, show_default=True,
              help="--consistency transaction: most bytes of events held while their transactions are open; a"
                   " larger transaction stops apply with an error (docs/security.md).")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=10000, show_default=True,
              help="Records per target transaction (at most).")
@click.option("--linger-ms", type=click.IntRange(0, 60_000), default=200, show_default=True,
              help="How long to wait for a batch to fill.")
@click.option("--session-timeout-ms", type=click.IntRange(1000, 600_000), default=None,
              help="Consumer-group session timeout: how fast a dead worker's partitions move [default: the lowest"
                   " the broker accepts: its group.min.session.timeout.ms (6 s on Apache Kafka), else 3 s; on"
                   " tansu the group join takes about half of it].")
@click.option("--max-poll-interval-ms", type=click.IntRange(1000, 3_600_000), default=60_000, show_default=True,
              help="Longest time a batch may take before the worker is considered stuck.")
@click.option("--metrics", "metrics", default="", metavar="LISTEN",
              help="Serve Prometheus /metrics and /healthz on HOST:PORT (or PORT, on 127.0.0.1); with --workers N,"
                   " worker n listens on PORT+n.")
@click.option("--idle-exit", type=float, default=None, metavar="SECONDS",
              help="Stop after this many seconds without records (one-shot catch-up).")
@kafka_backend_option()
@kafka_security_options()
@click.pass_context
def command(ctx: click.Context, kafka: str, prefix: str, target_url: str, tables: tuple[str, ...], create_tables: bool,
            drop_columns: str, group: str, workers: int, on_error: str, consistency: str, batch_size: int,
            linger_ms: int, session_timeout_ms: int | None, max_poll_interval_ms: int, metrics: str,
            idle_exit: float | None, kafka_backend: str | None, max_transaction_bytes: int = 256 * 1024 * 1024) -> None:
    """Apply a Kafka change stream to a target database, exactly once in effect.

    Each batch of rows and its Kafka offsets (table cdc_offsets in the target) commit in one target
    transaction; a restart resumes from the stored offsets.

    \b
    Example:
      cdc apply --kafka 127.0.0.1:9092 --prefix shop \\
                --target postgresql://postgres@127.0.0.1:5432/replica --create-tables --workers 2
    """
    if kafka_backend:
        os.environ["CDC_KAFKA_BACKEND"] = kafka_backend  # read by every worker process's Kafka client
    options = ApplyOptions(
        kafka=kafka, prefix=prefix, target=target_url, group=group, tables=tables, create_tables=create_tables,
        drop_columns=drop_columns, on_error=on_error, consistency=consistency, workers=workers,
        batch_size=batch_size, linger_ms=linger_ms, session_timeout_ms=session_timeout_ms,
        max_poll_interval_ms=max_poll_interval_ms, idle_exit_s=idle_exit, metrics=metrics,
        max_transaction_bytes=max_transaction_bytes,
    )
    options.check()
    root = ctx.find_root().params
    level = logging.getLevelName(logging.getLogger("cdc").level).lower()
    code = run_workers(options, log_format=root.get("log_format", "human"), log_level=root.get("log_level", level))
    if code:
        sys.exit(code)
