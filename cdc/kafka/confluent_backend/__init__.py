"""confluent-kafka (librdkafka) backend: the default, fast one.

    client.py        configuration, option names, logging and errors every client shares
    producer.py      ConfluentProducer (sparse delivery reports for capture)
    consumer.py      ConfluentConsumer (a consumer-group member, manual commits)
    admin.py         ConfluentAdmin (topics, high watermarks)
    topic_reader.py  read_topic: a whole topic by assignment
"""

from __future__ import annotations

from cdc.kafka.confluent_backend.admin import ConfluentAdmin
from cdc.kafka.confluent_backend.client import BACKEND
from cdc.kafka.confluent_backend.consumer import ConfluentConsumer
from cdc.kafka.confluent_backend.producer import ConfluentProducer
from cdc.kafka.confluent_backend.topic_reader import read_topic

__all__ = ["BACKEND", "ConfluentAdmin", "ConfluentConsumer", "ConfluentProducer", "make_admin", "make_consumer",
           "make_producer", "read_topic"]


def make_producer(bootstrap, *, idempotent=True, transactional_id=None, **options) -> ConfluentProducer:
    """A confluent-kafka Producer behind the cdc interface."""
    return ConfluentProducer(bootstrap, idempotent=idempotent, transactional_id=transactional_id, **options)


def make_consumer(bootstrap, **kwargs) -> ConfluentConsumer:
    """A confluent-kafka Consumer behind the cdc interface."""
    return ConfluentConsumer(bootstrap, **kwargs)


def make_admin(bootstrap, **options) -> ConfluentAdmin:
    """A confluent-kafka AdminClient behind the cdc interface."""
    return ConfluentAdmin(bootstrap, **options)
