"""The parity report: one JSON object (docs/verify-report.schema.json), from which the HTML page and
the terminal summary are both rendered, so neither shows anything the JSON does not hold."""

from __future__ import annotations

import os
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
REPORT_FILE_MODE = 0o600  # reports hold row data


def diff_dict(diff: RowDiff) -> dict[str, Any]:
    """One entry of a table's `rows`."""
    out: dict[str, Any] = {"kind": diff.kind, "status": diff.status, "key": diff.key}
    if diff.columns:
        out["columns"] = [{"column": c.column, "source": c.source, "target": c.target} for c in diff.columns]
    if diff.count != 1:
        out["count"] = diff.count
    return out


def table_dict(table: TableReport) -> dict[str, Any]:
    """One entry of the report's `tables`."""
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
        "value_types": table.value_types,
        "notes": table.notes,
        "error": table.error,
        "rows": [diff_dict(d) for d in table.diffs],
        "rows_truncated": bool(table.unexamined_segments),
    }


def report_dict(report: ParityReport) -> dict[str, Any]:
    """The report object (docs/verify-report.schema.json; `schema_version` changes on incompatible edits).

    Row keys and values are already in report form (cdc/verify/values.py), whichever path found them.
    """
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


def json_bytes(data: dict[str, Any]) -> bytes:
    """The report's JSON text (values are already JSON types: cdc/verify/values.py; `str` is a last resort)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str) + b"\n"


def write_private(path: str | Path, content: bytes) -> None:
    """Write a report file readable by its owner only (mode 0600, also when the file already existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, REPORT_FILE_MODE)
    try:
        os.fchmod(fd, REPORT_FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(content)
    finally:
        os.close(fd)


def _data(report: ParityReport | dict[str, Any]) -> dict[str, Any]:
    return report if isinstance(report, dict) else report_dict(report)


def write_json(report: ParityReport | dict[str, Any], path: str | Path) -> None:
    write_private(path, json_bytes(_data(report)))


def value_text(value: Any) -> str:
    """A report value as the HTML page and the terminal show it: its JSON text (`"52.50"`, `42`, `null`)."""
    return orjson.dumps(value, default=str).decode()


def key_text(key: dict[str, Any]) -> str:
    """`id=42` or `order_ref="o7", line=2`: the key's columns in key order, values as JSON text."""
    return ", ".join(f"{name}={value_text(value)}" for name, value in key.items())


def count_text(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render_html(report: ParityReport | dict[str, Any]) -> str:
    """A self-contained page (inline CSS, no scripts or network assets) rendered from the JSON report only."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True, lstrip_blocks=True,
    )
    data = _data(report)
    return environment.get_template("report.html.j2").render(
        report=data, verdict=VERDICT[data["exit_code"]], value_text=value_text, key_text=key_text,
        count_text=count_text,
    )


def write_html(report: ParityReport | dict[str, Any], path: str | Path) -> None:
    write_private(path, render_html(report).encode("utf-8"))


def diff_line(table: str, row: dict[str, Any]) -> str:
    """One differing row as the terminal lists it."""
    flight = " (in flight)" if row["status"] == "in_flight" else ""
    count = f" x{row['count']}" if "count" in row else ""
    columns = "; ".join(f"{c['column']}: {value_text(c['source'])} -> {value_text(c['target'])}"
                        for c in row.get("columns", []))
    return f"  {table} {row['kind']}{flight}{count} ({key_text(row['key'])}){' ' + columns if columns else ''}"


def print_summary(report: ParityReport | dict[str, Any], console: Console | None = None, max_rows: int = 20) -> None:
    """The terminal summary, from the JSON report: one line per table, the first differing rows, the verdict."""
    console = console or Console()
    data = _data(report)
    exit_code = data["exit_code"]
    if not data["tables"]:
        if data["error"]:
            console.print(f"[yellow]error:[/] {escape(data['error'])}", soft_wrap=True)
        console.print(f"[bold yellow]{VERDICT[exit_code]}[/]")
        return
    table = Table(title=escape(f"cdc verify: {data['source']} -> {data['target']}"), title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name, justify in (("table", "left"), ("status", "left"), ("rows", "right"), ("ranges", "right"),
                          ("missing", "right"), ("extra", "right"), ("changed", "right"), ("flight", "right"),
                          ("time", "right")):
        table.add_column(name, justify=justify, overflow="fold", no_wrap=True, min_width=5 if name == "table" else None)
    for t in data["tables"]:
        counts = t["differences"]
        style = STATUS_STYLE.get(t["status"], "")
        rows = (count_text(t["source_rows"]) if t["source_rows"] == t["target_rows"]
                else f"{count_text(t['source_rows'])}/{count_text(t['target_rows'])}")
        table.add_row(
            escape(t["name"]), f"[{style}]{t['status']}[/]", rows, count_text(t["segments_compared"]),
            count_text(counts["missing"]), count_text(counts["extra"]), count_text(counts["changed"]),
            count_text(counts["in_flight"]), f"{t['seconds']:.1f}s",
        )
    console.print(table)
    for t in data["tables"]:
        for line in t["schema_differences"]:
            console.print(f"[red]{escape(t['name'])}[/]: {escape(line)}")
        if t["error"]:
            console.print(f"[yellow]{escape(t['name'])}[/]: {escape(t['error'])}")
        for note in t["notes"]:
            console.print(f"[dim]{escape(t['name'])}: {escape(note)}[/]")
        for row in t["rows"][:max_rows]:
            console.print(diff_line(t["name"], row), markup=False, highlight=False)
        if len(t["rows"]) > max_rows:
            console.print(f"  ... {len(t['rows']) - max_rows} more rows of {t['name']} in the JSON/HTML report",
                          markup=False, highlight=False)
    lag = data["lag"]
    if lag:
        detail = lag.get("note") or "; ".join(lag.get("steps", []))
        console.print(f"lag: {'caught up' if lag.get('caught_up') else 'not confirmed'}"
                      f" after {lag.get('waited_seconds', 0)}s; {detail}", markup=False)
    if data["error"]:
        console.print(f"[yellow]error:[/] {escape(data['error'])}", soft_wrap=True)
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[exit_code]
    rows_checked = data["summary"]["rows_checked"]
    console.print(f"[{style}]{VERDICT[exit_code]}[/] ({rows_checked:,} rows, {data['seconds']:.2f}s)")
