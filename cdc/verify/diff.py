"""Exact row diffs: rows of the same segments from both sides, compared by canonical values."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cdc.verify.canonical import COMPARED_BY_VALUE, canonical_float, floats_equal, json_equal
from cdc.verify.plan import ColumnPair, Segment, TablePlan
from cdc.verify.values import report_value, value_type

MISSING = "missing"    # in source, not in target
EXTRA = "extra"        # in target, not in source
CHANGED = "changed"    # in both, some columns differ

DIFFERENT = "different"
IN_FLIGHT = "in_flight"


@dataclass(slots=True)
class ColumnDiff:
    """One column of a changed row: both values in report form (`cdc.verify.values`)."""

    column: str
    source: Any
    target: Any


@dataclass(slots=True)
class RowDiff:
    """One differing row (or, for keyless tables, `count` identical whole rows)."""

    kind: str
    key: dict[str, Any]           # key column -> value in report form, in key order
    columns: list[ColumnDiff] = field(default_factory=list)
    status: str = DIFFERENT
    count: int = 1
    identity: tuple = ()          # canonical key (or whole-row) texts: what `recheck` matches on
    segment: Segment | None = None
    key_hash: int | None = None   # the row's key hash (hash modes), which says its bucket


class RowComparer:
    """Compares fetched rows of one table: layout from `TableSide.fetch_columns`."""

    def __init__(self, plan: TablePlan, float_tolerance: float | None) -> None:
        self.plan = plan
        self.tolerance = float_tolerance or 0.0
        self.sql_pairs = plan.sql_pairs
        self.client_pairs = plan.client_pairs
        self.n_sql = len(self.sql_pairs)
        self.n_client = len(self.client_pairs)
        sql_index = {pair.name: i for i, pair in enumerate(self.sql_pairs)}
        self.key_index = [sql_index[name] for name in plan.key]
        self.raw_index = {pair.name: self.n_sql + self.n_client + i for i, pair in enumerate(plan.pairs)}
        self.key_classes = [pair.cls for pair in plan.key_pairs]
        self.by_name = {pair.name: pair for pair in plan.pairs}
        self.value_types = {pair.name: value_type(pair) for pair in plan.pairs}

    def identity(self, row: tuple) -> tuple:
        if self.plan.mode == "multiset":
            return tuple(row[: self.n_sql])
        return tuple(row[i] for i in self.key_index)

    def key_json(self, raw: dict[str, Any], side: str) -> dict[str, Any]:
        """A row's key in report form, in key order (a keyless table's whole row), from its raw values."""
        names = self.plan.key if self.plan.mode != "multiset" else [pair.name for pair in self.plan.pairs]
        return {name: self.value_json(name, raw[name], side) for name in names}

    def value_json(self, name: str, value: Any, side: str) -> Any:
        """One value of column `name` read on `side`, in report form: the one rule for every path."""
        pair = self.by_name[name]
        return report_value(value, self.value_types[name], pair.source if side == "source" else pair.target)

    def column_diff(self, pair: ColumnPair, source: Any, target: Any) -> ColumnDiff:
        return ColumnDiff(pair.name, self.value_json(pair.name, source, "source"),
                          self.value_json(pair.name, target, "target"))

    def key_display(self, row: tuple, side: str) -> dict[str, Any]:
        """The key in report form from a fetched row (layout from `TableSide.fetch_columns`)."""
        return self.key_json({name: row[index] for name, index in self.raw_index.items()}, side)

    def client_equal(self, pair: ColumnPair, a: Any, b: Any) -> bool:
        """Client-side comparison of one value pair (floats with tolerance, JSON by value)."""
        if a is None or b is None:
            return a is None and b is None
        if pair.cls == "float":
            single = 4 in (pair.source.length, pair.target.length)
            return floats_equal(canonical_float(a, single=single), canonical_float(b, single=single), self.tolerance)
        if pair.cls == "json":
            return json_equal(a, b)
        return a == b

    def changed_columns(self, source: tuple, target: tuple) -> list[ColumnDiff]:
        out = []
        for i, pair in enumerate(self.sql_pairs):
            if source[i] != target[i] and not (pair.cls in COMPARED_BY_VALUE and json_equal(source[i], target[i])):
                out.append(self.column_diff(pair, source[self.raw_index[pair.name]],
                                            target[self.raw_index[pair.name]]))
        for j, pair in enumerate(self.client_pairs):
            i = self.n_sql + j
            if not self.client_equal(pair, source[i], target[i]):
                out.append(self.column_diff(pair, source[self.raw_index[pair.name]],
                                            target[self.raw_index[pair.name]]))
        return out

    def diff(self, source_rows: list[tuple], target_rows: list[tuple], segment: Segment | None = None) -> list[RowDiff]:
        """Missing, extra and changed rows between the two row lists of the same segments."""
        if self.plan.mode == "multiset":
            return self._diff_multiset(source_rows, target_rows, segment)
        source_by_key = {self.identity(row): row for row in source_rows}
        target_by_key = {self.identity(row): row for row in target_rows}
        diffs: list[RowDiff] = []
        for key, row in source_by_key.items():
            other = target_by_key.get(key)
            if other is None:
                diffs.append(RowDiff(MISSING, self.key_display(row, "source"), identity=key, segment=segment,
                                     key_hash=row[-1]))
                continue
            columns = self.changed_columns(row, other)
            if columns:
                diffs.append(RowDiff(CHANGED, self.key_display(row, "source"), columns, identity=key, segment=segment,
                                     key_hash=row[-1]))
        for key, row in target_by_key.items():
            if key not in source_by_key:
                diffs.append(RowDiff(EXTRA, self.key_display(row, "target"), identity=key, segment=segment,
                                     key_hash=row[-1]))
        return diffs

    def _diff_multiset(self, source_rows, target_rows, segment) -> list[RowDiff]:
        source_count = Counter(self.identity(row) for row in source_rows)
        target_count = Counter(self.identity(row) for row in target_rows)
        source_sample = {self.identity(row): row for row in source_rows}
        target_sample = {self.identity(row): row for row in target_rows}
        diffs = []
        for key, n in (source_count - target_count).items():
            diffs.append(RowDiff(MISSING, self.key_display(source_sample[key], "source"), count=n, identity=key,
                                 segment=segment, key_hash=source_sample[key][-1]))
        for key, n in (target_count - source_count).items():
            diffs.append(RowDiff(EXTRA, self.key_display(target_sample[key], "target"), count=n, identity=key,
                                 segment=segment, key_hash=target_sample[key][-1]))
        return diffs
