"""The drill's verdict, JSON and HTML."""

from __future__ import annotations

import json

from cdc.drill import report
from cdc.drill.report import FaultResult


def _result(fault: str, lost: int = 0, parity: bool = True, error: str | None = None) -> FaultResult:
    return FaultResult(fault, "what", "note", 100, lost, 0, 3, 1.5, parity, error)


def test_passes_only_when_every_fault_lost_nothing_and_ended_in_parity():
    assert report.passed([_result("a"), _result("b")])
    assert not report.passed([_result("a"), _result("b", lost=1)])
    assert not report.passed([_result("a", parity=False)])
    assert not report.passed([_result("a", error="injector failed")])
    assert not report.passed([])


def test_json_has_the_promised_fields_and_the_faults_not_run(tmp_path):
    path = tmp_path / "drill.json"
    report.write_json(path, [_result("kill-capture")], {"broker-restart": "memory only"})
    rows = json.loads(path.read_text())
    assert {"fault", "lost", "repeated", "recovery_seconds", "parity"} <= set(rows[0])
    assert rows[0]["passed"] is True
    assert rows[1] == {"fault": "broker-restart", "skipped": "memory only"}


def test_html_escapes_notes(tmp_path):
    path = tmp_path / "drill.html"
    report.write_html(path, [_result("a", error="<b>boom</b>")], {})
    assert "&lt;b&gt;boom" in path.read_text()
