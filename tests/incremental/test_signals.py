"""Signals and progress: parsed against a closed set, refused when unsafe, advanced chunk by chunk."""

from __future__ import annotations

import orjson
import pytest

from cdc.errors import ConfigError
from cdc.incremental.controller import parse_watermark, watermark_payload
from cdc.incremental.progress import DONE, RUNNING, SnapshotProgress
from cdc.incremental.signals import EXECUTE, STOP, new_signal, parse_signal


def test_signal_round_trips_through_its_json():
    signal = new_signal(EXECUTE, "shop", ("public.orders", "public.items"), where="id > 5", chunk_rows=500,
                        max_rows_per_second=1000)
    assert parse_signal(signal.to_json(), allow_where=True) == signal


@pytest.mark.parametrize("change, message", [
    ({"type": "drop-table"}, "signal type"),
    ({"id": "x y"}, "signal id"),
    ({"prefix": ""}, "prefix"),
    ({"data": {"data-collections": ["orders; DROP TABLE x"]}}, "namespace.table"),
    ({"data": {"data-collections": []}}, "names no table"),
    ({"data": {"data-collections": ["public.orders"], "chunk-rows": 0}}, "chunk-rows"),
    ({"data": {"data-collections": ["public.orders"], "chunk-rows": True}}, "chunk-rows"),
    ({"data": {"data-collections": ["public.orders"], "max-rows-per-second": -1}}, "max-rows-per-second"),
    ({"data": {"data-collections": ["public.orders"], "sql": "x"}}, "unknown fields"),
])
def test_invalid_signals_are_refused_with_what_is_wrong(change, message):
    signal = {"id": "s1", "type": EXECUTE, "prefix": "shop", "data": {"data-collections": ["public.orders"]}}
    signal.update(change)
    with pytest.raises(ConfigError, match=message):
        parse_signal(orjson.dumps(signal), allow_where=True)


def test_a_kafka_signal_may_not_carry_sql():
    signal = new_signal(EXECUTE, "shop", ("public.orders",), where="1=1")
    with pytest.raises(ConfigError, match="may not carry an SQL condition"):
        parse_signal(signal.to_json(), allow_where=False)
    assert parse_signal(new_signal(STOP, "shop").to_json(), allow_where=False).type == STOP


def test_watermarks_name_their_prefix_chunk_and_kind():
    assert parse_watermark(watermark_payload("shop", "abc-12", "low")) == ("shop", "abc-12", "low")
    assert parse_watermark(b"watermark shop abc-12 high") == ("shop", "abc-12", "high")
    assert parse_watermark("hello") is None
    assert parse_watermark("watermark shop abc middle") is None


def test_progress_moves_through_chunks_ranges_and_tables():
    progress = SnapshotProgress("s", ("a.t1", "a.t2"), ranges=((), (([1], [5]), ([9], None))))
    progress = progress.advanced(["10"], 100, exhausted=False)
    assert (progress.table, progress.after, progress.rows) == ("a.t1", ["10"], 100)
    progress = progress.advanced(None, 0, exhausted=True)
    assert (progress.table, progress.current_range(), progress.status) == ("a.t2", (None, [1], [5]), RUNNING)
    progress = progress.advanced([5], 4, exhausted=True)
    assert progress.current_range() == (None, [9], None)
    progress = progress.advanced(None, 0, exhausted=True)
    assert progress.status == DONE and progress.table is None and progress.rows == 104
    assert SnapshotProgress.from_dict(orjson.loads(orjson.dumps(progress.to_dict()))) == progress
