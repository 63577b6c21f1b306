"""`hold_newest`, the sparse-delivery hot loop: the newest record per partition is held, the one it
replaces is produced without a report, and the compiled twin behaves exactly like the Python one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.kafka.partitioner import partition_for
from cdc.kafka.sparse import hold_newest, python_hold_newest


class Calls:
    """produce_raw / produce_untracked stand-ins that record what they were given."""

    def __init__(self, refuse_every: int = 0) -> None:
        self.raw: list[tuple] = []
        self.untracked: list[tuple] = []
        self.refuse_every = refuse_every

    def produce_raw(self, topic, value, key, partition, on_delivery, callback, timestamp, headers):
        assert (on_delivery, callback, timestamp) == (None, None, 0)
        if self.refuse_every and (len(self.raw) + len(self.untracked)) % self.refuse_every == 0:
            raise BufferError("Local: Queue full")
        self.raw.append((topic, value, key, partition, headers))

    def produce_untracked(self, topic, value, key, partition, headers):
        self.untracked.append((topic, value, key, partition, headers))


HEADERS = [("cdc.schema.version", b"1")]


def test_holds_the_newest_per_partition_and_produces_the_rest_in_order() -> None:
    calls = Calls()
    held: dict = {}
    records = [("t", f"k{n % 5}".encode(), f"v{n}".encode(), HEADERS) for n in range(20)]
    index, produced = hold_newest(records, 0, held, {"t": 3}, calls.produce_raw, calls.produce_untracked, 100)
    assert (index, produced) == (20, 20 - len(held))
    assert {slot[1] for slot in held} == {partition_for(f"k{n}".encode(), 3) for n in range(5)}
    for (topic, partition), (value, key, headers) in held.items():
        newest = max(n for n in range(20) if partition_for(f"k{n % 5}".encode(), 3) == partition)
        assert value == f"v{newest}".encode() and headers == HEADERS
    # what went out per partition is every record but the held one, in order
    for partition in {p for _, p in held}:
        sent = [value for _, value, _, p, _ in calls.raw if p == partition]
        expected = [f"v{n}".encode() for n in range(20) if partition_for(f"k{n % 5}".encode(), 3) == partition]
        assert sent == expected[:-1]


def test_stops_before_an_unknown_topic_and_after_the_budget() -> None:
    calls = Calls()
    held: dict = {}
    records = [("t", None, b"a", None), ("t", None, b"b", None), ("new", None, b"c", None), ("t", None, b"d", None)]
    assert hold_newest(records, 0, held, {"t": 1}, calls.produce_raw, calls.produce_untracked, 10) == (2, 1)
    assert hold_newest(records, 3, held, {"t": 1}, calls.produce_raw, calls.produce_untracked, 1) == (4, 1)
    assert [value for _, value, _, _, _ in calls.raw] == [b"a", b"b"]
    assert held == {("t", 0): (b"d", None, None)}
    # a budget reached mid-way: the index says where to go on after the caller sealed
    assert hold_newest(records * 3, 0, {}, {"t": 1, "new": 1}, calls.produce_raw, calls.produce_untracked, 2)[0] == 4


def test_a_refused_record_goes_to_the_waiting_wrapper_in_its_place() -> None:
    calls = Calls(refuse_every=3)
    records = [("t", None, f"v{n}".encode(), HEADERS) for n in range(10)]
    hold_newest(records, 0, {}, {"t": 1}, calls.produce_raw, calls.produce_untracked, 100)
    assert sorted(calls.raw + calls.untracked, key=lambda call: int(call[1][1:])) == \
        [("t", f"v{n}".encode(), None, 0, HEADERS) for n in range(9)]
    assert calls.untracked  # some were refused, none lost


def _compiled():
    from cdc.impl import IMPL, load_extension

    if IMPL != "cython":
        pytest.skip("the compiled module is not in use (CDC_PURE_PYTHON)")
    return load_extension("sparse").hold_newest


_records = st.lists(st.tuples(st.sampled_from(["a", "b", "unknown"]), st.one_of(st.none(), st.binary(max_size=12)),
                              st.one_of(st.none(), st.binary(max_size=8)), st.sampled_from([None, [], HEADERS])),
                    max_size=60)


@given(_records, st.integers(min_value=1, max_value=70), st.integers(min_value=0, max_value=4))
def test_compiled_is_the_python_twin(records, budget: int, refuse_every: int) -> None:
    compiled = _compiled()
    counts = {"a": 1, "b": 7}
    outcomes = []
    for implementation in (python_hold_newest, compiled):
        calls, held = Calls(refuse_every), {}
        result = implementation(records, 0, held, counts, calls.produce_raw, calls.produce_untracked, budget)
        outcomes.append((result, held, calls.raw, calls.untracked))
    assert outcomes[0] == outcomes[1]


def test_compiled_rejects_a_malformed_record() -> None:
    compiled = _compiled()
    with pytest.raises((TypeError, ValueError)):
        compiled([("t", None, b"v")], 0, {}, {"t": 1}, print, print, 1)
