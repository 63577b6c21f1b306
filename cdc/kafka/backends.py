"""Which Kafka backend module serves a call: the argument, else CDC_KAFKA_BACKEND, else confluent."""

from __future__ import annotations

import os
from types import ModuleType

from cdc.errors import ConfigError
from cdc.kafka.base import BACKENDS, DEFAULT_BACKEND


def choose_backend(backend: str | None = None) -> str:
    """The backend name: the argument, else CDC_KAFKA_BACKEND, else confluent."""
    name = (backend or os.environ.get("CDC_KAFKA_BACKEND", "") or DEFAULT_BACKEND).strip().lower()
    name = {"confluent-kafka": "confluent", "kafka_python": "kafka-python", "python": "kafka-python"}.get(name, name)
    if name not in BACKENDS:
        raise ConfigError(
            f"unknown Kafka backend {name!r}",
            fix=f"use one of {', '.join(BACKENDS)} (option backend / env CDC_KAFKA_BACKEND)",
        )
    return name


def backend_module(backend: str | None = None) -> ModuleType:
    """The module implementing `backend` (make_producer, make_consumer, make_admin, read_topic)."""
    if choose_backend(backend) == "confluent":
        from cdc.kafka import confluent_backend as module
    else:
        from cdc.kafka import kafka_python_backend as module
    return module
