"""Slices (scheduled verify): one run checks one slice per table; a full pass of runs covers every row once."""

from __future__ import annotations

import pytest

from cdc.verify.parity import verify
from cdc.verify.plan import Slicing, VerifyOptions

ROWS = 1000


def _create(db, table: str, key_type: str, key) -> None:
    db.run(f"CREATE TABLE {table} (k {key_type} PRIMARY KEY, v VARCHAR(40))")
    sql = f"INSERT INTO {table} (k, v) VALUES (%s, %s)"
    db.run(sql, [(key(i), f"value {i}") for i in range(ROWS)], many=True)


def _full_pass(source, target, table: str, slicing: Slicing) -> tuple[list, set, int]:
    """Run until the slice index wraps; (slices seen, differing keys found, rows counted over the pass)."""
    seen, found, rows = [], set(), 0
    while True:
        report = verify(source.url, target.url, VerifyOptions(tables=(table,), threshold=40, segment_rows=300,
                                                              workers=2, recheck_delay=0, slicing=slicing))
        [result] = report.tables
        assert result.error is None, result.error
        index, parts = result.slice
        seen.append((index, parts))
        found |= {str(next(iter(d.key.values()))) for d in result.diffs}
        rows += result.source_rows
        assert any(note.startswith(f"slice {index + 1} of {parts}") for note in result.notes), result.notes
        slicing.runs[table] = slicing.runs.get(table, 0) + 1
        if index == parts - 1:
            return seen, found, rows


@pytest.mark.parametrize("table, key_type, key", [
    ("ranged", "INT", lambda i: i * 3),                      # range mode: key ranges
    ("hashed", "VARCHAR(20)", lambda i: f"key-{i:05d}"),      # hash mode: key-hash classes
])
def test_full_pass_of_slices_covers_every_row_once_and_finds_each_difference(extra_database, table, key_type, key):
    source, target = extra_database("pg"), extra_database("my")
    _create(source, table, key_type, key)
    _create(target, table, key_type, key)
    differing = [key(3), key(400), key(998)]
    for k in differing:
        target.run(f"UPDATE {table} SET v = 'changed' WHERE k = %s", (k,))
    seen, found, rows = _full_pass(source, target, table, Slicing(rows=250))
    parts = seen[0][1]
    assert parts >= 3, seen  # about 1000 rows / 250 per run (estimates may be rough, never one slice)
    assert [index for index, _ in seen] == list(range(parts))
    assert found == {str(k) for k in differing}
    assert rows == ROWS


def test_max_parts_bounds_the_runs_of_a_full_pass(extra_database):
    source, target = extra_database("pg"), extra_database("pg")
    _create(source, "t", "INT", lambda i: i)
    _create(target, "t", "INT", lambda i: i)
    seen, _, rows = _full_pass(source, target, "t", Slicing(rows=10, max_parts=2))
    assert seen == [(0, 2), (1, 2)] and rows == ROWS


def test_parts_for_and_index_for():
    slicing = Slicing(rows=100, max_parts=5, runs={"a": 7})
    assert [slicing.parts_for(n) for n in (0, 1, 100, 101, 450, 10_000)] == [1, 1, 1, 2, 5, 5]
    assert slicing.index_for("a", 3) == 1 and slicing.index_for("b", 3) == 0
