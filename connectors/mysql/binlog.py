"""Reading the binlog: a replica connection that yields raw events, with clear errors and reconnects.

Our own reader over PyMySQL rather than mysql-replication's BinLogStreamReader, because that reader
decodes every row event in Python (the slow path the Cython decoder replaces), retries lost
connections forever, and with `blocking=False` reconnects from position 4 on MariaDB in an endless
loop. Here: COM_REGISTER_SLAVE + COM_BINLOG_DUMP (always blocking, heartbeats on), raw event bodies
out, and every failure classified: a purged binlog, a wrong start position or a second replica using
our server id becomes a `SourceError` at once; a lost connection is retried with back-off from the
last transaction boundary, for a bounded time.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pymysql

from cdc.errors import DecodeError, SourceError
from cdc.urls import DatabaseUrl, parse_url
from connectors.mysql.dialect import connect
from connectors.mysql.offsets import BinlogPosition, format_gtid_state, missing_gtids, parse_gtid_state

log = logging.getLogger(__name__)

# Event type codes (MySQL + MariaDB).
QUERY_EVENT = 2
STOP_EVENT = 3
ROTATE_EVENT = 4
FORMAT_DESCRIPTION_EVENT = 15
XID_EVENT = 16
TABLE_MAP_EVENT = 19
WRITE_ROWS_V1, UPDATE_ROWS_V1, DELETE_ROWS_V1 = 23, 24, 25
HEARTBEAT_EVENT = 27
WRITE_ROWS_V2, UPDATE_ROWS_V2, DELETE_ROWS_V2 = 30, 31, 32
GTID_LOG_EVENT = 33  # MySQL
MARIADB_ANNOTATE_ROWS = 160
MARIADB_BINLOG_CHECKPOINT = 161
MARIADB_GTID = 162
MARIADB_GTID_LIST = 163
MARIADB_START_ENCRYPTION = 164
MARIADB_QUERY_COMPRESSED = 165
MARIADB_ROWS_COMPRESSED_V2 = (166, 167, 168)  # write, update, delete
MARIADB_ROWS_COMPRESSED_V1 = (169, 170, 171)
ROWS_EVENTS = frozenset({23, 24, 25, 30, 31, 32})
# Not a server event: the reader yields it after a reconnect, before the first event read again.
RECONNECTED = -1
# Not a server event: after a transaction's last event, when nothing more has arrived on the socket
# yet (the consumer's cue to hand what it holds to Kafka before the read blocks).
IDLE = -2
COMPRESSED_ROWS_EVENTS = frozenset(MARIADB_ROWS_COMPRESSED_V1 + MARIADB_ROWS_COMPRESSED_V2)

COM_BINLOG_DUMP = 0x12
READ_BUFFER = 256 * 1024
COM_REGISTER_SLAVE = 0x15
HEADER_SIZE = 19
ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236
# Lost link, server shutting down, connection killed: a reconnect can cure these.
CONNECTION_LOST = (1053, 1927, 2006, 2013, 2055)

SNAPSHOT_FIX = "start again with a new snapshot (--snapshot when_needed or initial); keep binlogs longer (binlog_expire_logs_seconds)"
# After a failover, how long a new primary may take to apply what it received before its GTID
# state is held to contain capture's position (a replica still applying its relay log).
GTID_CATCH_UP_SECONDS = 15.0


class TransactionsLost(SourceError):
    """The server lacks transactions capture already read from another server: a lost-transaction failover."""

    def __init__(self, server: str, missing: list[str], position: str) -> None:
        super().__init__(
            f"{server} does not have GTID {', '.join(missing)}, which capture already read (and sent to Kafka) "
            f"at position {position}: this server is not a continuation of the one capture read from (after a "
            "failover: the new primary lost transactions the old one had committed); a new snapshot is needed",
            fix="recover the lost transactions onto the new primary (from the old primary's binlog) and restart, or "
                "accept the loss: restart with --snapshot when_needed, which takes a new snapshot (the target keeps "
                "the rows the new primary lost: cdc verify shows them); docs/operations.md, Failover",
        )
        self.missing = missing


@dataclass(slots=True)
class BinlogEvent:
    """One binlog event: header fields and the raw body (no header, no checksum)."""

    type: int
    timestamp: int
    server_id: int
    file: str
    position: int      # where this event starts
    next_position: int  # where the next one starts (the header's log_pos)
    flags: int
    body: bytes

    @property
    def where(self) -> str:
        return f"{self.file}:{self.position}"


def mariadb_gtid(body: bytes, server_id: int) -> tuple[str, int, int]:
    """(gtid "domain-server-seq", domain, flags) of a MariaDB GTID event body."""
    seq, domain, flags = struct.unpack_from("<QIB", body)
    return f"{domain}-{server_id}-{seq}", domain, flags


def mysql_gtid(body: bytes) -> str:
    """The GTID "uuid:n" of a MySQL GTID_LOG_EVENT body (flags, 16-byte source uuid, 8-byte number)."""
    sid = body[1:17].hex()
    (number,) = struct.unpack_from("<Q", body, 17)
    return f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}:{number}"


def rotate_target(body: bytes) -> tuple[str, int]:
    """(next file, position) of a ROTATE event body."""
    (position,) = struct.unpack_from("<Q", body)
    return body[8:].decode("utf-8", "replace"), position


def classify_dump_error(code: int, message: str, start: BinlogPosition, server_id: int) -> SourceError:
    """A SourceError that names the cause and the fix for an error the server sent on COM_BINLOG_DUMP."""
    text = message.lower()
    if "purged" in text or "could not find first log file" in text or "not found in binlog index" in text:
        return SourceError(
            f"binlog file {start.file} was purged or does not exist on the server; a new snapshot is needed "
            f"(server said: {message})",
            fix=SNAPSHOT_FIX,
        )
    if "gtid" in text and ("not in the master's binlog" in text or "purged" in text or "could not find" in text
                           or "which is not in" in text):
        return SourceError(
            f"GTID position {start.gtid} is no longer in the server's binlogs; a new snapshot is needed "
            f"(server said: {message})",
            fix=SNAPSHOT_FIX,
        )
    if "same server" in text or "same server_id" in text or "same server_uuid" in text or "server_id" in text:
        return SourceError(
            f"another replica is connected to the server with server_id {server_id} (server said: {message})",
            fix="give this capture a server id no other replica uses (--server-id N)",
        )
    if "position" in text or "bogus data" in text or "truncated" in text or "magic number" in text:
        return SourceError(
            f"cannot start reading the binlog at {start}: not the start of an event (server said: {message})",
            fix="restart from a stored position (do not edit offsets by hand) or take a new snapshot",
        )
    return SourceError(f"the server stopped the binlog stream at {start}: [{code}] {message}",
                       fix="check the server's error log; " + SNAPSHOT_FIX)


class BinlogReader:
    """A replica connection yielding raw `BinlogEvent`s from a start position; blocking, reconnecting."""

    def __init__(
        self,
        url: DatabaseUrl | str,
        server_id: int,
        start: BinlogPosition,
        *,
        heartbeat_seconds: float = 5.0,
        reconnect_for_seconds: float = 120.0,
        connect_timeout: float = 10.0,
        idle_events: bool = False,
    ) -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        self.idle_events = idle_events  # yield IDLE after a transaction when the socket has nothing more
        self.server_id = server_id
        self.start = start
        self.boundary = start  # last transaction boundary read: where a reconnect resumes
        self.heartbeat_seconds = heartbeat_seconds
        self.reconnect_for_seconds = reconnect_for_seconds
        self.connect_timeout = connect_timeout
        self.checksum_size = 0
        self.mariadb = True
        self._connection = None
        self._file = start.file
        self._gtid_state: dict[int, str] = parse_gtid_state(start.gtid)
        self._closed = False
        self._pending_standalone = False

    # --- connection ---

    def _open(self, start: BinlogPosition) -> None:
        conn = connect(self.url, read_timeout=max(3 * self.heartbeat_seconds, 10), connect_timeout=self.connect_timeout)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION(), @@global.binlog_checksum")
                version, checksum = cur.fetchone()
                self.mariadb = "mariadb" in version.lower()
                if start.gtid and self.mariadb:
                    cur.execute("SELECT @@global.gtid_binlog_state")
                    missing = missing_gtids(start.gtid, cur.fetchone()[0])
                    if missing:
                        raise TransactionsLost(f"{conn.host}:{conn.port}", missing, start.gtid)
                self.checksum_size = 0 if (checksum or "NONE").upper() == "NONE" else 4
                cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
                cur.execute("SET @mariadb_slave_capability = 4")
                cur.execute("SET @master_heartbeat_period = %s", (int(self.heartbeat_seconds * 1e9),))
                if start.gtid and self.mariadb:
                    cur.execute("SET @slave_connect_state = %s", (start.gtid,))
                    cur.execute("SET @slave_gtid_strict_mode = 1")
                    cur.execute("SET @slave_gtid_ignore_duplicates = 0")
            self._command(conn, COM_REGISTER_SLAVE, self._register_payload())
            conn._read_packet()
            use_gtid = bool(start.gtid and self.mariadb)
            filename = b"" if use_gtid else start.file.encode()
            position = 4 if use_gtid else start.position
            payload = struct.pack("<IHI", position, 0, self.server_id) + filename  # flags 0: blocking
            # Nothing is pending on the link now: read the event stream through a larger buffer than
            # pymysql's 8 KB (one recv per 256 KB instead of several per rows event).
            small, conn._rfile = conn._rfile, conn._sock.makefile("rb", buffering=READ_BUFFER)
            small.close()  # the socket stays open: pymysql's own reader goes, ours reads from now on
            self._command(conn, COM_BINLOG_DUMP, payload)
        except BaseException:
            conn.close()
            raise
        self._connection = conn

    def _register_payload(self) -> bytes:
        host = socket.gethostname().encode()[:60]
        user = b""
        return (struct.pack("<I", self.server_id) + bytes([len(host)]) + host + bytes([len(user)]) + user
                + b"\x00" + struct.pack("<HII", 0, 0, 0))

    @staticmethod
    def _command(conn, command: int, payload: bytes) -> None:
        data = bytes([command]) + payload
        conn._next_seq_id = 0
        conn._write_bytes(struct.pack("<I", len(data))[:3] + b"\x00" + data)
        conn._next_seq_id = 1

    @property
    def connection_id(self) -> int | None:
        """The server's id of the current replica connection (for KILL in tests and operations)."""
        return self._connection.thread_id() if self._connection is not None else None

    def close(self) -> None:
        """Close the replica connection (the server ends its dump thread)."""
        self._closed = True
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail; we are leaving anyway
                log.debug("closing the binlog connection failed", exc_info=True)
            self._connection = None

    # --- reading ---

    def events(self) -> Iterator[BinlogEvent]:
        """Yield events from `start` for ever (blocking); reconnects from the last boundary on a lost link.

        The last boundary is the end of the last transaction read, not the last one Kafka acknowledged:
        what was read before it is already with the producer, which keeps delivering it. A link lost
        inside a transaction makes that transaction's first events come again (same positions); a
        `RECONNECTED` pseudo-event tells the reader's consumer that it happened.
        """
        start = self.start
        lost_since: float | None = None
        delay = 0.5
        reconnected = False
        while not self._closed:
            try:
                self._open(start)
                if reconnected:
                    yield BinlogEvent(RECONNECTED, 0, 0, start.file, start.position, start.position, 0, b"")
                for event in self._read():
                    lost_since = None
                    delay = 0.5
                    yield event
                return
            except pymysql.err.OperationalError as exc:
                code = exc.args[0] if exc.args else 0
                message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                if code == ER_MASTER_FATAL_ERROR_READING_BINLOG or code not in CONNECTION_LOST:
                    raise classify_dump_error(code, message, start, self.server_id) from None
            except SourceError as exc:
                if not reconnected:
                    raise  # the first connection: a wrong URL or a refused login is no reason to wait
                if isinstance(exc, TransactionsLost) and time.monotonic() - (lost_since or time.monotonic()) > GTID_CATCH_UP_SECONDS:
                    raise
                message = exc.message
            except (OSError, ValueError, AttributeError, pymysql.err.InterfaceError):
                if self._closed:
                    return  # close() from another thread ended the read
                raise
            except pymysql.err.InternalError as exc:
                self._drop_connection()
                raise SourceError(f"binlog stream broke at {self.boundary}: {exc}",
                                  fix="restart the capture; it resumes from its stored position") from None
            self._drop_connection()
            if self._closed:
                return
            self._check_duplicate_server_id()
            now = time.monotonic()
            lost_since = lost_since or now
            if now - lost_since > self.reconnect_for_seconds:
                raise SourceError(
                    f"lost the binlog connection to {self.url.redacted()} and could not reconnect for "
                    f"{self.reconnect_for_seconds:.0f}s: {message}",
                    fix="check that the server runs and is reachable; the capture resumes from its stored position",
                )
            start = self.boundary
            reconnected = True
            log.warning("binlog connection lost (%s); reconnecting from %s in %.1fs", message, start, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - the socket is already dead
                pass
            self._connection = None

    def _check_duplicate_server_id(self) -> None:
        """After a lost link: another registered replica with our server id means we were kicked out."""
        try:
            conn = connect(self.url, connect_timeout=self.connect_timeout)
        except SourceError:
            return  # server unreachable: the reconnect loop reports it in time
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW SLAVE HOSTS")
                rows = cur.fetchall()
        except pymysql.err.MySQLError:
            return
        finally:
            conn.close()
        for row in rows:
            if row and int(row[0]) == self.server_id:
                raise SourceError(
                    f"another replica is connected to {self.url.redacted()} with server_id {self.server_id} "
                    "and took over the binlog stream",
                    fix="give each capture and replica its own server id (--server-id N)",
                )

    def _read(self) -> Iterator[BinlogEvent]:
        conn = self._connection
        checksum = self.checksum_size
        while True:
            packet = conn._read_packet()
            data = packet.get_all_data()
            if not data:
                continue
            marker = data[0]
            if marker == 0xFE and len(data) < 9:
                # A blocking dump ends only when the server shuts down: handled as a lost link.
                raise pymysql.err.OperationalError(2013, "the server ended the binlog stream (shutting down?)")
            if marker != 0x00:
                continue
            timestamp, type_code, server_id, size, next_position, flags = struct.unpack_from("<IBIIIH", data, 1)
            body = data[1 + HEADER_SIZE:1 + size - checksum]
            if type_code == ROTATE_EVENT:
                self._file, position = rotate_target(body)
                if not self.boundary.file or self.boundary.file != self._file and position == 4:
                    self.boundary = BinlogPosition(self._file, position, self._gtid_text())
                yield BinlogEvent(type_code, timestamp, server_id, self._file, position, position, flags, body)
                continue
            position = next_position - size if next_position else 0
            event = BinlogEvent(type_code, timestamp, server_id, self._file, position, next_position, flags, body)
            if type_code == MARIADB_GTID:
                gtid, domain, gtid_flags = mariadb_gtid(body, server_id)
                self._gtid_state[domain] = gtid
                self._pending_standalone = bool(gtid_flags & 1)
            yield event
            if type_code == XID_EVENT or (type_code == QUERY_EVENT and self._pending_standalone
                                          and _is_commit_or_ddl(body)):
                self.boundary = BinlogPosition(self._file, next_position, self._gtid_text())
                if self.idle_events and not select.select([conn._sock], [], [], 0)[0]:
                    # (pymysql may still hold buffered bytes: then this IDLE is early, which is harmless)
                    yield BinlogEvent(IDLE, 0, 0, self._file, next_position, next_position, 0, b"")

    def _gtid_text(self) -> str | None:
        return format_gtid_state(self._gtid_state)


# MariaDB's max_allowed_packet cannot exceed 1 GiB, so no event inflates beyond it: a compressed event
# that claims or produces more is corrupt or hostile (a zlib bomb), and is refused before it is inflated.
MAX_INFLATED_BYTES = 1024 * 1024 * 1024


def inflate(data: bytes, limit: int, what: str, position: object = None) -> bytes:
    """zlib-inflate at most `limit` bytes; DecodeError when the stream is invalid or inflates to more."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise DecodeError(f"{what} does not inflate ({exc})", position=position) from None
    if inflater.unconsumed_tail:
        raise DecodeError(f"{what} inflates to more than {limit} bytes", position=position)
    if not inflater.eof:
        raise DecodeError(f"{what} does not inflate (truncated stream)", position=position)
    return out


def _is_commit_or_ddl(body: bytes) -> bool:
    """True for a QUERY event that ends a transaction or is a standalone statement (not BEGIN)."""
    return query_parts(body)[2].strip().upper() != "BEGIN"


def query_parts(body: bytes, *, compressed: bool = False) -> tuple[int, str, str]:
    """(thread id, default database, SQL) of a QUERY event body (MariaDB QUERY_COMPRESSED: `compressed`)."""
    if len(body) < 13:
        raise DecodeError("query event shorter than its header")
    thread_id, _exec_time, db_length, _error_code, status_length = struct.unpack_from("<IIBHH", body)
    start = 13 + status_length
    database = body[start:start + db_length].decode("utf-8", "replace")
    sql = body[start + db_length + 1:]
    if compressed:
        size_bytes = sql[0] & 0x07 if sql else 0
        sql = inflate(sql[1 + size_bytes:], MAX_INFLATED_BYTES, "compressed query event")
    return thread_id, database, sql.decode("utf-8", "replace")


def current_position(url: DatabaseUrl | str) -> BinlogPosition:
    """The server's binlog end: SHOW MASTER STATUS file/position and @@gtid_binlog_pos (MariaDB)."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            if row is None:
                raise SourceError("the server has no binlog (log_bin is OFF)",
                                  fix="start the server with --log-bin --binlog-format=ROW")
            gtid = None
            try:
                cur.execute("SELECT @@gtid_binlog_pos")
                gtid = cur.fetchone()[0] or None
            except pymysql.err.MySQLError:
                gtid = None
            return BinlogPosition(row[0], int(row[1]), gtid)
    finally:
        conn.close()
