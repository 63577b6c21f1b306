"""Query results streamed by the `mariadb` (or `mysql`) command-line client, inside a snapshot transaction.

pymysql parses every row in Python: for a bulk copy that is one core's worth of work per million
rows, serialized on the GIL however many connections read. The client program prints each row as a
line in C; `cdc copy` builds each row's interchange line in SQL (connectors/mysql/bulk.py) and passes
the client's output on in 64 KiB blocks, so Python only moves bytes.

One `ClientSession` is one client process kept open: it opens its snapshot transaction when told
(under the copy's global read lock) and then runs one query at a time. The end of a result is found
by a marker row (a random token selected after the query). The password reaches the client through
MYSQL_PWD, never its command line. Values are inlined by pymysql's own escaping (`literal`), as pymysql
does for every query it sends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

from cdc.errors import SourceError
from cdc.urls import DatabaseUrl
from connectors.mysql.offsets import BinlogPosition

READ_BYTES = 1 << 16


def client_program() -> str | None:
    """The command-line client on PATH (`mariadb`, else `mysql`), or None."""
    return shutil.which("mariadb") or shutil.which("mysql")


def usable(url: DatabaseUrl) -> bool:
    """True when the client can reach the server as pymysql does (no TLS options to translate)."""
    return client_program() is not None and not any(key.startswith(("ssl", "tls")) for key in url.options)


class ClientSession:
    """One client process: a snapshot transaction and the queries run in it."""

    def __init__(self, url: DatabaseUrl, host: str, port: int) -> None:
        self.url = url
        # --no-defaults first (the client takes it only there): no option file changes the output format
        command = [client_program() or "mariadb", "--no-defaults", "--batch", "--raw", "--skip-column-names",
                   "--unbuffered", "--no-auto-rehash", "--default-character-set=utf8mb4",
                   "-h", host, "-P", str(port), "-u", url.user or "root", url.database]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, "MYSQL_PWD": url.password or ""})
        self._send("SET time_zone = '+00:00'")

    def _send(self, statements: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((statements + ";\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            raise self._failure() from exc

    def _failure(self) -> SourceError:
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        return SourceError(f"the {os.path.basename(self.process.args[0])} client stopped: "
                           f"{err.decode(errors='replace').strip()[-500:]}")

    def start_snapshot(self, mariadb: bool) -> BinlogPosition | None:
        """START TRANSACTION WITH CONSISTENT SNAPSHOT; MariaDB: that snapshot's file and position."""
        self._send("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self._send("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        if not mariadb:
            b"".join(self.stream("SELECT 1"))
            return None
        lines = b"".join(self.stream("SHOW STATUS LIKE 'binlog_snapshot_%'")).decode().splitlines()
        status = {name.lower(): value for name, value in (line.split("\t", 1) for line in lines)}
        return BinlogPosition(status["binlog_snapshot_file"], int(status["binlog_snapshot_position"]))

    def stream(self, query: str) -> Iterator[bytes]:
        """The query's output, one line per row, in blocks (up to the marker row the session adds)."""
        marker = f"cdc-end-{uuid.uuid4().hex}".encode()
        needle = b"\n" + marker + b"\n"
        self._send(f"{query};\nSELECT '{marker.decode()}'")
        assert self.process.stdout is not None
        held = b"\n"  # a newline before the output, so the marker is found on the first line too
        leading = True
        while True:
            chunk = self.process.stdout.read1(READ_BYTES)
            if not chunk:
                raise self._failure()
            held += chunk
            at = held.find(needle)
            cut = at + 1 if at >= 0 else max(0, len(held) - len(needle))
            block, held = held[:cut], held[cut:]
            if leading and block:
                block, leading = block[1:], False
            if block:
                yield block
            if at >= 0:
                return

    def close(self) -> None:
        """End the transaction and the process."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
