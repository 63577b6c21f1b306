"""Events repeated on Kafka are counted per (id, version) of the ledger row."""

from __future__ import annotations

import orjson

from cdc.drill.repeats import count_repeats


def _event(op: str, row: int, version: int) -> bytes:
    return orjson.dumps({"before": None, "after": {"id": row, "version": version}, "op": op})


def test_a_second_event_of_the_same_row_version_is_a_repeat():
    seen: dict = {}
    assert count_repeats(seen, [_event("c", 1, 1), _event("u", 1, 2), _event("c", 2, 1)]) == 0
    assert count_repeats(seen, [_event("c", 1, 1), _event("u", 1, 2), None]) == 2
    assert seen[(1, 1)] == 2


def test_deletes_and_tombstones_are_not_counted():
    seen: dict = {}
    delete = orjson.dumps({"before": {"id": 1, "version": 1}, "after": None, "op": "d"})
    assert count_repeats(seen, [delete, delete, None, None]) == 0
