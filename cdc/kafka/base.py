"""The Kafka interface every backend implements: Producer, Consumer, Admin and the records they pass.

Backends (confluent-kafka, kafka-python) live in sibling modules and are chosen by `cdc.kafka`'s
factories. Callers code against these classes only; no backend type leaks through them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Headers = list[tuple[str, bytes]]
TopicPartition = tuple[str, int]

BACKENDS = ("confluent", "kafka-python")
DEFAULT_BACKEND = "confluent"

# How long a client waits for a broker before it reports KafkaError (seconds).
DEFAULT_CONNECT_TIMEOUT = 5.0
# The largest record a producer sends (librdkafka `message.max.bytes`, kafka-python `max_request_size`);
# 1,000,000 is both clients' default and under a Kafka broker's default limit (1,048,588).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000

BOOTSTRAP_FIX = "check --kafka / CDC_KAFKA_BOOTSTRAP"


# Not frozen (treat it as if it were): a consumer builds one per record, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs three times a plain one's. Hashable all the same.
@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(slots=True, frozen=True)
class DeliveryReport:
    """Where the broker stored a produced record (offset is -1 when delivery failed)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(slots=True, frozen=True)
class TopicSpec:
    """A topic to create: partitions, compaction, and any extra topic configs (`retention.ms`, ...)."""

    name: str
    partitions: int = 1
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1

    def topic_config(self) -> dict[str, str]:
        """The topic configs sent to the broker (compaction added as `cleanup.policy=compact`)."""
        configs = {str(k): str(v) for k, v in self.config.items()}
        if self.compacted:
            configs.setdefault("cleanup.policy", "compact")
        return configs


DeliveryCallback = Callable[[Exception | None, DeliveryReport], None]
# on_assign / on_revoke receive the cdc Consumer and the partitions as sorted (topic, partition) tuples.
RebalanceCallback = Callable[["Consumer", list[TopicPartition]], None]


class Producer(abc.ABC):
    """Sends records with acks=all (idempotent by default); partitions keyed records with murmur2."""

    backend: str

    @abc.abstractmethod
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
        """Queue one record; blocks (serving callbacks) while the local queue is full.

        `partition` None: keyed records go to murmur2(key) % partitions (as the Java client), a None
        key goes to partition 0. `on_delivery(error, report)` runs from `poll()`/`flush()`.
        """

    def produce_tracked(self, topic: str, value: bytes | None, key: bytes | None, headers: Headers | None,
                        callback: Callable[[Any, Any], None], partition: int | None = None) -> None:
        """`produce()` for a capture hot loop, positional; `callback(error, report)` gets the delivery report
        in the backend's own form (a backend may skip building a DeliveryReport). Default: `produce()`."""
        self.produce(topic, value, key, partition=partition, headers=list(headers) if headers else None,
                     on_delivery=callback)

    @abc.abstractmethod
    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks that are ready; returns how many ran (approximate on some backends)."""

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record is acknowledged; KafkaError on timeout or failed delivery."""

    @abc.abstractmethod
    def partition_count(self, topic: str) -> int:
        """Partitions of `topic` (cached from metadata); KafkaError when the topic does not exist."""

    @abc.abstractmethod
    def close(self, timeout: float | None = 10.0) -> None:
        """Flush what is queued (up to `timeout`) and release the client."""

    # Transactions: available when the producer was made with transactional_id.
    def begin_transaction(self) -> None:
        """Start a transaction (needs transactional_id)."""
        raise NotImplementedError(f"{type(self).__name__} has no transactions")

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Flush and commit the open transaction."""
        raise NotImplementedError(f"{type(self).__name__} has no transactions")

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Abort the open transaction; its records are never seen by read_committed consumers."""
        raise NotImplementedError(f"{type(self).__name__} has no transactions")

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@runtime_checkable
class SparseProducer(Protocol):
    """A producer that can leave most records without a delivery report (the capture pipeline's sparse mode).

    Sound only where Kafka's per-partition order proves the unreported records: an idempotent producer
    whose failures never leave a gap (see `cdc.kafka.confluent_backend.producer`). `sparse` says whether
    this instance was made so; the pipeline then drives these members instead of `produce()`.
    """

    sparse: bool
    delivery_timeout: float  # seconds without any acknowledgement before the pipeline gives up
    partition_counts: dict[str, int]  # topic -> partitions, for the topics whose metadata is known (kept current)

    def refresh_partitions(self, topic: str, timeout: float = 1.0) -> bool:
        """Read `topic`'s metadata again (e.g. after Kafka auto-created it); True when it is known now."""

    def produce_untracked(self, topic: str, value: bytes | None, key: bytes | None, partition: int,
                          headers: Headers | None) -> None:
        """Produce with no delivery report."""

    # The client's own produce, called positionally in the hot loop:
    # (topic, value, key, partition, on_delivery, callback, timestamp, headers).
    produce_raw: Callable[..., None] | None


class Consumer(abc.ABC):
    """A consumer-group member with manual commits; offsets are 'next offset to read'."""

    backend: str

    @abc.abstractmethod
    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Up to `max_records` records, waiting at most `timeout` seconds for the first one.

        Rebalance callbacks run inside this call; a seek made in on_assign applies to what it returns.
        """

    @abc.abstractmethod
    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit synchronously: the given next offsets, or (None) the positions after what was consumed."""

    @abc.abstractmethod
    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Make the next consume() read `topic`/`partition` from `offset` (the partition must be assigned)."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """Partitions currently assigned to this member."""

    @abc.abstractmethod
    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Committed next offsets of the group for `partitions` (None where nothing was committed)."""

    @abc.abstractmethod
    def position(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The next offset this consumer will read per partition (None when unknown yet)."""

    @abc.abstractmethod
    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop fetching from `partitions` (back-pressure) without leaving the group."""

    @abc.abstractmethod
    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch again from paused `partitions`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group (runs on_revoke) and release the client; does not commit."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Admin(abc.ABC):
    """Topic management and watermarks."""

    backend: str

    @abc.abstractmethod
    def create_topics(self, specs: Sequence[TopicSpec], *, exist_ok: bool = True) -> None:
        """Create topics; an existing topic is fine when exist_ok (its settings are not changed)."""

    @abc.abstractmethod
    def list_topics(self) -> dict[str, int]:
        """Every topic name with its partition count."""

    @abc.abstractmethod
    def delete_topics(self, names: Iterable[str]) -> None:
        """Delete topics; missing ones are ignored."""

    @abc.abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """High watermark (next offset to be written) per partition of `topic`."""

    def message_size_limit(self) -> int | None:
        """The broker's `message.max.bytes` (DescribeConfigs), or None when the broker does not say."""
        return self.broker_setting("message.max.bytes")

    def broker_setting(self, name: str) -> int | None:
        """The integer broker setting `name` (DescribeConfigs), or None when the broker does not say."""
        return None

    def ensure_topic(
        self, name: str, partitions: int = 1, *, compacted: bool = False, config: dict[str, str] | None = None
    ) -> int:
        """Create `name` unless it exists; return its partition count."""
        existing = self.list_topics()
        if name not in existing:
            self.create_topics([TopicSpec(name, partitions, compacted, dict(config or {}))], exist_ok=True)
            existing = self.list_topics()
        return existing[name]

    @abc.abstractmethod
    def close(self) -> None:
        """Release the client."""

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
