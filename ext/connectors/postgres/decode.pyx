# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Decode pgoutput logical replication messages into plain tuples (Cython: `cdc._ext.pgoutput`).

Same API and output as the pure-Python twin `connectors.postgres.decode`, which is the specification:
read it for the message tuples and value forms. Here every read from the wire is bounds-checked by
hand (the build turns Cython's own bounds checks off); common values (and one-dimensional arrays
of them) are decoded by typed inline helpers, and anything unusual (multi-dimensional arrays,
BC dates, zones other than UTC, intervals, malformed text) goes to the twin's own functions, so both
give identical results and identical errors. tests/connectors/postgres/test_decode_properties.py
holds the two to that on random input.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.math cimport isinf, isnan
from libc.string cimport memchr, memcmp, memcpy

cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* overflow_exception) noexcept
    PyObject* PyErr_Occurred() noexcept
    void PyErr_Clear() noexcept
    dict _PyDict_NewPresized(Py_ssize_t minused)

import struct as _struct

from cdc.events import UNAVAILABLE_VALUE
from connectors.postgres import decode as _twin
from connectors.postgres import types as _types
from connectors.postgres.decode import RelationInfo, decode_error

__all__ = ["PgoutputDecoder", "RelationInfo"]

cdef object _decode_text = _twin.decode_text
cdef object _decode_binary = _twin.decode_binary
cdef object _codec_by_name = _types.codec_by_name
cdef object _codec_for_oid = _types.codec_for_oid
cdef object _binary_capable = _types.binary_capable
cdef object _UNAVAILABLE = UNAVAILABLE_VALUE
cdef tuple _VALUE_ERRORS = (ValueError, IndexError, _struct.error, OverflowError)

# Codec ids: the same numbers as connectors/postgres/types.py (a test checks they agree).
DEF C_TEXT = 0
DEF C_OTHER = 1
DEF C_INT = 2
DEF C_OID = 3
DEF C_BOOL = 4
DEF C_NUMERIC = 5
DEF C_FLOAT4 = 6
DEF C_FLOAT8 = 7
DEF C_BYTEA = 8
DEF C_BITS = 9
DEF C_DATE = 10
DEF C_TIME = 11
DEF C_TIMETZ = 12
DEF C_TIMESTAMP = 13
DEF C_TIMESTAMPTZ = 14
DEF C_INTERVAL = 15
DEF C_JSON = 16
DEF C_JSONB = 17
DEF C_UUID = 18
DEF C_BOX = 19
DEF C_ARRAY = 0x40

CODEC_IDS = {
    "text": C_TEXT, "other": C_OTHER, "int": C_INT, "oid": C_OID, "bool": C_BOOL,
    "numeric": C_NUMERIC, "float4": C_FLOAT4, "float8": C_FLOAT8, "bytea": C_BYTEA,
    "bits": C_BITS, "date": C_DATE, "time": C_TIME, "timetz": C_TIMETZ,
    "timestamp": C_TIMESTAMP, "timestamptz": C_TIMESTAMPTZ, "interval": C_INTERVAL,
    "json": C_JSON, "jsonb": C_JSONB, "uuid": C_UUID, "box": C_BOX, "array": C_ARRAY,
}

# 64-bit constants as C globals: Cython would make DEF constants of this size Python ints.
cdef int64_t PG_EPOCH_OFFSET_US = 946684800000000
cdef int64_t US_PER_DAY = 86400000000
cdef object _PG_EPOCH_OFFSET = 946684800000000  # for wire timestamps, which may be any int64
DEF PG_EPOCH_DAYS = 10957
DEF MIN_FAST_DAYS = -719162        # 0001-01-01 in days since 1970-01-01
DEF MAX_FAST_DAYS = 2932896        # 9999-12-31

cdef const char* _HEX = b"0123456789abcdef"

include "civil.pxi"
include "base64.pxi"

IMPLEMENTATION = "cython"  # which twin this is (cdc.impl.twin picks one)


# -- big-endian reads (callers check bounds first) --------------------------------------------------

cdef inline uint16_t _be16(const unsigned char* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t _be32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint64_t _be64(const unsigned char* p) noexcept nogil:
    return (<uint64_t>_be32(p) << 32) | _be32(p + 4)


# -- small formatting helpers ---------------------------------------------------------------------

cdef inline void _put2(char* out, int value) noexcept nogil:
    out[0] = <char>(48 + value // 10)
    out[1] = <char>(48 + value % 10)


cdef inline void _put4(char* out, int value) noexcept nogil:
    out[0] = <char>(48 + value // 1000)
    out[1] = <char>(48 + (value // 100) % 10)
    out[2] = <char>(48 + (value // 10) % 10)
    out[3] = <char>(48 + value % 10)


cdef inline Py_ssize_t _put_date(char* out, int64_t days) noexcept nogil:
    cdef int64_t year
    cdef int month, day
    _civil_from_days(days, &year, &month, &day)
    _put4(out, <int>year)
    out[4] = b'-'
    _put2(out + 5, month)
    out[7] = b'-'
    _put2(out + 8, day)
    return 10


cdef inline Py_ssize_t _put_clock(char* out, int64_t us) noexcept nogil:
    """HH:MM:SS[.ffffff] (six digits when the fraction is non-zero); us in [0, 24h]."""
    cdef int64_t seconds = us // 1000000
    cdef int64_t fraction = us - seconds * 1000000
    cdef int i
    _put2(out, <int>(seconds // 3600))
    out[2] = b':'
    _put2(out + 3, <int>((seconds // 60) % 60))
    out[5] = b':'
    _put2(out + 6, <int>(seconds % 60))
    if fraction == 0:
        return 8
    out[8] = b'.'
    for i in range(6):
        out[14 - i] = <char>(48 + fraction % 10)
        fraction //= 10
    return 15


cdef inline int _hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef inline bint _is_ascii(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] >= 0x80:
            return False
    return True


# -- text values: fast paths for the common forms, the twin for everything else ------------------------

cdef object _text_value(int codec, const unsigned char* p, Py_ssize_t n):
    cdef char buf[64]
    cdef Py_ssize_t i, dot, size
    cdef char* end
    cdef double dvalue
    cdef int64_t acc
    cdef bint negative
    cdef bytes raw
    if codec == C_TEXT or codec == C_NUMERIC or codec == C_JSON or codec == C_JSONB \
            or codec == C_OTHER or codec == C_UUID or codec == C_BITS or codec == C_INTERVAL \
            or codec == C_BOX:
        return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
    if codec == C_INT or codec == C_OID:
        if 0 < n <= 18:
            i = 0
            negative = p[0] == b'-'
            if negative:
                i = 1
            if i < n:
                acc = 0
                while i < n and 48 <= p[i] <= 57:
                    acc = acc * 10 + (p[i] - 48)
                    i += 1
                if i == n:
                    return PyLong_FromLongLong(-acc if negative else acc)
    elif codec == C_BOOL:
        if n == 1 and p[0] == b't':
            return True
        if n == 1 and p[0] == b'f':
            return False
    elif codec == C_FLOAT8 or codec == C_FLOAT4:
        if n == 3 and memcmp(p, b"NaN", 3) == 0:
            return "NaN"
        if n == 8 and memcmp(p, b"Infinity", 8) == 0:
            return "Infinity"
        if n == 9 and memcmp(p, b"-Infinity", 9) == 0:
            return "-Infinity"
        if 0 < n < 48 and _plain_float(p, n):
            # the parser float() itself uses, on a NUL-terminated copy
            memcpy(buf, p, n)
            buf[n] = 0
            dvalue = PyOS_string_to_double(buf, &end, NULL)
            if dvalue == -1.0 and PyErr_Occurred() != NULL:
                PyErr_Clear()  # the twin's float() raises the error with its own message
            elif end == buf + n:
                return PyFloat_FromDouble(dvalue)
    elif codec == C_TIMESTAMPTZ or codec == C_TIMESTAMP:
        # "YYYY-MM-DD HH:MM:SS[.f]" (+ "+00" for timestamptz): the date, "T", the clock with six
        # fractional digits when there is a fraction, "Z"; anything else goes to the twin.
        size = _iso_timestamp(p, n, codec == C_TIMESTAMPTZ, buf)
        if size > 0:
            return PyUnicode_DecodeASCII(buf, size, NULL)
    elif codec == C_DATE:
        if n == 10 and _is_ascii(p, n):
            return PyUnicode_DecodeASCII(<const char*>p, n, NULL)
    elif codec == C_TIME:
        if n <= 32 and _is_ascii(p, n):
            dot = -1
            for i in range(n):
                if p[i] == b'.':
                    dot = i
                    break
            memcpy(buf, p, n)
            if dot < 0 or n - dot - 1 >= 6:
                return PyUnicode_DecodeASCII(buf, n, NULL)
            for i in range(n, dot + 7):
                buf[i] = b'0'
            return PyUnicode_DecodeASCII(buf, dot + 7, NULL)
    elif codec == C_BYTEA:
        if n >= 2 and p[0] == b'\\' and p[1] == b'x' and n % 2 == 0:
            raw = PyBytes_FromStringAndSize(NULL, (n - 2) // 2)
            if _unhex(p + 2, n - 2, <unsigned char*>PyBytes_AS_STRING(raw)):
                return _base64(<const unsigned char*>PyBytes_AS_STRING(raw), (n - 2) // 2)
    return _decode_text(codec, PyUnicode_DecodeUTF8(<const char*>p, n, NULL))


cdef object _text_array(int element, const unsigned char* p, Py_ssize_t n):
    """A one-dimensional array in PG's text form, its elements decoded like columns; None when the
    text is anything else (several dimensions, bounds, non-ASCII, odd syntax): the twin decides then."""
    cdef list items = []
    cdef Py_ssize_t i = 1, j, k, size
    cdef bytes scratch = None
    cdef unsigned char* out
    cdef const unsigned char* q
    if element == C_BOX or n < 2 or p[0] != b'{' or p[n - 1] != b'}' or not _is_ascii(p, n):
        return None
    if n == 2:
        return items
    while True:
        if p[i] == b'"':
            j = i + 1
            k = 0
            while j < n - 1 and p[j] != b'"':
                if p[j] == b'\\':
                    if j + 1 >= n - 1:
                        return None
                    if scratch is None:
                        scratch = PyBytes_FromStringAndSize(NULL, n)
                    j += 1
                k += 1
                j += 1
            if j >= n - 1:
                return None
            if scratch is None:
                q = p + i + 1
                size = j - i - 1
            else:  # copy the element without its escaping backslashes
                out = <unsigned char*>PyBytes_AS_STRING(scratch)
                size = 0
                k = i + 1
                while k < j:
                    if p[k] == b'\\':
                        k += 1
                    out[size] = p[k]
                    size += 1
                    k += 1
                q = out
            items.append(_text_value(element, q, size))
            i = j + 1
        else:
            j = i
            while j < n - 1 and p[j] != b',':
                if p[j] == b'{' or p[j] == b'"' or p[j] == b'\\' or p[j] == b'}':
                    return None
                j += 1
            if j == i:
                return None
            if j - i == 4 and (p[i] | 32) == b'n' and (p[i + 1] | 32) == b'u' and (p[i + 2] | 32) == b'l' \
                    and (p[i + 3] | 32) == b'l':
                items.append(None)
            else:
                items.append(_text_value(element, p + i, j - i))
            i = j
        if i == n - 1:
            return items
        if p[i] != b',' or i + 1 >= n - 1:
            return None
        i += 1


cdef inline bint _plain_float(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """Only digits, '.', 'e', 'E', '+', '-': what PG's float output is made of (no '_', no spaces)."""
    cdef Py_ssize_t i
    for i in range(n):
        if not (48 <= p[i] <= 57 or p[i] == b'.' or p[i] == b'e' or p[i] == b'E' or p[i] == b'+' or p[i] == b'-'):
            return False
    return True


cdef inline bint _digits(const unsigned char* p, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        if not 48 <= p[i] <= 57:
            return False
    return True


cdef inline Py_ssize_t _iso_timestamp(const unsigned char* p, Py_ssize_t n, bint zoned, char* out) noexcept nogil:
    """Length written to out (at most 27 + 1), or 0 when the text is not in the plain common form."""
    cdef Py_ssize_t end = n - 3 if zoned else n
    cdef Py_ssize_t fraction, i
    if end < 19 or end > 26 or not (_digits(p, 0, 4) and p[4] == b'-' and _digits(p, 5, 7) and p[7] == b'-'
                                    and _digits(p, 8, 10) and p[10] == b' ' and _digits(p, 11, 13)
                                    and p[13] == b':' and _digits(p, 14, 16) and p[16] == b':'
                                    and _digits(p, 17, 19)):
        return 0
    if zoned and not (p[end] == b'+' and p[end + 1] == b'0' and p[end + 2] == b'0'):
        return 0
    memcpy(out, p, 19)
    out[10] = b'T'
    n = 19
    if end > 19:
        fraction = end - 20
        if p[19] != b'.' or fraction < 1 or not _digits(p, 20, end):
            return 0
        memcpy(out + 19, p + 19, end - 19)
        for i in range(end, 26):
            out[i] = b'0'
        n = 26
    if zoned:
        out[n] = b'Z'
        n += 1
    return n


cdef inline bint _unhex(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept nogil:
    cdef Py_ssize_t i
    cdef int hi, lo
    for i in range(0, n, 2):
        hi = _hexval(p[i])
        lo = _hexval(p[i + 1])
        if hi < 0 or lo < 0:
            return False
        out[i // 2] = <unsigned char>((hi << 4) | lo)
    return True


# -- binary values ------------------------------------------------------------------------------------

cdef object _float_value(double value):
    if isnan(value):
        return "NaN"
    if isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return PyFloat_FromDouble(value)


cdef object _timestamp_value(int64_t pg_us, bint zoned):
    cdef char buf[40]
    cdef int64_t unix_us, days, us
    cdef Py_ssize_t n
    if pg_us == INT64_MAX:
        return "infinity"
    if pg_us == INT64_MIN:
        return "-infinity"
    if pg_us > INT64_MAX - PG_EPOCH_OFFSET_US:
        return None  # let the twin format it
    unix_us = pg_us + PG_EPOCH_OFFSET_US
    days = _floordiv(unix_us, US_PER_DAY)
    if days < MIN_FAST_DAYS or days > MAX_FAST_DAYS:
        return None
    us = unix_us - days * US_PER_DAY
    n = _put_date(buf, days)
    buf[n] = b'T'
    n += 1 + _put_clock(buf + n + 1, us)
    if zoned:
        buf[n] = b'Z'
        n += 1
    return PyUnicode_DecodeASCII(buf, n, NULL)


cdef object _numeric_value(const unsigned char* p, Py_ssize_t n):
    """numeric_send to PG's exact text; None for the twin when the header is not plainly valid."""
    cdef int ndigits, weight, dscale, i, d, digit, groups, k, count
    cdef uint16_t sign
    cdef char small[160]
    cdef char* out
    cdef Py_ssize_t pos = 0, need
    cdef bytes big = None
    if n < 8:
        return None
    ndigits = <int16_t>_be16(p)
    weight = <int16_t>_be16(p + 2)
    sign = _be16(p + 4)
    dscale = <int16_t>_be16(p + 6)
    if sign == 0xC000:
        return "NaN"
    if sign == 0xD000:
        return "Infinity"
    if sign == 0xF000:
        return "-Infinity"
    if (sign != 0 and sign != 0x4000) or ndigits < 0 or dscale < 0 or n != 8 + 2 * ndigits:
        return None
    for i in range(ndigits):
        digit = <int16_t>_be16(p + 8 + 2 * i)
        if digit < 0 or digit >= 10000:
            return None
    need = 2 + (weight + 1 if weight >= 0 else 1) * 4 + dscale + 8
    if need <= 160:
        out = small
    else:
        big = PyBytes_FromStringAndSize(NULL, need)
        out = PyBytes_AS_STRING(big)
    if sign == 0x4000:
        out[pos] = b'-'
        pos += 1
    if weight < 0:
        out[pos] = b'0'
        pos += 1
    else:
        for d in range(weight + 1):
            digit = <int16_t>_be16(p + 8 + 2 * d) if d < ndigits else 0
            if d == 0:
                # leading group without zero padding
                if digit >= 1000:
                    _put4(out + pos, digit)
                    pos += 4
                elif digit >= 100:
                    out[pos] = <char>(48 + digit // 100)
                    _put2(out + pos + 1, digit % 100)
                    pos += 3
                elif digit >= 10:
                    _put2(out + pos, digit)
                    pos += 2
                else:
                    out[pos] = <char>(48 + digit)
                    pos += 1
            else:
                _put4(out + pos, digit)
                pos += 4
    if dscale > 0:
        out[pos] = b'.'
        pos += 1
        groups = (dscale + 3) // 4
        count = 0
        for k in range(groups):
            d = weight + 1 + k
            digit = <int16_t>_be16(p + 8 + 2 * d) if 0 <= d < ndigits else 0
            _put4(out + pos, digit)
            pos += 4
            count += 4
        pos -= count - dscale
    return PyUnicode_DecodeASCII(out, pos, NULL)


cdef object _uuid_value(const unsigned char* p):
    cdef char buf[36]
    cdef int i, j = 0
    for i in range(16):
        if i == 4 or i == 6 or i == 8 or i == 10:
            buf[j] = b'-'
            j += 1
        buf[j] = _HEX[p[i] >> 4]
        buf[j + 1] = _HEX[p[i] & 15]
        j += 2
    return PyUnicode_DecodeASCII(buf, 36, NULL)


cdef object _binary_value(int codec, const unsigned char* p, Py_ssize_t n):
    cdef object value = None
    cdef int64_t v64
    cdef int32_t v32
    cdef uint64_t u64
    cdef char buf[24]
    cdef double dvalue
    if codec == C_INT:
        if n == 4:
            return PyLong_FromLongLong(<int32_t>_be32(p))
        if n == 8:
            return PyLong_FromLongLong(<int64_t>_be64(p))
        if n == 2:
            return PyLong_FromLongLong(<int16_t>_be16(p))
    elif codec == C_TEXT or codec == C_JSON:
        return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
    elif codec == C_OID:
        if n == 4:
            return PyLong_FromUnsignedLongLong(_be32(p))
        if n == 8:
            return PyLong_FromUnsignedLongLong(_be64(p))
    elif codec == C_BOOL:
        if n == 1:
            return p[0] != 0
    elif codec == C_FLOAT8:
        if n == 8:
            u64 = _be64(p)
            memcpy(&dvalue, &u64, 8)
            return _float_value(dvalue)
    elif codec == C_NUMERIC:
        value = _numeric_value(p, n)
    elif codec == C_BYTEA:
        return _base64(p, n)
    elif codec == C_JSONB:
        if n >= 1 and p[0] == 1:
            return PyUnicode_DecodeUTF8(<const char*>p + 1, n - 1, NULL)
    elif codec == C_UUID:
        if n == 16:
            return _uuid_value(p)
    elif codec == C_TIMESTAMP or codec == C_TIMESTAMPTZ:
        if n == 8:
            value = _timestamp_value(<int64_t>_be64(p), codec == C_TIMESTAMPTZ)
    elif codec == C_DATE:
        if n == 4:
            v32 = <int32_t>_be32(p)
            if v32 != INT32_MAX and v32 != INT32_MIN:
                v64 = <int64_t>v32 + PG_EPOCH_DAYS
                if MIN_FAST_DAYS <= v64 <= MAX_FAST_DAYS:
                    return PyUnicode_DecodeASCII(buf, _put_date(buf, v64), NULL)
    elif codec == C_TIME:
        if n == 8:
            v64 = <int64_t>_be64(p)
            if 0 <= v64 <= US_PER_DAY:
                return PyUnicode_DecodeASCII(buf, _put_clock(buf, v64), NULL)
    if value is not None:
        return value
    return _decode_binary(codec, PyBytes_FromStringAndSize(<const char*>p, n))


cdef object _binary_array(int element, const unsigned char* p, Py_ssize_t n):
    """A one-dimensional (or empty) array_send, elements decoded like columns; None for anything
    else (several dimensions, odd lengths): the twin decides then, with its own errors."""
    cdef int32_t ndim, size, length, i
    cdef Py_ssize_t pos = 20
    cdef list items = []
    if n < 12:
        return None
    ndim = <int32_t>_be32(p)
    if ndim == 0:
        return items if n == 12 else None
    if ndim != 1 or n < 20:
        return None
    size = <int32_t>_be32(p + 12)
    if size < 0 or size > n:
        return None
    for i in range(size):
        if pos + 4 > n:
            return None
        length = <int32_t>_be32(p + pos)
        pos += 4
        if length == -1:
            items.append(None)
            continue
        if length < 0 or length > n - pos:
            return None
        items.append(_binary_value(element, p + pos, length))
        pos += length
    if pos != n:
        return None
    return items



cdef bytes _copy_unescaped(const unsigned char* p, Py_ssize_t n):
    """A COPY text field with its backslash escapes undone (as the twin's `copy_unescape`)."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t i = 0, size = 0, k
    cdef unsigned char c
    cdef int value, digit
    while i < n:
        c = p[i]
        i += 1
        if c != 92 or i >= n:
            o[size] = c
            size += 1
            continue
        c = p[i]
        i += 1
        if 48 <= c <= 55:  # up to three octal digits
            value = c - 48
            k = 1
            while k < 3 and i < n and 48 <= p[i] <= 55:
                value = value * 8 + p[i] - 48
                i += 1
                k += 1
            c = value & 0xFF
        elif c == 120 and i < n and _hexval(p[i]) >= 0:  # x and one or two hex digits
            value = _hexval(p[i])
            i += 1
            if i < n and _hexval(p[i]) >= 0:
                value = value * 16 + _hexval(p[i])
                i += 1
            c = value
        elif c == 98:
            c = 8
        elif c == 102:
            c = 12
        elif c == 110:
            c = 10
        elif c == 114:
            c = 13
        elif c == 116:
            c = 9
        elif c == 118:
            c = 11
        o[size] = c
        size += 1
    return out[:size]


# -- relations and the decoder ----------------------------------------------------------------------

@cython.final
cdef class _Relation:
    """A cached relation: its public RelationInfo plus what the tuple loop needs."""

    cdef object info
    cdef tuple names
    cdef bytes codecs
    cdef Py_ssize_t ncols

    def __cinit__(self, info, codecs):
        self.info = info
        self.names = tuple([_intern(column[1]) for column in info.columns])
        self.ncols = len(self.names)
        self.codecs = bytes(codecs)


cdef dict _interned = {}


cdef object _intern(object name):
    """One str object per column name, so row dicts share their keys' hashes."""
    cdef PyObject* found = PyDict_GetItem(_interned, name)
    if found != NULL:
        return <object>found
    if len(_interned) < 100000:
        _interned[name] = name
    return name


@cython.final
cdef class PgoutputDecoder:
    """Decodes the pgoutput messages of one replication stream; keeps the Relation cache."""

    cdef readonly bint binary
    cdef dict _relations
    cdef dict _type_codecs
    cdef bint _streaming
    # the message being decoded
    cdef bytes _data
    cdef const unsigned char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _pos
    cdef object _lsn

    def __init__(self, *, binary=False):
        self.binary = bool(binary)
        self._relations = {}
        self._type_codecs = {}
        self._streaming = False

    # -- public API ------------------------------------------------------------------------------

    def set_type_codec(self, type_oid, codec):
        """Decode values of a non-built-in type with the named codec (see the twin)."""
        self._type_codecs[type_oid] = _codec_by_name(codec)
        for relid, relation in list(self._relations.items()):
            info = (<_Relation>relation).info
            if any(column[2] == type_oid for column in info.columns):
                self._relations[relid] = _Relation(info, self._codecs_for(info))

    def codec_of(self, type_oid):
        """The codec id used for a type: set_type_codec's, the built-in one, else types.OTHER."""
        codec = self._type_codecs.get(type_oid)
        if codec is None:
            codec = _codec_for_oid(type_oid)
        return C_OTHER if codec is None else codec

    def binary_capable(self, type_oid):
        """True when values of this type decode from pgoutput's binary format."""
        return _binary_capable(self.codec_of(type_oid))

    def relation(self, relid):
        """The cached RelationInfo for relid; KeyError when no Relation message named it yet."""
        return (<_Relation>self._relations[relid]).info

    def decode(self, data, lsn):
        """Decode one pgoutput message (an XLogData payload); `lsn` is the frame's WAL start."""
        cdef unsigned char tag
        cdef object result
        if type(data) is not bytes:
            data = bytes(data)
        self._data = data
        self._buf = <const unsigned char*>PyBytes_AS_STRING(data)
        self._len = PyBytes_GET_SIZE(data)
        self._lsn = lsn
        try:
            if self._len == 0:
                raise decode_error("empty message", lsn, 0)
            self._pos = 1
            tag = self._buf[0]
            if tag == b'I':
                result = self._insert()
            elif tag == b'U':
                result = self._update()
            elif tag == b'D':
                result = self._delete()
            elif tag == b'B':
                result = self._begin()
            elif tag == b'C':
                result = self._commit()
            elif tag == b'R':
                result = self._relation_message()
            elif tag == b'Y':
                result = self._type()
            elif tag == b'O':
                result = self._origin()
            elif tag == b'T':
                result = self._truncate()
            elif tag == b'M':
                result = self._message()
            elif tag == b'S':
                result = self._stream_start()
            elif tag == b'E':
                result = ("E",)
                self._streaming = False
            elif tag == b'c':
                result = self._stream_commit()
            elif tag == b'A':
                result = self._stream_abort()
            else:
                raise decode_error(f"unknown message type {chr(tag)!r}", lsn, 0)
            if self._pos != self._len and tag != b'A' and tag != b'M':
                raise self._error(f"{self._len - self._pos} unexpected bytes after a {chr(tag)!r} message", 0)
            return result
        finally:
            self._data = None
            self._buf = NULL

    def copy_rows(self, relid, data, lsn=0):
        """The rows of `COPY (SELECT <the relation's columns>) TO STDOUT` output (text format, `data`:
        whole lines) as dicts, each as an Insert of the same text values would decode it (see the twin)."""
        cdef _Relation relation = self._relation_of(relid)
        cdef const unsigned char* codecs = <const unsigned char*>PyBytes_AS_STRING(relation.codecs)
        cdef Py_ssize_t ncols = relation.ncols
        cdef bytes buf = data if type(data) is bytes else bytes(data)
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pos = 0, start, end, index, length
        cdef bint escaped
        cdef unsigned char stop
        cdef bytes scratch
        cdef const unsigned char* value_at
        cdef list rows = []
        cdef dict row
        cdef object value
        cdef int codec
        while pos < n:
            row = _PyDict_NewPresized(ncols)
            for index in range(ncols):
                start = pos
                escaped = False
                while pos < n and p[pos] != 9 and p[pos] != 10:
                    if p[pos] == 92:  # a backslash escapes the next byte
                        escaped = True
                        pos += 1
                    pos += 1
                if pos >= n:
                    raise decode_error("a COPY row runs past the end of the data", lsn, start)
                end = pos
                stop = p[pos]
                if (stop == 10) != (index == ncols - 1):
                    raise decode_error(f"a COPY row does not have the relation's {ncols} columns", lsn, start)
                pos += 1
                if end - start == 2 and p[start] == 92 and p[start + 1] == 78:  # \N
                    PyDict_SetItem(row, relation.names[index], None)
                    continue
                value_at = p + start
                length = end - start
                if escaped:
                    scratch = _copy_unescaped(p + start, length)
                    value_at = <const unsigned char*>PyBytes_AS_STRING(scratch)
                    length = PyBytes_GET_SIZE(scratch)
                codec = codecs[index]
                try:
                    if codec & C_ARRAY:
                        value = _text_array(codec & ~C_ARRAY, value_at, length)
                        if value is None:
                            value = _decode_text(codec, PyUnicode_DecodeUTF8(<const char*>value_at, length, NULL))
                    else:
                        value = _text_value(codec, value_at, length)
                except _VALUE_ERRORS as exc:
                    raw = PyBytes_FromStringAndSize(<const char*>value_at, min(length, 40))
                    raise decode_error(
                        f"column {relation.names[index]!r}: cannot decode {raw!r}: {exc}", lsn, start
                    ) from None
                PyDict_SetItem(row, relation.names[index], value)
            rows.append(row)
        return rows

    # -- reading -----------------------------------------------------------------------------------

    cdef object _error(self, str message, Py_ssize_t back):
        return decode_error(message, self._lsn, self._pos + back)

    cdef inline int _need(self, Py_ssize_t size) except -1:
        if size > self._len - self._pos:
            if size == 1:
                raise self._error("message truncated: 1 byte needed, 0 left", 0)
            raise self._error(f"message truncated: {size} bytes needed, {self._len - self._pos} left", 0)
        return 0

    cdef inline int _u8(self) except -1:
        self._need(1)
        self._pos += 1
        return self._buf[self._pos - 1]

    cdef inline int _i16(self) except? -32769:
        self._need(2)
        self._pos += 2
        return <int16_t>_be16(self._buf + self._pos - 2)

    cdef inline int64_t _i32(self) except? -0x7FFFFFFFFFFFFFF:
        self._need(4)
        self._pos += 4
        return <int32_t>_be32(self._buf + self._pos - 4)

    cdef inline int64_t _u32(self) except? -1:
        self._need(4)
        self._pos += 4
        return _be32(self._buf + self._pos - 4)

    cdef inline object _u64(self):
        self._need(8)
        self._pos += 8
        return PyLong_FromUnsignedLongLong(_be64(self._buf + self._pos - 8))

    cdef inline int64_t _i64(self) except? -0x7FFFFFFFFFFFFFF:
        self._need(8)
        self._pos += 8
        return <int64_t>_be64(self._buf + self._pos - 8)

    cdef object _cstring(self):
        cdef const unsigned char* end = <const unsigned char*>memchr(
            self._buf + self._pos, 0, self._len - self._pos)
        cdef Py_ssize_t start = self._pos
        if end == NULL:
            raise self._error("string without its terminating NUL", 0)
        self._pos = (end - self._buf) + 1
        try:
            return PyUnicode_DecodeUTF8(<const char*>self._buf + start, end - self._buf - start, NULL)
        except ValueError as exc:
            raise decode_error(f"string is not UTF-8: {exc}", self._lsn, start) from None

    cdef object _stream_xid(self):
        if self._streaming:
            return self._u32()
        return None

    # -- messages ----------------------------------------------------------------------------------

    cdef tuple _begin(self):
        final_lsn = self._u64()
        commit_ts = self._i64()
        xid = self._u32()
        return ("B", final_lsn, commit_ts + _PG_EPOCH_OFFSET, xid)

    cdef tuple _commit(self):
        flags = self._u8()
        commit_lsn = self._u64()
        end_lsn = self._u64()
        commit_ts = self._i64()
        return ("C", flags, commit_lsn, end_lsn, commit_ts + _PG_EPOCH_OFFSET)

    cdef tuple _origin(self):
        origin_lsn = self._u64()
        return ("O", origin_lsn, self._cstring())

    cdef tuple _codecs_for(self, info):
        return tuple([self.codec_of(column[2]) for column in info.columns])

    cdef tuple _relation_message(self):
        cdef int count, i
        self._stream_xid()
        relid = self._u32()
        namespace = self._cstring()
        name = self._cstring()
        replica_identity = chr(self._u8())
        count = self._i16()
        if count < 0:
            raise self._error(f"negative column count {count}", -2)
        columns = []
        for i in range(count):
            flags = self._u8()
            column_name = self._cstring()
            type_oid = self._u32()
            typmod = self._i32()
            columns.append((flags, column_name, type_oid, typmod))
        info = RelationInfo(relid, namespace, name, replica_identity, tuple(columns))
        previous = self._relations.get(relid)
        self._relations[relid] = _Relation(info, self._codecs_for(info))
        return ("R", info, previous is not None and (<_Relation>previous).info != info)

    cdef tuple _type(self):
        self._stream_xid()
        type_oid = self._u32()
        namespace = self._cstring()
        return ("Y", type_oid, namespace, self._cstring())

    cdef _Relation _relation_of(self, relid):
        cdef PyObject* found = PyDict_GetItem(self._relations, relid)
        if found == NULL:
            raise self._error(f"relation {relid} was not described by a Relation message", -4)
        return <_Relation>found

    cdef tuple _insert(self):
        xid = self._stream_xid()
        relid = self._u32()
        cdef _Relation relation = self._relation_of(relid)
        if self._u8() != 78:  # 'N'
            raise self._error("Insert without a new tuple ('N')", -1)
        return ("I", relid, xid, self._tuple(relation, relid))

    cdef tuple _update(self):
        cdef int kind
        xid = self._stream_xid()
        relid = self._u32()
        cdef _Relation relation = self._relation_of(relid)
        before = before_kind = None
        kind = self._u8()
        if kind == 75 or kind == 79:  # 'K', 'O'
            before_kind = chr(kind)
            before = self._tuple(relation, relid)
            kind = self._u8()
        if kind != 78:
            raise self._error(f"Update without a new tuple ('N'), got {kind!r}", -1)
        return ("U", relid, xid, before, before_kind, self._tuple(relation, relid))

    cdef tuple _delete(self):
        cdef int kind
        xid = self._stream_xid()
        relid = self._u32()
        cdef _Relation relation = self._relation_of(relid)
        kind = self._u8()
        if kind != 75 and kind != 79:
            raise self._error(f"Delete without an old tuple ('K' or 'O'), got {kind!r}", -1)
        return ("D", relid, xid, self._tuple(relation, relid), chr(kind))

    cdef tuple _truncate(self):
        cdef int64_t count, i
        xid = self._stream_xid()
        count = self._i32()
        options = self._u8()
        if count < 0 or count > (self._len - self._pos) // 4:
            raise self._error(f"relation count {count} does not fit the message", -5)
        relids = tuple([self._u32() for i in range(count)])
        return ("T", xid, options, relids)

    cdef tuple _message(self):
        cdef int64_t length
        cdef Py_ssize_t start
        xid = self._stream_xid()
        flags = self._u8()
        message_lsn = self._u64()
        prefix = self._cstring()
        length = self._i32()
        if length < 0 or length > self._len - self._pos:
            raise self._error(
                f"length {length} runs past the end of the message ({self._len - self._pos} bytes left)", 0)
        start = self._pos
        self._pos += length
        if self._pos != self._len:
            raise self._error(f"{self._len - self._pos} unexpected bytes after an 'M' message", 0)
        content = PyBytes_FromStringAndSize(<const char*>self._buf + start, length)
        return ("M", xid, bool(flags & 1), message_lsn, prefix, content)

    cdef tuple _stream_start(self):
        xid = self._u32()
        first_segment = self._u8()
        self._streaming = True
        return ("S", xid, first_segment == 1)

    cdef tuple _stream_commit(self):
        xid = self._u32()
        flags = self._u8()
        commit_lsn = self._u64()
        end_lsn = self._u64()
        commit_ts = self._i64()
        return ("c", xid, flags, commit_lsn, end_lsn, commit_ts + _PG_EPOCH_OFFSET)

    cdef tuple _stream_abort(self):
        xid = self._u32()
        subxid = self._u32()
        if self._len - self._pos == 0:
            return ("A", xid, subxid, None, None)
        if self._len - self._pos != 16:
            raise self._error(f"{self._len - self._pos} unexpected bytes after an 'A' message", 0)
        abort_lsn = self._u64()  # protocol v4 (streaming 'parallel')
        abort_ts = self._i64()
        return ("A", xid, subxid, abort_lsn, abort_ts + _PG_EPOCH_OFFSET)

    # -- tuples ------------------------------------------------------------------------------------

    cdef dict _tuple(self, _Relation relation, relid):
        cdef int count, index, kind, codec
        cdef int64_t length
        cdef Py_ssize_t start
        cdef const unsigned char* codecs = <const unsigned char*>PyBytes_AS_STRING(relation.codecs)
        cdef dict row = _PyDict_NewPresized(relation.ncols)
        cdef object value
        count = self._i16()
        if count != relation.ncols:
            raise self._error(f"tuple has {count} columns but relation {relid} has {relation.ncols}", -2)
        for index in range(count):
            kind = self._u8()
            if kind == 116 or kind == 98:  # 't', 'b'
                length = self._i32()
                if length < 0 or length > self._len - self._pos:
                    raise self._error(
                        f"length {length} runs past the end of the message ({self._len - self._pos} bytes left)", 0)
                start = self._pos
                self._pos += length
                codec = codecs[index]
                try:
                    if kind == 116:
                        if codec & C_ARRAY:
                            value = _text_array(codec & ~C_ARRAY, self._buf + start, length)
                            if value is None:
                                value = _decode_text(codec, PyUnicode_DecodeUTF8(
                                    <const char*>self._buf + start, length, NULL))
                        else:
                            value = _text_value(codec, self._buf + start, length)
                    elif codec & C_ARRAY:
                        value = _binary_array(codec & ~C_ARRAY, self._buf + start, length)
                        if value is None:
                            value = _decode_binary(codec, PyBytes_FromStringAndSize(
                                <const char*>self._buf + start, length))
                    else:
                        value = _binary_value(codec, self._buf + start, length)
                except _VALUE_ERRORS as exc:
                    raw = PyBytes_FromStringAndSize(<const char*>self._buf + start, min(length, 40))
                    raise decode_error(
                        f"column {relation.names[index]!r}: cannot decode {raw!r}: {exc}", self._lsn, start
                    ) from None
            elif kind == 110:  # 'n'
                value = None
            elif kind == 117:  # 'u'
                value = _UNAVAILABLE
            else:
                raise self._error(f"unknown tuple column kind {kind!r}", -1)
            PyDict_SetItem(row, relation.names[index], value)
        return row
