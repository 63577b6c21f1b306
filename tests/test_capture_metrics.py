"""CaptureMetrics: counts reach the counters at publish, lag from the acknowledged commit time, source lag watch."""

from __future__ import annotations

import time
import uuid

from prometheus_client import REGISTRY

from cdc import capture_metrics
from cdc.capture_metrics import CaptureMetrics, SourceLagWatch, position_number


def value(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_events_are_counted_per_table_and_published_at_poll():
    name = f"p{uuid.uuid4().hex[:8]}"
    capture = CaptureMetrics(name, clock=lambda: 1000.0)
    capture.add_events("public.orders", 3)
    capture.add_events("public.items")
    assert value("cdc_events_captured_total", pipeline=name, table="public.orders") is None
    capture.publish(acknowledged=0x16B3748, stamp_ms=999_250)
    assert value("cdc_events_captured_total", pipeline=name, table="public.orders") == 3
    assert value("cdc_events_captured_total", pipeline=name, table="public.items") == 1
    counts = capture.counts  # the pipeline keeps adding to the same dict
    counts["public.orders"] = counts.get("public.orders", 0) + 2
    capture.publish(acknowledged=0x16B3748, stamp_ms=999_250)
    assert value("cdc_events_captured_total", pipeline=name, table="public.orders") == 5
    assert value("cdc_capture_lag_seconds", pipeline=name) == 0.75
    assert value("cdc_capture_acked_position", pipeline=name) == 0x16B3748
    capture.publish(acknowledged=0x16B3748, stamp_ms=999_250, idle=True)
    assert value("cdc_capture_lag_seconds", pipeline=name) == 0.75  # just acknowledged: the lag stands
    capture.clock = lambda: 1010.0
    capture.publish(acknowledged=0x16B3748, stamp_ms=999_250, idle=True)
    assert value("cdc_capture_lag_seconds", pipeline=name) == 0  # idle since: nothing is behind


def test_snapshot_progress_with_estimate_and_reconnects(monkeypatch):
    name = f"p{uuid.uuid4().hex[:8]}"
    asked = []
    monkeypatch.setattr(capture_metrics, "ROW_ESTIMATOR", lambda table: asked.append(table) or 1000)
    capture = CaptureMetrics(name)
    capture.snapshot_rows(f"{name}.orders", 400)
    capture.snapshot_rows(f"{name}.orders", 100)
    capture.publish(None, None)
    capture.reconnected()
    deadline = time.monotonic() + 10
    while value("cdc_snapshot_rows_estimated", pipeline=name, table=f"{name}.orders") is None:
        assert time.monotonic() < deadline, "no estimate"
        time.sleep(0.05)
    assert asked == [f"{name}.orders"]
    assert value("cdc_snapshot_rows_estimated", pipeline=name, table=f"{name}.orders") == 1000
    assert value("cdc_snapshot_rows_done", pipeline=name, table=f"{name}.orders") == 500
    assert value("cdc_capture_reconnects_total", pipeline=name) == 1


def test_source_lag_watch_sets_the_gauges_it_knows():
    name = f"p{uuid.uuid4().hex[:8]}"
    SourceLagWatch(name, lambda: (4096, None)).once()
    assert value("cdc_source_lag_bytes", pipeline=name) == 4096
    assert value("cdc_source_retained_wal_bytes", pipeline=name) is None


def test_position_number():
    class Binlog:
        file, position = "mariadb-bin.000002", 4711

    assert position_number(123) == 123 and position_number(Binlog()) == 4711 and position_number("x") is None
