"""The confluent-kafka admin client: topics and (true) high watermarks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec, ResourceType

from cdc.errors import KafkaError
from cdc.kafka.base import DEFAULT_CONNECT_TIMEOUT, Admin, TopicSpec
from cdc.kafka.confluent_backend.client import BACKEND, check_reachable, client_error, common_config, translate_options
from cdc.kafka.connection import bootstrap_servers


class ConfluentAdmin(Admin):
    """librdkafka admin client."""

    backend = BACKEND

    def __init__(
        self, bootstrap: str | Sequence[str], *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, **options
    ) -> None:
        self._bootstrap = bootstrap_servers(bootstrap)
        self._timeout = max(connect_timeout, 10.0)
        config = common_config(bootstrap)
        config.update(translate_options(options, {"client_id": "client.id"}))
        self._admin = AdminClient(config)
        check_reachable(self._admin, self._bootstrap, connect_timeout)

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
                raise client_error(f"cannot create topic {name}", exc) from exc
        self._wait_visible([s.name for s in specs])

    def _wait_visible(self, names: list[str]) -> None:
        """New topics take a moment to appear in metadata; wait so that the next call sees them."""
        deadline = time.monotonic() + self._timeout
        while True:
            topics = self.list_topics()
            if all(name in topics for name in names) or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def message_size_limit(self) -> int | None:
        """The smallest `message.max.bytes` the brokers report (None: none reports it, e.g. tansu)."""
        return self.broker_setting("message.max.bytes")

    def broker_setting(self, name: str) -> int | None:
        """The smallest value of the integer broker setting `name` the brokers report (None: none reports it)."""
        try:
            brokers = self._admin.list_topics(timeout=self._timeout).brokers
            futures = self._admin.describe_configs([ConfigResource(ResourceType.BROKER, str(b)) for b in brokers],
                                                   request_timeout=self._timeout)
            values = []
            for future in futures.values():
                entry = future.result().get(name)
                if entry is not None and entry.value:
                    values.append(int(entry.value))
        except (ck.KafkaException, ValueError):
            return None
        return min(values) if values else None

    def list_topics(self) -> dict[str, int]:
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except ck.KafkaException as exc:
            raise client_error(f"cannot list topics at {self._bootstrap}", exc) from exc
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
                raise client_error(f"cannot delete topic {name}", exc) from exc

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
            raise client_error(f"cannot read the end offsets of {topic}", exc) from exc
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
            **common_config(bootstrap),
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
