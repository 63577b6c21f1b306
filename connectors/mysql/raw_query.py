"""A SELECT's rows read straight from the connection's socket as row JSON, past PyMySQL's row objects.

PyMySQL parses every row packet in Python (about 10 µs a row of 8 columns: the larger part of an
incremental snapshot chunk's time). Here PyMySQL sends the query and reads the column definitions;
the row packets are then read in blocks of 256 KB from its socket and turned into row JSON by the
`text_rows` twins. The result set is read to its end (or the connection closed) before returning, so
the connection stays usable for the next command, as after `cursor.fetchall()`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import orjson
import pymysql
from pymysql.constants import COMMAND

from cdc.errors import SourceError
from cdc.impl import twin
from connectors.mysql import text_rows as pure_text_rows

TEXT_ROWS = twin("connectors.mysql.text_rows")

BLOCK_BYTES = 256 * 1024
MAX_PAYLOAD = 0xFFFFFF  # a packet this long continues in the next one (a row over 16 MB)


def select_rows_json(conn, sql: str, kinds: tuple[int, ...], converters: tuple[Callable[[Any], Any], ...],
                     names: tuple[str, ...], json_names: tuple[bytes, ...], key_columns: tuple[int, ...],
                     key_heads: tuple[bytes, ...], text_rows=TEXT_ROWS) -> tuple[list[tuple[None, bytes, None, bytes | None]],
                                                              tuple[bytes | None, ...] | None]:
    """Run `sql` (parameters already in) on `conn`: its rows as `text_rows.rows_json` gives them, and
    the raw key values of the last row (None: no row), all read (`iter_rows_json`'s blocks joined).
    Server errors raise PyMySQL's exceptions. `text_rows`: the twin to use (the tests hold both to the
    same output)."""
    rows: list[tuple[None, bytes, None, bytes | None]] = []
    last_key = None
    for got, key in iter_rows_json(conn, sql, kinds, converters, names, json_names, key_columns, key_heads,
                                   text_rows):
        rows += got
        if key is not None:
            last_key = key
    return rows, last_key


def iter_rows_json(conn, sql: str, kinds: tuple[int, ...], converters: tuple[Callable[[Any], Any], ...],
                   names: tuple[str, ...], json_names: tuple[bytes, ...], key_columns: tuple[int, ...],
                   key_heads: tuple[bytes, ...], text_rows=TEXT_ROWS
                   ) -> Iterator[tuple[list[tuple[None, bytes, None, bytes | None]], tuple[bytes | None, ...] | None]]:
    """Run `sql` on `conn` and yield its rows as `text_rows.rows_json` gives them, a block at a time:
    `(rows, raw key values of the block's last row)` per block read (an initial snapshot's chunk need
    not sit in memory whole). A row over 16 MB
    (split across packets) is put together and written here, as the pure twin writes a row. Closing
    the generator before its end closes the connection (the rest of the result set is unread)."""
    conn._execute_command(COMMAND.COM_QUERY, sql)
    first = conn._read_packet()  # an error packet raises here
    if first.is_ok_packet():
        return
    columns = first.read_length_encoded_integer()
    if columns != len(names):
        conn._force_close()
        raise SourceError(f"the query answered {columns} columns, not {len(names)}",
                          fix="report this as a bug")
    for _ in range(columns):
        conn._read_packet()
    conn._read_packet()  # the EOF after the column definitions
    pending = b""
    read = conn._rfile.read1
    rows_json = text_rows.rows_json
    finished = False
    try:
        while True:
            while len(pending) >= 4 and _packet_length(pending) == MAX_PAYLOAD:
                row, key, pending = _large_row(pending, conn, converters, names, key_columns)
                yield [row], key
            wanted = BLOCK_BYTES
            if len(pending) >= 4:  # a long row's packet in one read
                wanted = max(BLOCK_BYTES, 4 + _packet_length(pending) - len(pending))
            block = _read_some(read, wanted)
            data = pending + block if pending else block
            got, offset, finished, key = rows_json(data, 0, kinds, converters, names, json_names, key_columns,
                                                   key_heads)
            if got:
                yield got, key
            if finished:
                if offset != len(data):
                    raise SourceError("bytes after the end of the result set", fix="report this as a bug")
                return
            pending = data[offset:]
    finally:
        if not finished:
            conn._force_close()  # the rest of the result set is unread: the connection cannot be used again


def _read_some(read: Callable[[int], bytes], wanted: int) -> bytes:
    """Up to `wanted` bytes from the socket, at least one; all of them past BLOCK_BYTES (a long packet's rest)."""
    block = read(wanted)
    if not block:
        raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    if wanted > BLOCK_BYTES and len(block) < wanted:
        block += _read_all(read, wanted - len(block))
    return block


def _packet_length(data: bytes) -> int:
    return data[0] | data[1] << 8 | data[2] << 16


def _exactly(pending: bytes, read: Callable[[int], bytes], size: int) -> tuple[bytes, bytes]:
    """`size` bytes from `pending` then the socket: (those bytes, what is left of `pending`)."""
    if len(pending) >= size:
        return pending[:size], pending[size:]
    return pending + _read_all(read, size - len(pending)), b""


def _read_all(read: Callable[[int], bytes], size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        more = read(size - got)
        if not more:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _large_row(pending: bytes, conn, converters: tuple[Callable[[Any], Any], ...], names: tuple[str, ...],
               key_columns: tuple[int, ...]) -> tuple[tuple[None, bytes, None, bytes | None],
                                                      tuple[bytes | None, ...], bytes]:
    """The row over 16 MB at the start of `pending` (its packets of 0xFFFFFF bytes then a shorter one),
    written as the pure twin writes a row: `(row, raw key values, bytes left after it)`."""
    read = conn._rfile.read1
    payload = []
    while True:
        header, pending = _exactly(pending, read, 4)
        length = _packet_length(header)
        part, pending = _exactly(pending, read, length)
        payload.append(part)
        if length < MAX_PAYLOAD:
            break
    data = b"".join(payload)
    raw: list[bytes | None] = []
    at = 0
    for _ in names:
        if at >= len(data):
            raise SourceError("a row of the snapshot's result set is shorter than its columns",
                              fix="report this as a bug")
        value_length, at = pure_text_rows._length(data, at, len(data))
        if value_length < 0:
            raw.append(None)
            continue
        raw.append(data[at:at + value_length])
        at += value_length
    row = {name: (None if value is None else convert(value)) for name, value, convert in zip(names, raw, converters)}
    key = orjson.dumps({names[column]: row[names[column]] for column in key_columns}) if key_columns else None
    return (None, orjson.dumps(row), None, key), tuple(raw[column] for column in key_columns), pending
