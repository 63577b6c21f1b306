"""The ledger check: acknowledged writes against what source and target hold (pure), and the writer on a real server."""

from __future__ import annotations

import time

from cdc.drill import ledger


def test_tally_counts_missing_and_stale_target_rows_as_lost():
    acknowledged = {1: 1, 2: 3, 3: 1}
    source = {1: 1, 2: 3, 3: 1}
    target = {1: 1, 2: 2}  # 2 is stale, 3 is missing
    found = ledger.tally(acknowledged, source, target)
    assert found.acknowledged == 3
    assert found.lost == {2, 3}
    assert found.source_lost == frozenset()


def test_tally_blames_the_source_for_writes_it_no_longer_has():
    found = ledger.tally({1: 2, 2: 1}, {1: 1, 2: 1}, {1: 1, 2: 1})
    assert found.source_lost == {1}
    assert found.lost == frozenset()


def test_tally_compares_the_target_with_the_source_not_the_acknowledged_version():
    # a write whose commit failed may still have committed: the source's version is the truth
    found = ledger.tally({1: 1}, {1: 2}, {1: 2})
    assert found.lost == frozenset()


def test_writer_remembers_only_committed_writes(pg_database):
    ledger.create_table(pg_database)
    writer = ledger.LedgerWriter(pg_database, rate=400).start()
    time.sleep(1.0)
    writer.pause()
    acknowledged = writer.snapshot()
    in_source = ledger.read_versions(pg_database)
    writer.stop()
    assert len(acknowledged) > 100
    assert ledger.tally(acknowledged, in_source, in_source).source_lost == frozenset()
    assert any(version > 1 for version in acknowledged.values())  # updates too, not only inserts
    assert set(in_source) == set(acknowledged)  # nothing failed here, so nothing unacknowledged is in the source
