"""Markdown from a results file: one table per scenario, the machine line, and the README's compact table."""

from __future__ import annotations

from benchmarks.suite.figures import Summary


def format_number(value: float) -> str:
    """A figure with as many digits as it deserves: 1,234,567 / 45.6 / 0.123."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.3g}"


def format_summary(summary: Summary) -> str:
    """`median (min-max)`, or the bare value when every run gave the same one (or there was one run)."""
    median = format_number(summary.median)
    if summary.low == summary.high:
        return median
    return f"{median} ({format_number(summary.low)}-{format_number(summary.high)})"


def column_title(metric: str, unit: str) -> str:
    """A metric's column header, with its unit when the metric's name does not already say it."""
    return metric if metric == unit else f"{metric} ({unit})"


def summaries_of(scenario: dict) -> list[Summary]:
    """The scenario's summaries as objects (a results file stores them as JSON)."""
    return [Summary(**{**item, "values": tuple(item["values"])}) for item in scenario.get("summaries", [])]


def scenario_table(scenario: dict) -> list[str]:
    """One markdown table: a row per (case, tool), a column per metric, each cell median (min-max)."""
    summaries = summaries_of(scenario)
    if not summaries:
        return []
    columns: dict[tuple[str, str], None] = {}
    rows: dict[tuple[str, str], dict[str, Summary]] = {}
    for summary in summaries:
        columns.setdefault((summary.metric, summary.unit))
        rows.setdefault((summary.case, summary.tool), {})[summary.metric] = summary
    header = ["case", "tool", *(column_title(metric, unit) for metric, unit in columns)]
    lines = [_row(header), _row(["---"] * len(header))]
    for (case, tool), cells in rows.items():
        lines.append(_row([case, tool, *(format_summary(cells[metric]) if metric in cells else ""
                                          for metric, _ in columns)]))
    return lines


def scenario_section(scenario: dict, level: str = "##", images: str | None = None) -> list[str]:
    """A scenario's heading, its table, its notes (peers that gave no figure, and why), errors and chart."""
    lines = [f"{level} {scenario['title']}", ""]
    status = scenario.get("status")
    if status == "skipped":
        return lines + [f"Not run: {scenario.get('reason', '')}", ""]
    table = scenario_table(scenario)
    if table:
        lines += table + [""]
    for note in scenario.get("notes", []):
        lines.append(f"- {note['tool']} ({note['case']}): not measured, {_one_line(note['reason'])}")
    for run, outcome in enumerate(scenario.get("runs", []), 1):
        if outcome.get("error"):
            lines.append(f"- run {run} failed: `{_one_line(outcome['error'])[-400:]}`")
    if lines[-1] != "":
        lines.append("")
    if images and has_chart(scenario):
        lines += [f"![{scenario['title']}]({images}/bench-{scenario['name']}.png)", ""]
    return lines


def machine_line(payload: dict) -> str:
    """The machine, its load and the versions in one sentence."""
    machine = payload["machine"]
    servers = machine.get("servers", {})
    return (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('ram_gb', '?')} GB RAM; "
            f"load average {_load(machine.get('load_average_before'))} before, "
            f"{_load(machine.get('load_average_after'))} after; "
            f"PostgreSQL {servers.get('postgresql', '?')}, MariaDB {servers.get('mariadb', '?')}, "
            f"Python {machine.get('python', '?')}, broker {servers.get('broker', '?')}.")


def run_line(payload: dict) -> str:
    """When, which sizes, how many runs per figure, and how long it took (per part, when it has parts)."""
    line = (f"Run of {payload['at']} ({payload['mode']} sizes), each figure the median of {payload['runs']} runs "
            f"with min-max in brackets; {payload.get('wall_seconds', '?')} s in all")
    parts = payload.get("parts")
    if not parts:
        return line + (f", commit {payload['commit']}." if payload.get("commit") else ".")
    described = "; ".join(
        f"{', '.join(part['scenarios'])} at {part['at']} (commit {part.get('commit', '?')}, "
        f"{part.get('wall_seconds', '?')} s, load {_load(part.get('load_average_before'))} -> "
        f"{_load(part.get('load_average_after'))})" for part in parts)
    return f"{line}, in {len(parts)} parts: {described}."


def results_markdown(payload: dict) -> str:
    """The whole results file as markdown: title, run and machine lines, one section per scenario."""
    lines = [f"# Benchmarks, {payload['at']}", "", run_line(payload), "", f"Machine: {machine_line(payload)}", ""]
    if payload.get("note"):
        lines += [f"Note: {payload['note']}", ""]
    for scenario in payload["scenarios"].values():
        lines += scenario_section(scenario)
    return "\n".join(lines)


def headline_table(payload: dict, per_scenario: int = 3) -> list[str]:
    """The README's compact table: per scenario and headline metric, a few cases with this project's figure
    next to each peer's."""
    lines = [_row(["scenario", "case", "metric", "this project", "peers and baselines"]), _row(["---"] * 5)]
    for scenario in payload["scenarios"].values():
        if scenario.get("status") == "skipped":
            continue
        ours = tuple(scenario["ours"])
        wanted = tuple(scenario.get("headline_cases", ()))
        shown = 0
        for metric in scenario.get("headline_metrics") or [scenario["chart_metric"]]:
            cases: dict[str, list[Summary]] = {}
            for summary in summaries_of(scenario):
                if summary.metric == metric and (not wanted or summary.case.startswith(wanted)):
                    cases.setdefault(summary.case, []).append(summary)
            limit = len(wanted) if wanted else per_scenario
            for case, summaries in list(cases.items())[:limit]:
                mine = [s for s in summaries if is_ours(s.tool, ours)]
                if not mine:
                    continue
                others = "; ".join(f"{s.tool} {format_number(s.median)}" for s in summaries
                                   if not is_ours(s.tool, ours))
                lines.append(_row([scenario["title"], case, column_title(metric, mine[0].unit),
                                   format_number(mine[0].median), others or "-"]))
                shown += 1
        if not shown and scenario.get("status") == "failed":
            lines.append(_row([scenario["title"], "", "", "failed", "see docs/benchmarks.md"]))
    return lines


def has_chart(scenario: dict) -> bool:
    """Whether the scenario has figures of its chart metric (charts.draw draws only those)."""
    return scenario.get("status") != "skipped" and any(
        item["metric"] == scenario.get("chart_metric") for item in scenario.get("summaries", []))


def is_ours(tool: str, ours: tuple[str, ...]) -> bool:
    """Whether a tool is this project's headline figure (its name is one of `ours`)."""
    return tool in ours


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _load(values: list[float] | None) -> str:
    return "/".join(f"{value:.2f}" for value in values) if values else "?"
