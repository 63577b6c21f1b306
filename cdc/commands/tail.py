"""`cdc tail`: print change events from Kafka as they arrive (one JSON line each, or a short summary)."""

from __future__ import annotations

import re
import signal
import threading
import uuid

import click
import orjson

from cdc.commands.options import (kafka_backend_option, kafka_option, kafka_security_options, prefix_option,
                                  tables_option)
from cdc.envelope.topics import table_topic
from cdc.kafka import make_consumer
from cdc.tables import split_table_entry


def format_record(record, *, summary: bool) -> str:
    """One output line for a Kafka record: the full JSON, or `topic[partition]@offset op key`."""
    key = record.key.decode("utf-8", "replace") if record.key is not None else "null"
    if record.value is None:
        value_text = "null (tombstone)"
        op = "-"
    else:
        value_text = record.value.decode("utf-8", "replace")
        try:
            op = orjson.loads(record.value).get("op", "?")
        except (orjson.JSONDecodeError, AttributeError):
            op = "?"
    head = f"{record.topic}[{record.partition}]@{record.offset}"
    if summary:
        return f"{head} op={op} key={key}"
    return f"{head} key={key} value={value_text}"


@click.command("tail")
@kafka_option()
@prefix_option(help="Topic prefix given to `cdc capture`.")
@tables_option("Only these tables (schema.table).")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained event instead of the newest.")
@click.option("--summary", is_flag=True, help="One short line per event instead of the full JSON.")
@click.option("--max-events", type=int, default=0, help="Stop after this many events (0 = run until Ctrl-C).")
@kafka_backend_option()
@kafka_security_options()
def command(kafka: str, prefix: str, tables: tuple[str, ...], from_beginning: bool, summary: bool,
            max_events: int, kafka_backend: str | None) -> None:
    """Print the change events of a prefix as they arrive. Commits nothing (a throwaway group).

    \b
    Example:
      cdc tail --kafka 127.0.0.1:9092 --prefix shop --tables public.orders --summary
    """
    if tables:
        topics = [table_topic(prefix, *split_table_entry(table)) for table in tables]
        pattern = "^(" + "|".join(re.escape(topic) for topic in topics) + ")$"
    else:
        pattern = "^" + re.escape(prefix) + r"\..*"
    consumer = make_consumer(
        kafka, group_id=f"cdc-tail-{uuid.uuid4().hex[:8]}", pattern=pattern, backend=kafka_backend,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=6000, max_poll_interval_ms=6000,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    try:
        while not stop.is_set():
            for record in consumer.consume(max_records=500, timeout=0.5):
                click.echo(format_record(record, summary=summary))
                seen += 1
                if max_events and seen >= max_events:
                    return
    finally:
        consumer.close()
