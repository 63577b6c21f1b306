"""The capture loop's engine-neutral half: Change records -> Envelope -> Kafka, with acked positions.

    capture.py            CapturePipeline: records built by the envelope, produced, positions acknowledged
    transaction_order.py  TransactionOrder: Debezium's transaction block (total and per-table order)
    stop_signal.py        StopSignal: SIGINT/SIGTERM ask the loop to flush, acknowledge and exit
    every.py              Every: true once every N seconds (heartbeats, status, progress)
    options.py            CaptureOptions: what `cdc capture` asks of a source connector
    topics.py             ensure_topics, load_schemas: the capture side's own topics

Nothing here names an engine.
"""

from __future__ import annotations

from cdc.pipeline.capture import DEFAULT_MAX_IN_FLIGHT, SEAL_RECORDS, CapturePipeline
from cdc.pipeline.every import Every
from cdc.pipeline.options import SNAPSHOT_MODES, CaptureOptions
from cdc.pipeline.stop_signal import StopSignal
from cdc.pipeline.topics import ensure_topics, load_schemas
from cdc.pipeline.transaction_order import TransactionOrder

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "SEAL_RECORDS",
    "SNAPSHOT_MODES",
    "CaptureOptions",
    "CapturePipeline",
    "Every",
    "StopSignal",
    "TransactionOrder",
    "ensure_topics",
    "load_schemas",
]
