"""Figures read from one benchmark run, and their median/min/max over several runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(slots=True, frozen=True)
class Figure:
    """One measured value: what was measured (case, tool, metric) and its value in `unit`."""

    case: str
    tool: str
    metric: str
    unit: str
    value: float


@dataclass(slots=True, frozen=True)
class Note:
    """A tool or case that gave no figure in a run, with the reason (a peer that cannot run, a skipped case)."""

    case: str
    tool: str
    reason: str


@dataclass(slots=True, frozen=True)
class Summary:
    """A figure over every run that measured it: median, min, max and the values themselves."""

    case: str
    tool: str
    metric: str
    unit: str
    median: float
    low: float
    high: float
    values: tuple[float, ...]

    def as_json(self) -> dict:
        """The summary as a JSON object (values as a list)."""
        return {**asdict(self), "values": list(self.values)}


def summarise(runs: Iterable[Iterable[Figure]]) -> list[Summary]:
    """Median, min and max of each (case, tool, metric) over the runs, in the order first measured."""
    grouped: dict[tuple[str, str, str], tuple[str, list[float]]] = {}
    for figures in runs:
        for figure in figures:
            key = (figure.case, figure.tool, figure.metric)
            unit, values = grouped.setdefault(key, (figure.unit, []))
            values.append(figure.value)
    return [Summary(case, tool, metric, unit, _rounded(statistics.median(values)), min(values), max(values),
                    tuple(values))
            for (case, tool, metric), (unit, values) in grouped.items()]


def distinct_notes(runs: Iterable[Iterable[Note]]) -> list[Note]:
    """One note per (case, tool), the first run's reason, in the order first seen (a peer that cannot run
    says so in every run, not always in the same words)."""
    seen: dict[tuple[str, str], Note] = {}
    for notes in runs:
        for note in notes:
            seen.setdefault((note.case, note.tool), note)
    return list(seen.values())


def _rounded(value: float) -> float:
    """A median of two middle values keeps no more digits than it needs."""
    return round(value, 4) if isinstance(value, float) else value
