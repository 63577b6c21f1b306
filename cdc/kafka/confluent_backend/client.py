"""What every confluent-kafka client shares: configuration, option names, logging and errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import confluent_kafka as ck

from cdc.errors import KafkaError
from cdc.kafka.connection import bootstrap_servers, unreachable
from cdc.kafka.security import security_from_environment

log = logging.getLogger("cdc.kafka")
librdkafka_log = logging.getLogger("cdc.kafka.librdkafka")


class _QuietGaplessWarning(logging.Filter):
    """Drop librdkafka's start-up notice that `enable.gapless.guarantee` is experimental (we rely on it
    on purpose, see `ConfluentProducer`); every other librdkafka log line passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "enable.gapless.guarantee is experimental" not in record.getMessage()


librdkafka_log.addFilter(_QuietGaplessWarning())

BACKEND = "confluent"

# Our option names (shared with the kafka-python backend) -> librdkafka property names.
PRODUCER_OPTIONS = {
    "client_id": "client.id",
    "compression": "compression.type",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "queue_max_messages": "queue.buffering.max.messages",
    "request_timeout_ms": "request.timeout.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "transaction_timeout_ms": "transaction.timeout.ms",
    "max_message_bytes": "message.max.bytes",
}
CONSUMER_OPTIONS = {
    "client_id": "client.id",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "isolation_level": "isolation.level",
    "fetch_max_bytes": "fetch.max.bytes",
    "metadata_refresh_ms": "topic.metadata.refresh.interval.ms",
    "fetch_max_wait_ms": "fetch.wait.max.ms",
    "request_timeout_ms": "socket.timeout.ms",
}


def translate_options(options: dict, names: dict[str, str]) -> dict:
    """Map our option names to librdkafka's; dotted names pass through unchanged (escape hatch)."""
    out = {}
    for name, value in options.items():
        if name in names:
            out[names[name]] = value
        elif "." in name:
            out[name] = value
        else:
            raise KafkaError(
                f"unknown Kafka client option {name!r}",
                fix=f"use one of {', '.join(sorted(names))} or a librdkafka property name (with dots)",
            )
    return out


def common_config(bootstrap: str | Sequence[str]) -> dict:
    """What every client's configuration starts with: the brokers, logging, and TLS/SASL from CDC_KAFKA_*."""
    return {
        **security_from_environment().librdkafka_config(),
        "bootstrap.servers": bootstrap_servers(bootstrap),
        "logger": librdkafka_log,
        "error_cb": log_client_error,
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 2000,
    }


def log_client_error(error: ck.KafkaError) -> None:
    """librdkafka reports transient errors here; it retries them itself, so they are logged, not raised."""
    if error.code() == ck.KafkaError._ALL_BROKERS_DOWN:
        log.warning("no Kafka broker reachable (retrying): %s", error.str())
    else:
        log.debug("kafka client error: %s", error.str())


def check_reachable(client, bootstrap: str, timeout: float) -> ck.admin.ClusterMetadata:
    """Fetch metadata once so that a wrong address fails now, not on the first produce."""
    try:
        return client.list_topics(timeout=timeout)
    except ck.KafkaException as exc:
        raise unreachable(bootstrap, exc.args[0].str() if exc.args else str(exc)) from exc


def closed_producer(*args, **kwargs) -> None:
    raise KafkaError("the Kafka producer is closed")


def client_error(message: str, exc: BaseException) -> KafkaError:
    detail = exc.args[0].str() if isinstance(exc, ck.KafkaException) and exc.args else str(exc)
    return KafkaError(f"{message}: {detail}")
