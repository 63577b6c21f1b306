"""The runner's charts: one PNG per scenario that has figures of its chart metric, none for the others."""

from __future__ import annotations

import pytest

from benchmarks.suite.charts import draw
from tests.benchmarks.test_tables import payload, scenario

pytest.importorskip("matplotlib")


def test_a_png_per_scenario_with_figures_and_none_for_a_skipped_one(tmp_path):
    skipped = {"name": "kafka-copy", "title": "Initial copy through Kafka", "status": "skipped", "reason": "absent"}
    written = draw(payload(copy=scenario(), **{"kafka-copy": skipped}), tmp_path)
    assert [p.name for p in written] == ["bench-copy.png"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
