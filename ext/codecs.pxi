# cython: language_level=3
# Typed value codecs for the Cython decoders: `include "codecs.pxi"` and call the c_* functions.
#
# Each c_* function gives exactly what its twin in cdc/codecs.py gives (tests/test_codecs.py checks
# both on the same inputs). Text inputs are PostgreSQL's output (DateStyle ISO, TimeZone UTC,
# IntervalStyle iso_8601, bytea_output hex) as a pointer and length into the replication buffer, so
# a decoder can call them without making a Python string first. Inputs must be well formed.

cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport strtod
from libc.string cimport memcpy

cdef extern from "Python.h":
    object PyUnicode_FromStringAndSize(const char *u, Py_ssize_t size)
    object PyUnicode_New(Py_ssize_t size, unsigned int maxchar)
    void *PyUnicode_DATA(object o)

cdef int64_t C_USECS_PER_SEC = 1000000
cdef int64_t C_USECS_PER_MINUTE = 60000000
cdef int64_t C_USECS_PER_HOUR = 3600000000
cdef int64_t C_USECS_PER_DAY = 86400000000
cdef int64_t C_DATE_INFINITY = 2147483647
cdef int64_t C_DATE_MINUS_INFINITY = -2147483648
cdef int64_t C_TIMESTAMP_INFINITY = 9223372036854775807
cdef int64_t C_TIMESTAMP_MINUS_INFINITY = -9223372036854775807 - 1

cdef const char *C_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@cython.cdivision(True)
cdef inline int64_t c_floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


@cython.cdivision(True)
cdef inline int c_put_uint(char *buf, int pos, uint64_t value, int width) noexcept nogil:
    """Write `value` in decimal, zero-padded to `width` digits (at least one); return the new end."""
    cdef char tmp[24]
    cdef int n = 0
    cdef int i
    while value > 0 or n < width or n == 0:
        tmp[n] = <char>(48 + value % 10)
        value = value // 10
        n += 1
    for i in range(n):
        buf[pos + i] = tmp[n - 1 - i]
    return pos + n


@cython.cdivision(True)
cdef inline int c_put_year(char *buf, int pos, int64_t year) noexcept nogil:
    """Four digits for 0..9999, "+" and the digits above, "-" and four digits below (java.time)."""
    if 0 <= year <= 9999:
        return c_put_uint(buf, pos, <uint64_t>year, 4)
    if year > 9999:
        buf[pos] = b'+'
        return c_put_uint(buf, pos + 1, <uint64_t>year, 1)
    buf[pos] = b'-'
    return c_put_uint(buf, pos + 1, <uint64_t>(-year), 4)


@cython.cdivision(True)
cdef inline void c_civil_from_days(int64_t days, int64_t *year, int *month, int *day) noexcept nogil:
    cdef int64_t z = days + 719468
    cdef int64_t era = c_floordiv(z, 146097)
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    day[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    month[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    year[0] = yoe + era * 400 + (1 if month[0] <= 2 else 0)


@cython.cdivision(True)
cdef inline int64_t c_days_from_civil(int64_t year, int64_t month, int64_t day) noexcept nogil:
    if month <= 2:
        year -= 1
    cdef int64_t era = c_floordiv(year, 400)
    cdef int64_t yoe = year - era * 400
    cdef int64_t doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@cython.cdivision(True)
cdef inline int c_put_date(char *buf, int pos, int64_t days) noexcept nogil:
    cdef int64_t year
    cdef int month, day
    c_civil_from_days(days, &year, &month, &day)
    pos = c_put_year(buf, pos, year)
    buf[pos] = b'-'
    pos = c_put_uint(buf, pos + 1, month, 2)
    buf[pos] = b'-'
    return c_put_uint(buf, pos + 1, day, 2)


@cython.cdivision(True)
cdef inline int c_put_clock(char *buf, int pos, uint64_t micros) noexcept nogil:
    """HH:MM:SS[.ffffff] of a non-negative microsecond count (hours may exceed 24)."""
    cdef uint64_t fraction = micros % 1000000
    cdef uint64_t seconds = micros // 1000000
    pos = c_put_uint(buf, pos, seconds // 3600, 2)
    buf[pos] = b':'
    pos = c_put_uint(buf, pos + 1, (seconds // 60) % 60, 2)
    buf[pos] = b':'
    pos = c_put_uint(buf, pos + 1, seconds % 60, 2)
    if fraction:
        buf[pos] = b'.'
        pos = c_put_uint(buf, pos + 1, fraction, 6)
    return pos


@cython.cdivision(True)
cdef inline str c_ascii(const char *buf, Py_ssize_t size):
    return <str>PyUnicode_FromStringAndSize(buf, size)


# --- plain values ---

@cython.cdivision(True)
cdef inline str c_encode_bytes(const unsigned char *data, Py_ssize_t size):
    """Base64 (standard alphabet, padded) of `size` bytes."""
    cdef Py_ssize_t out_size = ((size + 2) // 3) * 4
    cdef object result = PyUnicode_New(out_size, 127)
    cdef unsigned char *out = <unsigned char *>PyUnicode_DATA(result)
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int triple
    while i + 2 < size:
        triple = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        out[o] = C_BASE64[(triple >> 18) & 63]
        out[o + 1] = C_BASE64[(triple >> 12) & 63]
        out[o + 2] = C_BASE64[(triple >> 6) & 63]
        out[o + 3] = C_BASE64[triple & 63]
        i += 3
        o += 4
    if size - i == 1:
        triple = data[i] << 16
        out[o] = C_BASE64[(triple >> 18) & 63]
        out[o + 1] = C_BASE64[(triple >> 12) & 63]
        out[o + 2] = b'='
        out[o + 3] = b'='
    elif size - i == 2:
        triple = (data[i] << 16) | (data[i + 1] << 8)
        out[o] = C_BASE64[(triple >> 18) & 63]
        out[o + 1] = C_BASE64[(triple >> 12) & 63]
        out[o + 2] = C_BASE64[(triple >> 6) & 63]
        out[o + 3] = b'='
    return <str>result


@cython.cdivision(True)
cdef inline object c_encode_double(double value):
    """A double as a JSON number; NaN and infinities as strings."""
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == float("-inf"):
        return "-Infinity"
    return value


@cython.cdivision(True)
cdef inline object c_encode_float4(float value):
    """A single-precision float as the shortest double that reads back as the same float."""
    cdef double target = value
    cdef char text[40]
    cdef int digits
    cdef double candidate
    if target != target or target == float("inf") or target == float("-inf"):
        return c_encode_double(target)
    for digits in range(1, 10):
        snprintf(text, sizeof(text), b"%.*g", digits, target)
        candidate = strtod(text, NULL)
        if <float>candidate == value:
            return candidate
    return target


@cython.cdivision(True)
cdef inline str c_encode_date(int64_t days):
    """Days since 1970-01-01 to "2024-02-29"; PG's sentinels to "infinity"/"-infinity"."""
    cdef char buf[32]
    if days == C_DATE_INFINITY:
        return "infinity"
    if days == C_DATE_MINUS_INFINITY:
        return "-infinity"
    return c_ascii(buf, c_put_date(buf, 0, days))


@cython.cdivision(True)
cdef inline object c_encode_date_ymd(int64_t year, int month, int day):
    """A date from stored fields (MySQL); the zero date is None."""
    cdef char buf[32]
    cdef int pos
    if year == 0 and month == 0 and day == 0:
        return None
    pos = c_put_year(buf, 0, year)
    buf[pos] = b'-'
    pos = c_put_uint(buf, pos + 1, month, 2)
    buf[pos] = b'-'
    pos = c_put_uint(buf, pos + 1, day, 2)
    return c_ascii(buf, pos)


@cython.cdivision(True)
cdef inline str c_encode_time(int64_t micros):
    """Signed microseconds to "13:45:00.123456", "-838:59:59"."""
    cdef char buf[40]
    if micros < 0:
        buf[0] = b'-'
        return c_ascii(buf, c_put_clock(buf, 1, <uint64_t>(-micros)))
    return c_ascii(buf, c_put_clock(buf, 0, <uint64_t>micros))


@cython.cdivision(True)
cdef inline int c_put_datetime(char *buf, int pos, int64_t days, int64_t micros) noexcept nogil:
    """Date and clock of `days` since the epoch plus `micros` (any sign, normalised into the day)."""
    cdef int64_t carry = c_floordiv(micros, C_USECS_PER_DAY)
    pos = c_put_date(buf, pos, days + carry)
    buf[pos] = b'T'
    return c_put_clock(buf, pos + 1, <uint64_t>(micros - carry * C_USECS_PER_DAY))


@cython.cdivision(True)
cdef inline int c_put_timestamp(char *buf, int pos, int64_t epoch_micros) noexcept nogil:
    return c_put_datetime(buf, pos, 0, epoch_micros)


@cython.cdivision(True)
cdef inline str c_encode_datetime(int64_t days, int64_t micros, bint utc):
    """Like c_encode_timestamp(tz) for `days` since 1970-01-01 plus `micros`, without int64 overflow.

    For PG's binary timestamps (microseconds since 2000-01-01) past year 292277:
    `c_encode_datetime(10957, pg_micros, utc)`; infinities must be checked by the caller.
    """
    cdef char buf[48]
    cdef int pos = c_put_datetime(buf, 0, days, micros)
    if utc:
        buf[pos] = b'Z'
        pos += 1
    return c_ascii(buf, pos)


@cython.cdivision(True)
cdef inline str c_encode_timestamp(int64_t epoch_micros):
    """Epoch microseconds to "2024-02-29T13:45:00.123456" (no zone)."""
    cdef char buf[48]
    if epoch_micros == C_TIMESTAMP_INFINITY:
        return "infinity"
    if epoch_micros == C_TIMESTAMP_MINUS_INFINITY:
        return "-infinity"
    return c_ascii(buf, c_put_timestamp(buf, 0, epoch_micros))


@cython.cdivision(True)
cdef inline str c_encode_timestamptz(int64_t epoch_micros):
    """Epoch microseconds to UTC "2024-02-29T12:45:00.123456Z"."""
    cdef char buf[48]
    cdef int pos
    if epoch_micros == C_TIMESTAMP_INFINITY:
        return "infinity"
    if epoch_micros == C_TIMESTAMP_MINUS_INFINITY:
        return "-infinity"
    pos = c_put_timestamp(buf, 0, epoch_micros)
    buf[pos] = b'Z'
    return c_ascii(buf, pos + 1)


@cython.cdivision(True)
cdef inline object c_encode_timestamp_parts(int64_t year, int month, int day, int hour, int minute,
                                            int second, int micros):
    """A timestamp from stored fields (MySQL DATETIME); the zero date is None."""
    cdef char buf[48]
    cdef int pos
    if year == 0 and month == 0 and day == 0:
        return None
    pos = c_put_year(buf, 0, year)
    buf[pos] = b'-'
    pos = c_put_uint(buf, pos + 1, month, 2)
    buf[pos] = b'-'
    pos = c_put_uint(buf, pos + 1, day, 2)
    buf[pos] = b'T'
    pos = c_put_clock(buf, pos + 1,
                      <uint64_t>(((<int64_t>hour * 60 + minute) * 60 + second) * C_USECS_PER_SEC + micros))
    return c_ascii(buf, pos)


@cython.cdivision(True)
cdef inline int c_put_signed(char *buf, int pos, int64_t value) noexcept nogil:
    if value < 0:
        buf[pos] = b'-'
        return c_put_uint(buf, pos + 1, <uint64_t>(-value), 1)
    return c_put_uint(buf, pos, <uint64_t>value, 1)


@cython.cdivision(True)
cdef inline str c_encode_interval(int64_t months, int64_t days, int64_t micros):
    """PG's iso_8601 IntervalStyle output of (months, days, microseconds)."""
    cdef char buf[96]
    cdef int pos = 1
    cdef int64_t sign, years, month, hours, minutes, seconds, fraction
    cdef uint64_t rest
    cdef int end
    if months == 0 and days == 0 and micros == 0:
        return "PT0S"
    if months == 2147483647 and days == 2147483647 and micros == C_TIMESTAMP_INFINITY:
        return "infinity"
    if months == -2147483648 and days == -2147483648 and micros == C_TIMESTAMP_MINUS_INFINITY:
        return "-infinity"
    buf[0] = b'P'
    if months:
        sign = -1 if months < 0 else 1
        years = (months * sign) // 12
        month = (months * sign) % 12
        if years:
            pos = c_put_signed(buf, pos, years * sign)
            buf[pos] = b'Y'
            pos += 1
        if month:
            pos = c_put_signed(buf, pos, month * sign)
            buf[pos] = b'M'
            pos += 1
    if days:
        pos = c_put_signed(buf, pos, days)
        buf[pos] = b'D'
        pos += 1
    if micros:
        sign = -1 if micros < 0 else 1
        rest = <uint64_t>(micros * sign) if micros != C_TIMESTAMP_MINUS_INFINITY else <uint64_t>micros
        hours = rest // <uint64_t>C_USECS_PER_HOUR
        rest = rest % <uint64_t>C_USECS_PER_HOUR
        minutes = rest // <uint64_t>C_USECS_PER_MINUTE
        rest = rest % <uint64_t>C_USECS_PER_MINUTE
        seconds = rest // <uint64_t>C_USECS_PER_SEC
        fraction = rest % <uint64_t>C_USECS_PER_SEC
        buf[pos] = b'T'
        pos += 1
        if hours:
            pos = c_put_signed(buf, pos, hours * sign)
            buf[pos] = b'H'
            pos += 1
        if minutes:
            pos = c_put_signed(buf, pos, minutes * sign)
            buf[pos] = b'M'
            pos += 1
        if seconds or fraction:
            if sign < 0:
                buf[pos] = b'-'
                pos += 1
            pos = c_put_uint(buf, pos, <uint64_t>seconds, 1)
            if fraction:
                buf[pos] = b'.'
                end = c_put_uint(buf, pos + 1, <uint64_t>fraction, 6)
                while buf[end - 1] == b'0':
                    end -= 1
                pos = end
            buf[pos] = b'S'
            pos += 1
    return c_ascii(buf, pos)


@cython.cdivision(True)
cdef inline str c_encode_bits_uint(uint64_t value, int length):
    """Up to 64 bits held as an unsigned integer as `length` characters of "0"/"1"."""
    cdef char buf[64]
    cdef int i
    for i in range(length):
        buf[length - 1 - i] = b'1' if (value >> i) & 1 else b'0'
    return c_ascii(buf, length)


# --- PostgreSQL text output to readable forms ---

@cython.cdivision(True)
cdef inline int c_parse_uint(const char *p, Py_ssize_t start, Py_ssize_t end, int64_t *out) noexcept nogil:
    cdef int64_t value = 0
    cdef Py_ssize_t i
    for i in range(start, end):
        value = value * 10 + (p[i] - 48)
    out[0] = value
    return 0


@cython.cdivision(True)
cdef inline Py_ssize_t c_copy(char *buf, Py_ssize_t pos, const char *p, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    memcpy(buf + pos, p + start, end - start)
    return pos + end - start


@cython.cdivision(True)
cdef inline Py_ssize_t c_put_pg_date(char *buf, Py_ssize_t pos, const char *p, Py_ssize_t n, bint bc) noexcept nogil:
    """Rewrite PG's "YYYY-MM-DD" (year of any width, BC flag) with our year form."""
    cdef Py_ssize_t dash = 0
    cdef int64_t year
    while p[dash] != b'-':
        dash += 1
    c_parse_uint(p, 0, dash, &year)
    if bc:
        year = 1 - year
    pos = c_put_year(buf, <int>pos, year)
    return c_copy(buf, pos, p, dash, n)


@cython.cdivision(True)
cdef inline Py_ssize_t c_put_pg_clock(char *buf, Py_ssize_t pos, const char *p, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Copy "HH:MM:SS[.f]" padding the fraction to six digits."""
    cdef Py_ssize_t i, dot = -1
    for i in range(start, end):
        if p[i] == b'.':
            dot = i
            break
    pos = c_copy(buf, pos, p, start, end)
    if dot >= 0:
        for i in range(6 - (end - dot - 1)):
            buf[pos] = b'0'
            pos += 1
    return pos


@cython.cdivision(True)
cdef inline bint c_ends_bc(const char *p, Py_ssize_t n) noexcept nogil:
    return n >= 3 and p[n - 3] == b' ' and p[n - 2] == b'B' and p[n - 1] == b'C'


@cython.cdivision(True)
cdef inline str c_pg_date_to_iso(const char *p, Py_ssize_t n):
    """PG date text to the readable form."""
    cdef char buf[48]
    if n == 10 or p[n - 1] == b'y':
        return c_ascii(p, n)
    if c_ends_bc(p, n):
        return c_ascii(buf, c_put_pg_date(buf, 0, p, n - 3, True))
    return c_ascii(buf, c_put_pg_date(buf, 0, p, n, False))


@cython.cdivision(True)
cdef inline str c_pg_time_to_iso(const char *p, Py_ssize_t n):
    """PG time text to the readable form (fraction padded to six digits)."""
    cdef char buf[48]
    if n > 32:
        raise ValueError("not a PostgreSQL time")
    return c_ascii(buf, c_put_pg_clock(buf, 0, p, 0, n))


@cython.cdivision(True)
cdef inline Py_ssize_t c_find_offset(const char *p, Py_ssize_t start, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = n - 1
    while i > start and p[i] != b'+' and p[i] != b'-':
        i -= 1
    return i


@cython.cdivision(True)
cdef inline int64_t c_offset_seconds(const char *p, Py_ssize_t cut, Py_ssize_t n) noexcept nogil:
    cdef int64_t total = 0, part = 0
    cdef int64_t scale = 3600
    cdef Py_ssize_t i
    for i in range(cut + 1, n):
        if p[i] == b':':
            total += scale * part
            scale = scale // 60
            part = 0
        else:
            part = part * 10 + (p[i] - 48)
    total += scale * part
    return -total if p[cut] == b'-' else total


@cython.cdivision(True)
cdef inline int64_t c_clock_micros(const char *p, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef int64_t fields[3]
    cdef int64_t fraction = 0
    cdef int index = 0, digits = 0
    cdef Py_ssize_t i
    cdef bint in_fraction = False
    fields[0] = fields[1] = fields[2] = 0
    for i in range(start, end):
        if p[i] == b':':
            index += 1
        elif p[i] == b'.':
            in_fraction = True
        elif in_fraction:
            if digits < 6:
                fraction = fraction * 10 + (p[i] - 48)
                digits += 1
        else:
            fields[index] = fields[index] * 10 + (p[i] - 48)
    while in_fraction and digits < 6:
        fraction *= 10
        digits += 1
    return ((fields[0] * 60 + fields[1]) * 60 + fields[2]) * C_USECS_PER_SEC + fraction


@cython.cdivision(True)
cdef inline str c_pg_timetz_to_iso(const char *p, Py_ssize_t n):
    """PG timetz text to UTC "HH:MM:SS[.ffffff]Z"."""
    cdef char buf[48]
    cdef Py_ssize_t cut = c_find_offset(p, 0, n)
    cdef int64_t micros = c_clock_micros(p, 0, cut) - c_offset_seconds(p, cut, n) * C_USECS_PER_SEC
    micros = micros - c_floordiv(micros, C_USECS_PER_DAY) * C_USECS_PER_DAY
    cdef int pos = c_put_clock(buf, 0, <uint64_t>micros)
    buf[pos] = b'Z'
    return c_ascii(buf, pos + 1)


@cython.cdivision(True)
cdef inline str c_pg_timestamp_to_iso(const char *p, Py_ssize_t n):
    """PG timestamp text to "2024-02-29T13:45:00.120000"."""
    cdef char buf[64]
    cdef Py_ssize_t pos, space
    cdef bint bc
    if n > 48:
        raise ValueError("not a PostgreSQL timestamp")
    if (n == 19 or n == 26) and p[4] == b'-' and p[n - 1] != b'C':
        memcpy(buf, p, n)
        buf[10] = b'T'
        return c_ascii(buf, n)
    if p[n - 1] == b'y':
        return c_ascii(p, n)
    bc = c_ends_bc(p, n)
    if bc:
        n -= 3
    space = 0
    while p[space] != b' ':
        space += 1
    pos = c_put_pg_date(buf, 0, p, space, bc)
    buf[pos] = b'T'
    pos = c_put_pg_clock(buf, pos + 1, p, space + 1, n)
    return c_ascii(buf, pos)


@cython.cdivision(True)
cdef inline str c_pg_timestamptz_to_iso(const char *p, Py_ssize_t n):
    """PG timestamptz text to UTC "2024-02-29T12:45:00.123456Z"."""
    cdef char buf[64]
    cdef Py_ssize_t pos, space, cut, dash1, dash2
    cdef int64_t offset, year, month, day, micros
    cdef bint bc
    if n > 56:
        raise ValueError("not a PostgreSQL timestamptz")
    if ((n == 22 or n == 29) and p[4] == b'-' and p[n - 3] == b'+' and p[n - 2] == b'0'
            and p[n - 1] == b'0'):
        memcpy(buf, p, n - 3)
        buf[10] = b'T'
        buf[n - 3] = b'Z'
        return c_ascii(buf, n - 2)
    if p[n - 1] == b'y':
        return c_ascii(p, n)
    bc = c_ends_bc(p, n)
    if bc:
        n -= 3
    space = 0
    while p[space] != b' ':
        space += 1
    cut = c_find_offset(p, space + 1, n)
    offset = c_offset_seconds(p, cut, n)
    if offset == 0:
        pos = c_put_pg_date(buf, 0, p, space, bc)
        buf[pos] = b'T'
        pos = c_put_pg_clock(buf, pos + 1, p, space + 1, cut)
        buf[pos] = b'Z'
        return c_ascii(buf, pos + 1)
    dash1 = 0
    while p[dash1] != b'-':
        dash1 += 1
    dash2 = dash1 + 1
    while p[dash2] != b'-':
        dash2 += 1
    c_parse_uint(p, 0, dash1, &year)
    c_parse_uint(p, dash1 + 1, dash2, &month)
    c_parse_uint(p, dash2 + 1, space, &day)
    if bc:
        year = 1 - year
    micros = c_clock_micros(p, space + 1, cut) - offset * C_USECS_PER_SEC
    return c_encode_datetime(c_days_from_civil(year, month, day), micros, True)


@cython.cdivision(True)
cdef inline int c_hex_value(char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@cython.cdivision(True)
cdef inline str c_pg_bytea_to_base64(const char *p, Py_ssize_t n):
    """PG bytea text (hex "\\x0102", or the escape format) to base64."""
    cdef bytearray raw
    cdef unsigned char *out
    cdef Py_ssize_t i, size = 0
    cdef int high, low
    if n >= 2 and p[0] == b'\\' and p[1] == b'x':
        raw = bytearray((n - 2) // 2)
        out = raw
        i = 2
        while i + 1 < n:
            high = c_hex_value(p[i])
            low = c_hex_value(p[i + 1])
            if high < 0 or low < 0:
                raise ValueError("bytea hex text has a non-hex digit")
            out[size] = <unsigned char>((high << 4) | low)
            size += 1
            i += 2
        return c_encode_bytes(out, size)
    raw = bytearray(n)
    out = raw
    i = 0
    while i < n:
        if p[i] != b'\\':
            out[size] = <unsigned char>p[i]
            i += 1
        elif i + 1 < n and p[i + 1] == b'\\':
            out[size] = 0x5C
            i += 2
        else:
            out[size] = <unsigned char>(((p[i + 1] - 48) << 6) | ((p[i + 2] - 48) << 3) | (p[i + 3] - 48))
            i += 4
        size += 1
    return c_encode_bytes(out, size)
