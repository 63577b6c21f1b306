# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled Kafka key partitioner (`cdc._ext.murmur2`): the fast twin of cdc/kafka/partitioner.py.

Same names, same results: murmur2 as the Java client's `Utils.murmur2` (signed 32-bit), and
`partition_for(key, count)` = toPositive(murmur2(key)) % count, a None key on partition 0. The
capture pipeline partitions every keyed record itself (see `CapturePipeline`), so this runs per record.
"""

include "murmur2_core.pxi"

IMPLEMENTATION = "cython"  # which twin this is (cdc.impl.twin picks one)


def murmur2(data) -> int:
    """The 32-bit murmur2 hash of `data` as a signed int, identical to Java's `Utils.murmur2`."""
    return <int32_t>_hash(data)


def to_positive(number) -> int:
    """Java's `Utils.toPositive`: clear the sign bit (not abs(), which differs for negative values)."""
    return number & 0x7FFFFFFF


def partition_for(key, Py_ssize_t partition_count) -> int:
    """The partition of a record: toPositive(murmur2(key)) % count; a None key goes to partition 0."""
    if key is None:
        return 0
    return <Py_ssize_t>(_hash(key) & 0x7FFFFFFF) % partition_count
