# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled Kafka key partitioner (`cdc._ext.murmur2`): the fast twin of cdc/kafka/partitioner.py.

Same names, same results: murmur2 as the Java client's `Utils.murmur2` (signed 32-bit), and
`partition_for(key, count)` = toPositive(murmur2(key)) % count, a None key on partition 0. The
capture pipeline partitions every keyed record itself (see `CapturePipeline`), so this runs per record.
"""

from libc.stdint cimport int32_t, uint32_t


cdef inline uint32_t _murmur2(const unsigned char* data, Py_ssize_t length) noexcept nogil:
    cdef uint32_t m = 0x5BD1E995
    cdef uint32_t h = (<uint32_t>0x9747B28C) ^ (<uint32_t>length)
    cdef Py_ssize_t whole = length & ~3
    cdef Py_ssize_t i = 0
    cdef uint32_t k
    while i < whole:
        k = (<uint32_t>data[i] | (<uint32_t>data[i + 1] << 8) | (<uint32_t>data[i + 2] << 16)
             | (<uint32_t>data[i + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h = (h * m) ^ k
        i += 4
    cdef Py_ssize_t tail = length & 3
    if tail:
        if tail == 3:
            h ^= <uint32_t>data[whole + 2] << 16
        if tail >= 2:
            h ^= <uint32_t>data[whole + 1] << 8
        h ^= <uint32_t>data[whole]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return h


cdef inline uint32_t _hash(data) except? 0:
    cdef const unsigned char[:] view
    if type(data) is bytes:
        return _murmur2(<const unsigned char*><char*>data, len(<bytes>data))
    view = data  # bytearray, memoryview: any buffer of bytes
    if view.shape[0] == 0:
        return _murmur2(NULL, 0)
    return _murmur2(&view[0], view.shape[0])


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
