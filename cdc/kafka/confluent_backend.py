"""confluent-kafka (librdkafka) backend: the default, fast one."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Sequence

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from cdc.errors import KafkaError
from cdc.kafka.base import (
    DEFAULT_CONNECT_TIMEOUT,
    Admin,
    Consumer,
    DeliveryCallback,
    DeliveryReport,
    Headers,
    Producer,
    RebalanceCallback,
    Record,
    TopicPartition,
    TopicSpec,
)
from cdc.kafka.compression import default_compression
from cdc.kafka.connection import bootstrap_servers, unreachable

log = logging.getLogger("cdc.kafka")
_librdkafka_log = logging.getLogger("cdc.kafka.librdkafka")


class _QuietGaplessWarning(logging.Filter):
    """Drop librdkafka's start-up notice that `enable.gapless.guarantee` is experimental (we rely on it
    on purpose, see `ConfluentProducer`); every other librdkafka log line passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "enable.gapless.guarantee is experimental" not in record.getMessage()


_librdkafka_log.addFilter(_QuietGaplessWarning())

BACKEND = "confluent"

# librdkafka's RD_KAFKA_PARTITION_UA: let the configured partitioner choose.
_PARTITION_UNASSIGNED = -1

# Our option names (shared with the kafka-python backend) -> librdkafka property names.
_PRODUCER_OPTIONS = {
    "client_id": "client.id",
    "compression": "compression.type",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "queue_max_messages": "queue.buffering.max.messages",
    "request_timeout_ms": "request.timeout.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "transaction_timeout_ms": "transaction.timeout.ms",
}
_CONSUMER_OPTIONS = {
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


def _translate(options: dict, names: dict[str, str]) -> dict:
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


def _common_config(bootstrap: str | Sequence[str]) -> dict:
    return {
        "bootstrap.servers": bootstrap_servers(bootstrap),
        "logger": _librdkafka_log,
        "error_cb": _log_client_error,
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 2000,
    }


def _log_client_error(error: ck.KafkaError) -> None:
    """librdkafka reports transient errors here; it retries them itself, so they are logged, not raised."""
    if error.code() == ck.KafkaError._ALL_BROKERS_DOWN:
        log.warning("no Kafka broker reachable (retrying): %s", error.str())
    else:
        log.debug("kafka client error: %s", error.str())


def _check_reachable(client, bootstrap: str, timeout: float) -> ck.admin.ClusterMetadata:
    """Fetch metadata once so that a wrong address fails now, not on the first produce."""
    try:
        return client.list_topics(timeout=timeout)
    except ck.KafkaException as exc:
        raise unreachable(bootstrap, exc.args[0].str() if exc.args else str(exc)) from exc


def _closed(*args, **kwargs) -> None:
    raise KafkaError("the Kafka producer is closed")


def _error(message: str, exc: BaseException) -> KafkaError:
    detail = exc.args[0].str() if isinstance(exc, ck.KafkaException) and exc.args else str(exc)
    return KafkaError(f"{message}: {detail}")


class ConfluentProducer(Producer):
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
        config = _common_config(bootstrap)
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
        config.update(_translate(options, _PRODUCER_OPTIONS))
        if self.sparse:
            self.delivery_timeout = float(config["delivery.timeout.ms"]) / 1000 or self.delivery_timeout
            config["enable.gapless.guarantee"] = True
            config["delivery.timeout.ms"] = 0  # never time out locally: the pipeline's watchdog does
            del config["on_delivery"]  # untracked records cost no Python call at all
        if config.get("compression.type") in (None, "none"):
            config["compression.type"] = "none"
        try:
            self._producer = ck.Producer(config)
        except ck.KafkaException as exc:
            raise _error("invalid Kafka producer configuration", exc) from exc
        self._produce = self._producer.produce
        # For the sparse pipeline's hot path: librdkafka's produce itself, called positionally (topic,
        # value, key, partition, on_delivery, callback, timestamp, headers). It raises BufferError and
        # confluent_kafka.KafkaException; `produce_untracked` is the wrapper that handles them.
        self.produce_raw = self._producer.produce if self.sparse else None
        metadata = _check_reachable(self._producer, self._bootstrap, connect_timeout)
        self._remember_partitions(metadata)
        self._transactional = transactional_id is not None
        if self._transactional:
            try:
                self._producer.init_transactions(max(connect_timeout, 10.0))
            except ck.KafkaException as exc:
                raise _error(f"cannot initialise transactions for {transactional_id!r}", exc) from exc

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
            _log_client_error(error)

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
            raise _error(f"cannot produce to {topic}", exc) from exc

    def produce_untracked(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                          headers: Headers | None) -> None:
        """Produce with no delivery report (sparse producers only: see the class docstring)."""
        try:
            self._produce(topic, value, key, partition, None, None, 0, headers)
        except BufferError:
            self._produce_when_room(topic, value, key, partition, None, headers)
        except ck.KafkaException as exc:
            self._raise_if_fatal()
            raise _error(f"cannot produce to {topic}", exc) from exc

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
                raise _error(f"cannot produce to {topic}", exc) from exc

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
                raise _error(f"cannot read metadata of topic {topic}", exc) from exc
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
            raise _error("cannot begin a Kafka transaction", exc) from exc

    def commit_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.commit_transaction(-1 if timeout is None else timeout)
        except ck.KafkaException as exc:
            raise _error("cannot commit the Kafka transaction", exc) from exc
        self._raise_delivery_failures()

    def abort_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.abort_transaction(-1 if timeout is None else timeout)
        except ck.KafkaException as exc:
            raise _error("cannot abort the Kafka transaction", exc) from exc
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
            self._produce = _closed
        if remaining:
            log.warning("kafka producer closed with %d unacknowledged records", remaining)


class ConfluentConsumer(Consumer):
    """librdkafka consumer; offsets stored and committed only when asked."""

    backend = BACKEND

    def __init__(
        self,
        bootstrap: str | Sequence[str],
        *,
        group_id: str,
        topics: list[str] | None,
        pattern: str | None,
        on_assign: RebalanceCallback | None,
        on_revoke: RebalanceCallback | None,
        auto_offset_reset: str,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **options,
    ) -> None:
        self._bootstrap = bootstrap_servers(bootstrap)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._positions: dict[TopicPartition, int] = {}
        # Kept here rather than asked from librdkafka: Consumer.assignment() holds the GIL while it waits
        # for librdkafka's group thread, which may be waiting for a rebalance callback in another thread.
        self._assigned_partitions: frozenset[TopicPartition] = frozenset()
        self._pending_seeks: dict[TopicPartition, int] | None = None
        self._fatal: str | None = None
        config = _common_config(bootstrap)
        config.update(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": auto_offset_reset,
                "enable.partition.eof": False,
                "isolation.level": "read_committed",
                "topic.metadata.refresh.interval.ms": 5000,
                "error_cb": self._on_error,
            }
        )
        config.update(_translate(options, _CONSUMER_OPTIONS))
        try:
            self._consumer = ck.Consumer(config)
        except ck.KafkaException as exc:
            raise _error("invalid Kafka consumer configuration", exc) from exc
        _check_reachable(self._consumer, self._bootstrap, connect_timeout)
        subscription = [pattern] if pattern is not None else topics
        if pattern is not None and not pattern.startswith("^"):
            # librdkafka treats only names starting with ^ as regular expressions.
            subscription = ["^" + pattern]
        self._consumer.subscribe(
            subscription, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _on_error(self, error: ck.KafkaError) -> None:
        if error.fatal():
            self._fatal = error.str()
        _log_client_error(error)

    def _assigned(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        """Run the caller's on_assign; seeks it makes become the starting offsets of the assignment."""
        self._pending_seeks = {}
        try:
            if self._on_assign is not None:
                self._on_assign(self, sorted((tp.topic, tp.partition) for tp in partitions))
            seeks = self._pending_seeks
        finally:
            self._pending_seeks = None
        for tp in partitions:
            offset = seeks.get((tp.topic, tp.partition))
            if offset is not None:
                tp.offset = offset
                self._positions[(tp.topic, tp.partition)] = offset
        consumer.assign(partitions)
        self._assigned_partitions = frozenset((tp.topic, tp.partition) for tp in partitions)

    def _revoked(self, consumer: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        revoked = sorted((tp.topic, tp.partition) for tp in partitions)
        try:
            if self._on_revoke is not None:
                self._on_revoke(self, revoked)
        finally:
            for tp in revoked:
                self._positions.pop(tp, None)
            self._assigned_partitions = frozenset()
            consumer.unassign()

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        try:
            messages = self._consumer.consume(max_records, timeout)
        except ck.KafkaException as exc:
            raise _error("cannot consume from Kafka", exc) from exc
        if self._fatal is not None:
            raise KafkaError(f"the Kafka consumer failed and cannot continue: {self._fatal}")
        records = []
        positions = self._positions
        for message in messages:
            error = message.error()
            if error is not None:
                self._handle_message_error(error)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            headers = message.headers()
            records.append(
                Record(
                    topic,
                    partition,
                    offset,
                    message.key(),
                    message.value(),
                    tuple((name, value if value is not None else b"") for name, value in headers) if headers else (),
                    message.timestamp()[1],
                )
            )
            positions[(topic, partition)] = offset + 1
        return records

    def _handle_message_error(self, error: ck.KafkaError) -> None:
        if error.code() in (ck.KafkaError._PARTITION_EOF, ck.KafkaError.UNKNOWN_TOPIC_OR_PART):
            log.debug("kafka consumer: %s", error.str())
            return
        if error.fatal() or not error.retriable():
            raise KafkaError(f"Kafka consumer error: {error.str()}")
        log.warning("kafka consumer error (retrying): %s", error.str())

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if offsets is None:
            assigned = self.assignment()
            offsets = {tp: offset for tp, offset in self._positions.items() if tp in assigned}
        if not offsets:
            return
        try:
            self._consumer.commit(
                offsets=[ck.TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
        except ck.KafkaException as exc:
            raise _error("cannot commit offsets to Kafka", exc) from exc

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if self._pending_seeks is not None:
            self._pending_seeks[(topic, partition)] = offset
            return
        try:
            self._consumer.seek(ck.TopicPartition(topic, partition, offset))
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError._STATE:
                raise _error(f"cannot seek {topic}[{partition}] to {offset}", exc) from exc
            # Assigned but not fetching yet: restart the assignment at the wanted offset instead.
            self._reassign_at({(topic, partition): offset})
        self._positions[(topic, partition)] = offset

    def _reassign_at(self, offsets: dict[TopicPartition, int]) -> None:
        current = [ck.TopicPartition(t, p) for t, p in self._assigned_partitions]
        positions = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(current)}
        positions.update(offsets)
        self._consumer.assign([ck.TopicPartition(t, p, o) for (t, p), o in positions.items()])

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned_partitions)

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        try:
            result = self._consumer.committed(
                [ck.TopicPartition(t, p) for t, p in partitions], timeout=DEFAULT_CONNECT_TIMEOUT * 2
            )
        except ck.KafkaException as exc:
            raise _error("cannot read committed offsets", exc) from exc
        return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in result}

    def position(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        wanted = list(partitions)
        result = {tp: self._positions.get(tp) for tp in wanted}
        unknown = [ck.TopicPartition(t, p) for (t, p), o in result.items() if o is None]
        if unknown:
            for tp in self._consumer.position(unknown):
                result[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return result

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.pause([ck.TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.resume([ck.TopicPartition(t, p) for t, p in partitions])

    def close(self) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.close()
        finally:
            self._consumer = None


class ConfluentAdmin(Admin):
    """librdkafka admin client."""

    backend = BACKEND

    def __init__(
        self, bootstrap: str | Sequence[str], *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, **options
    ) -> None:
        self._bootstrap = bootstrap_servers(bootstrap)
        self._timeout = max(connect_timeout, 10.0)
        config = _common_config(bootstrap)
        config.update(_translate(options, {"client_id": "client.id"}))
        self._admin = AdminClient(config)
        _check_reachable(self._admin, self._bootstrap, connect_timeout)

    def create_topics(self, specs: Sequence[TopicSpec], *, exist_ok: bool = True) -> None:
        if not specs:
            return
        new = [NewTopic(s.name, s.partitions, s.replication_factor, config=s.topic_config()) for s in specs]
        futures = self._admin.create_topics(new, operation_timeout=self._timeout, request_timeout=self._timeout)
        for name, future in futures.items():
            try:
                future.result()
            except ck.KafkaException as exc:
                if exist_ok and exc.args[0].code() == ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise _error(f"cannot create topic {name}", exc) from exc
        self._wait_visible([s.name for s in specs])

    def _wait_visible(self, names: list[str]) -> None:
        """New topics take a moment to appear in metadata; wait so that the next call sees them."""
        deadline = time.monotonic() + self._timeout
        while True:
            topics = self.list_topics()
            if all(name in topics for name in names) or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def list_topics(self) -> dict[str, int]:
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except ck.KafkaException as exc:
            raise _error(f"cannot list topics at {self._bootstrap}", exc) from exc
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    def delete_topics(self, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            return
        futures = self._admin.delete_topics(names, operation_timeout=self._timeout, request_timeout=self._timeout)
        for name, future in futures.items():
            try:
                future.result()
            except ck.KafkaException as exc:
                if exc.args[0].code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                raise _error(f"cannot delete topic {name}", exc) from exc

    def end_offsets(self, topic: str) -> dict[int, int]:
        count = self.list_topics().get(topic)
        if count is None:
            raise KafkaError(f"topic {topic} does not exist")
        partitions = [ck.TopicPartition(topic, p) for p in range(count)]
        try:
            futures = self._admin.list_offsets(
                {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=self._timeout
            )
            hints = {tp.partition: future.result().offset for tp, future in futures.items()}
        except ck.KafkaException as exc:
            raise _error(f"cannot read the end offsets of {topic}", exc) from exc
        return _fetch_high_watermarks(self._bootstrap, topic, hints, self._timeout)

    def close(self) -> None:
        self._admin = None


def _fetch_high_watermarks(bootstrap: str, topic: str, hints: dict[int, int], timeout: float) -> dict[int, int]:
    """High watermarks as a fetch reports them, starting at the ListOffsets answer minus one.

    Some brokers (tansu 0.6) answer ListOffsets(latest) with the last batch's base offset + 1 instead
    of the high watermark; a fetch response carries the true one. On a correct broker this reads at
    most one record per partition.
    """
    result = {p: 0 for p, hint in hints.items() if hint <= 0}
    todo = {p: hint for p, hint in hints.items() if hint > 0}
    if not todo:
        return result
    consumer = ck.Consumer(
        {
            **_common_config(bootstrap),
            "group.id": "cdc-end-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        consumer.assign([ck.TopicPartition(topic, p, hint - 1) for p, hint in todo.items()])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is not None and error.code() == ck.KafkaError._PARTITION_EOF:
                    if todo.pop(message.partition(), None) is not None:
                        result[message.partition()] = message.offset()
                elif error is not None and not error.retriable():
                    raise KafkaError(f"cannot read the end offsets of {topic}: {error.str()}")
        if todo:
            raise KafkaError(f"timed out reading the end offsets of {topic} partitions {sorted(todo)}")
    finally:
        consumer.close()
    return result


def read_topic(bootstrap: str | Sequence[str], topic: str, *, timeout: float = 30.0) -> list[Record]:
    """Every record of `topic` from the start to its current end, read by assignment (no group join)."""
    servers = bootstrap_servers(bootstrap)
    consumer = ck.Consumer(
        {
            **_common_config(servers),
            "group.id": "cdc-read-topic",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
        }
    )
    records: list[Record] = []
    try:
        metadata = _check_reachable(consumer, servers, DEFAULT_CONNECT_TIMEOUT)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaError(f"topic {topic} does not exist")
        todo = set(found.partitions)
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise KafkaError(f"timed out reading {topic} to its end (partitions {sorted(todo)} unfinished)")
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    headers = message.headers()
                    records.append(
                        Record(
                            topic,
                            message.partition(),
                            message.offset(),
                            message.key(),
                            message.value(),
                            tuple((n, v if v is not None else b"") for n, v in headers) if headers else (),
                            message.timestamp()[1],
                        )
                    )
                elif error.code() == ck.KafkaError._PARTITION_EOF:
                    todo.discard(message.partition())
                elif not error.retriable():
                    raise KafkaError(f"cannot read {topic}: {error.str()}")
    finally:
        consumer.close()
    return records


def make_producer(bootstrap, *, idempotent=True, transactional_id=None, **options) -> ConfluentProducer:
    """A confluent-kafka Producer behind the cdc interface."""
    return ConfluentProducer(bootstrap, idempotent=idempotent, transactional_id=transactional_id, **options)


def make_consumer(bootstrap, **kwargs) -> ConfluentConsumer:
    """A confluent-kafka Consumer behind the cdc interface."""
    return ConfluentConsumer(bootstrap, **kwargs)


def make_admin(bootstrap, **options) -> ConfluentAdmin:
    """A confluent-kafka AdminClient behind the cdc interface."""
    return ConfluentAdmin(bootstrap, **options)
