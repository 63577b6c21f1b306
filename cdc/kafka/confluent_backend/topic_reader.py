"""Reading a whole topic with confluent-kafka, by assignment (no consumer-group join)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import confluent_kafka as ck

from cdc.errors import KafkaError
from cdc.kafka.base import DEFAULT_CONNECT_TIMEOUT, Record
from cdc.kafka.confluent_backend.client import check_reachable, common_config
from cdc.kafka.connection import bootstrap_servers


def read_topic(bootstrap: str | Sequence[str], topic: str, *, timeout: float = 30.0) -> list[Record]:
    """Every record of `topic` from the start to its current end, read by assignment (no group join)."""
    servers = bootstrap_servers(bootstrap)
    consumer = ck.Consumer(
        {
            **common_config(servers),
            "group.id": "cdc-read-topic",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
        }
    )
    records: list[Record] = []
    try:
        metadata = check_reachable(consumer, servers, DEFAULT_CONNECT_TIMEOUT)
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
