"""Kafka's key partitioner: murmur2 as in the Java client (`Utils.murmur2`, `Utils.toPositive`).

Every change of one row has the same key bytes, so it lands on one partition, in order; a consumer
written in Java (or Debezium) computes the same partition for the same key. This module is the
pure-Python twin of the compiled `cdc._ext.murmur2`; its names are the ones `cdc.impl.twin` picks
(the capture pipeline partitions every keyed record itself); `python_murmur2` and
`python_partition_for` are this module's own.
"""

from __future__ import annotations

import struct

from cdc.impl import twin

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash of `data` as a signed int, identical to Java's `Utils.murmur2`."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", memoryview(data)[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Java's `Utils.toPositive`: clear the sign bit (not abs(), which differs for negative values)."""
    return number & 0x7FFFFFFF


def partition_for(key: bytes | None, partition_count: int) -> int:
    """The partition of a record: toPositive(murmur2(key)) % count; a None key goes to partition 0."""
    if key is None:
        return 0
    return to_positive(murmur2(key)) % partition_count


IMPLEMENTATION = "python"
python_murmur2, python_partition_for = murmur2, partition_for
_selected = twin(__name__)
murmur2, to_positive, partition_for = _selected.murmur2, _selected.to_positive, _selected.partition_for
IMPLEMENTATION = _selected.IMPLEMENTATION  # which one the names above are
