"""Incremental snapshots while streaming, on the DBLog watermark algorithm (issue 18).

    signals.py        SnapshotSignal: what `cdc snapshot` asks (execute / stop), parsed and validated
    progress.py       SnapshotProgress: where a running incremental snapshot stands, kept in `__cdc-offsets.<prefix>`
    controller.py     IncrementalSnapshot: the chunk loop between low and high watermarks
    kafka_signals.py  SignalConsumer: signals from the `<prefix>.signals` topic
    capture.py        start_incremental: the controller a capture's stream drives

A connector supplies a `ChunkSource` (`connectors/<engine>/incremental.py`: watermarks written into
its change stream, chunks read by primary-key range) and calls the controller from its stream.
Nothing here names an engine.
"""

from __future__ import annotations

from cdc.incremental.capture import start_incremental
from cdc.incremental.controller import Chunk, ChunkSource, IncrementalSnapshot
from cdc.incremental.progress import ProgressStore, SnapshotProgress
from cdc.incremental.signals import SnapshotSignal, parse_signal

__all__ = ["Chunk", "ChunkSource", "start_incremental", "IncrementalSnapshot", "ProgressStore", "SnapshotProgress", "SnapshotSignal",
           "parse_signal"]
