# The JSON writer shared by ext/cdc/envelope/encoders.pyx and ext/connectors/mysql/decode.pyx (Cython `include`): a growable
# byte buffer that starts on the caller's stack, with writers for ints, strs and simple scalars whose
# output is byte-identical to orjson.dumps of the same value.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.unicode cimport PyUnicode_CheckExact
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    void* PyUnicode_DATA(object o)

import orjson

cdef object _dumps = orjson.dumps

DEF STACK_BYTES = 2048


cdef struct Writer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity
    bint on_heap


cdef inline void _init(Writer* w, char* stack) noexcept:
    w.data = stack
    w.size = 0
    w.capacity = STACK_BYTES
    w.on_heap = False


cdef int _grow(Writer* w, Py_ssize_t needed) except -1:
    cdef Py_ssize_t capacity = w.capacity * 2
    cdef char* data
    while capacity < w.size + needed:
        capacity *= 2
    if w.on_heap:
        data = <char*>realloc(w.data, capacity)
        if data == NULL:
            raise MemoryError()
    else:
        data = <char*>malloc(capacity)
        if data == NULL:
            raise MemoryError()
        memcpy(data, w.data, w.size)
        w.on_heap = True
    w.data = data
    w.capacity = capacity
    return 0


cdef inline int _put(Writer* w, const char* text, Py_ssize_t size) except -1:
    if w.size + size > w.capacity:
        _grow(w, size)
    memcpy(w.data + w.size, text, size)
    w.size += size
    return 0


cdef inline int _put_bytes(Writer* w, object data) except -1:
    if not PyBytes_CheckExact(data):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return _put(w, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef const char* _PAIRS = (b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                           b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                           b"8081828384858687888990919293949596979899")


cdef inline int _digits(uint64_t magnitude, char* end) noexcept nogil:
    """Write the decimal digits of `magnitude` so that they end just before `end`; return their count."""
    cdef char* pos = end
    cdef uint64_t pair
    while magnitude >= 100:
        pair = magnitude % 100
        magnitude //= 100
        pos -= 2
        pos[0] = _PAIRS[2 * pair]
        pos[1] = _PAIRS[2 * pair + 1]
    if magnitude >= 10:
        pos -= 2
        pos[0] = _PAIRS[2 * magnitude]
        pos[1] = _PAIRS[2 * magnitude + 1]
    else:
        pos -= 1
        pos[0] = <char>(48 + magnitude)
    return <int>(end - pos)


cdef inline int _put_int(Writer* w, int64_t value) except -1:
    cdef char digits[24]
    cdef uint64_t magnitude = <uint64_t>(-(value + 1)) + 1 if value < 0 else <uint64_t>value
    cdef int pos = 24 - _digits(magnitude, digits + 24)
    if value < 0:
        pos -= 1
        digits[pos] = b'-'
    return _put(w, digits + pos, 24 - pos)


cdef inline bytes _finish(Writer* w):
    return PyBytes_FromStringAndSize(w.data, w.size)


cdef inline void _release(Writer* w) noexcept:
    if w.on_heap:
        free(w.data)
        w.on_heap = False


cdef int _put_str(Writer* w, object text) except -1:
    """A str as JSON: ASCII without control characters directly, anything else through orjson."""
    cdef const unsigned char* chars
    cdef Py_ssize_t length, index, start
    cdef unsigned char c
    if not PyUnicode_IS_COMPACT_ASCII(text):
        return _put_bytes(w, _dumps(text))
    chars = <const unsigned char*>PyUnicode_DATA(text)
    length = PyUnicode_GET_LENGTH(text)
    for index in range(length):
        if chars[index] < 0x20:
            return _put_bytes(w, _dumps(text))
    if w.size + 2 * length + 2 > w.capacity:
        _grow(w, 2 * length + 2)
    w.data[w.size] = b'"'
    w.size += 1
    start = 0
    for index in range(length):
        c = chars[index]
        if c == 34 or c == 92:  # '"' and '\\'
            memcpy(w.data + w.size, chars + start, index - start)
            w.size += index - start
            w.data[w.size] = b'\\'
            w.size += 1
            start = index
    memcpy(w.data + w.size, chars + start, length - start)
    w.size += length - start
    w.data[w.size] = b'"'
    w.size += 1
    return 0


cdef int _put_scalar(Writer* w, object value) except -1:
    """One JSON value: the simple kinds directly, everything else (floats, lists, ...) through orjson."""
    cdef int overflow
    cdef long long number
    if value is None:
        return _put(w, b"null", 4)
    if value is True:
        return _put(w, b"true", 4)
    if value is False:
        return _put(w, b"false", 5)
    if PyLong_CheckExact(value):
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0:
            return _put_int(w, number)
        return _put_bytes(w, _dumps(value))
    if PyUnicode_CheckExact(value):
        return _put_str(w, value)
    return _put_bytes(w, _dumps(value))


cdef int _put_ascii_text(Writer* w, const unsigned char* p, Py_ssize_t length) except -1:
    """Printable ASCII text as a JSON string, escaped as orjson escapes it: 1; anything else: 0
    (nothing written; the caller decodes the text and writes the str)."""
    cdef Py_ssize_t i, start = 0
    cdef unsigned char c
    for i in range(length):
        if p[i] < 0x20 or p[i] >= 0x80:
            return 0
    if w.size + 2 * length + 2 > w.capacity:
        _grow(w, 2 * length + 2)
    w.data[w.size] = b'"'
    w.size += 1
    for i in range(length):
        c = p[i]
        if c == 34 or c == 92:  # '"' and '\\'
            memcpy(w.data + w.size, p + start, i - start)
            w.size += i - start
            w.data[w.size] = b'\\'
            w.size += 1
            start = i
    memcpy(w.data + w.size, p + start, length - start)
    w.size += length - start
    w.data[w.size] = b'"'
    w.size += 1
    return 1
