"""docker/grafana/cdc.json: valid JSON, queries only families cdc exports, and the compose file loads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cdc import metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _exported() -> set[str]:
    names = {collector._name for collector in vars(metrics).values() if hasattr(collector, "_name")}
    suffixes = ("", "_total", "_bucket", "_sum", "_count")
    return {name + suffix for name in names for suffix in suffixes}


def test_dashboard_queries_name_exported_families() -> None:
    dashboard = json.loads((DOCKER / "grafana" / "cdc.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\b(cdc_[a-z_]+)\b", expr)}
    assert {"cdc_capture_lag_seconds", "cdc_source_retained_wal_bytes", "cdc_events_captured_total",
            "cdc_verify_differences_confirmed"} <= used
    assert used <= _exported(), f"unknown families: {sorted(used - _exported())}"


def test_compose_mounts_dashboard_rules_and_datasource() -> None:
    compose = (DOCKER / "docker-compose.yml").read_text()
    assert "./grafana/cdc.json:/var/lib/grafana/dashboards/cdc.json" in compose
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in compose
    provider = (DOCKER / "grafana" / "provisioning" / "dashboards" / "cdc.yml").read_text()
    assert "/var/lib/grafana/dashboards" in provider
    datasource = (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "uid: prometheus" in datasource
