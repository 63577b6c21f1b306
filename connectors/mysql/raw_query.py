"""A SELECT's rows read straight from the connection's socket as row JSON, past PyMySQL's row objects.

PyMySQL parses every row packet in Python (about 10 µs a row of 8 columns: the larger part of an
incremental snapshot chunk's time). Here PyMySQL sends the query and reads the column definitions;
the row packets are then read in blocks of 256 KB from its socket and turned into row JSON by the
`text_rows` twins. The result set is read to its end (or the connection closed) before returning, so
the connection stays usable for the next command, as after `cursor.fetchall()`.
"""

from __future__ import annotations

from typing import Any, Callable

import pymysql
from pymysql.constants import COMMAND

from cdc.errors import SourceError
from cdc.impl import twin

TEXT_ROWS = twin("connectors.mysql.text_rows")

BLOCK_BYTES = 256 * 1024


def select_rows_json(conn, sql: str, kinds: tuple[int, ...], converters: tuple[Callable[[Any], Any], ...],
                     names: tuple[str, ...], json_names: tuple[bytes, ...], key_columns: tuple[int, ...],
                     key_heads: tuple[bytes, ...], text_rows=TEXT_ROWS) -> tuple[list[tuple[None, bytes, None, bytes | None]],
                                                              tuple[bytes | None, ...] | None]:
    """Run `sql` (parameters already in) on `conn`: its rows as `text_rows.rows_json` gives them, and
    the raw key values of the last row (None: no row). Server errors raise PyMySQL's exceptions.
    `text_rows`: the twin to use (the tests hold both to the same output)."""
    conn._execute_command(COMMAND.COM_QUERY, sql)
    first = conn._read_packet()  # an error packet raises here
    if first.is_ok_packet():
        return [], None
    columns = first.read_length_encoded_integer()
    if columns != len(names):
        conn._force_close()
        raise SourceError(f"the chunk query answered {columns} columns, not {len(names)}", fix="report this as a bug")
    for _ in range(columns):
        conn._read_packet()
    conn._read_packet()  # the EOF after the column definitions (PyMySQL never asks for DEPRECATE_EOF)
    rows: list[tuple[None, bytes, None, bytes | None]] = []
    last_key = None
    pending = b""
    read = conn._rfile.read1
    rows_json = text_rows.rows_json
    try:
        while True:
            block = read(BLOCK_BYTES)
            if not block:
                raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
            data = pending + block if pending else block
            got, offset, finished, key = rows_json(data, 0, kinds, converters, names, json_names, key_columns,
                                                   key_heads)
            rows += got
            if key is not None:
                last_key = key
            if finished:
                if offset != len(data):
                    raise SourceError("bytes after the end of the chunk's result set", fix="report this as a bug")
                return rows, last_key
            pending = data[offset:]
    except BaseException:
        conn._force_close()  # the rest of the result set is unread: the connection cannot be used again
        raise
