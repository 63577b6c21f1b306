"""kafka-python backend: pure Python, no native library; slower, same behaviour as the confluent one.

kafka-python runs its network I/O on a thread of its own. Delivery callbacks are queued from that
thread and run in the caller's thread by `poll()`/`flush()`, as librdkafka does. Rebalance callbacks
run in a worker thread while the I/O loop keeps heartbeating, so they may block (read offsets from a
target database) and may call this consumer's methods (`seek`, `committed`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Sequence

import kafka
import kafka.errors as kerrors
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from cdc.errors import KafkaError
from cdc.kafka.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
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
from cdc.kafka.security import security_from_environment
from cdc.kafka.partitioner import partition_for

log = logging.getLogger("cdc.kafka")

BACKEND = "kafka-python"

_TOPIC_ALREADY_EXISTS = kerrors.TopicAlreadyExistsError.errno
_UNKNOWN_TOPIC = kerrors.UnknownTopicOrPartitionError.errno

_PRODUCER_OPTIONS = {
    "client_id",
    "compression",
    "linger_ms",
    "batch_size",
    "queue_max_messages",
    "request_timeout_ms",
    "delivery_timeout_ms",
    "transaction_timeout_ms",
    "max_message_bytes",
}
_CONSUMER_OPTIONS = {
    "client_id",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_interval_ms",
    "isolation_level",
    "fetch_max_bytes",
    "metadata_refresh_ms",
    "fetch_max_wait_ms",
    "request_timeout_ms",
}


def _check_options(options: dict, known: set[str], native: dict) -> None:
    """Our shared option names, or kafka-python's own keyword names (escape hatch) are accepted."""
    unknown = sorted(set(options) - known - set(native))
    if unknown:
        raise KafkaError(
            f"unknown Kafka client option(s) {', '.join(unknown)}",
            fix=f"use {', '.join(sorted(known))} or a kafka-python keyword argument",
        )


def _error(message: str, exc: BaseException) -> KafkaError:
    return KafkaError(f"{message}: {type(exc).__name__}: {exc}")


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (kerrors.KafkaTimeoutError, kerrors.KafkaConnectionError, kerrors.NodeNotReadyError))


class KafkaPythonProducer(Producer):
    """kafka-python producer; keyed records are partitioned here with cdc.kafka.partitioner."""

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
        del sparse_reports  # every record gets its delivery report here (no gapless guarantee to lean on)
        self.sparse = False
        _check_options(options, _PRODUCER_OPTIONS, kafka.KafkaProducer.DEFAULT_CONFIG)
        self._bootstrap = bootstrap_servers(bootstrap)
        self._partitions: dict[str, int] = {}
        # (callback, error, report) tuples appended by the I/O thread, run by poll() in the caller's.
        self._reports: collections.deque = collections.deque()
        self._report_ready = threading.Event()
        self._failed = 0
        self._first_failure: str | None = None
        compression = options.pop("compression", None) or default_compression()
        # kafka-python's record accumulator is unbounded: bound the records in flight here instead.
        self._queue_max = int(options.pop("queue_max_messages", 100_000))
        self.max_message_bytes = int(options.pop("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))
        self._produced = 0  # written by the caller's thread only
        self._settled_count = 0  # written by the I/O thread only
        config = {
            "bootstrap_servers": self._bootstrap.split(","),
            **security_from_environment().kafka_python_kwargs(),
            "acks": "all",
            "enable_idempotence": idempotent,
            "compression_type": None if compression == "none" else compression,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "max_block_ms": 10000,
            "bootstrap_timeout_ms": int(connect_timeout * 1000),
            "transactional_id": transactional_id,
            "max_request_size": self.max_message_bytes,
        }
        config.update(options)
        self._transactional = transactional_id is not None
        try:
            self._producer = kafka.KafkaProducer(**config)
        except kerrors.KafkaError as exc:
            if _is_unreachable(exc):
                raise unreachable(self._bootstrap, f"{type(exc).__name__}: {exc}") from exc
            raise _error("cannot create the Kafka producer", exc) from exc
        if self._transactional:
            try:
                self._producer.init_transactions()
            except kerrors.KafkaError as exc:
                raise _error(f"cannot initialise transactions for {transactional_id!r}", exc) from exc

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
        if partition is None:
            partition = 0 if key is None else partition_for(key, self.partition_count(topic))
        if self._produced - self._settled_count >= self._queue_max:
            self._wait_for_room()
        if value is None and key is None:
            # kafka-python refuses a record without key and value; an empty value is the nearest.
            value = b""
        try:
            future = self._producer.send(topic, value, key, headers=headers, partition=partition)
        except (kerrors.KafkaError, ValueError, TypeError, AssertionError) as exc:
            raise _error(f"cannot produce to {topic}", exc) from exc
        self._produced += 1
        future.add_both(self._settled, topic, partition, key, on_delivery)

    def _wait_for_room(self) -> None:
        """Back-pressure: serve delivery reports until the records in flight drop below the limit."""
        while self._produced - self._settled_count >= self._queue_max:
            self.poll(0.005)

    def _settled(self, topic, partition, key, callback, outcome) -> None:
        """Runs on the I/O thread when a record is acknowledged or failed; queues the report."""
        self._settled_count += 1
        if isinstance(outcome, BaseException):
            error = KafkaError(f"delivery to {topic} failed: {type(outcome).__name__}: {outcome}")
            self._reports.append((callback, error, DeliveryReport(topic, partition, -1, key)))
        elif callback is not None:
            self._reports.append((callback, None, DeliveryReport(topic, outcome.partition, outcome.offset, key)))
        else:
            return
        if not self._report_ready.is_set():
            self._report_ready.set()

    def poll(self, timeout: float = 0.0) -> int:
        if not self._reports and timeout > 0:
            self._report_ready.wait(timeout)
        self._report_ready.clear()
        served = 0
        reports = self._reports
        while reports:
            callback, error, report = reports.popleft()
            if error is not None:
                self._failed += 1
                if self._first_failure is None:
                    self._first_failure = f"{report.topic}[{report.partition}]: {error}"
            if callback is not None:
                callback(error, report)
            served += 1
        return served

    def flush(self, timeout: float | None = None) -> None:
        try:
            self._producer.flush(timeout)
        except kerrors.KafkaTimeoutError as exc:
            self.poll()
            raise KafkaError(
                f"records still unacknowledged by Kafka at {self._bootstrap} after {timeout}s",
                fix="check that the broker is up and reachable",
            ) from exc
        except kerrors.KafkaError as exc:
            raise _error("cannot flush the Kafka producer", exc) from exc
        self.poll()
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
                partitions = self._producer.partitions_for(topic)
            except kerrors.KafkaError as exc:
                raise _error(f"cannot read metadata of topic {topic}", exc) from exc
            if not partitions:
                raise KafkaError(f"topic {topic} does not exist", fix="create it first (Admin.ensure_topic)")
            count = self._partitions[topic] = len(partitions)
        return count

    def begin_transaction(self) -> None:
        self._require_transactions()
        try:
            self._producer.begin_transaction()
        except kerrors.KafkaError as exc:
            raise _error("cannot begin a Kafka transaction", exc) from exc

    def commit_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.commit_transaction()
        except kerrors.KafkaError as exc:
            raise _error("cannot commit the Kafka transaction", exc) from exc
        self.poll()
        self._raise_delivery_failures()

    def abort_transaction(self, timeout: float | None = None) -> None:
        self._require_transactions()
        try:
            self._producer.abort_transaction()
        except kerrors.KafkaError as exc:
            raise _error("cannot abort the Kafka transaction", exc) from exc
        self.poll()
        self._failed, self._first_failure = 0, None

    def _require_transactions(self) -> None:
        if not self._transactional:
            raise KafkaError("this producer has no transactions", fix="make it with transactional_id=...")

    def close(self, timeout: float | None = 10.0) -> None:
        if self._producer is None:
            return
        try:
            self._producer.close(timeout)
            self.poll()  # delivery callbacks of what close() flushed
        finally:
            self._producer = None


class _RebalanceListener(AsyncConsumerRebalanceListener):
    """Runs the caller's callbacks in a worker thread while the I/O loop keeps heartbeating."""

    def __init__(self, consumer: KafkaPythonConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        await self._run(self._consumer._revoked, revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        await self._run(self._consumer._assigned, assigned)

    async def on_partitions_lost(self, lost) -> None:
        await self._run(self._consumer._revoked, lost)

    async def _run(self, function, partitions) -> None:
        done = threading.Event()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                function(sorted((tp.topic, tp.partition) for tp in partitions))
            except BaseException as exc:  # handed to the I/O loop, which re-raises it from poll()
                failure.append(exc)
            finally:
                done.set()

        net = self._consumer._net
        if net is None:  # kafka-python without an awaitable I/O loop: run inline
            work()
        else:
            threading.Thread(target=work, name="cdc-kafka-rebalance", daemon=True).start()
            while not done.is_set():
                await net.sleep(0.002)
        if failure:
            raise failure[0]


class KafkaPythonConsumer(Consumer):
    """kafka-python consumer-group member with manual commits."""

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
        _check_options(options, _CONSUMER_OPTIONS, kafka.KafkaConsumer.DEFAULT_CONFIG)
        self._bootstrap = bootstrap_servers(bootstrap)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._positions: dict[TopicPartition, int] = {}
        config = {
            "bootstrap_servers": self._bootstrap.split(","),
            **security_from_environment().kafka_python_kwargs(),
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "isolation_level": "read_committed",
            "bootstrap_timeout_ms": int(connect_timeout * 1000),
            "metadata_max_age_ms": options.pop("metadata_refresh_ms", 5000),
            "fetch_max_wait_ms": 100,
        }
        config.update(options)
        try:
            self._consumer = kafka.KafkaConsumer(**config)
        except kerrors.KafkaError as exc:
            if _is_unreachable(exc):
                raise unreachable(self._bootstrap, f"{type(exc).__name__}: {exc}") from exc
            raise _error("cannot create the Kafka consumer", exc) from exc
        # The I/O loop kafka-python drives; the rebalance listener sleeps on it while callbacks run.
        self._net = getattr(self._consumer, "_net", None)
        listener = _RebalanceListener(self)
        if pattern is not None:
            self._consumer.subscribe(pattern=pattern, listener=listener)
        else:
            self._consumer.subscribe(topics=topics, listener=listener)

    def _assigned(self, partitions: list[TopicPartition]) -> None:
        if self._on_assign is not None:
            self._on_assign(self, partitions)

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        try:
            if self._on_revoke is not None:
                self._on_revoke(self, partitions)
        finally:
            for tp in partitions:
                self._positions.pop(tp, None)

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except kerrors.KafkaError as exc:
            if isinstance(exc.__cause__, Exception) and not isinstance(exc.__cause__, kerrors.KafkaError):
                raise exc.__cause__ from None  # the caller's own on_assign/on_revoke failure, as it raised it
            raise _error("cannot consume from Kafka", exc) from exc
        records = []
        positions = self._positions
        for tp, messages in batches.items():
            for m in messages:
                records.append(
                    Record(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.key,
                        m.value,
                        tuple((name, value if value is not None else b"") for name, value in m.headers)
                        if m.headers
                        else (),
                        m.timestamp,
                    )
                )
            if messages:
                positions[(tp.topic, tp.partition)] = messages[-1].offset + 1
        return records

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if offsets is None:
            assigned = self.assignment()
            offsets = {tp: offset for tp, offset in self._positions.items() if tp in assigned}
        if not offsets:
            return
        try:
            self._consumer.commit(
                {KafkaTopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
            )
        except kerrors.KafkaError as exc:
            raise _error("cannot commit offsets to Kafka", exc) from exc

    def seek(self, topic: str, partition: int, offset: int) -> None:
        try:
            self._consumer.seek(KafkaTopicPartition(topic, partition), offset)
        except (ValueError, kerrors.KafkaError) as exc:
            raise _error(f"cannot seek {topic}[{partition}] to {offset}", exc) from exc
        self._positions[(topic, partition)] = offset

    def assignment(self) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        result = {}
        try:
            for t, p in partitions:
                result[(t, p)] = self._consumer.committed(KafkaTopicPartition(t, p))
        except kerrors.KafkaError as exc:
            raise _error("cannot read committed offsets", exc) from exc
        return result

    def position(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        result = {}
        for tp in partitions:
            known = self._positions.get(tp)
            if known is None:
                try:
                    known = self._consumer.position(KafkaTopicPartition(*tp))
                except (kerrors.KafkaError, ValueError):
                    known = None
            result[tp] = known
        return result

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.pause(*(KafkaTopicPartition(t, p) for t, p in partitions))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.resume(*(KafkaTopicPartition(t, p) for t, p in partitions))

    def close(self) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.close(autocommit=False)
        finally:
            self._consumer = None


class KafkaPythonAdmin(Admin):
    """kafka-python admin client."""

    backend = BACKEND

    def __init__(
        self, bootstrap: str | Sequence[str], *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, **options
    ) -> None:
        _check_options(options, {"client_id", "request_timeout_ms"}, KafkaAdminClient.DEFAULT_CONFIG)
        self._bootstrap = bootstrap_servers(bootstrap)
        self._timeout = max(connect_timeout, 10.0)
        try:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self._bootstrap.split(","),
                **security_from_environment().kafka_python_kwargs(),
                bootstrap_timeout_ms=int(connect_timeout * 1000),
                **options,
            )
        except kerrors.KafkaError as exc:
            if _is_unreachable(exc):
                raise unreachable(self._bootstrap, f"{type(exc).__name__}: {exc}") from exc
            raise _error("cannot create the Kafka admin client", exc) from exc

    def create_topics(self, specs: Sequence[TopicSpec], *, exist_ok: bool = True) -> None:
        if not specs:
            return
        request = {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": s.replication_factor,
                "configs": s.topic_config(),
            }
            for s in specs
        }
        try:
            response = self._admin.create_topics(request, timeout_ms=int(self._timeout * 1000), raise_errors=False)
        except kerrors.KafkaError as exc:
            raise _error("cannot create topics", exc) from exc
        for topic in response["topics"]:
            code = topic.get("error_code", 0)
            if code == 0 or (exist_ok and code == _TOPIC_ALREADY_EXISTS):
                continue
            raise KafkaError(
                f"cannot create topic {topic['name']}: {kerrors.for_code(code).__name__} {topic.get('error_message') or ''}".rstrip()
            )
        try:
            self._admin.wait_for_topics([s.name for s in specs], timeout_ms=int(self._timeout * 1000))
        except kerrors.KafkaError as exc:
            raise _error("created topics did not appear in metadata", exc) from exc

    def list_topics(self) -> dict[str, int]:
        try:
            topics = self._admin.describe_topics()
        except kerrors.KafkaError as exc:
            raise _error(f"cannot list topics at {self._bootstrap}", exc) from exc
        return {t["name"]: len(t["partitions"]) for t in topics if t.get("error_code", 0) == 0}

    def delete_topics(self, names: Iterable[str]) -> None:
        names = list(names)
        if not names:
            return
        try:
            response = self._admin.delete_topics(names, timeout_ms=int(self._timeout * 1000), raise_errors=False)
        except kerrors.KafkaError as exc:
            raise _error("cannot delete topics", exc) from exc
        for topic in response["topics"]:
            code = topic.get("error_code", 0)
            if code not in (0, _UNKNOWN_TOPIC):
                raise KafkaError(f"cannot delete topic {topic.get('name')}: {kerrors.for_code(code).__name__}")

    def end_offsets(self, topic: str) -> dict[int, int]:
        count = self.list_topics().get(topic)
        if count is None:
            raise KafkaError(f"topic {topic} does not exist")
        partitions = [KafkaTopicPartition(topic, p) for p in range(count)]
        try:
            answer = self._admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        except kerrors.KafkaError as exc:
            raise _error(f"cannot read the end offsets of {topic}", exc) from exc
        hints = {tp.partition: answer[tp].offset for tp in partitions}
        return _fetch_high_watermarks(self._bootstrap, topic, hints, self._timeout)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def _fetch_high_watermarks(bootstrap: str, topic: str, hints: dict[int, int], timeout: float) -> dict[int, int]:
    """High watermarks as a fetch reports them, starting at the ListOffsets answer minus one.

    tansu 0.6 answers ListOffsets(latest) with the last batch's base offset + 1 instead of the high
    watermark; a fetch response carries the true one (see the confluent backend).
    """
    result = {p: 0 for p, hint in hints.items() if hint <= 0}
    todo = {KafkaTopicPartition(topic, p): hint for p, hint in hints.items() if hint > 0}
    if not todo:
        return result
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        **security_from_environment().kafka_python_kwargs(),
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        fetch_max_wait_ms=10,
    )
    try:
        consumer.assign(list(todo))
        for tp, hint in todo.items():
            consumer.seek(tp, hint - 1)
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100, max_records=1000)
            for tp in list(todo):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    result[tp.partition] = highwater
                    del todo[tp]
        if todo:
            raise KafkaError(f"timed out reading the end offsets of {topic} partitions {sorted(todo)}")
    finally:
        consumer.close(autocommit=False)
    return result


def read_topic(bootstrap: str | Sequence[str], topic: str, *, timeout: float = 30.0) -> list[Record]:
    """Every record of `topic` from the start to its current end, read by assignment (no group join)."""
    servers = bootstrap_servers(bootstrap)
    try:
        consumer = kafka.KafkaConsumer(
            bootstrap_servers=servers.split(","),
            **security_from_environment().kafka_python_kwargs(),
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=10,
            bootstrap_timeout_ms=int(DEFAULT_CONNECT_TIMEOUT * 1000),
        )
    except kerrors.KafkaError as exc:
        if _is_unreachable(exc):
            raise unreachable(servers, f"{type(exc).__name__}: {exc}") from exc
        raise _error("cannot create a Kafka consumer", exc) from exc
    records: list[Record] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise KafkaError(f"topic {topic} does not exist")
        todo = {KafkaTopicPartition(topic, p) for p in partitions}
        consumer.assign(list(todo))
        consumer.seek_to_beginning(*todo)
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise KafkaError(f"timed out reading {topic} to its end (partitions {sorted(todo)} unfinished)")
            for tp, messages in consumer.poll(timeout_ms=200, max_records=1000).items():
                for m in messages:
                    headers = tuple((n, v if v is not None else b"") for n, v in m.headers) if m.headers else ()
                    records.append(Record(m.topic, m.partition, m.offset, m.key, m.value, headers, m.timestamp))
            for tp in list(todo):
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    todo.discard(tp)
    except kerrors.KafkaError as exc:
        raise _error(f"cannot read {topic}", exc) from exc
    finally:
        consumer.close(autocommit=False)
    return records


def make_producer(bootstrap, *, idempotent=True, transactional_id=None, **options) -> KafkaPythonProducer:
    """A kafka-python KafkaProducer behind the cdc interface."""
    return KafkaPythonProducer(bootstrap, idempotent=idempotent, transactional_id=transactional_id, **options)


def make_consumer(bootstrap, **kwargs) -> KafkaPythonConsumer:
    """A kafka-python KafkaConsumer behind the cdc interface."""
    return KafkaPythonConsumer(bootstrap, **kwargs)


def make_admin(bootstrap, **options) -> KafkaPythonAdmin:
    """A kafka-python KafkaAdminClient behind the cdc interface."""
    return KafkaPythonAdmin(bootstrap, **options)
