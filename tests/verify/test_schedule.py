"""The schedule's rules without databases: twice-in-a-row confirmation, slice cursor, full passes, reports kept."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from cdc import metrics
from cdc.config import VerifyConfig
from cdc.verify.diff import CHANGED, ColumnDiff, RowDiff
from cdc.verify.parity import ParityReport, TableReport
from cdc.verify.schedule import ScheduledVerify, max_slices, prune_reports


class FakeVerify:
    """Answers each call with the next planned table outcomes: name -> (different rows, slice)."""

    def __init__(self, plan: list[dict[str, tuple[int, tuple[int, int]]]]) -> None:
        self.plan = plan
        self.calls: list = []

    def __call__(self, source: str, target: str, options) -> ParityReport:
        self.calls.append(options)
        outcome = self.plan[len(self.calls) - 1]
        report = ParityReport(source="postgresql://u:***@h:1/d", target="mysql://u@h:2/d", parameters={
            "tables": [], "where": None, "columns": [], "exclude_columns": [], "float_tolerance": None,
            "workers": 1, "threshold": 1, "segment_rows": 1, "max_diffs": 1, "recheck_delay": 0,
            "wait_for_lag": None}, started_at="2026-12-03T21:00:00+00:00")
        for name, (rows, part) in outcome.items():
            table = TableReport(name, "different" if rows else "equal", mode="range", key=["id"],
                                source_rows=10, target_rows=10, segments_compared=4, slice=part,
                                value_types={"id": "integer", "v": "integer"})
            table.diffs = [RowDiff(CHANGED, {"id": i}, [ColumnDiff("v", 1, 2)]) for i in range(rows)]
            report.tables.append(table)
        return report


def make(tmp_path: Path, plan, **kwargs) -> tuple[ScheduledVerify, FakeVerify]:
    config = VerifyConfig(source="postgresql://u:pw@h:1/d", target="mysql://u@h:2/d",
                          pipeline=kwargs.pop("pipeline", f"p{abs(hash(tmp_path)) % 10**8}"),
                          report_dir=tmp_path / "reports", **kwargs)
    fake = FakeVerify(plan)
    clock = iter(range(1_000_000, 2_000_000, 60))
    return ScheduledVerify(config, verify=fake, clock=lambda: next(clock)), fake


def gauge(family, *labels) -> float:
    """The value /metrics would show for this family's child."""
    names = ("pipeline", "table")[:len(labels)]
    return REGISTRY.get_sample_value(family._name, dict(zip(names, labels)))


def test_differences_twice_in_a_row_confirm_and_keep_the_slice(tmp_path):
    plan = [{"t": (0, (0, 3))}, {"t": (2, (1, 3))}, {"t": (2, (1, 3))}, {"t": (0, (1, 3))}]
    schedule, fake = make(tmp_path, plan)
    name = schedule.config.pipeline
    assert schedule.check().confirmed_rows == 0
    assert schedule.state.runs == {"t": 1}
    first = schedule.check()
    assert first.confirmed_rows == 0 and schedule.state.suspect == {"t": 2}
    assert gauge(metrics.VERIFY_CONFIRMED, name) == 0
    assert schedule.state.runs == {"t": 1}  # the differing slice is checked again, not skipped
    second = schedule.check()
    assert second.confirmed_rows == 2 and gauge(metrics.VERIFY_CONFIRMED, name) == 2
    assert [c.slicing.runs for c in fake.calls[1:3]] == [{"t": 1}, {"t": 1}]
    assert gauge(metrics.VERIFY_DIFFERENCES, name, "t") == 2
    assert gauge(metrics.VERIFY_LAST_EXIT, name) == 1
    cleared = schedule.check()
    assert cleared.confirmed_rows == 0 and gauge(metrics.VERIFY_CONFIRMED, name) == 0
    assert schedule.state.runs == {"t": 2}


def test_a_difference_that_is_gone_next_time_never_confirms(tmp_path):
    schedule, _ = make(tmp_path, [{"t": (1, (0, 1))}, {"t": (0, (0, 1))}, {"t": (1, (0, 1))}])
    assert [schedule.check().confirmed_rows for _ in range(3)] == [0, 0, 0]


def test_full_pass_ends_when_every_table_passed_its_last_slice(tmp_path):
    plan = [{"a": (0, (0, 2)), "b": (0, (0, 1))}, {"a": (0, (1, 2)), "b": (0, (0, 1))},
            {"a": (0, (0, 2)), "b": (0, (0, 1))}]
    schedule, _ = make(tmp_path, plan)
    assert [schedule.check().full_pass for _ in range(3)] == [False, True, False]
    assert schedule.state.full_passes == 1


def test_seconds_since_clean_check_counts_from_the_last_parity(tmp_path):
    schedule, _ = make(tmp_path, [{"t": (0, (0, 1))}, {"t": (3, (0, 1))}])
    name = schedule.config.pipeline
    schedule.check()
    clean_at = schedule.state.last_clean
    schedule.check()
    assert schedule.state.last_clean == clean_at
    assert gauge(metrics.VERIFY_SINCE_CLEAN, name) >= 60


def test_reports_are_written_private_and_only_the_last_n_kept(tmp_path):
    schedule, _ = make(tmp_path, [{"t": (0, (0, 1))}] * 5, keep=2)
    outcomes = [schedule.check() for _ in range(5)]
    kept = sorted(p.name for p in (tmp_path / "reports").glob("parity-*"))
    assert kept == sorted([outcomes[-2].json_path.name, outcomes[-2].html_path.name,
                           outcomes[-1].json_path.name, outcomes[-1].html_path.name])
    assert (outcomes[-1].json_path.stat().st_mode & 0o777) == 0o600
    data = orjson.loads(outcomes[-1].json_path.read_bytes())
    assert data["status"] == "parity" and "pw" not in outcomes[-1].json_path.read_text()


def test_state_survives_a_restart(tmp_path):
    schedule, _ = make(tmp_path, [{"t": (2, (0, 4))}], pipeline="restart")
    schedule.check()
    again, fake = make(tmp_path, [{"t": (2, (0, 4))}], pipeline="restart")
    assert again.state.suspect == {"t": 2}
    assert again.check().confirmed_rows == 2


def test_slices_are_bounded_so_a_full_pass_fits_full_every(tmp_path):
    config = VerifyConfig(source="", target="", pipeline="x", report_dir=tmp_path, every_seconds=900,
                          full_every_seconds=86400)
    assert max_slices(config) == 96
    schedule, fake = make(tmp_path, [{"t": (0, (0, 1))}], every_seconds=60, full_every_seconds=600,
                          rows_per_run=500)
    schedule.check()
    assert fake.calls[0].slicing.max_parts == 10 and fake.calls[0].slicing.rows == 500


def test_prune_reports_keeps_the_newest(tmp_path):
    for stamp in ("20260101", "20260102", "20260103"):
        (tmp_path / f"parity-{stamp}.json").write_text("{}")
        (tmp_path / f"parity-{stamp}.html").write_text("")
    prune_reports(tmp_path, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parity-20260103.html", "parity-20260103.json"]


def test_run_checks_on_schedule_until_stopped(tmp_path):
    schedule, fake = make(tmp_path, [{"t": (0, (0, 1))}] * 50, every_seconds=0.05)
    schedule.clock = __import__("time").time
    stop = threading.Event()
    thread = threading.Thread(target=schedule.run, args=(stop, 0.0))
    thread.start()
    threading.Event().wait(0.5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and len(fake.calls) >= 3


@pytest.mark.parametrize("status, rows, expected", [("equal", 0, 0), ("different", 0, 1), ("different", 5, 5),
                                                    ("error", 0, 0)])
def test_table_differs(status, rows, expected):
    from cdc.verify.schedule import table_differs

    table = TableReport("t", status)
    table.diffs = [RowDiff(CHANGED, {"id": i}, []) for i in range(rows)]
    assert table_differs(table) == expected
