"""Fixtures for the Kafka client tests: one broker per run, every test on both backends.

The broker is CDC_KAFKA_BOOTSTRAP when set, else a tansu started for these tests alone (the shared
`sandbox` fixture would also start PostgreSQL and MariaDB, which these tests do not need).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cdc.kafka import Admin, TopicSpec, make_admin

BACKENDS = ("confluent", "kafka-python")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """`host:port` of a broker for these tests."""
    if os.environ.get("CDC_KAFKA_BOOTSTRAP"):
        yield os.environ["CDC_KAFKA_BOOTSTRAP"]
        return
    from cdc.sandbox import kafka as tansu
    from cdc.sandbox import processes
    from cdc.sandbox.ports import pick_free_port

    directory = Path(tempfile.mkdtemp(prefix="cdc-test-kafka-"))
    server = tansu.start(directory, pick_free_port())
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        processes.stop(server.pid, server.program, server.marker, sig=tansu.STOP_SIGNAL)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The Kafka client backend under test."""
    return request.param


@pytest.fixture
def admin(kafka_broker: str, backend: str) -> Iterator[Admin]:
    """An admin client of the backend under test."""
    client = make_admin(kafka_broker, backend=backend)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def new_topic(admin: Admin, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Create a topic with a unique name (`t-<test>-<random>`); returns its name."""

    def create(partitions: int = 1, *, compacted: bool = False, name: str | None = None) -> str:
        if name is None:
            test = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:60]
            name = f"t-{test}-{uuid.uuid4().hex[:8]}"
        admin.create_topics([TopicSpec(name, partitions, compacted)])
        return name

    return create


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id nobody else uses."""
    return f"g-{request.node.name}-{uuid.uuid4().hex[:8]}"
