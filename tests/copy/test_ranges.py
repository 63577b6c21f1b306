"""Key ranges: sampled boundaries cover every key once; conditions in both SQL spellings."""

from __future__ import annotations

from cdc.copy.ranges import integer_ranges, range_condition, sampled_ranges


def test_sampled_ranges_are_contiguous_open_ended_and_skip_repeated_cuts():
    sample = [("a", 1), ("a", 1), ("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    ranges = sampled_ranges(sample, 3)
    assert ranges == [(None, ("a", 1)), (("a", 1), ("c", 3)), (("c", 3), None)]
    assert sampled_ranges([], 4) == [(None, None)]


def test_integer_ranges_cover_low_to_high_inclusive():
    assert integer_ranges(1, 10, 3) == [((1,), (5,)), ((5,), (9,)), ((9,), (11,))]


def test_expanded_condition_is_lexicographic_for_mariadb():
    sql, params = range_condition(("a", "b"), ("x", 1), ("y", 2), lambda c: f"`{c}`", row_values=False)
    assert sql == ("((`a` > %s) OR (`a` = %s AND `b` >= %s)) AND ((`a` < %s) OR (`a` = %s AND `b` < %s))")
    assert params == ["x", "x", 1, "y", "y", 2]
    sql, params = range_condition(("a", "b"), None, ("y", 2), lambda c: f'"{c}"', row_values=True)
    assert (sql, params) == ('("a", "b") < (%s, %s)', ["y", 2])
