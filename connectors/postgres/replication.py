"""A `replication=database` connection to PostgreSQL through psycopg's low-level `psycopg.pq.PGconn`.

psycopg 3 has no replication API, but libpq does everything needed: the replication commands
(IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, START_REPLICATION) are simple queries, and the stream is a
COPY_BOTH exchange read with `get_copy_data` and answered with `put_copy_data`:

    'w' XLogData:        data_start(8) wal_end(8) send_time(8) payload (one pgoutput message)
    'k' keepalive:       wal_end(8) send_time(8) reply_requested(1)
    'r' status update:   written(8) flushed(8) applied(8) client_time(8) reply_requested(1)  (ours)

Times are microseconds since 2000-01-01 UTC. LSNs are unsigned 64-bit integers here and `X/Y` text
on the wire of the SQL commands.
"""

from __future__ import annotations

import logging
import select
import struct
import time
from dataclasses import dataclass

import psycopg
from psycopg import pq

from cdc.errors import SourceError
from cdc.urls import DatabaseUrl, parse_url
from connectors.postgres.dialect import conninfo, quote_ident
from connectors.postgres.offsets import lsn_to_int, lsn_to_text

log = logging.getLogger(__name__)

# Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
PG_EPOCH_OFFSET_US = 946_684_800_000_000

_XLOGDATA = struct.Struct("!QQq")
_KEEPALIVE = struct.Struct("!QqB")
_STATUS = struct.Struct("!cQQQqB")

# Kinds of frames `read_frame` returns.
XLOGDATA = "w"
KEEPALIVE = "k"


def pg_now_us() -> int:
    """Now, in microseconds since 2000-01-01 UTC."""
    return time.time_ns() // 1000 - PG_EPOCH_OFFSET_US


class StreamLost(SourceError):
    """The replication connection broke or the server ended the stream (a restart): reconnect and resume."""


class SlotLost(SourceError):
    """The slot capture streams from is gone: dropped, or the source failed over to a server without it."""

    def __init__(self, slot: str, url: DatabaseUrl) -> None:
        super().__init__(
            f"replication slot {slot!r} does not exist on {url.redacted()}: it was dropped, or the source failed "
            "over to a standby that lacks it (before PostgreSQL 17 logical slots stay on the old primary; on 17+ "
            "only failover slots synchronised to the standby survive); changes after the last acknowledged "
            "position may be missing from Kafka",
            fix="restart capture with --snapshot when_needed: it creates the slot again and takes a new snapshot "
                "(see docs/operations.md, Failover)",
        )
        self.slot = slot


@dataclass(slots=True, frozen=True)
class SystemIdentity:
    """IDENTIFY_SYSTEM's answer."""

    system_id: str
    timeline: int
    position: int
    database: str


@dataclass(slots=True, frozen=True)
class CreatedSlot:
    """CREATE_REPLICATION_SLOT's answer; `snapshot_name` is valid until this connection's next command."""

    name: str
    consistent_point: int
    snapshot_name: str | None
    plugin: str


class ReplicationConnection:
    """One `replication=database` session: replication commands, then the COPY_BOTH change stream."""

    def __init__(self, url: DatabaseUrl | str, *, application_name: str = "cdc") -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        info = conninfo(self.url, replication="database", application_name=application_name)
        self.pgconn = pq.PGconn.connect(info.encode())
        if self.pgconn.status != pq.ConnStatus.OK:
            message = _text(self.pgconn.error_message)
            self.pgconn.finish()
            hint = "check the host/port/database, and that pg_hba.conf allows a replication connection for this user"
            if "replication" in str(message).lower() and "permission" in str(message).lower():
                hint = f"grant it: ALTER ROLE {quote_ident(self.url.user)} REPLICATION"
            raise SourceError(
                f"cannot open a replication connection to {self.url.redacted()}: {str(message).strip()}", fix=hint
            )
        self.server_version = self.pgconn.server_version
        self.streaming = False
        self._ended = 0

    # -- replication commands -------------------------------------------------------------------

    def command(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run one replication command; its rows as text tuples. SourceError when the server refuses."""
        result = self.pgconn.exec_(sql.encode())
        if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            message = _text(result.error_message)
            raise SourceError(f"replication command failed: {sql}: {message.strip()}")
        rows = []
        for row in range(result.ntuples):
            rows.append(tuple(
                None if result.get_value(row, col) is None else result.get_value(row, col).decode()
                for col in range(result.nfields)
            ))
        return rows

    def identify_system(self) -> SystemIdentity:
        """IDENTIFY_SYSTEM: system id, timeline, current WAL position, database."""
        system_id, timeline, position, database = self.command("IDENTIFY_SYSTEM")[0]
        return SystemIdentity(system_id, int(timeline), lsn_to_int(position), database or "")

    def create_slot(self, name: str, *, export_snapshot: bool = True, temporary: bool = False,
                    failover: bool = False) -> CreatedSlot:
        """CREATE_REPLICATION_SLOT name LOGICAL pgoutput, exporting a snapshot (or not); `failover`
        (PostgreSQL 17+) makes it a failover slot, which standbys with sync_replication_slots copy."""
        temp = " TEMPORARY" if temporary else ""
        if failover:
            snapshot = "(SNAPSHOT 'export', FAILOVER true)" if export_snapshot else "(SNAPSHOT 'nothing', FAILOVER true)"
        else:
            snapshot = "EXPORT_SNAPSHOT" if export_snapshot else "NOEXPORT_SNAPSHOT"
        rows = self.command(f"CREATE_REPLICATION_SLOT {quote_ident(name)}{temp} LOGICAL pgoutput {snapshot}")
        slot_name, consistent_point, snapshot_name, plugin = rows[0]
        return CreatedSlot(slot_name, lsn_to_int(consistent_point), snapshot_name, plugin or "pgoutput")

    def enable_failover(self, name: str) -> None:
        """ALTER_REPLICATION_SLOT name (FAILOVER true): an existing slot becomes a failover slot (PostgreSQL 17+)."""
        self.command(f"ALTER_REPLICATION_SLOT {quote_ident(name)} (FAILOVER true)")

    def start_replication(self, slot: str, publication: str | tuple[str, ...], start: int = 0, *, messages: bool = True,
                          streaming: bool = True, binary: bool = False) -> dict[str, str]:
        """START_REPLICATION ... LOGICAL start with pgoutput options fit for this server; returns them."""
        options = self.plugin_options(publication, messages=messages, streaming=streaming, binary=binary)
        text = ", ".join(f"{key} '{value}'" for key, value in options.items())
        self.pgconn.send_query(
            f"START_REPLICATION SLOT {quote_ident(slot)} LOGICAL {lsn_to_text(start)} ({text})".encode()
        )
        result = self.pgconn.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_BOTH:
            message = "no answer" if result is None else _text(result.error_message)
            if "is active for PID" in str(message):
                raise SourceError(f"replication slot {slot!r} is in use: {str(message).strip()}",
                                  fix="stop the other consumer of this slot, or use another --slot")
            if "does not exist" in str(message):
                raise SlotLost(slot, self.url)
            raise SourceError(f"START_REPLICATION on slot {slot!r} failed: {str(message).strip()}")
        self.pgconn.nonblocking = 1
        self.streaming = True
        log.info("replication started", extra={"slot": slot, "start": lsn_to_text(start), **options})
        return options

    def plugin_options(self, publication: str | tuple[str, ...], *, messages: bool, streaming: bool, binary: bool) -> dict[str, str]:
        """pgoutput options: streaming of in-progress transactions (proto v4 `parallel` on PG 16+, v2 `on` on
        PG 14/15), messages and binary on PG 14+; proto v1 otherwise."""
        names = (publication,) if isinstance(publication, str) else publication
        publication_names = ",".join(quote_ident(name) for name in names).replace("'", "''")
        options = {"proto_version": "1", "publication_names": publication_names}
        if self.server_version >= 140000:
            if streaming and self.server_version >= 160000:
                options["proto_version"] = "4"
                options["streaming"] = "parallel"
            elif streaming:
                options["proto_version"] = "2"
                options["streaming"] = "on"
            if messages:
                options["messages"] = "true"
            if binary:
                options["binary"] = "true"
        return options

    # -- the COPY_BOTH stream -------------------------------------------------------------------

    def read_frame(self, timeout: float) -> tuple | None:
        """The next frame, or None when none arrived within `timeout` seconds.

        Returns ("w", data_start, wal_end, send_time, payload) or ("k", wal_end, send_time, reply).
        SourceError when the server ends the stream or the connection breaks.
        """
        data = self._next_copy_data()
        if data is None:
            ready, _, _ = select.select([self.pgconn.socket], [], [], timeout)
            if not ready:
                return None
            try:
                self.pgconn.consume_input()
            except psycopg.OperationalError as exc:
                self.streaming = False
                raise StreamLost(f"replication connection lost: {str(exc).strip()}") from exc
            data = self._next_copy_data()
            if data is None:
                return None
        return parse_frame(data)

    def read_batch(self, timeout: float, limit: int = 2000) -> list[bytes]:
        """Up to `limit` raw COPY data frames (`w`/`k` + body, as the server sent them), draining libpq.

        Reads every complete frame libpq holds, then what the socket holds without blocking, and
        waits (up to `timeout` seconds) only when nothing at all is there: the hot loop's reader,
        one select per batch instead of per frame. [] when nothing arrived in time. Frames are
        parsed by the caller (`parse_frame`, or the slices it needs). StreamLost as `read_frame`.
        """
        if self._ended:
            self._copy_ended(self._ended)
        frames: list[bytes] = []
        append = frames.append
        get = self.pgconn.get_copy_data
        waited = False
        while len(frames) < limit:
            nbytes, data = get(1)
            if nbytes > 0:
                append(bytes(data))
                continue
            if nbytes < 0:
                if frames:
                    self._ended = nbytes  # hand over what came first; report the end on the next call
                    return frames
                self._copy_ended(nbytes)
            # libpq's buffer is empty: read what the socket has, waiting only for a first frame
            if frames or waited:
                ready, _, _ = select.select([self.pgconn.socket], [], [], 0)
            else:
                ready, _, _ = select.select([self.pgconn.socket], [], [], timeout)
                waited = True
            if not ready:
                break
            try:
                self.pgconn.consume_input()
            except psycopg.OperationalError as exc:
                self.streaming = False
                raise StreamLost(f"replication connection lost: {str(exc).strip()}") from exc
        return frames

    def _next_copy_data(self) -> bytes | None:
        """One COPY data message if libpq has a complete one buffered, else None."""
        nbytes, data = self.pgconn.get_copy_data(1)
        if nbytes > 0:
            return bytes(data)
        if nbytes == 0:
            return None
        self._copy_ended(nbytes)
        return None

    def _copy_ended(self, nbytes: int) -> None:
        """get_copy_data said the COPY is over (-1) or failed (-2): StreamLost with the server's reason."""
        self._ended = 0
        if nbytes == -1:
            result = self.pgconn.get_result()
            message = "" if result is None else _text(result.error_message)
            self.streaming = False
            raise StreamLost(f"the server ended the replication stream {message.strip()}".strip(),
                              fix="the server may be shutting down; the connector reconnects")
        message = _text(self.pgconn.error_message)
        self.streaming = False
        raise StreamLost(f"replication connection lost: {message.strip()}")

    def send_status(self, written: int, flushed: int, applied: int | None = None, *, reply: bool = False) -> None:
        """Standby status update: the server may discard WAL up to `flushed` (confirmed_flush_lsn)."""
        frame = _STATUS.pack(b"r", written, flushed, flushed if applied is None else applied, pg_now_us(),
                             1 if reply else 0)
        try:
            if self.pgconn.put_copy_data(frame) != 1:
                raise SourceError("could not queue a standby status update")
            deadline = time.monotonic() + 10
            while self.pgconn.flush() == 1:
                if time.monotonic() > deadline:
                    raise SourceError("timed out sending a standby status update")
                select.select([], [self.pgconn.socket], [], 1.0)
        except psycopg.OperationalError as exc:
            raise StreamLost(f"replication connection lost: {str(exc).strip()}") from exc

    def close(self) -> None:
        """End the session (the server keeps the slot and its confirmed position)."""
        self.streaming = False
        self.pgconn.finish()


def parse_frame(data: bytes) -> tuple:
    """("w", data_start, wal_end, send_time, payload) or ("k", wal_end, send_time, reply) of one frame."""
    kind = data[0:1]
    if kind == b"w":
        data_start, wal_end, send_time = _XLOGDATA.unpack_from(data, 1)
        return (XLOGDATA, data_start, wal_end, send_time, data[25:])
    if kind == b"k":
        wal_end, send_time, reply = _KEEPALIVE.unpack_from(data, 1)
        return (KEEPALIVE, wal_end, send_time, bool(reply))
    raise SourceError(f"unexpected replication frame type {kind!r}")


def _text(message: bytes | str | None) -> str:
    """A libpq error message as text."""
    if message is None:
        return ""
    return message.decode(errors="replace") if isinstance(message, bytes) else message
