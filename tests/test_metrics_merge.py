"""`cdc run`'s /metrics: its own families and its children's, each family once, children that are down left out."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from cdc.metrics import serve_metrics
from cdc.metrics_merge import MergedMetrics
from cdc.run_status import parse_samples
from cdc.sandbox.ports import pick_free_port


def child(name: str, pipeline: str, value: float):
    """A child's registry with one counter sample, served on a loopback port; (server, its URL)."""
    registry = CollectorRegistry()
    Counter(name, "events", ["pipeline"], registry=registry).labels(pipeline).inc(value)
    server = serve_metrics("127.0.0.1:0", registry=registry)
    return server, f"http://127.0.0.1:{server.server_address[1]}/metrics"


def test_families_of_children_and_parent_are_merged_once():
    family = f"t_{uuid.uuid4().hex[:8]}_events"
    parent = CollectorRegistry()
    Gauge("t_parent_up", "up", ["component"], registry=parent).labels("capture:a").set(1)
    one, one_url = child(family, "a", 3)
    two, two_url = child(family, "b", 5)
    down_url = f"http://127.0.0.1:{pick_free_port()}/metrics"
    try:
        merged = CollectorRegistry(auto_describe=False)
        merged.register(MergedMetrics(parent, lambda: [one_url, two_url, down_url], timeout=1.0))
        text = generate_latest(merged).decode()
    finally:
        one.shutdown()
        two.shutdown()
    assert text.count(f"# TYPE {family}_total counter") == 1
    samples = parse_samples(text)
    assert samples[(f"{family}_total", (("pipeline", "a"),))] == 3
    assert samples[(f"{family}_total", (("pipeline", "b"),))] == 5
    assert samples[("t_parent_up", (("component", "capture:a"),))] == 1
    assert "_created" not in text
