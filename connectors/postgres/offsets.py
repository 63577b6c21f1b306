"""PostgreSQL source positions: LSNs, as integers inside the connector and `16/B374D848` text outside.

Every event carries `(commit_lsn, lsn, n)` (`n` numbers the relations of one Truncate), strictly
increasing in stream order, so tuples compare as positions; snapshot events carry `(0, row number)`,
before any stream event. The slot keeps the acknowledged position (its confirmed_flush_lsn).
"""

from __future__ import annotations


def lsn_to_int(text: str) -> int:
    """`16/B374D848` -> integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_to_text(lsn: int) -> str:
    """Integer -> `16/B374D848`."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
