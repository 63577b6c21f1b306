"""`check_broker`: the sandbox's readiness probe (a metadata answer within the timeout)."""

from __future__ import annotations

import pytest

from cdc.errors import KafkaError
from cdc.kafka import check_broker
from cdc.sandbox.ports import pick_free_port


def test_a_running_broker_answers(kafka_broker, backend) -> None:
    check_broker(kafka_broker, timeout=5, backend=backend)


def test_no_broker_is_a_kafka_error_naming_the_address(backend) -> None:
    address = f"127.0.0.1:{pick_free_port()}"
    with pytest.raises(KafkaError, match=f"cannot reach Kafka at {address}"):
        check_broker(address, timeout=1, backend=backend)
