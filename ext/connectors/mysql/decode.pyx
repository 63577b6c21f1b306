# cython: language_level=3
"""Binlog ROWS events -> row dicts in the readable JSON forms (compiled; twin: connectors.mysql.decode).

Gives exactly what the twin gives, from the same column plan and body. `rows_json` gives the same rows
already serialised, for the capture's hot path: each row image as the bytes `orjson.dumps` writes for
its dict, and the envelope's key JSON, written straight from the body for integers, DECIMAL, DATE,
DATETIME and printable ASCII text (no Python object per value, no dict per row) and through the value
otherwise (ext/include/json_writer.pxi, shared with the envelope). The build disables
boundscheck, so every length read from the wire is checked here against the end of the body before
a byte is read; a short or corrupted body raises cdc.errors.DecodeError naming position and offset.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8, PyUnicode_DecodeASCII
from libc.stdio cimport snprintf
from libc.stdlib cimport strtod
from libc.math cimport isnan, isinf, nextafterf, INFINITY

from cdc.compat import geometry_value
from cdc.errors import DecodeError

IMPLEMENTATION = "cython"

# Codec ids: the same numbers as connectors.mysql.column_plans C_* (which connectors.mysql.decode imports).
cdef enum:
    C_INT8 = 1
    C_UINT8 = 2
    C_INT16 = 3
    C_UINT16 = 4
    C_INT24 = 5
    C_UINT24 = 6
    C_INT32 = 7
    C_UINT32 = 8
    C_INT64 = 9
    C_UINT64 = 10
    C_FLOAT = 11
    C_DOUBLE = 12
    C_DECIMAL = 13
    C_YEAR = 14
    C_DATE = 15
    C_DATETIME2 = 16
    C_DATETIME = 17
    C_TIMESTAMP2 = 18
    C_TIMESTAMP = 19
    C_TIME2 = 20
    C_TIME = 21
    C_BIT = 22
    C_TEXT = 23
    C_BYTES = 24
    C_ENUM = 25
    C_SET = 26
    C_GEOMETRY = 27
    C_JSON = 28
    C_NULL = 29
    TEXT_UTF8 = 1

cdef int[10] DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
cdef long long[10] POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000]

include "json_writer.pxi"
include "civil.pxi"
include "base64.pxi"

cdef class RowPlan:
    """The per-column codecs of one TABLE_MAP as C arrays."""

    cdef readonly int count
    cdef readonly tuple columns
    cdef int* codecs
    cdef int* a
    cdef int* b
    cdef list names
    cdef list whats  # "column 'name'" per column, for error messages (built once, not per value)
    cdef list extras
    cdef list json_names  # '"name":' per column, as orjson writes a dict key

    def __cinit__(self):
        self.codecs = NULL
        self.a = NULL
        self.b = NULL

    def __dealloc__(self):
        free(self.codecs)
        free(self.a)
        free(self.b)


def check_plan(tuple columns):
    """ValueError when a column plan's parameters are out of the ranges the decoders read safely."""
    for name, codec, a, b, extra in columns:
        if not C_INT8 <= codec <= C_NULL:
            raise ValueError(f"column {name!r}: unknown codec {codec}")
        if codec == C_DECIMAL and not (0 <= b <= 30 and b <= a <= 65):
            raise ValueError(f"column {name!r}: DECIMAL({a},{b}) is out of range")
        if codec in (C_DATETIME2, C_TIMESTAMP2, C_TIME2) and not 0 <= a <= 6:
            raise ValueError(f"column {name!r}: fractional digits {a} out of range")
        if codec == C_BIT and not 0 <= a <= 64:
            raise ValueError(f"column {name!r}: BIT({a}) is out of range")
        if codec in (C_TEXT, C_BYTES, C_GEOMETRY, C_JSON) and not 1 <= a <= 4:
            raise ValueError(f"column {name!r}: length prefix of {a} bytes is out of range")
        if codec in (C_ENUM, C_SET) and not 1 <= a <= (2 if codec == C_ENUM else 8):
            raise ValueError(f"column {name!r}: pack length {a} is out of range")
        if codec == C_SET and extra is not None and len(extra) > 64:
            raise ValueError(f"column {name!r}: a SET has at most 64 members, not {len(extra)}")
        if codec == C_TEXT and b != TEXT_UTF8 and not isinstance(extra, str):
            raise ValueError(f"column {name!r}: text codec needs a Python codec name")
        if codec == C_JSON and not callable(extra):
            raise ValueError(f"column {name!r}: JSON codec needs a decoder")
        if codec == C_BYTES and not 0 <= b <= 0xFFFF:
            raise ValueError(f"column {name!r}: padding {b} is out of range")


def compile_plan(columns):
    """Prepare a TABLE_MAP's `(name, codec, a, b, extra)` column plan for `decode_rows`."""
    cdef tuple cols = tuple(tuple(column) for column in columns)
    check_plan(cols)
    cdef RowPlan plan = RowPlan()
    cdef int n = len(cols)
    cdef int i
    plan.count = n
    plan.columns = cols
    plan.codecs = <int*>malloc(sizeof(int) * (n + 1))
    plan.a = <int*>malloc(sizeof(int) * (n + 1))
    plan.b = <int*>malloc(sizeof(int) * (n + 1))
    if plan.codecs == NULL or plan.a == NULL or plan.b == NULL:
        raise MemoryError()
    plan.names = []
    plan.whats = []
    plan.extras = []
    plan.json_names = []
    for i in range(n):
        name, codec, a, b, extra = cols[i]
        plan.codecs[i] = codec
        plan.a[i] = a
        plan.b[i] = b
        plan.names.append(name)
        plan.whats.append(_what(name))
        plan.extras.append(extra)
        plan.json_names.append(orjson.dumps(name) + b":")
    return plan


cdef class _Body:
    cdef const unsigned char* data
    cdef Py_ssize_t offset
    cdef Py_ssize_t end
    cdef object position

    cdef object error(self, str message, Py_ssize_t offset):
        where = f"byte {offset}" if self.position is None else f"{self.position} byte {offset}"
        return DecodeError(f"rows event: {message}", position=where)

    cdef inline int need(self, Py_ssize_t size, what) except -1:
        if size > self.end - self.offset:
            raise self.error(f"{what} needs {size} bytes, {self.end - self.offset} left", self.offset)
        return 0

    cdef inline unsigned long long uint_le(self, int size, what) except? 0xFFFFFFFFFFFFFFFF:
        self.need(size, what)
        cdef unsigned long long value = 0
        cdef int i
        for i in range(size - 1, -1, -1):
            value = (value << 8) | self.data[self.offset + i]
        self.offset += size
        return value

    cdef inline unsigned long long uint_be(self, int size, what) except? 0xFFFFFFFFFFFFFFFF:
        self.need(size, what)
        cdef unsigned long long value = 0
        cdef int i
        for i in range(size):
            value = (value << 8) | self.data[self.offset + i]
        self.offset += size
        return value

    cdef unsigned long long lenenc(self, what) except? 0xFFFFFFFFFFFFFFFF:
        cdef unsigned long long first = self.uint_le(1, what)
        if first < 251:
            return first
        if first == 252:
            return self.uint_le(2, what)
        if first == 253:
            return self.uint_le(3, what)
        if first == 254:
            return self.uint_le(8, what)
        raise self.error(f"{what} has an invalid length-encoded integer", self.offset - 1)


cdef inline str _what(str name):
    return f"column {name!r}"


cdef object _float4(float value):
    cdef char buf[48]
    cdef double candidate
    cdef int digits
    if isnan(value):
        return "NaN"
    if isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    # a candidate exactly halfway to a neighbour reads back only by round-half-even: refused, as in
    # cdc.codecs.encode_float4 (PostgreSQL's float4 output refuses it too)
    cdef float below = nextafterf(value, -INFINITY)
    cdef float above = nextafterf(value, INFINITY)
    cdef double low_half = (<double>value + <double>below) / 2 if not isinf(below) else <double>value
    cdef double high_half = (<double>value + <double>above) / 2 if not isinf(above) else <double>value
    for digits in range(1, 10):
        snprintf(buf, sizeof(buf), "%.*g", digits, <double>value)
        candidate = strtod(buf, NULL)
        if <float>candidate == value and (candidate != low_half or isinf(below)) \
                and (candidate != high_half or isinf(above)):
            return candidate
    return <double>value


cdef object _float8(double value):
    if isnan(value):
        return "NaN"
    if isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


cdef inline Py_ssize_t _padded(char* out, unsigned long long value, int width) noexcept nogil:
    """`width` decimal digits of `value`, zero-padded (the caller knows value < 10**width): snprintf's
    "%0*llu" without its cost."""
    cdef int i
    for i in range(width - 1, -1, -1):
        out[i] = <char>(48 + value % 10)
        value //= 10
    return width


cdef Py_ssize_t _date_time(char* buf, Py_ssize_t size, long long year, long long month, long long day,
                           long long hour, long long minute, long long second, bint with_time):
    """`YYYY-MM-DD` (+ `THH:MM:SS`) as "%04lld-%02lld-%02lld..." writes it, fast when every field fits."""
    if 0 <= year <= 9999 and 0 <= month <= 99 and 0 <= day <= 99 and 0 <= hour <= 99 and 0 <= minute <= 99 \
            and 0 <= second <= 99:
        _padded(buf, year, 4)
        buf[4] = 45
        _padded(buf + 5, month, 2)
        buf[7] = 45
        _padded(buf + 8, day, 2)
        if not with_time:
            return 10
        buf[10] = 84  # 'T'
        _padded(buf + 11, hour, 2)
        buf[13] = 58
        _padded(buf + 14, minute, 2)
        buf[16] = 58
        _padded(buf + 17, second, 2)
        return 19
    if not with_time:
        return snprintf(buf, size, "%04lld-%02lld-%02lld", year, month, day)
    return snprintf(buf, size, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", year, month, day, hour, minute, second)


cdef inline Py_ssize_t _fraction(char* buf, Py_ssize_t size, long long usec, int fsp):
    if fsp == 0:
        return 0
    cdef long long digits = usec // POW10[6 - fsp]
    if not 0 <= digits < POW10[fsp]:  # an invalid fraction: printed whole, as the twin does
        return snprintf(buf, size, ".%0*lld", fsp, digits)
    buf[0] = 46  # '.'
    return 1 + _padded(buf + 1, <unsigned long long>digits, fsp)


cdef long long _read_fraction(_Body body, int fsp, what) except? -1:
    if fsp == 0:
        return 0
    cdef int size = (fsp + 1) // 2
    cdef long long value = <long long>body.uint_be(size, what)
    if size == 1:
        return value * 10000
    if size == 2:
        return value * 100
    return value


cdef object _timestamp_text(long long seconds, long long usec, int fsp):
    cdef char buf[64]
    cdef long long days = _floordiv(seconds, 86400)
    cdef long long rest = seconds - days * 86400
    cdef int64_t year
    cdef int month, day
    _civil_from_days(days, &year, &month, &day)
    cdef Py_ssize_t n = _date_time(buf, 64, year, month, day, rest // 3600, (rest // 60) % 60, rest % 60, True)
    n += _fraction(buf + n, 64 - n, usec, fsp)
    buf[n] = 90  # 'Z'
    return PyUnicode_DecodeASCII(buf, n + 1, NULL)


cdef object _decimal_text(_Body body, int precision, int scale, what):
    """A DECIMAL's exact text, scale kept ("-12.50")."""
    cdef char text[132]
    cdef Py_ssize_t n = _decimal_chars(body, precision, scale, what, text)
    return PyUnicode_DecodeASCII(text, n, NULL)


cdef Py_ssize_t _decimal_chars(_Body body, int precision, int scale, what, char* out) except -1:
    """`_decimal_text` into `out` (at least 132 bytes): its length."""
    cdef int intg = precision - scale
    cdef int intg0 = intg // 9, intg0x = intg % 9
    cdef int frac0 = scale // 9, frac0x = scale % 9
    cdef Py_ssize_t size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x]
    cdef Py_ssize_t start = body.offset
    body.need(size, what)
    cdef unsigned char raw[64]
    cdef char digits[128]
    cdef Py_ssize_t i, at = 0, n = 0, lead
    cdef bint negative
    cdef unsigned long long value
    cdef int g, nbytes
    if size == 0:
        out[0] = 48
        return 1
    memcpy(raw, body.data + start, size)
    body.offset += size
    negative = not (raw[0] & 0x80)
    raw[0] ^= 0x80
    if negative:
        for i in range(size):
            raw[i] ^= 0xFF
    digits[0] = 45  # '-'
    n = 1
    if intg0x:
        nbytes = DIG2BYTES[intg0x]
        value = 0
        for i in range(nbytes):
            value = (value << 8) | raw[at + i]
        at += nbytes
        if value >= <unsigned long long>POW10[intg0x]:
            raise body.error(f"{what} holds an invalid DECIMAL digit group", start)
        n += _padded(digits + n, value, intg0x)
    for g in range(intg0):
        value = (raw[at] << 24) | (raw[at + 1] << 16) | (raw[at + 2] << 8) | raw[at + 3]
        at += 4
        if value >= 1000000000:
            raise body.error(f"{what} holds an invalid DECIMAL digit group", start)
        n += _padded(digits + n, value, 9)
    lead = 1
    while lead < n and digits[lead] == 48:
        lead += 1
    if lead == n:
        digits[n] = 48
        n += 1
    if scale:
        digits[n] = 46  # '.'
        n += 1
        for g in range(frac0):
            value = (raw[at] << 24) | (raw[at + 1] << 16) | (raw[at + 2] << 8) | raw[at + 3]
            at += 4
            if value >= 1000000000:
                raise body.error(f"{what} holds an invalid DECIMAL digit group", start)
            n += _padded(digits + n, value, 9)
        if frac0x:
            nbytes = DIG2BYTES[frac0x]
            value = 0
            for i in range(nbytes):
                value = (value << 8) | raw[at + i]
            at += nbytes
            if value >= <unsigned long long>POW10[frac0x]:
                raise body.error(f"{what} holds an invalid DECIMAL digit group", start)
            n += _padded(digits + n, value, frac0x)
    if negative:
        digits[lead - 1] = 45
        lead -= 1
    memcpy(out, digits + lead, n - lead)
    return n - lead


cdef object _time2_text(_Body body, int fsp, what):
    cdef char buf[64]
    cdef long long intpart = <long long>body.uint_be(3, what) - 0x800000
    cdef long long frac, packed
    if fsp <= 0:
        packed = intpart * (1 << 24)
    elif fsp <= 2:
        frac = <long long>body.uint_le(1, what)
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x100
        packed = intpart * (1 << 24) + frac * 10000
    elif fsp <= 4:
        frac = <long long>body.uint_be(2, what)
        if intpart < 0 and frac:
            intpart += 1
            frac -= 0x10000
        packed = intpart * (1 << 24) + frac * 100
    else:
        frac = <long long>body.uint_be(3, what)
        packed = (((intpart + 0x800000) << 24) | frac) - 0x800000000000
    cdef bint negative = packed < 0
    if negative:
        packed = -packed
    cdef long long hms = packed >> 24
    cdef long long usec = packed & 0xFFFFFF
    cdef Py_ssize_t n = snprintf(buf, 64, "%s%02lld:%02lld:%02lld", b"-" if negative else b"",
                                 (hms >> 12) % 1024, (hms >> 6) % 64, hms % 64)
    n += _fraction(buf + n, 64 - n, usec, fsp)
    return PyUnicode_DecodeASCII(buf, n, NULL)


cdef Py_ssize_t _date_text(_Body body, what, char* buf) except -2:
    """A DATE as "YYYY-MM-DD" in `buf` (80 bytes): its length, or -1 for the zero date (null)."""
    cdef unsigned long long value = body.uint_le(3, what)
    if value == 0:
        return -1
    return _date_time(buf, 80, <long long>(value >> 9), (value >> 5) & 15, value & 31, 0, 0, 0, False)


cdef Py_ssize_t _datetime2_text(_Body body, int fsp, what, char* buf) except -2:
    """A DATETIME2 as "YYYY-MM-DDTHH:MM:SS[.ffffff]" in `buf` (80 bytes): its length, or -1 for the zero
    datetime (null)."""
    cdef Py_ssize_t start = body.offset
    cdef long long packed = <long long>body.uint_be(5, what) - 0x8000000000
    cdef long long usec = _read_fraction(body, fsp, what)
    cdef long long ymd, ym, hms
    cdef Py_ssize_t n
    if packed < 0:
        raise body.error(f"{what} holds an invalid DATETIME", start)
    if packed == 0 and usec == 0:
        return -1
    ymd = packed >> 17
    ym = ymd >> 5
    hms = packed & 0x1FFFF
    n = _date_time(buf, 80, ym // 13, ym % 13, ymd & 31, hms >> 12, (hms >> 6) & 63, hms & 63, True)
    return n + _fraction(buf + n, 80 - n, usec, fsp)


cdef object _read_value(_Body body, RowPlan plan, int index):
    cdef int codec = plan.codecs[index]
    cdef int a = plan.a[index]
    cdef int b = plan.b[index]
    cdef Py_ssize_t start = body.offset
    cdef unsigned long long value
    cdef long long packed, usec, ymd, ym, hms, sv
    cdef Py_ssize_t length, n
    cdef char buf[80]
    cdef const unsigned char* p
    cdef unsigned long srid
    cdef float f4
    cdef double f8
    cdef int i
    # Fast paths read straight from the buffer after one bounds check.
    if codec == C_INT32:
        if body.end - start >= 4:
            p = body.data + start
            body.offset = start + 4
            return <int>(<unsigned int>p[0] | (<unsigned int>p[1] << 8) | (<unsigned int>p[2] << 16) | (<unsigned int>p[3] << 24))
    elif codec == C_TEXT and b == TEXT_UTF8 and a == 1:
        if body.end - start >= 1:
            length = body.data[start]
            if length <= body.end - start - 1:
                body.offset = start + 1 + length
                try:
                    return PyUnicode_DecodeUTF8(<const char*>(body.data + start + 1), length, NULL)
                except UnicodeDecodeError:
                    raise body.error(f"{plan.whats[index]} is not valid utf-8", start) from None
    what = plan.whats[index]
    if codec <= C_UINT64:
        if codec <= C_UINT8:
            value = body.uint_le(1, what)
            return <signed char>value if codec == C_INT8 else value
        if codec <= C_UINT16:
            value = body.uint_le(2, what)
            return <short>value if codec == C_INT16 else value
        if codec <= C_UINT24:
            value = body.uint_le(3, what)
            if codec == C_INT24 and value & 0x800000:
                return <long long>value - 0x1000000
            return value
        if codec <= C_UINT32:
            value = body.uint_le(4, what)
            return <int>value if codec == C_INT32 else value
        value = body.uint_le(8, what)
        return <long long>value if codec == C_INT64 else value
    if codec == C_FLOAT:
        body.need(4, what)
        memcpy(&f4, body.data + start, 4)
        body.offset += 4
        return _float4(f4)
    if codec == C_DOUBLE:
        body.need(8, what)
        memcpy(&f8, body.data + start, 8)
        body.offset += 8
        return _float8(f8)
    if codec == C_DECIMAL:
        return _decimal_text(body, a, b, what)
    if codec == C_YEAR:
        value = body.uint_le(1, what)
        return 1900 + value if value else 0
    if codec == C_DATE:
        n = _date_text(body, what, buf)
        return None if n < 0 else PyUnicode_DecodeASCII(buf, n, NULL)
    if codec == C_DATETIME2:
        n = _datetime2_text(body, a, what, buf)
        return None if n < 0 else PyUnicode_DecodeASCII(buf, n, NULL)
    if codec == C_DATETIME:
        value = body.uint_le(8, what)
        if value == 0:
            return None
        ymd = <long long>(value // 1000000)
        hms = <long long>(value % 1000000)
        n = _date_time(buf, 80, ymd // 10000, ymd // 100 % 100, ymd % 100, hms // 10000, hms // 100 % 100, hms % 100,
                       True)
        return PyUnicode_DecodeASCII(buf, n, NULL)
    if codec == C_TIMESTAMP2:
        sv = <long long>body.uint_be(4, what)
        usec = _read_fraction(body, a, what)
        if sv == 0 and usec == 0:
            return None
        return _timestamp_text(sv, usec, a)
    if codec == C_TIMESTAMP:
        sv = <long long>body.uint_le(4, what)
        return None if sv == 0 else _timestamp_text(sv, 0, 0)
    if codec == C_TIME2:
        return _time2_text(body, a, what)
    if codec == C_TIME:
        sv = <long long>body.uint_le(3, what)
        if sv & 0x800000:
            sv -= 0x1000000
        n = snprintf(buf, 80, "%s%02lld:%02lld:%02lld", b"-" if sv < 0 else b"",
                     (-sv if sv < 0 else sv) // 10000, (-sv if sv < 0 else sv) // 100 % 100,
                     (-sv if sv < 0 else sv) % 100)
        return PyUnicode_DecodeASCII(buf, n, NULL)
    if codec == C_BIT:
        value = body.uint_be((a + 7) // 8, what)
        for i in range(a):
            buf[a - 1 - i] = 49 if (value >> i) & 1 else 48
        return PyUnicode_DecodeASCII(buf, a, NULL)
    if codec == C_TEXT or codec == C_BYTES or codec == C_GEOMETRY or codec == C_JSON:
        length = <Py_ssize_t>body.uint_le(a, what)
        body.need(length, what)
        p = body.data + body.offset
        body.offset += length
        if codec == C_TEXT:
            try:
                if b == TEXT_UTF8:
                    return PyUnicode_DecodeUTF8(<const char*>p, length, NULL)
                return PyBytes_FromStringAndSize(<const char*>p, length).decode(plan.extras[index])
            except UnicodeDecodeError:
                raise body.error(f"{what} is not valid {'utf-8' if b == TEXT_UTF8 else plan.extras[index]}",
                                 start) from None
        if codec == C_BYTES:
            if length < b:
                padded = PyBytes_FromStringAndSize(<const char*>p, length) + bytes(b - length)
                return _base64(<const unsigned char*><const char*>padded, b)
            return _base64(p, length)
        if codec == C_GEOMETRY:
            if length < 4:
                raise body.error(f"{what} holds a geometry shorter than its SRID", start)
            srid = <unsigned long>p[0] | (<unsigned long>p[1] << 8) | (<unsigned long>p[2] << 16) \
                | (<unsigned long>p[3] << 24)
            if srid:
                return geometry_value(_base64(p + 4, length - 4), srid)
            return _base64(p + 4, length - 4)
        if length == 0:
            return None
        try:
            return plan.extras[index](PyBytes_FromStringAndSize(<const char*>p, length))
        except DecodeError as exc:
            raise body.error(f"{what} holds {exc.message}", start) from None
    if codec == C_ENUM:
        value = body.uint_le(a, what)
        members = plan.extras[index]
        if members is None:
            return value
        if value == 0:
            return ""
        if value > <unsigned long long>len(members):
            raise body.error(f"{what} holds ENUM index {value} of {len(members)}", start)
        return members[value - 1]
    if codec == C_SET:
        value = body.uint_le(a, what)
        members = plan.extras[index]
        if members is None:
            return value
        n = len(members)
        if n < 64 and (value >> n) != 0:
            raise body.error(f"{what} holds SET bits beyond its {n} members", start)
        return ",".join([members[i] for i in range(n) if (value >> i) & 1])
    if codec == C_NULL:
        return None
    raise body.error(f"{what} has unknown codec {codec}", start)


cdef dict _read_row(_Body body, RowPlan plan, int* present, int present_count):
    body.need((present_count + 7) // 8, "null bitmap")
    cdef const unsigned char* nulls = body.data + body.offset
    body.offset += (present_count + 7) // 8
    cdef dict row = {}
    cdef int n, index
    for n in range(present_count):
        index = present[n]
        if (nulls[n >> 3] >> (n & 7)) & 1:
            row[plan.names[index]] = None
        else:
            row[plan.names[index]] = _read_value(body, plan, index)
    return row



cdef int _write_value(Writer* w, _Body body, RowPlan plan, int index) except -1:
    """The JSON of one column value, as `orjson.dumps(_read_value(...))` writes it: integers, dates,
    datetimes and printable ASCII text straight from the body, anything else through the value."""
    cdef int codec = plan.codecs[index]
    cdef Py_ssize_t start = body.offset
    cdef Py_ssize_t length, n
    cdef const unsigned char* p
    cdef char buf[80]
    cdef char text[132]
    cdef char digits[24]
    cdef unsigned long long value
    cdef int size, shift
    if C_INT8 <= codec <= C_UINT64:
        size = 1 if codec <= C_UINT8 else 2 if codec <= C_UINT16 else 3 if codec <= C_UINT24 else \
            4 if codec <= C_UINT32 else 8
        value = body.uint_le(size, plan.whats[index])
        if codec & 1:  # the signed codecs are the odd ones: sign-extend from `size` bytes
            shift = 64 - 8 * size
            return _put_int(w, (<long long>(value << shift)) >> shift)
        n = _digits(value, digits + 24)
        return _put(w, digits + 24 - n, n)
    if codec == C_DATE or codec == C_DATETIME2:
        n = _date_text(body, plan.whats[index], buf) if codec == C_DATE else \
            _datetime2_text(body, plan.a[index], plan.whats[index], buf)
        if n < 0:
            return _put(w, b"null", 4)
        _put(w, b'"', 1)
        _put(w, buf, n)
        return _put(w, b'"', 1)
    if codec == C_DECIMAL:
        n = _decimal_chars(body, plan.a[index], plan.b[index], plan.whats[index], text)
        _put(w, b'"', 1)
        _put(w, text, n)
        return _put(w, b'"', 1)
    if codec == C_TEXT and plan.b[index] == TEXT_UTF8:
        length = <Py_ssize_t>body.uint_le(plan.a[index], plan.whats[index])
        body.need(length, plan.whats[index])
        p = body.data + body.offset
        if _put_ascii_text(w, p, length):
            body.offset += length
            return 0
        body.offset = start  # not plain ASCII: decoded (and checked) as a str
    return _put_scalar(w, _read_value(body, plan, index))


cdef bytes _read_row_json(_Body body, RowPlan plan, int* present, int present_count, Py_ssize_t* spans):
    """One row image as `orjson.dumps(_read_row(...))` writes it; `spans[2*i]`, `spans[2*i+1]` get where
    column i's value starts and ends in it (left as they were for a column not in the image)."""
    body.need((present_count + 7) // 8, "null bitmap")
    cdef const unsigned char* nulls = body.data + body.offset
    body.offset += (present_count + 7) // 8
    cdef char stack[STACK_BYTES]
    cdef Writer w
    cdef int n, index
    _init(&w, stack)
    try:
        if present_count == 0:
            _put(&w, b"{}", 2)
            return _finish(&w)
        for n in range(present_count):
            index = present[n]
            _put(&w, b"{" if n == 0 else b",", 1)
            _put_bytes(&w, plan.json_names[index])
            spans[2 * index] = w.size
            if (nulls[n >> 3] >> (n & 7)) & 1:
                _put(&w, b"null", 4)
            else:
                _write_value(&w, body, plan, index)
            spans[2 * index + 1] = w.size
        _put(&w, b"}", 1)
        return _finish(&w)
    finally:
        _release(&w)


cdef object _key_json(bytes row, Py_ssize_t* spans, int* key_columns, tuple key_heads):
    """`encode_key(names, heads, row dict)` from a row's JSON and its value spans (an absent column: null)."""
    cdef char stack[STACK_BYTES]
    cdef Writer w
    cdef Py_ssize_t k, begin
    cdef int column
    cdef const char* data = PyBytes_AS_STRING(row)
    _init(&w, stack)
    try:
        for k in range(len(key_heads)):
            _put_bytes(&w, key_heads[k])
            column = key_columns[k]
            begin = spans[2 * column] if column >= 0 else -1
            if begin < 0:
                _put(&w, b"null", 4)
            else:
                _put(&w, data + begin, spans[2 * column + 1] - begin)
        _put(&w, b"}", 1)
        return _finish(&w)
    finally:
        _release(&w)


cdef int _present_columns(_Body body, int count, int* out) except -1:
    body.need((count + 7) // 8, "column bitmap")
    cdef const unsigned char* bitmap = body.data + body.offset
    body.offset += (count + 7) // 8
    cdef int i, n = 0
    for i in range(count):
        if (bitmap[i >> 3] >> (i & 7)) & 1:
            out[n] = i
            n += 1
    return n


def decode_rows(RowPlan plan, const unsigned char[:] body, int event_type, position=None):
    """Decode a ROWS event body: [(before, after), ...]; before is None for writes, after for deletes."""
    return _decode(plan, body, event_type, position, False, None, None)


def rows_json(RowPlan plan, const unsigned char[:] body, int event_type, tuple key_names, tuple key_heads,
              position=None):
    """`decode_rows` as JSON, for the envelope: [(before, after, before_key, after_key), ...], each row
    image the bytes `orjson.dumps` gives for its dict, each key the bytes `encode_key(key_names,
    key_heads, image)` gives (None for an absent image, and every key None without key columns)."""
    if key_names is None or key_heads is None or len(key_names) != len(key_heads):
        raise ValueError("key names and key heads are needed, one head per name")
    return _decode(plan, body, event_type, position, True, key_names, key_heads)


cdef list _decode(RowPlan plan, const unsigned char[:] body, int event_type, position, bint as_json,
                  tuple key_names, tuple key_heads):
    if event_type not in (23, 24, 25, 30, 31, 32):
        raise DecodeError(f"event type {event_type} is not a rows event", position=position)
    cdef _Body cursor = _Body()
    cursor.data = &body[0] if body.shape[0] > 0 else <const unsigned char*>b""
    cursor.offset = 0
    cursor.end = body.shape[0]
    cursor.position = position
    cdef unsigned long long extra_length, count
    cursor.need(8, "header")
    cursor.offset = 8
    if event_type >= 30:
        extra_length = cursor.uint_le(2, "header")
        if extra_length < 2:
            raise cursor.error(f"header has extra-data length {extra_length}", cursor.offset - 2)
        cursor.need(<Py_ssize_t>extra_length - 2, "header")
        cursor.offset += <Py_ssize_t>extra_length - 2
    count = cursor.lenenc("column count")
    if count != <unsigned long long>plan.count:
        raise cursor.error(f"column count {count} differs from its TABLE_MAP's {plan.count}", cursor.offset)
    cdef int key_count = len(key_names) if as_json else 0
    cdef int* present = <int*>malloc(sizeof(int) * (2 * count + 2 + key_count))
    cdef Py_ssize_t* spans = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * (2 * count + 2))
    if present == NULL or spans == NULL:
        free(present)
        free(spans)
        raise MemoryError()
    cdef int* present_after = present + count + 1
    cdef int* key_columns = present + 2 * count + 2
    cdef int n_present, n_after = 0, k
    cdef bint update = event_type == 24 or event_type == 31
    cdef bint delete = event_type == 25 or event_type == 32
    cdef list rows = []
    cdef object first, second, first_key, second_key
    cdef Py_ssize_t row_start
    try:
        for k in range(key_count):
            name = key_names[k]
            key_columns[k] = plan.names.index(name) if name in plan.names else -1
        n_present = _present_columns(cursor, <int>count, present)
        if update:
            n_after = _present_columns(cursor, <int>count, present_after)
        while cursor.offset < cursor.end:
            row_start = cursor.offset
            if n_present == 0 and (not update or n_after == 0):
                raise cursor.error("row data follows an empty column bitmap", row_start)
            if not as_json:
                first = _read_row(cursor, plan, present, n_present)
                if update:
                    rows.append((first, _read_row(cursor, plan, present_after, n_after)))
                elif delete:
                    rows.append((first, None))
                else:
                    rows.append((None, first))
                continue
            _clear_spans(spans, key_columns, key_count)
            first = _read_row_json(cursor, plan, present, n_present, spans)
            first_key = _key_json(first, spans, key_columns, key_heads) if key_count else None
            if update:
                _clear_spans(spans, key_columns, key_count)
                second = _read_row_json(cursor, plan, present_after, n_after, spans)
                second_key = _key_json(second, spans, key_columns, key_heads) if key_count else None
                rows.append((first, second, first_key, second_key))
            elif delete:
                rows.append((first, None, first_key, None))
            else:
                rows.append((None, first, None, first_key))
    finally:
        free(present)
        free(spans)
    return rows


cdef inline void _clear_spans(Py_ssize_t* spans, int* key_columns, int key_count) noexcept:
    cdef int k
    for k in range(key_count):
        if key_columns[k] >= 0:
            spans[2 * key_columns[k]] = -1
