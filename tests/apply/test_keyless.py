"""Pure parts of keyless apply: reading a change event's source position, dropping repeats by it."""

from __future__ import annotations

from types import SimpleNamespace

from cdc.apply.keyless import drop_repeats, newest_positions
from cdc.registry import event_position_reader


def test_pg_position_is_commit_lsn_then_lsn_and_none_for_snapshot_reads():
    position = event_position_reader("postgresql")
    value = {"source": {"snapshot": "false", "lsn": 500, "sequence": '["100","500"]'},
             "transaction": {"id": "771:900", "total_order": 1}}
    assert position(value) == (900, 500)
    # without transaction metadata the previous commit's LSN orders transactions the same way
    assert position({"source": {"snapshot": "false", "lsn": 500, "sequence": '["100","500"]'}, "transaction": None}) \
        == (100, 500)
    assert position({"source": {"snapshot": "true", "lsn": 500}}) is None


def test_mysql_position_is_file_number_position_row():
    position = event_position_reader("mysql")
    assert position({"source": {"snapshot": "false", "file": "mysql-bin.000012", "pos": 4711, "row": 2}}) == (12, 4711, 2)
    assert position({"source": {"snapshot": "true", "file": "mysql-bin.000012", "pos": 4, "row": 0}}) is None


def _event(table: str, position: tuple | None):
    return SimpleNamespace(schema=SimpleNamespace(qualified_name=table), position=position)


def test_repeats_are_dropped_per_table_against_the_stored_and_the_batch_positions():
    events = [_event("h", (1, 5)), _event("h", (1, 6)), _event("a", (1, 2)),
              _event("h", (1, 5)), _event("h", (1, 6)),  # sent again after a capture restart
              _event("h", (2, 1)), _event("h", None)]      # a newer change; a snapshot read (no position)
    kept = drop_repeats(events, {"a": (1, 2)})
    assert [(e.schema.qualified_name, e.position) for e in kept] == [("h", (1, 5)), ("h", (1, 6)), ("h", (2, 1)),
                                                                     ("h", None)]
    assert newest_positions(kept) == {"h": (2, 1)}
