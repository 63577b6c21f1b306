"""LOAD DATA LOCAL INFILE with PyMySQL: the client sends only the file of the statement it is running.

PyMySQL answers a server's LOCAL INFILE request with whatever file the server names, whenever the
connection was opened with `local_infile=True`; a hostile server could ask for any file readable by
this process. Here PyMySQL's file sender is wrapped once, at import: it sends a file only when it is
the one `sending(conn, path)` announced for the statement now running (`conn._local_infile` holds that
path, and False the rest of the time); any other request fails with error 2068 before a byte is read.
Used by apply's MariaDB target (snapshot reads) and by `cdc copy` into MariaDB.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pymysql.connections
import pymysql.err

REFUSED = 2068  # CR_LOAD_DATA_LOCAL_INFILE_REJECTED


def only_the_announced_file(send: Callable) -> Callable:
    """PyMySQL's `_send_local_file`, refusing any file but the one announced on the connection."""
    def send_local_file(filename: bytes | str, conn) -> None:
        expected = conn._local_infile
        if not isinstance(expected, str) or os.fsencode(filename) != os.fsencode(expected):
            raise pymysql.err.OperationalError(
                REFUSED, f"the server asked for the local file {os.fsdecode(filename)!r}, which is not the one "
                         "being loaded: refused")
        send(filename, conn)

    send_local_file.guarded = True
    return send_local_file


# Whether PyMySQL's sender could be guarded (a private name: without it, no LOCAL INFILE is used).
GUARDED = hasattr(pymysql.connections, "_send_local_file")
if GUARDED and not getattr(pymysql.connections._send_local_file, "guarded", False):
    pymysql.connections._send_local_file = only_the_announced_file(pymysql.connections._send_local_file)


def closed(conn):
    """A connection opened with `local_infile=True`, answering no file request until `sending`."""
    conn._local_infile = False
    return conn


@contextmanager
def sending(conn, path: str) -> Iterator[None]:
    """While the block runs (one LOAD DATA LOCAL INFILE of `path`), the server may have `path`, only it."""
    if not GUARDED:
        raise pymysql.err.OperationalError(REFUSED, "this PyMySQL's file sender cannot be guarded: LOCAL INFILE is off")
    conn._local_infile = path
    try:
        yield
    finally:
        conn._local_infile = False
