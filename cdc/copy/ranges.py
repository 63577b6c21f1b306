"""Key ranges of one table for a parallel copy: arithmetic for an integer key, sampled boundaries for any other.

A range is [lo, hi) over the primary key in the key's own order (tuples compared column by column, as
the database compares them); None is an open end. The ranges of a table cover every key once whatever
the boundaries are, so a sample that misses rows only makes the ranges uneven, never wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SAMPLES_PER_RANGE = 100  # sampled keys per wanted range: ranges within ~10-20% of each other
MIN_SAMPLE = 10_000  # PostgreSQL samples whole pages: ~60 pages of a narrow table, not one

Bound = tuple | None


def integer_ranges(low: int, high: int, parts: int) -> list[tuple[Bound, Bound]]:
    """`parts` equal ranges covering the integer keys low..high (inclusive)."""
    high += 1
    width = max(1, math.ceil((high - low) / max(1, parts)))
    return [((start,), (min(start + width, high),)) for start in range(low, high, width)]


def sampled_ranges(sample: Sequence[tuple], parts: int) -> list[tuple[Bound, Bound]]:
    """Ranges cut at every len(sample)/parts-th key of a sorted sample; the first and last are open-ended."""
    if not sample:
        return [(None, None)]
    step = len(sample) / max(1, parts)
    cuts: list[tuple] = []
    for n in range(1, parts):
        key = tuple(sample[int(n * step)])
        if not cuts or key != cuts[-1]:
            cuts.append(key)
    bounds: list[Bound] = [None, *cuts, None]
    return list(zip(bounds[:-1], bounds[1:]))


def sample_fraction(estimated_rows: float, parts: int) -> float:
    """The share of rows to sample (0..1]: SAMPLES_PER_RANGE keys per range, at least MIN_SAMPLE keys."""
    if estimated_rows <= 0:
        return 1.0
    return min(1.0, max(MIN_SAMPLE, parts * SAMPLES_PER_RANGE) / estimated_rows)


def range_condition(key: Sequence[str], lo: Bound, hi: Bound, quote: Callable[[str], str], *,
                    row_values: bool) -> tuple[str, list]:
    """(SQL condition with %s placeholders, its parameters) for lo <= key < hi ("" when unbounded).

    row_values: `(a, b) >= (%s, %s)` (PostgreSQL plans it as an index range); otherwise the expanded
    `a > x OR (a = x AND b >= y)`, which MariaDB's optimizer turns into a range where it would scan
    the whole table for a row-value comparison.
    """
    parts, params = [], []
    for bound, strict, last in ((lo, ">", ">="), (hi, "<", "<")):
        if bound is None:
            continue
        if row_values or len(key) == 1:
            columns = ", ".join(map(quote, key))
            marks = ", ".join(["%s"] * len(key))
            parts.append(f"({columns}) {last} ({marks})" if len(key) > 1 else f"{columns} {last} %s")
            params.extend(bound)
            continue
        terms = []
        for i in range(len(key)):
            equal = [f"{quote(c)} = %s" for c in key[:i]]
            operator = last if i == len(key) - 1 else strict
            terms.append("(" + " AND ".join([*equal, f"{quote(key[i])} {operator} %s"]) + ")")
            params.extend([*bound[:i], bound[i]])
        parts.append("(" + " OR ".join(terms) + ")")
    return " AND ".join(parts), params
