# cython: language_level=3
"""Rows of a text-protocol result set -> row JSON (compiled; twin: connectors.mysql.text_rows).

Gives exactly what the twin gives: integers, dates, datetimes and printable ASCII text are written
straight from the packet (ext/include/json_writer.pxi), every other value through its converter.
The build disables boundscheck: every length read from the wire is checked against the end of its
packet before a byte is read.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memcmp

from cdc.errors import ConfigError, SourceError

include "json_writer.pxi"

IMPLEMENTATION = "cython"

K_OTHER, K_INT, K_TEXT, K_DATE, K_DATETIME, K_TIMESTAMP = 0, 1, 2, 3, 4, 5
cdef enum:
    _K_OTHER = 0
    _K_INT = 1
    _K_TEXT = 2
    _K_DATE = 3
    _K_DATETIME = 4
    _K_TIMESTAMP = 5


cdef int _malformed(str what) except -1:
    raise SourceError(f"a malformed row in the chunk's result set ({what})", fix="report this as a bug")



cdef inline bint _is_zero_date(const unsigned char* p, Py_ssize_t length) noexcept:
    return length >= 10 and memcmp(p, b"0000-00-00", 10) == 0


cdef int _write_value(Writer* w, int kind, const unsigned char* p, Py_ssize_t length, object convert) except -1:
    """One non-NULL value as `orjson.dumps(convert(value))` writes it."""
    cdef Py_ssize_t i, n
    cdef Py_ssize_t begin
    if kind == _K_INT and length > 0:
        i = 1 if p[0] == 45 else 0  # '-'
        n = i
        while n < length and 48 <= p[n] <= 57:
            n += 1
        if n == length and n > i:
            while i < length - 1 and p[i] == 48:  # ZEROFILL: int("007") is 7
                i += 1
            if p[0] == 45 and not (i == length - 1 and p[i] == 48):  # "-0" is 0
                _put(w, b"-", 1)
            return _put(w, <const char*>p + i, length - i)
    elif kind == _K_TEXT:
        if _put_ascii_text(w, p, length):
            return 0
        return _put_str(w, PyUnicode_DecodeUTF8(<const char*>p, length, NULL))
    elif kind == _K_DATE or kind == _K_DATETIME or kind == _K_TIMESTAMP:
        if _is_zero_date(p, length):
            return _put(w, b"null", 4)
        for i in range(length):
            if p[i] < 0x20 or p[i] >= 0x80 or p[i] == 34 or p[i] == 92:
                break
        else:
            _put(w, b'"', 1)
            begin = w.size
            _put(w, <const char*>p, length)
            if kind != _K_DATE:
                for i in range(length):
                    if p[i] == 32:
                        w.data[begin + i] = b'T'
                if kind == _K_TIMESTAMP:
                    _put(w, b"Z", 1)
            return _put(w, b'"', 1)
    return _put_scalar(w, convert(PyBytes_FromStringAndSize(<const char*>p, length)))


cdef inline Py_ssize_t _read_length(const unsigned char* data, Py_ssize_t* at, Py_ssize_t end) except -2:
    """A length-encoded integer at `at[0]` (moved past it); -1 for NULL."""
    cdef unsigned char first = data[at[0]]
    cdef int size, k
    cdef unsigned long long value = 0
    if first < 0xFB:
        at[0] += 1
        return first
    if first == 0xFB:
        at[0] += 1
        return -1
    size = 2 if first == 0xFC else 3 if first == 0xFD else 8 if first == 0xFE else 0
    if size == 0 or at[0] + 1 + size > end:
        _malformed("length")
    for k in range(size):
        value |= (<unsigned long long>data[at[0] + 1 + k]) << (8 * k)
    at[0] += 1 + size
    if value > <unsigned long long>end:
        _malformed("value length")
    return <Py_ssize_t>value


def rows_json(bytes data, Py_ssize_t start, tuple kinds, tuple converters, tuple names, tuple json_names,
              tuple key_columns, tuple key_heads):
    """See the twin (connectors.mysql.text_rows.rows_json)."""
    cdef const unsigned char* buf = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t at = start, body, end, offset, length, value_length
    cdef Py_ssize_t count = len(names)
    cdef Py_ssize_t key_count = len(key_columns)
    cdef Py_ssize_t column, k, begin
    cdef int* kind_of = NULL
    cdef Py_ssize_t* spans = NULL  # per column: where its value starts and ends in the row JSON
    cdef Py_ssize_t* raw = NULL  # per column: where its value starts in `data` (-1: NULL) and its length
    cdef int* keys = NULL
    cdef bint any_row = False
    cdef char stack[STACK_BYTES]
    cdef char key_stack[STACK_BYTES]
    cdef Writer w
    cdef Writer kw
    cdef list rows = []
    cdef bytes after, key
    cdef const char* row_data
    if len(kinds) != count or len(converters) != count \
            or len(json_names) != count or len(key_heads) != key_count:
        raise ValueError("one kind, converter, name and JSON name per column, one head per key column")
    kind_of = <int*>malloc(sizeof(int) * (count + 1))
    keys = <int*>malloc(sizeof(int) * (key_count + 1))
    spans = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * 2 * (count + 1))
    raw = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * 2 * (count + 1))
    if kind_of == NULL or keys == NULL or spans == NULL or raw == NULL:
        free(kind_of)
        free(keys)
        free(spans)
        free(raw)
        raise MemoryError()
    try:
        for column in range(count):
            kind_of[column] = kinds[column]
        for k in range(key_count):
            keys[k] = key_columns[k]
            if not 0 <= keys[k] < count:
                raise ValueError("a key column out of range")
        while at + 4 <= size:
            length = buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16)
            if at + 4 + length > size:
                break
            if length == 0xFFFFFF:
                raise ConfigError("a row of the chunk is over 16 MB: an incremental snapshot cannot read it",
                                  fix="snapshot this table with a new capture (--snapshot initial)")
            body = at + 4
            end = body + length
            at = end
            if length and buf[body] == 0xFE and length < 9:
                return rows, at, True, _last_key(buf, raw, keys, key_count, any_row)
            if length and buf[body] == 0xFF:
                message = data[body + 9:end].decode("utf-8", "replace") if length > 9 else "no message"
                raise SourceError(f"the chunk query failed: {message}")
            offset = body
            _init(&w, stack)
            try:
                for column in range(count):
                    if offset >= end:
                        raise SourceError("a row of the chunk's result set is shorter than its columns",
                                          fix="report this as a bug")
                    value_length = _read_length(buf, &offset, end)
                    _put(&w, b"{" if column == 0 else b",", 1)
                    _put_bytes(&w, json_names[column])
                    spans[2 * column] = w.size
                    if value_length < 0:
                        raw[2 * column] = -1
                        _put(&w, b"null", 4)
                    else:
                        if offset + value_length > end:
                            raise SourceError("a value of the chunk's result set runs past its row",
                                              fix="report this as a bug")
                        raw[2 * column] = offset
                        raw[2 * column + 1] = value_length
                        _write_value(&w, kind_of[column], buf + offset, value_length, converters[column])
                        offset += value_length
                    spans[2 * column + 1] = w.size
                if count == 0:
                    _put(&w, b"{", 1)
                _put(&w, b"}", 1)
                after = _finish(&w)
            finally:
                _release(&w)
            key = None
            if key_count:
                row_data = PyBytes_AS_STRING(after)
                _init(&kw, key_stack)
                try:
                    for k in range(key_count):
                        _put_bytes(&kw, key_heads[k])
                        begin = spans[2 * keys[k]]
                        _put(&kw, row_data + begin, spans[2 * keys[k] + 1] - begin)
                    _put(&kw, b"}", 1)
                    key = _finish(&kw)
                finally:
                    _release(&kw)
            rows.append((None, after, None, key))
            any_row = True
        return rows, at, False, _last_key(buf, raw, keys, key_count, any_row)
    finally:
        free(kind_of)
        free(keys)
        free(spans)
        free(raw)


cdef object _last_key(const unsigned char* buf, Py_ssize_t* raw, int* keys, Py_ssize_t key_count, bint any_row):
    """The raw key values of the last row read (None: no row)."""
    if not any_row:
        return None
    cdef list values = []
    cdef Py_ssize_t k
    for k in range(key_count):
        if raw[2 * keys[k]] < 0:
            values.append(None)
        else:
            values.append(PyBytes_FromStringAndSize(<const char*>buf + raw[2 * keys[k]], raw[2 * keys[k] + 1]))
    return tuple(values)
