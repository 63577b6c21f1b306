"""The confluent-kafka producer: acks=all, idempotent, murmur2 partitions, optional sparse delivery reports."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import confluent_kafka as ck

from cdc.errors import KafkaError
from cdc.kafka.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DeliveryCallback,
    DeliveryReport,
    Headers,
    Producer,
    SparseProducer,
)
from cdc.kafka.compression import default_compression
from cdc.kafka.confluent_backend.client import (
    BACKEND,
    PRODUCER_OPTIONS,
    check_reachable,
    client_error,
    closed_producer,
    common_config,
    log,
    log_client_error,
    translate_options,
)
from cdc.kafka.connection import bootstrap_servers

# librdkafka's RD_KAFKA_PARTITION_UA: let the configured partitioner choose.
_PARTITION_UNASSIGNED = -1


class ConfluentProducer(Producer, SparseProducer):
    """librdkafka producer; partitions keyed records with its Java-compatible murmur2 partitioner.

    With `sparse_reports=True` (the capture pipeline's producer) most records are produced without a
    delivery report (`produce_untracked`) and only some carry one (`produce_tracked`); the pipeline
    then infers the fate of the others from Kafka's per-partition order. That inference holds because
    such a producer is idempotent with `enable.gapless.guarantee` (a failed record that would leave a
    gap before a later acknowledged one is a fatal producer error, raised by the next call) and with
    no local message timeout (gapless does not cover timeouts; `delivery_timeout` becomes the
    pipeline's own watchdog instead, see `CapturePipeline`).
    """

    backend = BACKEND

    def __init__(
        self,
        bootstrap: str | Sequence[str],
        *,
        idempotent: bool = True,
        transactional_id: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        sparse_reports: bool = False,
        **options,
    ) -> None:
        self._bootstrap = bootstrap_servers(bootstrap)
        # Sparse delivery reports are sound only on an idempotent, non-transactional producer.
        self.sparse = bool(sparse_reports and idempotent and transactional_id is None)
        self.delivery_timeout = 120.0
        self._fatal: str | None = None
        self._failed = 0
        self._first_failure: str | None = None
        self._partitions: dict[str, int] = {}
        self.partition_counts = self._partitions  # read-only view for the pipeline: topic -> partitions
        config = common_config(bootstrap)
        config.update(
            {
                "acks": "all",
                "enable.idempotence": idempotent,
                "compression.type": default_compression(),
                "linger.ms": 5,
                # librdkafka's "murmur2" is the Java client's murmur2 (tested against cdc.kafka.partitioner).
                "partitioner": "murmur2",
                "delivery.timeout.ms": 120000,
                "on_delivery": self._count_failure,
                "error_cb": self._on_error,
            }
        )
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
            # librdkafka requires delivery.timeout.ms <= transaction.timeout.ms (default 60 s).
            config["delivery.timeout.ms"] = 60000
        config.update(translate_options(options, PRODUCER_OPTIONS))
        if self.sparse:
            self.delivery_timeout = float(config["delivery.timeout.ms"]) / 1000 or self.delivery_timeout
            config["enable.gapless.guarantee"] = True
            config["delivery.timeout.ms"] = 0  # never time out locally: the pipeline's watchdog does
            del config["on_delivery"]  # untracked records cost no Python call at all
        self.max_message_bytes = int(config.get("message.max.bytes", DEFAULT_MAX_MESSAGE_BYTES))
        if config.get("compression.type") in (None, "none"):
            config["compression.type"] = "none"
        try:
            self._producer = ck.Producer(config)
        except ck.KafkaException as exc:
            raise client_error("invalid Kafka producer configuration", exc) from exc
        self._produce = self._producer.produce
        # For the sparse pipeline's hot path: librdkafka's produce itself, called positionally (topic,
        # value, key, partition, on_delivery, callback, timestamp, headers). It raises BufferError and
        # confluent_kafka.KafkaException; `produce_untracked` is the wrapper that handles them.
        self.produce_raw = self._producer.produce if self.sparse else None
        metadata = check_reachable(self._producer, self._bootstrap, connect_timeout)
        self._remember_partitions(metadata)
        self._transactional = transactional_id is not None
        if self._transactional:
            try:
                self._producer.init_transactions(max(connect_timeout, 10.0))
            except ck.KafkaException as exc:
                raise client_error(f"cannot initialise transactions for {transactional_id!r}", exc) from exc

    def _remember_partitions(self, metadata) -> None:
        for name, topic in metadata.topics.items():
            if topic.error is None and topic.partitions:
                self._partitions[name] = len(topic.partitions)
            else:
                self._partitions.pop(name, None)

    def _on_error(self, error: ck.KafkaError) -> None:
        if error.fatal():
            self._fatal = error.str()
            log.error("kafka producer fatal error: %s", error.str())
        else:
            log_client_error(error)

    def _raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaError(
                f"the Kafka producer failed and cannot continue: {self._fatal}",
                fix="restart the job; it resends from the last acknowledged source position",
            )

    def _count_failure(self, error: ck.KafkaError | None, message: ck.Message) -> None:
        if error is not None:
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = f"{message.topic()}[{message.partition()}]: {error.str()}"

    def _report(self, callback: DeliveryCallback, error: ck.KafkaError | None, message: ck.Message) -> None:
        if error is None:
            callback(None, DeliveryReport(message.topic(), message.partition(), message.offset(), message.key()))
            return
        self._count_failure(error, message)
        callback(
            KafkaError(f"delivery to {message.topic()} failed: {error.str()}"),
            DeliveryReport(message.topic(), message.partition(), -1, message.key()),
        )

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        callback = None if on_delivery is None else functools.partial(self._report, on_delivery)
        self.produce_tracked(topic, value, key, headers, callback, partition)

    def produce_tracked(self, topic: str, value: bytes | None, key: bytes | None, headers: Headers | None,
                        callback, partition: int | None = None) -> None:
        """`produce()` for a capture hot loop: `callback(error, message)` is librdkafka's own delivery
        report (`error` a confluent_kafka.KafkaError or None), no DeliveryReport built per record;
        a failure reaches only `callback` (flush() does not count it). Partitions as `produce()`."""
        if partition is None:
            partition = 0 if key is None else _PARTITION_UNASSIGNED
        try:
            self._produce(topic, value, key, partition, callback, None, 0, headers)
        except BufferError:
            self._produce_when_room(topic, value, key, partition, callback, headers)
        except ck.KafkaException as exc:
            self._raise_if_fatal()
            raise client_error(f"cannot produce to {topic}", exc) from exc

    def produce_untracked(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                          headers: Headers | None) -> None:
        """Produce with no delivery report (sparse producers only: see the class docstring)."""
        try:
            self._produce(topic, value, key, partition, None, None, 0, headers)
        except BufferError:
            self._produce_when_room(topic, value, key, partition, None, headers)
        except ck.KafkaException as exc:
            self._raise_if_fatal()
            raise client_error(f"cannot produce to {topic}", exc) from exc

    def refresh_partitions(self, topic: str, timeout: float = 1.0) -> bool:
        """Read `topic`'s metadata again (e.g. after Kafka auto-created it); True when it is known now."""
        try:
            self._remember_partitions(self._producer.list_topics(topic, timeout=timeout))
        except ck.KafkaException as exc:
            log.debug("metadata of %s not available yet: %s", topic, exc)
        return topic in self._partitions

    def _produce_when_room(self, topic, value, key, partition, callback, headers) -> None:
        """Back-pressure: the local queue is full, so serve delivery reports until it takes the record
        (a sparse producer gives up after its delivery timeout: nothing left its queue meanwhile)."""
        deadline = time.monotonic() + self.delivery_timeout
        while True:
            self._raise_if_fatal()
            if self.sparse and time.monotonic() > deadline:
                raise KafkaError(f"Kafka at {self._bootstrap} took no record for {self.delivery_timeout:.0f}s "
                                 "(the producer's queue stayed full)",
                                 fix="check the broker; the connector resumes from the last acknowledged position")
            self._producer.poll(0.05)
            try:
                self._produce(topic, value, key, partition, callback, None, 0, headers)
                return
            except BufferError:
                continue
            except ck.KafkaException as exc:
                raise client_error(f"cannot produce to {topic}", exc) from exc

    def poll(self, timeout: float = 0.0) -> int:
        served = self._producer.poll(timeout)
        self._raise_if_fatal()
        return served

    def flush(self, timeout: float | None = None) -> None:
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        self._raise_if_fatal()
        if remaining:
            raise KafkaError(
                f"{remaining} records still unacknowledged by Kafka at {self._bootstrap} after {timeout}s",
                fix="check that the broker is up and reachable",
            )
        self._raise_delivery_failures()

    def _raise_delivery_failures(self) -> None:
        if self._failed:
            failed, first = self._failed, self._first_failure
            self._failed, self._first_failure = 0, None
            raise KafkaError(f"{failed} records failed delivery to Kafka (first: {first})")

    def partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            try:
                metadata = self._producer.list_topics(topic, timeout=DEFAULT_CONNECT_TIMEOUT)
            except ck.KafkaException as exc:
                raise client_error(f"cannot read metadata of topic {topic}", exc) from exc
            self._remember_partitions(metadata)
            count = self._partitions.get(topic)
            if count is None:
                raise KafkaError(f"topic {topic} does not exist", fix="create it first (Admin.ensure_topic)")
        return count

    def begin_transaction(self) -> None:
        self._require_transactions()
        try:
            self._producer.begin_transaction()
        except ck.KafkaException as exc:
            raise client_error("cannot begin a Kafka transaction", exc) from exc

    def commit_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.commit_transaction(-1 if timeout is None else timeout)
        except ck.KafkaException as exc:
            raise client_error("cannot commit the Kafka transaction", exc) from exc
        self._raise_delivery_failures()

    def abort_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.abort_transaction(-1 if timeout is None else timeout)
        except ck.KafkaException as exc:
            raise client_error("cannot abort the Kafka transaction", exc) from exc
        self._failed, self._first_failure = 0, None

    def _require_transactions(self) -> None:
        if not self._transactional:
            raise KafkaError("this producer has no transactions", fix="make it with transactional_id=...")

    def close(self, timeout: float | None = 10.0) -> None:
        if self._producer is None:
            return
        try:
            remaining = self._producer.flush(-1 if timeout is None else timeout)
        finally:
            self._producer = None
            self._produce = closed_producer
        if remaining:
            log.warning("kafka producer closed with %d unacknowledged records", remaining)
