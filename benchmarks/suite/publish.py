"""Put a results file into README.md and docs/benchmarks.md, between their `<!-- bench:start -->` markers."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.suite.tables import has_chart, headline_table, machine_line, run_line, scenario_section

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
PLACEHOLDER = "Not measured yet: run `python benchmarks/run.py`, then `python benchmarks/run.py --publish " \
              "benchmarks/results/<file>.json`."


class MarkersMissing(ValueError):
    """The file has no `<!-- bench:start -->` ... `<!-- bench:end -->` block to replace."""


def replace_block(text: str, body: str) -> str:
    """`text` with everything between the marker lines replaced by `body` (the markers stay).

    A marker counts only on a line of its own, so prose that names the markers is left alone.
    """
    start = re.search(rf"^{re.escape(START)}[ \t]*$", text, re.MULTILINE)
    end = re.search(rf"^{re.escape(END)}[ \t]*$", text[start.end():], re.MULTILINE) if start else None
    if start is None or end is None:
        raise MarkersMissing(f"add a line {START} and a line {END} where the benchmark figures go")
    return text[:start.end()] + "\n" + body.strip("\n") + "\n" + text[start.end() + end.start():]


def readme_block(payload: dict, source: str, images: str = "docs/img") -> str:
    """The README's block: when and where, the headline table, the charts of the scenarios with figures."""
    lines = [f"{run_line(payload)} Machine: {machine_line(payload)} Full tables: "
             f"[docs/benchmarks.md](docs/benchmarks.md#latest-run-benchmarksrunpy); raw figures: `{source}`.", "",
             *headline_table(payload), ""]
    charts = [f"![{s['title']}]({images}/bench-{name}.png)" for name, s in payload["scenarios"].items()
              if has_chart(s)]
    return "\n".join(lines + charts)


def docs_block(payload: dict, source: str, images: str = "img") -> str:
    """docs/benchmarks.md's block: the run and machine lines, then every scenario's full table and chart."""
    lines = [run_line(payload), "", f"Machine: {machine_line(payload)}", "", f"Raw figures: `{source}`.", ""]
    for scenario in payload["scenarios"].values():
        lines += scenario_section(scenario, level="###", images=images)
    return "\n".join(lines)


def publish(payload: dict, source: str, root: Path) -> list[Path]:
    """Rewrite the blocks of README.md and docs/benchmarks.md from `payload`; the files changed."""
    changed = []
    for path, body in ((root / "README.md", readme_block(payload, source)),
                       (root / "docs" / "benchmarks.md", docs_block(payload, source))):
        text = path.read_text()
        updated = replace_block(text, body)
        if updated != text:
            path.write_text(updated)
            changed.append(path)
    return changed
