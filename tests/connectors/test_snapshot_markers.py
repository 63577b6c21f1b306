"""cdc.snapshot.SnapshotEmitter: Debezium 3.6's `source.snapshot` markers, tables read one after another or interleaved."""

from __future__ import annotations

from cdc.events import READ, Change
from cdc.snapshot import SnapshotEmitter


def row(name: str) -> Change:
    return Change(READ, None, None, {"id": name}, {"snapshot": "true"}, (0, 0))


def markers(events: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Feed ("row", table:n) / ("done", table) / ("finish", None); (row id, marker) in emitted order."""
    emitted: list[Change] = []
    emitter = SnapshotEmitter(emitted.append)
    for kind, value in events:
        if kind == "row":
            emitter.row(value.split(":")[0], row(value))
        elif kind == "done":
            emitter.table_done(value)
        else:
            emitter.finish()
    assert emitter.emitted == len(emitted)
    return [(change.after["id"], change.source["snapshot"]) for change in emitted]


def test_tables_in_sequence_get_first_true_last_in_table_and_last() -> None:
    # a finished table's last row waits for the next table to finish, so it follows that table's first rows
    assert markers([("row", "a:1"), ("row", "a:2"), ("row", "a:3"), ("done", "a"),
                    ("row", "b:1"), ("row", "b:2"), ("done", "b"), ("finish", None)]) == [
        ("a:1", "first"), ("a:2", "true"), ("b:1", "first_in_data_collection"),
        ("a:3", "last_in_data_collection"), ("b:2", "last"),
    ]


def test_a_one_row_table_in_the_middle_is_first_in_its_table() -> None:
    assert markers([("row", "a:1"), ("row", "a:2"), ("done", "a"), ("row", "b:1"), ("done", "b"),
                    ("row", "c:1"), ("row", "c:2"), ("done", "c"), ("finish", None)]) == [
        ("a:1", "first"), ("a:2", "last_in_data_collection"), ("c:1", "first_in_data_collection"),
        ("b:1", "first_in_data_collection"), ("c:2", "last"),
    ]


def test_interleaved_tables_keep_their_own_first_and_last() -> None:
    assert markers([("row", "a:1"), ("row", "b:1"), ("row", "a:2"), ("row", "b:2"), ("row", "b:3"),
                    ("done", "b"), ("row", "a:3"), ("done", "a"), ("finish", None)]) == [
        ("a:1", "first"), ("b:1", "first_in_data_collection"), ("b:2", "true"),
        ("a:2", "true"), ("b:3", "last_in_data_collection"), ("a:3", "last"),
    ]


def test_empty_tables_and_an_empty_snapshot_emit_nothing() -> None:
    assert markers([("done", "a"), ("finish", None)]) == []
    assert markers([("row", "a:1"), ("done", "a"), ("done", "b"), ("finish", None)]) == [("a:1", "first")]


def test_a_stopped_snapshot_holds_back_what_it_has_not_decided() -> None:
    assert markers([("row", "a:1"), ("row", "a:2"), ("row", "a:3")]) == [("a:1", "first"), ("a:2", "true")]


def test_batches_get_the_markers_rows_one_by_one_get() -> None:
    import random

    rng = random.Random(2)
    for _ in range(50):
        sizes = {table: rng.randint(1, 30) for table in "abc"}
        left = {table: [f"{table}:{n}" for n in range(size)] for table, size in sizes.items()}
        steps = []
        while left:
            table = rng.choice(sorted(left))
            cut = rng.randint(1, 6)
            steps.append(("rows", table, left[table][:cut]))
            left[table] = left[table][cut:]
            if not left[table]:
                steps.append(("done", table, None))
                del left[table]
        expected = markers([(kind, value) for kind, table, batch in steps
                            for kind, value in ([("row", v) for v in batch] if kind == "rows" else [("done", table)])]
                           + [("finish", None)])
        emitted: list[tuple[str, str]] = []
        emitter = SnapshotEmitter(lambda change: emitted.append((change.after["id"], change.source["snapshot"])))
        for kind, table, batch in steps:
            if kind == "rows":
                emitter.rows(table, batch, row, lambda inside: emitted.extend((v, "true") for v in inside))
            else:
                emitter.table_done(table)
        emitter.finish()
        assert emitted == expected and emitter.emitted == len(expected)


def test_key_ranges_cover_every_key_once_and_stay_whole_when_narrow() -> None:
    from cdc.snapshot import WHOLE_TABLE, key_ranges

    ranges = key_ranges(1, 100, 3, 10)
    assert len(ranges) == 3 and ranges[0].lower is None and ranges[-1].upper is None
    for key in range(-5, 110):  # keys outside [min, max] too (written after the bounds were read)
        assert sum((r.lower is None or key >= r.lower) and (r.upper is None or key < r.upper) for r in ranges) == 1
    assert key_ranges(1, 25, 3, 10) == [WHOLE_TABLE] and key_ranges(None, None, 3, 10) == [WHOLE_TABLE]
    assert ranges[1].condition('"id"') == (' AND "id" >= %s AND "id" < %s', [ranges[1].lower, ranges[1].upper])
