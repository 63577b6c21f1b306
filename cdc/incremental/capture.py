"""Wiring incremental snapshots into a running capture: progress store, controller, Kafka signal channel."""

from __future__ import annotations

import logging

from cdc.incremental.controller import ChunkSource, IncrementalSnapshot
from cdc.incremental.kafka_signals import SignalConsumer
from cdc.incremental.progress import ProgressStore

log = logging.getLogger("cdc.incremental")


def start_incremental(options, pipeline, source: ChunkSource) -> IncrementalSnapshot:
    """The controller a capture's stream drives: stored progress loaded, `<prefix>.signals` subscribed."""
    store = ProgressStore(options.kafka, options.prefix, options.kafka_backend)
    store.ensure_topic()
    controller = IncrementalSnapshot(pipeline, source, store, options.prefix)
    controller.resume()
    controller.signal_consumer = SignalConsumer(options.kafka, options.prefix, options.kafka_backend)
    return controller
