"""docker/prometheus/alerts.yml: the rules load and their unit tests (alerts_test.yml) pass under promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cdc import metrics

PROMETHEUS = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus; scripts/install.sh does)")


@needs_promtool
def test_alert_rules_are_valid() -> None:
    result = subprocess.run([PROMTOOL, "check", "rules", str(PROMETHEUS / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    result = subprocess.run([PROMTOOL, "test", "rules", str(PROMETHEUS / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_name_only_metric_families_cdc_exports() -> None:
    """A renamed family would leave an alert that never fires: every cdc_* name in the rules exists."""
    exported = {collector._name for collector in vars(metrics).values() if hasattr(collector, "_name")}
    names = set(re.findall(r"\b(cdc_[a-z_]+)\b", (PROMETHEUS / "alerts.yml").read_text()))
    exported |= {name + "_total" for name in exported}
    assert names, "no cdc_* metric in alerts.yml"
    assert names <= exported, f"unknown metric families in alerts.yml: {sorted(names - exported)}"
