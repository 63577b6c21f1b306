# cython: language_level=3
"""Compiled value codecs (`cdc._ext.codecs`): the fast twin of cdc/codecs.py, same names, same output.

This module is also the probe `cdc.impl` imports to learn that the extension is built. Cython
decoders should not call these Python-level wrappers per value: `include "codecs.pxi"` and call the
typed `c_*` functions directly.
"""

from decimal import Decimal

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t

include "codecs.pxi"

USECS_PER_SEC = 1_000_000
USECS_PER_MINUTE = 60 * USECS_PER_SEC
USECS_PER_HOUR = 60 * USECS_PER_MINUTE
USECS_PER_DAY = 24 * USECS_PER_HOUR
DATE_INFINITY = 2**31 - 1
DATE_MINUS_INFINITY = -(2**31)
TIMESTAMP_INFINITY = 2**63 - 1
TIMESTAMP_MINUS_INFINITY = -(2**63)


def days_from_civil(int64_t year, int64_t month, int64_t day):
    """Days since 1970-01-01 of an astronomical (year 0 = 1 BC) proleptic Gregorian date."""
    return c_days_from_civil(year, month, day)


def civil_from_days(int64_t days):
    """(year, month, day) of a day count since 1970-01-01; year is astronomical (0 = 1 BC)."""
    cdef int64_t year
    cdef int month, day
    c_civil_from_days(days, &year, &month, &day)
    return year, month, day


def encode_bytes(data):
    """Base64 (standard alphabet, padded) of binary data."""
    cdef const unsigned char[:] view = data
    if view.shape[0] == 0:
        return ""
    return c_encode_bytes(&view[0], view.shape[0])


def encode_float(value):
    """A double as a JSON number; NaN and infinities as "NaN", "Infinity", "-Infinity"."""
    cdef double x = value
    if x != x:
        return "NaN"
    if x == float("inf"):
        return "Infinity"
    if x == float("-inf"):
        return "-Infinity"
    return value


def encode_float4(double value):
    """A single-precision float (read as a double) as the shortest number that reads back equal."""
    if value != value or value == float("inf") or value == float("-inf"):
        return c_encode_double(value)
    return c_encode_float4(<float>value)


def encode_decimal(value):
    """An exact decimal string with its scale kept ("10.50"); "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value.is_signed() else "Infinity"
    return format(value, "f")


def encode_date(int64_t days):
    """A date given as days since 1970-01-01: "2024-02-29" (PG's sentinels: "infinity")."""
    return c_encode_date(days)


def encode_date_ymd(int64_t year, int month, int day):
    """A date from its fields as stored (MySQL); the zero date 0000-00-00 is None."""
    return c_encode_date_ymd(year, month, day)


def encode_time(int64_t micros):
    """A time of day or MySQL duration in microseconds: "13:45:00.123456", "-838:59:59"."""
    return c_encode_time(micros)


def encode_timestamp(int64_t epoch_micros):
    """A timestamp without zone in microseconds since 1970-01-01: "2024-02-29T13:45:00.123456"."""
    return c_encode_timestamp(epoch_micros)


def encode_timestamp_parts(int64_t year, int month, int day, int hour, int minute, int second, int micros=0):
    """A timestamp from its fields as stored (MySQL DATETIME); the zero date is None."""
    return c_encode_timestamp_parts(year, month, day, hour, minute, second, micros)


def encode_timestamptz(int64_t epoch_micros):
    """An instant in microseconds since the epoch, in UTC: "2024-02-29T12:45:00.123456Z"."""
    return c_encode_timestamptz(epoch_micros)


def encode_interval(int64_t months, int64_t days, int64_t micros):
    """An interval as PostgreSQL prints it with IntervalStyle iso_8601: "P1Y2M3DT4H5M6.7S", "PT0S"."""
    return c_encode_interval(months, days, micros)


def encode_bits(str bits):
    """A bit string already in text form ("0101", PG bit/varbit): returned as is."""
    return bits


def encode_bits_bytes(data, int length):
    """MySQL BIT(n) bytes (big-endian) as n characters of "0"/"1"."""
    cdef const unsigned char[:] view = data
    cdef uint64_t value = 0
    cdef Py_ssize_t i
    if length == 0:
        return ""
    if view.shape[0] > 8:
        return format(int.from_bytes(data, "big"), f"0{length}b")[-length:]
    for i in range(view.shape[0]):
        value = (value << 8) | view[i]
    if length > 64:
        return format(value, f"0{length}b")[-length:]
    return c_encode_bits_uint(value, length)


def encode_bits_int(value, int length):
    """A bit field held as an unsigned integer as `length` characters of "0"/"1"."""
    if length == 0:
        return ""
    if length > 64 or value < 0 or value >= 2**64:
        return format(value, f"0{length}b")[-length:]
    return c_encode_bits_uint(<uint64_t>value, length)


cdef inline const char *_utf8(str text, Py_ssize_t *size) except NULL:
    return PyUnicode_AsUTF8AndSize(text, size)


def pg_date_text_to_iso(str text):
    """PG date text ("2024-02-29", "0044-03-15 BC", "infinity") to the readable form."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_date_to_iso(p, n)


def pg_time_text_to_iso(str text):
    """PG time text ("13:45:00.12") to the readable form ("13:45:00.120000")."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_time_to_iso(p, n)


def pg_timetz_text_to_iso(str text):
    """PG timetz text ("13:45:00.12+02") to UTC with "Z" ("11:45:00.120000Z")."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_timetz_to_iso(p, n)


def pg_timestamp_text_to_iso(str text):
    """PG timestamp text ("2024-02-29 13:45:00.12") to "2024-02-29T13:45:00.120000"."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_timestamp_to_iso(p, n)


def pg_timestamptz_text_to_iso(str text):
    """PG timestamptz text ("2024-02-29 12:45:00.123456+00") to UTC "2024-02-29T12:45:00.123456Z"."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_timestamptz_to_iso(p, n)


def pg_bytea_hex_to_base64(str text):
    """PG bytea text ("\\x0102", or the old escape format) to base64 ("AQI=")."""
    cdef Py_ssize_t n
    cdef const char *p = _utf8(text, &n)
    return c_pg_bytea_to_base64(p, n)
