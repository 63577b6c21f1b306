"""The confluent-kafka consumer-group member: manual commits, seeks made in on_assign honoured."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import confluent_kafka as ck

from cdc.errors import KafkaError
from cdc.kafka.base import DEFAULT_CONNECT_TIMEOUT, Consumer, RebalanceCallback, Record, TopicPartition
from cdc.kafka.confluent_backend.client import (
    BACKEND,
    CONSUMER_OPTIONS,
    check_reachable,
    client_error,
    common_config,
    log,
    log_client_error,
    translate_options,
)
from cdc.kafka.connection import bootstrap_servers


_HEADER_TUPLES: dict[tuple, tuple] = {}  # librdkafka's headers -> Record.headers (a handful of distinct ones)


def _header_tuple(raw: tuple) -> tuple[tuple[str, bytes], ...]:
    """Record.headers of a message's `(name, value)` pairs: a None value as b"" (remembered for reuse)."""
    headers = tuple((name, value if value is not None else b"") for name, value in raw)
    if len(_HEADER_TUPLES) < 1000:
        _HEADER_TUPLES[raw] = headers
    return headers


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
        config = common_config(bootstrap)
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
        config.update(translate_options(options, CONSUMER_OPTIONS))
        try:
            self._consumer = ck.Consumer(config)
        except ck.KafkaException as exc:
            raise client_error("invalid Kafka consumer configuration", exc) from exc
        check_reachable(self._consumer, self._bootstrap, connect_timeout)
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
        log_client_error(error)

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
            raise client_error("cannot consume from Kafka", exc) from exc
        if self._fatal is not None:
            raise KafkaError(f"the Kafka consumer failed and cannot continue: {self._fatal}")
        records = []
        append = records.append
        positions = self._positions
        header_tuples = _HEADER_TUPLES
        for message in messages:
            error = message.error()
            if error is not None:
                self._handle_message_error(error)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            headers = message.headers()
            if headers:
                raw = tuple(headers)
                headers = header_tuples.get(raw)
                if headers is None:
                    headers = _header_tuple(raw)
            append(Record(topic, partition, offset, message.key(), message.value(), headers or (),
                          message.timestamp()[1]))
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
            raise client_error("cannot commit offsets to Kafka", exc) from exc

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if self._pending_seeks is not None:
            self._pending_seeks[(topic, partition)] = offset
            return
        try:
            self._consumer.seek(ck.TopicPartition(topic, partition, offset))
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError._STATE:
                raise client_error(f"cannot seek {topic}[{partition}] to {offset}", exc) from exc
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
            raise client_error("cannot read committed offsets", exc) from exc
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
