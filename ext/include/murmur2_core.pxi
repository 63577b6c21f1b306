# Included by ext/cdc/kafka/partitioner.pyx and ext/cdc/kafka/sparse.pyx (Cython `include`): Kafka's murmur2 over a bytes-like key.

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
