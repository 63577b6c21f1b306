"""Scheduled parity checks of one [[verify]] entry (run by `cdc run` in its own child, `cdc verify-schedule`).

Each check runs `cdc.verify.parity.verify` on one slice of every table (cdc/verify/plan.py `Slicing`):
about `rows_per_run` rows, and never more slices than checks fit in `full_every`, so a full pass ends at
least that often. A table whose slice differs is checked on the same slice next time instead of moving
on; differences found there twice in a row are confirmed (rows still in flight converge on verify's own
re-check and never count): `cdc_verify_differences_confirmed` rises and the report path is logged.
The last `keep` JSON + HTML reports stay in `report_dir`; the cursor survives restarts in
`report_dir/schedule-state.json`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from cdc import metrics
from cdc.config import VerifyConfig
from cdc.errors import CdcError
from cdc.verify.parity import ERROR, ParityReport, failed_report
from cdc.verify.plan import Slicing, VerifyOptions

log = logging.getLogger("cdc.verify.schedule")

STATE_FILE = "schedule-state.json"
REPORT_GLOB = "parity-*.json"


@dataclass(slots=True)
class ScheduleState:
    """What one check leaves for the next: the slice cursor and the differences awaiting confirmation."""

    runs: dict[str, int] = field(default_factory=dict)       # table -> checks that moved past a slice
    suspect: dict[str, int] = field(default_factory=dict)    # table -> rows different once, on its current slice
    confirmed: dict[str, int] = field(default_factory=dict)  # table -> rows different twice in a row
    completed: list[str] = field(default_factory=list)       # tables whose last slice passed in this round
    full_passes: int = 0
    last_clean: float | None = None                          # Unix time of the last check without differences

    @classmethod
    def load(cls, path: Path) -> ScheduleState:
        try:
            data = orjson.loads(path.read_bytes())
            return cls(**{key: data[key] for key in cls.__slots__ if key in data})
        except (OSError, orjson.JSONDecodeError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(self)))
        tmp.replace(path)


@dataclass(slots=True, frozen=True)
class CheckOutcome:
    """One check: the report, where it was written, and the confirmed different rows after it."""

    report: ParityReport
    json_path: Path
    html_path: Path
    confirmed_rows: int
    full_pass: bool


def max_slices(config: VerifyConfig) -> int:
    """The most slices a table may have so that a full pass fits in `full_every` (one slice per check)."""
    return max(1, math.floor(config.full_every_seconds / config.every_seconds))


def report_name(now: float) -> str:
    """`parity-20261203T211500Z` (sortable, UTC)."""
    return "parity-" + dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def prune_reports(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` reports (JSON and its HTML); return what was deleted."""
    reports = sorted(directory.glob(REPORT_GLOB))
    gone = []
    for old in reports[:-keep] if keep else reports:
        for path in (old, old.with_suffix(".html")):
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def table_differs(table) -> int:
    """Rows this table's check found different (1 for a difference without rows, e.g. a missing column)."""
    if table.status in ("equal", ERROR):
        return 0
    return max(1, table.different_rows)


class ScheduledVerify:
    """The checks of one [[verify]] entry, their reports, state and metrics."""

    def __init__(self, config: VerifyConfig, *, verify: Callable[..., ParityReport] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        from cdc.verify.parity import verify as parity_verify

        self.config = config
        self.verify = verify or parity_verify
        self.clock = clock
        self.started = clock()
        config.report_dir.mkdir(parents=True, exist_ok=True)
        config.report_dir.chmod(0o700)  # reports hold row values
        self.state_path = config.report_dir / STATE_FILE
        self.state = ScheduleState.load(self.state_path)
        name = config.pipeline
        metrics.VERIFY_CONFIRMED.labels(name).set(sum(self.state.confirmed.values()))
        metrics.VERIFY_SINCE_CLEAN.labels(name).set_function(
            lambda: self.clock() - (self.state.last_clean if self.state.last_clean is not None else self.started))

    def options(self) -> VerifyOptions:
        slicing = Slicing(self.config.rows_per_run, max_slices(self.config), dict(self.state.runs)) \
            if self.config.rows_per_run else None
        return VerifyOptions(tables=self.config.tables, workers=self.config.workers,
                             recheck_delay=self.config.recheck_delay, wait_for_lag=self.config.wait_for_lag,
                             slicing=slicing)

    def check(self) -> CheckOutcome:
        """Run one check, write its reports, update the state and the metrics."""
        from cdc.verify.report import report_dict, write_html, write_json

        options = self.options()
        try:
            report = self.verify(self.config.source, self.config.target, options)
        except CdcError as exc:
            report = failed_report(self.config.source, self.config.target, options, str(exc))
        now = self.clock()
        base = self.config.report_dir / report_name(now)
        data = report_dict(report)
        json_path, html_path = base.with_suffix(".json"), base.with_suffix(".html")
        write_json(data, json_path)
        write_html(data, html_path)
        prune_reports(self.config.report_dir, self.config.keep)
        newly_confirmed, full_pass = self._advance(report, now)
        self.state.save(self.state_path)
        self._record(report, now)
        confirmed = sum(self.state.confirmed.values())
        if confirmed:
            log.warning("parity: %d row(s) differ in two checks in a row (%s%s); report %s", confirmed,
                        ", ".join(sorted(self.state.confirmed)), ", new" if newly_confirmed else "", json_path)
        else:
            log.info("parity check: %s (%d rows in %.1fs); report %s", report.status, report.rows_checked,
                     report.seconds, json_path)
        return CheckOutcome(report, json_path, html_path, confirmed, full_pass)

    def _advance(self, report: ParityReport, now: float) -> tuple[list[str], bool]:
        """The twice-in-a-row rule and the slice cursor; (tables newly confirmed, whether a full pass ended)."""
        state = self.state
        newly = []
        for table in report.tables:
            name, rows = table.name, table_differs(table)
            if table.status == ERROR:
                continue  # same slice again next time; neither clean nor different
            if rows:
                if name in state.confirmed:
                    state.confirmed[name] = rows
                elif name in state.suspect:
                    state.confirmed[name] = rows
                    del state.suspect[name]
                    newly.append(name)
                else:
                    state.suspect[name] = rows
                continue  # stay on this slice until it is clean
            state.suspect.pop(name, None)
            state.confirmed.pop(name, None)
            state.runs[name] = state.runs.get(name, 0) + 1
            index, parts = table.slice or (0, 1)
            if index == parts - 1 and name not in state.completed:
                state.completed.append(name)
        if report.exit_code == 0:
            state.last_clean = now
        names = {t.name for t in report.tables}
        full_pass = bool(names) and names <= set(state.completed)
        if full_pass:
            state.full_passes += 1
            state.completed = []
            metrics.VERIFY_FULL_PASSES.labels(self.config.pipeline).inc()
        return newly, full_pass

    def _record(self, report: ParityReport, now: float) -> None:
        name = self.config.pipeline
        for table in report.tables:
            metrics.VERIFY_ROWS_CHECKED.labels(name, table.name).inc(
                max(table.source_rows or 0, table.target_rows or 0))
            metrics.VERIFY_RANGES.labels(name, table.name).inc(table.segments_compared)
            metrics.VERIFY_DIFFERENCES.labels(name, table.name).set(table.different_rows)
        metrics.VERIFY_CHECKS.labels(name, {0: "parity", 1: "differences"}.get(report.exit_code, "error")).inc()
        metrics.VERIFY_DURATION.labels(name).set(report.seconds)
        metrics.VERIFY_LAST_CHECK.labels(name).set(now)
        metrics.VERIFY_LAST_EXIT.labels(name).set(report.exit_code)
        metrics.VERIFY_CONFIRMED.labels(name).set(sum(self.state.confirmed.values()))

    def run(self, stop: threading.Event, first_after: float | None = None) -> None:
        """Check every `every_seconds` (start to start) until `stop` is set; the first after `first_after`."""
        delay = min(self.config.every_seconds, 60.0) if first_after is None else first_after
        while not stop.wait(max(0.0, delay)):
            started = self.clock()
            try:
                self.check()
            except Exception:  # noqa: BLE001 - one failed check (disk full, a bug) must not end the schedule
                log.exception("scheduled parity check of %s failed", self.config.pipeline)
                metrics.VERIFY_CHECKS.labels(self.config.pipeline, "error").inc()
            delay = self.config.every_seconds - (self.clock() - started)
