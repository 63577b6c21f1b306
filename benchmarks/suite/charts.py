"""PNG charts of a results file: per scenario, its chart metric as bars (median) with min-max whiskers."""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite.tables import column_title, format_number, has_chart, is_ours, summaries_of

OURS_COLOUR = "#2a6f97"
PEER_COLOUR = "#b0b7bf"


def draw(payload: dict, directory: Path) -> list[Path]:
    """One chart per scenario with figures, written as `directory/bench-<scenario>.png`; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, scenario in payload["scenarios"].items():
        if not has_chart(scenario):
            continue
        metric, ours = scenario["chart_metric"], tuple(scenario["ours"])
        bars = [s for s in summaries_of(scenario) if s.metric == metric]
        labels = [f"{s.case}\n{s.tool}" for s in bars]
        medians = [s.median for s in bars]
        whiskers = [[s.median - s.low for s in bars], [s.high - s.median for s in bars]]
        colours = [OURS_COLOUR if is_ours(s.tool, ours) else PEER_COLOUR for s in bars]
        figure, axes = plt.subplots(figsize=(8, 0.9 + 0.42 * len(bars)))
        positions = range(len(bars))
        axes.barh(positions, medians, xerr=whiskers, color=colours, capsize=3, ecolor="#333333")
        axes.set_yticks(list(positions), labels, fontsize=7)
        axes.invert_yaxis()
        for position, summary in zip(positions, bars):
            axes.text(summary.high, position, "  " + format_number(summary.median), va="center", fontsize=7)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_number(value)))
        axes.set_xlabel(column_title(metric, bars[0].unit) + f", median of {payload['runs']} runs, min-max whiskers",
                        fontsize=8)
        axes.set_title(f"{scenario['title']} ({payload['at'][:10]}, {payload['mode']})", fontsize=9)
        axes.margins(x=0.15)
        figure.tight_layout()
        path = directory / f"bench-{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
