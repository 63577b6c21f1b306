"""The parity report in three forms: a terminal summary (rich), JSON (schema in docs/verify.md), HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import orjson
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cdc import __version__
from cdc.verify.diff import RowDiff
from cdc.verify.parity import SCHEMA_VERSION, ParityReport, TableReport

TEMPLATES = Path(__file__).parent / "templates"
STATUS_STYLE = {"equal": "green", "different": "red", "missing_in_target": "red", "missing_in_source": "red",
                "error": "yellow"}
VERDICT = {0: "PARITY: every compared row is equal", 1: "DIFFERENCES FOUND",
           2: "COULD NOT CHECK: parity is not established"}


def diff_dict(diff: RowDiff) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": diff.kind, "status": diff.status, "key": diff.key}
    if diff.columns:
        out["columns"] = [{"column": c.column, "source": c.source, "target": c.target} for c in diff.columns]
    if diff.count != 1:
        out["count"] = diff.count
    return out


def table_dict(table: TableReport) -> dict[str, Any]:
    return {
        "name": table.name,
        "status": table.status,
        "mode": table.mode,
        "checksum": table.checksum,
        "key": table.key,
        "source_rows": table.source_rows,
        "target_rows": table.target_rows,
        "segments_compared": table.segments_compared,
        "differing_segments": table.differing_segments,
        "differences": table.counts(),
        "seconds": table.seconds,
        "schema_differences": table.schema_differences,
        "client_side_columns": table.client_side_columns,
        "notes": table.notes,
        "error": table.error,
        "rows": [diff_dict(d) for d in table.diffs],
        "rows_truncated": bool(table.unexamined_segments),
    }


def report_dict(report: ParityReport) -> dict[str, Any]:
    """The JSON report (documented in docs/verify.md; `schema_version` changes on incompatible edits)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": f"cdc verify {__version__}",
        "status": report.status,
        "exit_code": report.exit_code,
        "started_at": report.started_at,
        "seconds": report.seconds,
        "source": report.source,
        "target": report.target,
        "parameters": report.parameters,
        "lag": report.lag or None,
        "error": report.error,
        "summary": {
            "tables": len(report.tables),
            "tables_equal": sum(t.status == "equal" for t in report.tables),
            "tables_different": sum(t.status not in ("equal", "error") for t in report.tables),
            "tables_error": sum(t.status == "error" for t in report.tables),
            "rows_checked": report.rows_checked,
            "rows_different": sum(t.different_rows for t in report.tables),
            "rows_in_flight": sum(t.counts()["in_flight"] for t in report.tables),
        },
        "tables": [table_dict(t) for t in report.tables],
    }


def write_json(report: ParityReport, path: str | Path) -> None:
    Path(path).write_bytes(orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2, default=str) + b"\n")


def render_html(report: ParityReport) -> str:
    """A self-contained page (inline CSS, no scripts or network assets) to attach to a change ticket."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True, lstrip_blocks=True,
    )
    data = report_dict(report)
    return environment.get_template("report.html.j2").render(
        report=data, verdict=VERDICT[report.exit_code],
        to_text=lambda v: "NULL" if v is None else (v if isinstance(v, str) else orjson.dumps(v, default=str).decode()),
    )


def write_html(report: ParityReport, path: str | Path) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")


def print_summary(report: ParityReport, console: Console | None = None, max_rows: int = 20) -> None:
    """The terminal summary: one line per table, then the first differing rows, then the verdict."""
    console = console or Console()
    if not report.tables:
        if report.error:
            console.print(f"[yellow]error:[/] {escape(report.error)}")
        console.print(f"[bold yellow]{VERDICT[report.exit_code]}[/]")
        return
    table = Table(title=escape(f"cdc verify: {report.source} -> {report.target}"), title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name, justify in (("table", "left"), ("status", "left"), ("rows", "right"), ("ranges", "right"),
                          ("missing", "right"), ("extra", "right"), ("changed", "right"), ("flight", "right"),
                          ("time", "right")):
        table.add_column(name, justify=justify, overflow="fold", no_wrap=True, min_width=5 if name == "table" else None)
    for t in report.tables:
        counts = t.counts()
        style = STATUS_STYLE.get(t.status, "")
        rows = _num(t.source_rows) if t.source_rows == t.target_rows else f"{_num(t.source_rows)}/{_num(t.target_rows)}"
        table.add_row(
            escape(t.name), f"[{style}]{t.status}[/]", rows, _num(t.segments_compared),
            _num(counts["missing"]), _num(counts["extra"]), _num(counts["changed"]), _num(counts["in_flight"]),
            f"{t.seconds:.1f}s",
        )
    console.print(table)
    for t in report.tables:
        for line in t.schema_differences:
            console.print(f"[red]{escape(t.name)}[/]: {escape(line)}")
        if t.error:
            console.print(f"[yellow]{escape(t.name)}[/]: {escape(t.error)}")
        for note in t.notes:
            console.print(f"[dim]{escape(t.name)}: {escape(note)}[/]")
        shown = [d for d in t.diffs][:max_rows]
        for d in shown:
            key = ", ".join(f"{k}={v!r}" for k, v in d.key.items())
            cols = "; ".join(f"{c.column}: {c.source!r} -> {c.target!r}" for c in d.columns)
            flight = " (in flight)" if d.status == "in_flight" else ""
            count = f" x{d.count}" if d.count != 1 else ""
            console.print(f"  {t.name} {d.kind}{flight}{count} ({key}){' ' + cols if cols else ''}",
                          markup=False, highlight=False)
        if len(t.diffs) > max_rows:
            console.print(f"  ... {len(t.diffs) - max_rows} more rows of {t.name} in the JSON/HTML report")
    if report.lag:
        detail = report.lag.get("note") or "; ".join(report.lag.get("steps", []))
        console.print(f"lag: {'caught up' if report.lag.get('caught_up') else 'not confirmed'}"
                      f" after {report.lag.get('waited_seconds', 0)}s; {detail}", markup=False)
    if report.error:
        console.print(f"[yellow]error:[/] {escape(report.error)}")
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[report.exit_code]
    console.print(f"[{style}]{VERDICT[report.exit_code]}[/] ({report.rows_checked:,} rows, {report.seconds:.2f}s)")


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
