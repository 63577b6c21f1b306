"""Rows of a text-protocol result set -> row JSON, read straight from the wire (pure twin; compiled: cdc._ext.text_rows).

An incremental snapshot's chunk SELECT answers in MySQL's text protocol: one packet per row, each
value a length-encoded string (0xFB for NULL), the result ended by an EOF packet. `rows_json` splits
the packets of a block of raw bytes and writes each row as the bytes `orjson.dumps` gives for the
dict the snapshot converters make of it (`connectors.mysql.snapshot.converter`), plus the envelope's
key JSON, the way the binlog decoder's `rows_json` serves the stream: no PyMySQL row objects, no
dict per row in the compiled twin. This module is the specification; ext/connectors/mysql/text_rows.pyx
gives the same bytes.

The compiled twin writes integers, dates, datetimes and printable ASCII text straight from the
packet, as the column's kind (`connectors.mysql.snapshot.text_kind`) says; every other value goes
through its converter. A row over 16 MB (split across packets) is refused with a ConfigError.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from cdc.errors import ConfigError, SourceError

IMPLEMENTATION = "python"

# Column kinds: how the compiled twin writes a value (the same numbers in text_rows.pyx).
K_OTHER, K_INT, K_TEXT, K_DATE, K_DATETIME, K_TIMESTAMP = 0, 1, 2, 3, 4, 5

_MAX_PAYLOAD = 0xFFFFFF


def _length(data: bytes, at: int, end: int) -> tuple[int, int]:
    """A length-encoded integer at `at`: (value, offset after it); -1 for NULL (0xFB)."""
    first = data[at]
    if first < 0xFB:
        return first, at + 1
    if first == 0xFB:
        return -1, at + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if size is None or at + 1 + size > end:
        raise SourceError("a malformed row in the chunk's result set", fix="report this as a bug")
    return int.from_bytes(data[at + 1:at + 1 + size], "little"), at + 1 + size


def rows_json(data: bytes, start: int, kinds: tuple[int, ...], converters: tuple[Callable[[Any], Any], ...],
              names: tuple[str, ...], json_names: tuple[bytes, ...], key_columns: tuple[int, ...],
              key_heads: tuple[bytes, ...]) -> tuple[list[tuple[None, bytes, None, bytes | None]], int, bool,
                                                       tuple[bytes, ...] | None]:
    """The complete row packets of `data` from `start`: `(rows, offset, finished, last key)`.

    `rows` as `json_rows_records` takes them, `(None, row JSON, None, key JSON)`; `offset` where the
    first incomplete packet begins (the caller appends the next bytes from there); `finished` once
    the EOF packet was read; `last key` the raw values of `key_columns` in the last row (None: no row).
    An error packet raises SourceError with the server's message.
    """
    rows: list[tuple[None, bytes, None, bytes | None]] = []
    last_key = None
    size = len(data)
    at = start
    count = len(names)
    while at + 4 <= size:
        length = data[at] | data[at + 1] << 8 | data[at + 2] << 16
        if at + 4 + length > size:
            break
        if length == _MAX_PAYLOAD:
            raise ConfigError("a row of the chunk is over 16 MB: an incremental snapshot cannot read it",
                              fix="snapshot this table with a new capture (--snapshot initial)")
        body, end = at + 4, at + 4 + length
        at = end
        head = data[body] if length else 0
        if head == 0xFE and length < 9:
            return rows, at, True, last_key
        if head == 0xFF:
            message = data[body + 9:end].decode("utf-8", "replace") if length > 9 else "no message"
            raise SourceError(f"the chunk query failed: {message}")
        raw: list[bytes | None] = []
        offset = body
        for _ in range(count):
            if offset >= end:
                raise SourceError("a row of the chunk's result set is shorter than its columns",
                                  fix="report this as a bug")
            value_length, offset = _length(data, offset, end)
            if value_length < 0:
                raw.append(None)
                continue
            if offset + value_length > end:
                raise SourceError("a value of the chunk's result set runs past its row", fix="report this as a bug")
            raw.append(data[offset:offset + value_length])
            offset += value_length
        row = {name: (None if value is None else convert(value)) for name, value, convert in zip(names, raw, converters)}
        after = orjson.dumps(row)
        key = orjson.dumps({names[column]: row[names[column]] for column in key_columns}) if key_columns else None
        rows.append((None, after, None, key))
        last_key = tuple(raw[column] for column in key_columns)
    return rows, at, False, last_key
