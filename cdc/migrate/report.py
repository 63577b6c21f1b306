"""`cdc migrate status NAME --html FILE`: the workflow's whole history as one self-contained page."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from cdc.verify.report import write_private

_STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.failed{color:#b00020;font-weight:600}.done,.passed{color:#186a3b}
code{font-size:12px;white-space:pre-wrap;color:#444}.meta td:first-child{font-weight:600;width:14em}"""
_SHOWN = ("at", "step", "status", "note", "sql")


def _details(entry: dict[str, Any]) -> str:
    rest = {k: v for k, v in entry.items() if k not in _SHOWN}
    sql = "".join(f"<div><code>{html.escape(str(s))}</code></div>" for s in entry.get("sql") or ())
    extra = f"<div><code>{html.escape(json.dumps(rest, default=str))}</code></div>" if rest else ""
    return html.escape(str(entry.get("note", ""))) + sql + extra


def render_page(status: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """The page: the status summary, then every journal entry (time, step, status, note, SQL, details)."""
    meta = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in status.items() if k not in ("next_steps",))
    steps = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in status.get("next_steps", ()))
    rows = "".join(
        f"<tr><td>{html.escape(e['at'])}</td><td>{html.escape(e['step'])}</td>"
        f"<td class=\"{html.escape(e['status'])}\">{html.escape(e['status'])}</td><td>{_details(e)}</td></tr>"
        for e in entries)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>cdc migrate {html.escape(status['name'])}"
            f"</title><style>{_STYLE}</style></head><body><h1>Migration workflow {html.escape(status['name'])}</h1>"
            f"<table class=\"meta\">{meta}</table><h2>Next steps</h2><ul>{steps}</ul>"
            f"<h2>Journal ({len(entries)} entries)</h2><table><tr><th>time (UTC)</th><th>step</th><th>status</th>"
            f"<th>what</th></tr>{rows}</table></body></html>")


def write_page(path: str | Path, status: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Write the page (mode 0600: it names hosts and databases)."""
    write_private(path, render_page(status, entries).encode("utf-8"))
