# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled envelope assembly (`cdc._ext.envelope`): the fast twin of the encoders in cdc/envelope/encoders.py.

Same functions, same bytes: cdc/envelope/encoders.py holds the readable twin (`encode_key`,
`encode_change_value`, `encode_row_value`, `encode_json`, `RowEncoder`) and is the specification.
Here the value is written into one buffer: dicts (rows, source and transaction blocks given as
dicts) go through `orjson.dumps` whole, which is faster at them than anything here; the pieces of a
`SourceTemplate`, the values spliced into it, the transaction block's parts, keys and the top-level
timestamps are written directly when they are simple (None, bool, an int that fits 64 bits, an ASCII
str without control characters) and through `orjson.dumps` otherwise, so the output is
byte-identical to `orjson.dumps` of the whole envelope dict. tests/test_envelope_fast.py holds the
two to that on random input.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_CheckExact, PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact, PyLong_FromVoidPtr
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_CheckExact
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

cdef extern from "time.h" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clock_id, timespec* tp)
    int CLOCK_REALTIME

import time as _time

import orjson

__all__ = ["encode_json", "encode_key", "encode_change_value", "encode_row_value", "RowEncoder"]

include "json_writer.pxi"

IMPLEMENTATION = "cython"  # which twin this is (cdc.impl.twin picks one)


cdef inline int _put_row(Writer* w, object row) except -1:
    """A row dict through orjson; a row already written as JSON (bytes, `rows_json`) as it is."""
    if row is None:
        return _put(w, b"null", 4)
    if PyBytes_CheckExact(row):
        return _put_bytes(w, row)
    return _put_bytes(w, _dumps(row))


cdef inline int _put_head(Writer* w, object before, object after) except -1:
    """`{"before":...,"after":...`: how every change value begins."""
    _put(w, b'{"before":', 10)
    _put_row(w, before)
    _put(w, b',"after":', 9)
    return _put_row(w, after)


cdef int _put_tail(Writer* w, object op, int64_t now) except -1:
    """`,"op":..,"ts_ms":..,"ts_us":..,"ts_ns":..}` with the top-level timestamps from `now` (ns)."""
    cdef char digits[24]
    cdef int pos
    _put(w, b',"op":', 6)
    _put_scalar(w, op)
    if now < 1000000:  # not a clock reading: Python's floor division, the slow way
        _put(w, b',"ts_ms":', 9)
        _put_int(w, now // 1000000 if now >= 0 else -((-now + 999999) // 1000000))
        _put(w, b',"ts_us":', 9)
        _put_int(w, now // 1000 if now >= 0 else -((-now + 999) // 1000))
        _put(w, b',"ts_ns":', 9)
        _put_int(w, now)
        return _put(w, b"}", 1)
    pos = 24 - _digits(<uint64_t>now, digits + 24)  # ts_ns once: ts_us and ts_ms are its prefixes
    _put(w, b',"ts_ms":', 9)
    _put(w, digits + pos, 24 - pos - 6)
    _put(w, b',"ts_us":', 9)
    _put(w, digits + pos, 24 - pos - 3)
    _put(w, b',"ts_ns":', 9)
    _put(w, digits + pos, 24 - pos)
    return _put(w, b"}", 1)


def encode_json(value) -> bytes:
    """`orjson.dumps(value)`, with simple scalars written directly."""
    cdef char stack[STACK_BYTES]
    cdef Writer w
    _init(&w, stack)
    try:
        _put_scalar(&w, value)
        return _finish(&w)
    finally:
        _release(&w)


def encode_key(tuple names, tuple heads, row) -> bytes:
    """`orjson.dumps({name: row.get(name) for name in names})`; `heads[i]` is `{"name":` / `,"name":`."""
    return _key(names, heads, row)


cdef bytes _key(tuple names, tuple heads, row):
    cdef char stack[STACK_BYTES]
    cdef Writer w
    cdef Py_ssize_t index, count
    cdef PyObject* item
    if names is None or heads is None:
        raise TypeError("key columns and heads are needed, not None")
    count = PyTuple_GET_SIZE(names)
    if PyTuple_GET_SIZE(heads) != count:
        raise ValueError(f"{count} key columns were given {PyTuple_GET_SIZE(heads)} heads")
    if count == 0 or not PyDict_CheckExact(row):
        return _dumps({name: row.get(name) for name in names})
    _init(&w, stack)
    try:
        for index in range(count):
            _put_bytes(&w, <object>PyTuple_GET_ITEM(heads, index))
            item = PyDict_GetItem(row, <object>PyTuple_GET_ITEM(names, index))
            if item == NULL:
                _put(&w, b"null", 4)
            else:
                _put_scalar(&w, <object>item)
        _put(&w, b"}", 1)
        return _finish(&w)
    finally:
        _release(&w)


def encode_change_value(op, before, after, source, transaction, int64_t now) -> bytes:
    """The envelope of one change with its source and transaction blocks as dicts (or None)."""
    return _change_value(op, before, after, source, transaction, now)


cdef bytes _change_value(op, before, after, source, transaction, int64_t now):
    cdef char stack[STACK_BYTES]
    cdef Writer w
    _init(&w, stack)
    try:
        _put_head(&w, before, after)
        _put(&w, b',"source":', 10)
        _put_bytes(&w, _dumps(source))
        _put(&w, b',"transaction":', 15)
        _put_scalar(&w, transaction)
        _put_tail(&w, op, now)
        return _finish(&w)
    finally:
        _release(&w)


def encode_row_value(op, before, after, source, tuple source_values, transaction_head,
                     total_order, data_collection_order, int64_t now) -> bytes:
    """The envelope of one row event from a `SourceTemplate` and the transaction block's parts.

    The source block is `source.pieces[0] + hole 0 + source.pieces[1] + ... + source.pieces[-1]`,
    hole i being the JSON of `source_values[i]` (kind `j`) or its text escaped as inside a JSON
    string (kind `s`); the transaction block `transaction_head + json(total_order) +
    ',"data_collection_order":' + json(data_collection_order) + '}'`, or null when
    `transaction_head` is None.
    """
    return _row_value(op, before, after, source.pieces, source.kinds, source_values, transaction_head, total_order,
                      data_collection_order, now)


cdef int _put_spliced(Writer* w, object value) except -1:
    """`f"{value}"` as it reads inside a JSON string: an int's digits here, anything else by orjson."""
    cdef int overflow
    cdef long long number
    cdef bytes text
    if PyLong_CheckExact(value):
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0:
            return _put_int(w, number)
    text = _dumps(f"{value}")
    return _put(w, PyBytes_AS_STRING(text) + 1, PyBytes_GET_SIZE(text) - 2)


cdef bytes _row_value(op, before, after, tuple source_pieces, bytes kinds, tuple source_values, transaction_head,
                      total_order, data_collection_order, int64_t now, bytes head=None):
    """`head` given: it stands for `{"before":...,"after":...` (before and after are then not read)."""
    cdef char stack[STACK_BYTES]
    cdef Writer w
    cdef Py_ssize_t index, count
    cdef const char* kind
    if source_pieces is None or kinds is None or source_values is None:
        raise TypeError("a source template's pieces and kinds and the source values are needed, not None")
    count = PyTuple_GET_SIZE(source_values)
    if PyTuple_GET_SIZE(source_pieces) != count + 1 or PyBytes_GET_SIZE(kinds) != count:
        raise ValueError(f"a source template of {PyTuple_GET_SIZE(source_pieces) - 1} fields "
                         f"was given {count} values")
    kind = PyBytes_AS_STRING(kinds)
    _init(&w, stack)
    try:
        if head is None:
            _put_head(&w, before, after)
        else:
            _put_bytes(&w, head)
        _put(&w, b',"source":', 10)
        for index in range(count):
            _put_bytes(&w, <object>PyTuple_GET_ITEM(source_pieces, index))
            if kind[index] == b"s":
                _put_spliced(&w, <object>PyTuple_GET_ITEM(source_values, index))
            else:
                _put_scalar(&w, <object>PyTuple_GET_ITEM(source_values, index))
        _put_bytes(&w, <object>PyTuple_GET_ITEM(source_pieces, count))
        _put(&w, b',"transaction":', 15)
        if transaction_head is None:
            _put(&w, b"null", 4)
        else:
            _put_bytes(&w, transaction_head)
            _put_scalar(&w, total_order)
            _put(&w, b',"data_collection_order":', 25)
            _put_scalar(&w, data_collection_order)
            _put(&w, b"}", 1)
        _put_tail(&w, op, now)
        return _finish(&w)
    finally:
        _release(&w)


def encode_row_head(before, after) -> bytes:
    """`{"before":...,"after":...`: how `encode_row_value` begins (the head `finish_row_value` completes)."""
    cdef char stack[STACK_BYTES]
    cdef Writer w
    _init(&w, stack)
    try:
        _put_head(&w, before, after)
        return _finish(&w)
    finally:
        _release(&w)


def finish_row_value(bytes head, op, source, tuple source_values, transaction_head, total_order,
                     data_collection_order, int64_t now) -> bytes:
    """`encode_row_value` of a row whose `{"before":...,"after":...` is `head` (see `Envelope.row_parts`)."""
    if head is None:
        raise TypeError("the head of a row value is needed, not None")
    return _row_value(op, None, None, source.pieces, source.kinds, source_values, transaction_head, total_order,
                      data_collection_order, now, head)


cdef inline int64_t _now_ns() except? -1:
    """time.time_ns() (both read CLOCK_REALTIME)."""
    cdef timespec now
    if clock_gettime(CLOCK_REALTIME, &now) != 0:
        return _time.time_ns()
    return <int64_t>now.tv_sec * 1000000000 + now.tv_nsec


cdef bint _key_changed(tuple columns, before, after) except -1:
    """True when `before` carries the key and it differs from `after`'s (cdc.envelope.table_plan._key_changed)."""
    if after is None:
        return False
    for name in columns:
        old = before.get(name)
        if old is not None and old != after.get(name):
            return True
    return False


cdef class RowEncoder:
    """`Envelope.row_records` and `Envelope.records` (see the twin in cdc/envelope/encoders.py).

    Reads the envelope's table plans (`_TablePlan.row`: table, topic, headers, key columns, key
    heads, row converter); primary-key changes, compat "debezium", messages and changes without a
    table go back to the envelope's readable `_records`.
    """

    cdef object envelope
    cdef dict plans
    cdef object clock
    cdef bint system_clock
    cdef object transaction_id
    cdef object transaction_head
    cdef tuple last_row  # the last table's plan row: a plan is a function of its table, so reuse it
    cdef object last_source  # the last SourceTemplate (immutable) and its pieces and kinds
    cdef tuple last_pieces
    cdef bytes last_kinds

    def __init__(self, envelope, clock):
        self.envelope = envelope
        self.plans = envelope._plans
        self.clock = clock
        self.system_clock = clock is _time.time_ns  # then read it here, without a Python call
        self.transaction_id = None
        self.transaction_head = None
        self.last_row = None
        self.last_source = None

    cdef tuple _row(self, table):
        """The table plan's `row` tuple (the plan made on first sight, as `Envelope._plan` does)."""
        cdef PyObject* found
        cdef tuple row = self.last_row
        if row is not None and row[0] is table:
            return row
        found = PyDict_GetItem(self.plans, PyLong_FromVoidPtr(<void*>table))
        if found != NULL:
            row = (<object>found).row
        if found == NULL or row[0] is not table:
            row = self.envelope._plan(table).row
        self.last_row = row
        return row

    def change_records(self, change):
        """`Envelope.records(change)`: the common cases here, the others by `Envelope._records`."""
        cdef tuple row
        cdef int64_t now
        table = change.table
        if table is None:
            return self.envelope._records(change)
        row = self._row(table)
        topic, headers, key_columns, key_heads, convert_row = row[1], row[2], row[3], row[4], row[5]
        op = change.op
        before = change.before
        after = change.after
        if convert_row is not None or (op == "u" and before is not None and key_columns
                                       and _key_changed(key_columns, before, after)):
            return self.envelope._records(change)
        now = _now_ns() if self.system_clock else self.clock()
        if op == "d":
            value = _change_value(op, before, None, change.source, change.transaction, now)
            if before is None or not key_columns:
                return [(topic, None, value, headers)]
            key = _key(key_columns, key_heads, before)
            return [(topic, key, value, headers), (topic, key, None, headers)]
        if op == "t":
            return [(topic, None, _change_value(op, None, None, change.source, change.transaction, now), headers)]
        value = _change_value(op, before, after, change.source, change.transaction, now)
        key = _key(key_columns, key_heads, after) if after is not None and key_columns else None
        return [(topic, key, value, headers)]

    def records_of_rows(self, table, op, rows, source, position, transaction_id, long long total,
                        long long collection_order):
        """`records(table, op, before, after, source, (position, n), transaction)` for the n-th
        `(before, after)` of `rows`, all in one list, the transaction block numbered on from `total`
        and `collection_order` (no block when `transaction_id` is None). Returns `(records, total,
        collection_order)`, or None when a row needs `records` itself (a primary-key change, a row
        converter)."""
        return self._records_of(table, op, rows, source, position, transaction_id, total, collection_order, False)

    def records_of_json_rows(self, table, op, rows, source, position, transaction_id, long long total,
                             long long collection_order):
        """`records_of_rows` of rows already in JSON: `(before, after, before_key, after_key)` as
        `rows_json` of the binlog decoder gives them. None also when an update's key JSON changed
        (the caller then decodes the rows as dicts, where `records` tells a real key change)."""
        return self._records_of(table, op, rows, source, position, transaction_id, total, collection_order, True)

    def records_of_json_reads(self, table, rows, source):
        """`r` records of rows already in JSON, `(None, after, None, after_key)` (an incremental
        snapshot's chunk): one source block for all (`source` has no variable field), no transaction
        block. None when the rows must be built as dicts (a row converter)."""
        many = self._records_of(table, "r", rows, source, None, None, 0, 0, True, True)
        return None if many is None else many[0]

    cdef object _records_of(self, table, op, rows, source, position, transaction_id, long long total,
                            long long collection_order, bint json_rows, bint one_source=False):
        cdef tuple row = self._row(table)
        cdef int64_t now
        cdef list items = rows if type(rows) is list else list(rows)
        cdef Py_ssize_t index, count = len(items)
        cdef list out = []
        cdef tuple item
        topic, headers, key_columns, key_heads, convert_row = row[1], row[2], row[3], row[4], row[5]
        if convert_row is not None or op == "t":
            return None
        if op == "u" and key_columns:
            for index in range(count):
                item = <tuple?>items[index]
                if json_rows:
                    if item[0] is not None and item[2] != item[3]:
                        return None
                elif item[0] is not None and _key_changed(key_columns, item[0], item[1]):
                    return None
        if source is not self.last_source:
            self.last_pieces = source.pieces
            self.last_kinds = source.kinds
            self.last_source = source
        pieces = self.last_pieces
        kinds = self.last_kinds
        head = None
        if transaction_id is not None:
            if self.transaction_head is None or transaction_id != self.transaction_id:
                self.transaction_head = b'{"id":' + _dumps(transaction_id) + b',"total_order":'
                self.transaction_id = transaction_id
            head = self.transaction_head
        for index in range(count):
            item = <tuple?>items[index]
            before, after = item[0], item[1]
            if head is not None:
                total += 1
                collection_order += 1
            now = _now_ns() if self.system_clock else self.clock()
            source_values = () if one_source else (position, index)
            if op == "d":
                value = _row_value(op, before, None, pieces, kinds, source_values, head,
                                   total if head is not None else None,
                                   collection_order if head is not None else None, now)
                if before is None or not key_columns:
                    out.append((topic, None, value, headers))
                else:
                    key = item[2] if json_rows else _key(key_columns, key_heads, before)
                    out.append((topic, key, value, headers))
                    out.append((topic, key, None, headers))
            else:
                value = _row_value(op, before, after, pieces, kinds, source_values, head,
                                   total if head is not None else None,
                                   collection_order if head is not None else None, now)
                if after is None or not key_columns:
                    key = None
                else:
                    key = item[3] if json_rows else _key(key_columns, key_heads, after)
                out.append((topic, key, value, headers))
        return out, total, collection_order

    def records(self, table, op, before, after, source, tuple source_values, transaction=None):
        """`Envelope.records` of the equivalent Change, without building it."""
        cdef tuple row = self._row(table)
        cdef int64_t now
        topic, headers, key_columns, key_heads, convert_row = row[1], row[2], row[3], row[4], row[5]
        if convert_row is not None or (op == "u" and before is not None and key_columns
                                       and _key_changed(key_columns, before, after)):
            envelope = self.envelope
            return envelope.records(envelope._change(table, op, before, after, source, source_values, transaction))
        if transaction is None:
            head = total_order = collection_order = None
        else:
            transaction_id, total_order, collection_order = transaction
            if self.transaction_head is None or transaction_id != self.transaction_id:
                self.transaction_head = b'{"id":' + _dumps(transaction_id) + b',"total_order":'
                self.transaction_id = transaction_id
            head = self.transaction_head
        now = _now_ns() if self.system_clock else self.clock()
        if source is not self.last_source:
            self.last_pieces = source.pieces
            self.last_kinds = source.kinds
            self.last_source = source
        pieces = self.last_pieces
        kinds = self.last_kinds
        if op == "d":
            value = _row_value(op, before, None, pieces, kinds, source_values, head, total_order, collection_order,
                               now)
            if before is None or not key_columns:
                return [(topic, None, value, headers)]
            key = _key(key_columns, key_heads, before)
            return [(topic, key, value, headers), (topic, key, None, headers)]
        if op == "t":
            before = after = None
        value = _row_value(op, before, after, pieces, kinds, source_values, head, total_order, collection_order, now)
        key = _key(key_columns, key_heads, after) if after is not None and key_columns else None
        return [(topic, key, value, headers)]
