"""The drill's results: one `FaultResult` per fault, shown as a table, written as JSON and HTML."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass(slots=True, frozen=True)
class FaultResult:
    """What one fault did: writes acknowledged and lost, events repeated, time to recover, parity."""

    fault: str
    what: str
    note: str
    acknowledged: int  # ledger writes acknowledged by the source, in all, when this fault was checked
    lost: int  # acknowledged writes missing or stale in the target (newly, since the previous fault)
    source_lost: int  # acknowledged writes the source itself no longer has (not cdc's doing)
    repeated: int  # change events Kafka received more than once, since the previous fault
    recovery_seconds: float | None  # from the end of the fault to the first write after it applied
    parity: bool  # `cdc verify` of the ledger tables exited 0
    error: str | None = None  # the injector or the check failed

    @property
    def passed(self) -> bool:
        return self.error is None and self.lost == 0 and self.parity


def passed(results: list[FaultResult]) -> bool:
    """True when every fault ended with nothing lost and parity."""
    return bool(results) and all(result.passed for result in results)


def table(results: list[FaultResult], skipped: dict[str, str]) -> Table:
    """The rich table printed at the end of a drill."""
    out = Table(title="cdc drill")
    for column in ("fault", "lost", "repeated", "recovery s", "parity", "acknowledged", "what happened"):
        out.add_column(column, overflow="fold")
    for result in results:
        recovery = "-" if result.recovery_seconds is None else f"{result.recovery_seconds:.1f}"
        note = result.note if result.error is None else f"[red]{result.error}[/red]"
        if result.source_lost:
            note += f" ({result.source_lost} acknowledged writes gone from the source itself)"
        out.add_row(result.fault, _mark(str(result.lost), result.lost == 0), str(result.repeated), recovery,
                    _mark("yes" if result.parity else "no", result.parity), str(result.acknowledged), note)
    for fault, why in skipped.items():
        out.add_row(fault, "-", "-", "-", "-", "-", f"[yellow]not run: {why}[/yellow]")
    return out


def _mark(text: str, good: bool) -> str:
    return f"[green]{text}[/green]" if good else f"[red]{text}[/red]"


def to_json(results: list[FaultResult], skipped: dict[str, str]) -> list[dict]:
    """The `--json` list: one object per fault (and one per fault not run, with `skipped`)."""
    rows = [{**asdict(result), "passed": result.passed} for result in results]
    rows += [{"fault": fault, "skipped": why} for fault, why in skipped.items()]
    return rows


def write_json(path: Path, results: list[FaultResult], skipped: dict[str, str]) -> None:
    path.write_text(json.dumps(to_json(results, skipped), indent=2) + "\n")


def write_html(path: Path, results: list[FaultResult], skipped: dict[str, str]) -> None:
    """A self-contained HTML page with the same table."""
    head = "".join(f"<th>{name}</th>" for name in
                   ("fault", "lost", "repeated", "recovery s", "parity", "acknowledged", "what happened"))
    rows = []
    for result in results:
        cells = (result.fault, result.lost, result.repeated,
                 "-" if result.recovery_seconds is None else f"{result.recovery_seconds:.1f}",
                 "yes" if result.parity else "no", result.acknowledged, result.error or result.note)
        css = "ok" if result.passed else "bad"
        rows.append(f'<tr class="{css}">' + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells) + "</tr>")
    for fault, why in skipped.items():
        rows.append(f'<tr class="skip"><td>{html.escape(fault)}</td><td colspan="6">not run: {html.escape(why)}</td></tr>')
    verdict = "every fault: nothing lost, parity" if passed(results) else "FAILED: see the red rows"
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>cdc drill</title><style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
tr.ok td{{background:#eefbea}} tr.bad td{{background:#fde8e8}} tr.skip td{{background:#fff8e0}}
</style></head><body><h1>cdc drill</h1><p>{html.escape(verdict)}</p><table><tr>{head}</tr>{''.join(rows)}</table>
</body></html>
""")


def show(console: Console, results: list[FaultResult], skipped: dict[str, str]) -> None:
    console.print(table(results, skipped))
