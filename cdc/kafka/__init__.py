"""Kafka clients behind one small interface, with two backends chosen by configuration.

    producer = make_producer("127.0.0.1:9092")            # confluent-kafka, acks=all, idempotent
    producer.produce("shop.public.orders", value, key, on_delivery=callback)
    producer.flush()

    consumer = make_consumer("127.0.0.1:9092", group_id="apply", pattern=r"^shop\\..*",
                             on_assign=lambda c, parts: [c.seek(t, p, stored[t, p]) for t, p in parts])
    for record in consumer.consume(max_records=500, timeout=1.0): ...
    consumer.commit()

    latest = latest_by_key("127.0.0.1:9092", "shop.schemas")  # a compacted topic as compaction keeps it
    records = read_topic("127.0.0.1:9092", "shop.dlq", missing_ok=True)  # a whole topic, no group join

Modules: base.py (the interface), backends.py (which backend), reader.py (whole-topic reads),
group_join.py (a quick first assignment: the broker's lowest session timeout, topics before subscribing),
headers.py (record header names), confluent_backend/ and kafka_python_backend.py (the backends).

Backend: `backend="confluent"` (default, librdkafka) or `"kafka-python"` (pure Python), else the
`CDC_KAFKA_BACKEND` environment variable. Keyed records go to murmur2(key) % partitions exactly as
the Java client does (cdc.kafka.partitioner); a None key goes to partition 0. Every failure to reach
or use the broker is a `cdc.errors.KafkaError`.

Common options (keyword arguments, same names on both backends):
  producer: client_id, compression ("lz4" | "none"; default lz4 when the lz4 package is installed),
            linger_ms (5), batch_size, queue_max_messages (records in flight before produce() waits),
            request_timeout_ms, delivery_timeout_ms, transaction_timeout_ms, connect_timeout (s, 5).
  consumer: client_id, session_timeout_ms, heartbeat_interval_ms, max_poll_interval_ms,
            isolation_level ("read_committed" default | "read_uncommitted"), fetch_max_bytes,
            fetch_max_wait_ms, metadata_refresh_ms (pattern subscriptions see new topics; 5000),
            request_timeout_ms, connect_timeout.
  Escape hatches: librdkafka property names (with dots) on confluent; kafka-python keyword names there.
  tansu (the sandbox broker) answers a group's JoinGroup only after the rebalance timeout, which is
  max_poll_interval_ms: keep that small (3000-10000) against it or the first records wait that long.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from cdc.errors import ConfigError
from cdc.kafka.backends import backend_module, choose_backend
from cdc.kafka.base import (
    BACKENDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    Admin,
    Consumer,
    DeliveryCallback,
    DeliveryReport,
    Producer,
    RebalanceCallback,
    Record,
    SparseProducer,
    TopicPartition,
    TopicSpec,
)
from cdc.kafka.partitioner import murmur2, partition_for
from cdc.kafka.reader import has_records, latest_by_key, read_topic

log = logging.getLogger("cdc.kafka")

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Admin",
    "Consumer",
    "DeliveryCallback",
    "DeliveryReport",
    "Producer",
    "RebalanceCallback",
    "Record",
    "SparseProducer",
    "TopicPartition",
    "TopicSpec",
    "check_broker",
    "check_message_limit",
    "choose_backend",
    "has_records",
    "latest_by_key",
    "make_admin",
    "make_consumer",
    "make_producer",
    "murmur2",
    "partition_for",
    "read_topic",
]


def make_producer(
    bootstrap: str | Sequence[str],
    *,
    backend: str | None = None,
    idempotent: bool = True,
    transactional_id: str | None = None,
    **options,
) -> Producer:
    """A producer with acks=all (idempotent unless told otherwise); KafkaError if the broker is unreachable."""
    return backend_module(backend).make_producer(
        bootstrap, idempotent=idempotent, transactional_id=transactional_id, **options
    )


def make_capture_producer(bootstrap: str | Sequence[str], *, backend: str | None = None,
                          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Producer:
    """The capture pipeline's producer: idempotent, with sparse delivery reports where the backend can
    (see `cdc.pipeline`); `CDC_DELIVERY_REPORTS=every` asks for a report per record instead.

    `max_message_bytes` is the largest record it sends; ConfigError when the broker reports a smaller
    `message.max.bytes` (the broker would refuse what the client lets through)."""
    check_message_limit(bootstrap, max_message_bytes, backend=backend)
    every = os.environ.get("CDC_DELIVERY_REPORTS", "sparse").strip().lower() == "every"
    return make_producer(bootstrap, backend=backend, sparse_reports=not every, max_message_bytes=max_message_bytes)


def check_message_limit(bootstrap: str | Sequence[str], max_message_bytes: int, *, backend: str | None = None) -> None:
    """ConfigError when `max_message_bytes` is out of range or over the broker's `message.max.bytes`."""
    if not 1000 <= max_message_bytes <= 1_000_000_000:
        raise ConfigError(f"--max-message-bytes {max_message_bytes} is not between 1000 and 1000000000")
    with make_admin(bootstrap, backend=backend) as admin:
        broker_limit = admin.message_size_limit()
    if broker_limit is None:
        log.info("the broker does not report message.max.bytes; using --max-message-bytes as given",
                 extra={"max_message_bytes": max_message_bytes})
    elif max_message_bytes > broker_limit:
        raise ConfigError(
            f"--max-message-bytes {max_message_bytes} is over the broker's message.max.bytes ({broker_limit})",
            fix=f"lower --max-message-bytes to at most {broker_limit}, or raise message.max.bytes on the broker"
                " (and max.message.bytes of the topics, replica.fetch.max.bytes)")


def make_consumer(
    bootstrap: str | Sequence[str],
    *,
    group_id: str,
    topics: Sequence[str] | None = None,
    pattern: str | None = None,
    backend: str | None = None,
    on_assign: RebalanceCallback | None = None,
    on_revoke: RebalanceCallback | None = None,
    auto_offset_reset: str = "earliest",
    **options,
) -> Consumer:
    """A consumer-group member subscribed to `topics` or to the regex `pattern`; commits are manual."""
    if (topics is None) == (pattern is None):
        raise ConfigError("make_consumer needs exactly one of topics= or pattern=")
    return backend_module(backend).make_consumer(
        bootstrap,
        group_id=group_id,
        topics=list(topics) if topics is not None else None,
        pattern=pattern,
        on_assign=on_assign,
        on_revoke=on_revoke,
        auto_offset_reset=auto_offset_reset,
        **options,
    )


def make_admin(bootstrap: str | Sequence[str], *, backend: str | None = None, **options) -> Admin:
    """An admin client for topics and watermarks; KafkaError if the broker is unreachable."""
    return backend_module(backend).make_admin(bootstrap, **options)


def check_broker(bootstrap: str, *, timeout: float = 2.0, backend: str | None = None) -> None:
    """Return once the broker answers a metadata request within `timeout` seconds; KafkaError if not."""
    with make_admin(bootstrap, backend=backend, connect_timeout=timeout):
        pass
