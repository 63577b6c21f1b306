"""One verify run: open both databases, plan the tables, bisect each, re-check, and build the report."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdc.errors import CdcError, VerifyError
from cdc.registry import checksum_dialect
from cdc.tables import split_table_entry
from cdc.urls import DatabaseUrl, parse_url
from cdc.verify.apply_state import parked_note, parked_tables
from cdc.verify.bisect import Session, TableBisector, wait
from cdc.verify.diff import DIFFERENT, EXTRA, IN_FLIGHT, MISSING, CHANGED, RowDiff
from cdc.verify.plan import INTERNAL_TABLES, TablePlan, VerifyOptions, build_table_plan
from cdc.verify.values import value_type

log = logging.getLogger(__name__)

EQUAL = "equal"
TABLE_DIFFERENT = "different"
MISSING_IN_TARGET = "missing_in_target"
MISSING_IN_SOURCE = "missing_in_source"
ERROR = "error"

SCHEMA_VERSION = 2  # docs/verify-report.schema.json; 2: one value rule on every path (cdc/verify/values.py)


def dialect_for(url: DatabaseUrl):
    """The engine's verify dialect, from the one engine registry (`cdc.registry`)."""
    return checksum_dialect(url)


@dataclass(slots=True)
class TableReport:
    """The outcome for one table."""

    name: str
    status: str
    mode: str | None = None
    checksum: str | None = None  # "canonical" (SHA-256 of canonical row text) or "native" (engine's own row hash)
    key: list[str] = field(default_factory=list)
    source_rows: int | None = None
    target_rows: int | None = None
    segments_compared: int = 0
    differing_segments: int = 0
    unexamined_segments: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    schema_differences: list[str] = field(default_factory=list)
    client_side_columns: list[str] = field(default_factory=list)
    value_types: dict[str, str] = field(default_factory=dict)  # compared column -> report value type
    diffs: list[RowDiff] = field(default_factory=list)
    error: str | None = None
    slice: tuple[int, int] | None = None  # (index, parts) when a scheduled check covered one slice

    def counts(self) -> dict[str, int]:
        """Differences by kind (in-flight rows counted apart)."""
        out = {MISSING: 0, EXTRA: 0, CHANGED: 0, IN_FLIGHT: 0}
        for diff in self.diffs:
            if diff.status == IN_FLIGHT:
                out[IN_FLIGHT] += diff.count
            else:
                out[diff.kind] += diff.count
        return out

    @property
    def different_rows(self) -> int:
        counts = self.counts()
        return counts[MISSING] + counts[EXTRA] + counts[CHANGED]


@dataclass(slots=True)
class ParityReport:
    """The outcome of one run, and how it was run."""

    source: str | None  # redacted URL; None only when it could not be parsed (see `failed_report`)
    target: str | None
    parameters: dict[str, Any]
    started_at: str
    seconds: float = 0.0
    tables: list[TableReport] = field(default_factory=list)
    lag: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """0 parity, 1 differences found, 2 could not check (differences win: they are certain)."""
        if any(t.status in (TABLE_DIFFERENT, MISSING_IN_TARGET, MISSING_IN_SOURCE) for t in self.tables):
            return 1
        if self.error or any(t.status == ERROR for t in self.tables) or not self.tables:
            return 2
        return 0

    @property
    def status(self) -> str:
        return {0: "parity", 1: "differences", 2: "could_not_check"}[self.exit_code]

    @property
    def rows_checked(self) -> int:
        return sum(max(t.source_rows or 0, t.target_rows or 0) for t in self.tables)


def failed_report(source_url: str, target_url: str, options: VerifyOptions, error: str) -> ParityReport:
    """The report of a run that could not start (e.g. a bad URL): exit code 2 and why.

    A URL that does not parse is left out (null) rather than shown: it may hold a password.
    """
    def shown(url: str) -> str | None:
        try:
            return parse_url(url).redacted()
        except CdcError:
            return None

    return ParityReport(
        source=shown(source_url), target=shown(target_url), parameters=_parameters(options),
        started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), error=error,
    )


def _resolve_tables(options: VerifyOptions, source_tables: list[str]) -> list[str]:
    """The named tables (`schema.table` -> `table`; quoted parts may hold dots), else every source table but cdc's own."""
    if options.tables:
        return [split_table_entry(name)[1] for name in options.tables]
    return [name for name in source_tables if name not in INTERNAL_TABLES]


def _find(name: str, tables: list[str]) -> str | None:
    if name in tables:
        return name
    lowered = {table.lower(): table for table in tables}
    return lowered.get(name.lower())


def verify(source_url: str, target_url: str, options: VerifyOptions,
           progress: Callable[[str, str], None] | None = None) -> ParityReport:
    """Compare the tables and return the report (never raises for a table-level problem)."""
    progress = progress or (lambda table, message, total=None: None)
    source = parse_url(source_url, what="--source URL")
    target = parse_url(target_url, what="--target URL")
    started = time.monotonic()
    report = ParityReport(
        source=source.redacted(), target=target.redacted(), parameters=_parameters(options),
        started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    source_dialect, target_dialect = dialect_for(source), dialect_for(target)
    same_engine = source.engine == target.engine
    session = Session(source_dialect, target_dialect, options.workers)
    try:
        try:
            source_conn = session.source.acquire()
            target_conn = session.target.acquire()
        except CdcError as exc:
            report.error = str(exc)
            return report
        try:
            if options.wait_for_lag is not None:
                from cdc.verify.lag import wait_for_lag
                report.lag = wait_for_lag(source_dialect, source_conn, target_dialect, target_conn,
                                          options.wait_for_lag)
            source_list = source_dialect.list_tables(source_conn)
            target_list = target_dialect.list_tables(target_conn)
            names = _resolve_tables(options, source_list)
            parked = parked_tables(target_dialect, target_conn)
            plans: list[tuple[str, TablePlan | None, TableReport | None]] = []
            for name in names:
                source_name, target_name = _find(name, source_list), _find(name, target_list)
                if source_name is None or target_name is None:
                    status = MISSING_IN_TARGET if source_name else MISSING_IN_SOURCE
                    if source_name is None and target_name is None:
                        table = TableReport(name, ERROR, error=f"table {name!r} exists on neither side")
                    else:
                        side = "target" if source_name else "source"
                        table = TableReport(name, status, notes=[f"table {name!r} does not exist in the {side}"])
                    plans.append((name, None, table))
                    continue
                source_shape = source_dialect.read_table(source_conn, source_name)
                target_shape = target_dialect.read_table(target_conn, target_name)
                plan = build_table_plan(name, source_shape, target_shape, same_engine=same_engine, options=options)
                note = parked_note(name, parked)
                if note:
                    plan.notes.append(note)
                plans.append((name, plan, None))
        except CdcError as exc:
            report.error = str(exc)
            return report
        except Exception as exc:  # noqa: BLE001 - e.g. no privilege on the catalog: cannot check, say why
            log.debug("reading the catalogs failed", exc_info=True)
            report.error = f"reading the table catalogs failed: {type(exc).__name__}: {exc}".strip()
            return report
        finally:
            session.source.release(source_conn)
            session.target.release(target_conn)
        bisectors: list[tuple[TableReport, TableBisector]] = []
        progress("", "tables", total=len(plans))
        for name, plan, table in plans:
            if table is None:
                table, bisector = _check_table(session, plan, options, progress)
                if bisector is not None:
                    bisectors.append((table, bisector))
            report.tables.append(table)
            progress(name, "done")
        _recheck(bisectors, options, progress)
    finally:
        session.close()
        report.seconds = round(time.monotonic() - started, 3)
    return report


def _check_table(session: Session, plan: TablePlan, options: VerifyOptions, progress) -> tuple[TableReport, Any]:
    started = time.monotonic()
    table = TableReport(
        plan.name, EQUAL, mode=plan.mode, key=list(plan.key), notes=list(plan.notes),
        schema_differences=list(plan.schema_differences),
        client_side_columns=[pair.name for pair in plan.client_pairs],
        value_types={pair.name: value_type(pair) for pair in plan.pairs},
    )
    progress(plan.name, "checksumming")
    try:
        bisector = TableBisector(session, plan, options, lambda message: progress(plan.name, message))
        # The bisector may have moved JSON columns into the checksum (cdc/verify/json_forms.py).
        table.notes = list(bisector.plan.notes)
        table.client_side_columns = [pair.name for pair in bisector.plan.client_pairs]
        result = bisector.run()
    except CdcError as exc:
        table.status, table.error = ERROR, str(exc)
        return table, None
    except Exception as exc:  # noqa: BLE001 - a database refusal on one table must not stop the others
        log.debug("table %s failed", plan.name, exc_info=True)
        table.status, table.error = ERROR, f"{type(exc).__name__}: {exc}".strip()
        return table, None
    finally:
        table.seconds = round(time.monotonic() - started, 3)
    table.checksum = "native" if bisector.native else "canonical"
    table.source_rows, table.target_rows = result.source_rows, result.target_rows
    table.segments_compared = result.segments_compared
    table.differing_segments = result.differing_segments
    table.unexamined_segments = result.unexamined_segments
    table.diffs = result.diffs
    table.slice = result.slice
    if result.slice_text:
        table.notes.append(f"{result.slice_text} (rows counted in that slice only)")
    if result.differing_segments and not result.diffs and not result.unexamined_segments:
        table.notes.append(f"{result.differing_segments} segment checksum(s) differed but every row in them "
                           "compares equal value by value (e.g. 10.5 vs 10.50 in unconstrained numerics)")
    if result.unexamined_segments:
        table.notes.append(f"stopped listing rows after {options.max_diffs} differences; "
                           f"{result.unexamined_segments} differing segment(s) not listed")
    _set_status(table)
    return table, bisector


def _set_status(table: TableReport) -> None:
    """different when rows differ, columns differ, rows went unlisted, or the counts differ unexplained."""
    if table.status == ERROR:
        return
    different = table.different_rows or table.schema_differences or table.unexamined_segments
    if not different and table.source_rows is not None and table.source_rows != table.target_rows:
        different = True  # counts differ but the rows could not be paired: never call it equal
    table.status = TABLE_DIFFERENT if different else EQUAL


def _recheck(bisectors, options: VerifyOptions, progress) -> None:
    """Rows found different are fetched again after a delay; those that now agree were in flight."""
    pending = [(t, b) for t, b in bisectors if any(d.status == DIFFERENT for d in t.diffs)]
    if not pending or options.recheck_delay <= 0:
        return
    progress("", f"re-checking differing rows in {options.recheck_delay:g}s")
    wait(options.recheck_delay)
    for table, bisector in pending:
        try:
            converged = bisector.recheck()
        except Exception as exc:  # noqa: BLE001 - the first verdict stands when the re-check cannot run
            table.notes.append(f"re-check failed ({type(exc).__name__}: {exc}); rows reported as found")
            continue
        if converged:
            table.notes.append(f"{converged} row(s) converged on re-check after {options.recheck_delay:g}s (in flight)")
            if table.source_rows != table.target_rows and not table.different_rows:
                table.notes.append("row counts differed during the first pass while changes were in flight")
                table.source_rows = table.target_rows = None
        _set_status(table)


def _parameters(options: VerifyOptions) -> dict[str, Any]:
    return {
        "tables": list(options.tables), "where": options.where, "columns": list(options.columns),
        "exclude_columns": list(options.exclude_columns), "float_tolerance": options.float_tolerance,
        "workers": options.workers, "threshold": options.threshold, "segment_rows": options.segment_rows,
        "max_diffs": options.max_diffs, "recheck_delay": options.recheck_delay,
        "wait_for_lag": options.wait_for_lag,
    }
