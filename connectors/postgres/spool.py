"""The spool of a large transaction that PostgreSQL streams before its commit (pgoutput proto v2).

With PG 14+ and `streaming 'on'`, a transaction larger than logical_decoding_work_mem arrives in
stream blocks before its commit; its messages are kept here as received (memory, then a temporary
file) and produced at Stream Commit (`connectors.postgres.streaming`), or dropped at Stream Abort.
"""

from __future__ import annotations

import errno
import struct
import tempfile
from collections.abc import Iterable
from typing import Any

from cdc.errors import ResourceLimitError, SourceError
from cdc.events import TableSchema

_FULL = frozenset((errno.ENOSPC, errno.EFBIG, errno.EDQUOT))


class SpoolFull(SourceError):
    """The spool's filesystem is full (or the file size limit is reached): the transaction does not fit."""


class TransactionSpool:
    """The changes of one streamed (in-progress) transaction, kept on disk until Stream Commit/Abort.

    Each entry is (subxid, lsn, payload). A row change of a captured table is kept *prepared*: its
    key and its value up to the `source` block, made while the transaction streams in (the server
    is still decoding it then), so Stream Commit only adds the source block and produces
    (`add_prepared`, `prepared`). Other messages, and changes `Envelope.row_parts` does not split
    (primary-key changes, compat "debezium"), are kept as received and decoded at Stream Commit, in
    a stream block of the decoder, Relation messages included so each decodes with the relation it
    was sent with. Memory: up to `MEMORY_LIMIT` bytes in a buffer, then a temporary file written
    and read in `CHUNK`-sized pieces.
    """

    _HEADER = struct.Struct("!IQI")  # subxid, lsn, payload length
    # a prepared entry's payload: 0 (no pgoutput tag is 0), op | 0x80 when a tombstone follows, table
    # index, key length (0xFFFFFFFF: no key); then the key and the value's head
    _PREPARED = struct.Struct("!BBHI")
    _NO_KEY = 0xFFFFFFFF
    MEMORY_LIMIT = 8 * 1024 * 1024
    CHUNK = 1024 * 1024
    DEFAULT_MAX_SIZE = 16 * 1024 * 1024 * 1024  # bytes of one transaction's spool (memory + file)

    def __init__(self, xid: int, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.xid = xid
        self.max_size = max_size
        self.buffer = bytearray()
        self.file: Any = None
        self.aborted: set[int] = set()
        self.count = 0
        self.size = 0
        self._pack = self._HEADER.pack
        self._prepared_header = struct.Struct(self._HEADER.format + self._PREPARED.format[1:]).pack
        # (hot entry (table, source template), topic, headers) of prepared entries, by index
        self.tables: list[tuple[tuple[TableSchema, Any], str, Any]] = []
        self._table_index: dict[int, int] = {}

    def add_prepared(self, subxid: int, lsn: int, hot: tuple[TableSchema, Any], op: str, parts: tuple) -> bool:
        """Keep a change as `Envelope.row_parts` split it; False (nothing kept) past 65,536 table entries."""
        topic, key, head, headers, tombstone = parts
        index = self._table_index.get(id(hot))
        if index is None:
            if len(self.tables) > 0xFFFF:
                return False
            index = len(self.tables)
            self.tables.append((hot, topic, headers))  # holds `hot`, so its id stays unique
            self._table_index[id(hot)] = index
        flags = ord(op) | (0x80 if tombstone else 0)
        buffer = self.buffer
        if key is None:
            length = self._PREPARED.size + len(head)
            buffer += self._prepared_header(subxid, lsn, length, 0, flags, index, self._NO_KEY)
        else:
            length = self._PREPARED.size + len(key) + len(head)
            buffer += self._prepared_header(subxid, lsn, length, 0, flags, index, len(key))
            buffer += key
        buffer += head
        self.count += 1
        self.size += length + 16
        if len(buffer) >= self.CHUNK:
            self._spill()
        return True

    def prepared(self, payload: bytes) -> tuple[TableSchema, Any, str, tuple]:
        """(table, source template, op, row parts) of a prepared entry's payload."""
        _, flags, index, key_length = self._PREPARED.unpack_from(payload)
        (table, template), topic, headers = self.tables[index]
        start = self._PREPARED.size
        if key_length == self._NO_KEY:
            key, head = None, payload[start:]
        else:
            key, head = payload[start:start + key_length], payload[start + key_length:]
        return table, template, chr(flags & 0x7F), (topic, key, head, headers, bool(flags & 0x80))

    def add(self, subxid: int, lsn: int, payload: bytes) -> None:
        buffer = self.buffer
        buffer += self._pack(subxid, lsn, len(payload))
        buffer += payload
        self.count += 1
        self.size += len(payload) + 16
        if len(buffer) >= self.CHUNK:
            self._spill()

    def _spill(self) -> None:
        """Past `MEMORY_LIMIT` (and then every `CHUNK`), move the buffer to the temporary file; ResourceLimitError
        past `max_size` (checked per CHUNK, so the spool ends at most a CHUNK over it)."""
        if self.size > self.max_size:
            self.close()
            raise ResourceLimitError(
                f"streamed transaction {self.xid} needs more than {self.max_size} bytes of spool (--max-spool-bytes)",
                fix="raise --max-spool-bytes (the spool is a temporary file in $TMPDIR), or split the transaction"
                    " at the source; the server sends it again when capture restarts")
        if self.file is not None or len(self.buffer) >= self.MEMORY_LIMIT:
            self._write_file()

    def _write_file(self) -> None:
        """Move the buffer to the temporary file (in TMPDIR); SpoolFull when the disk is full."""
        try:
            if self.file is None:
                self.file = tempfile.TemporaryFile(prefix=f"cdc-xid{self.xid}-")
            self.file.write(self.buffer)
            self.file.flush()
        except OSError as exc:
            if exc.errno not in _FULL:
                raise
            raise SpoolFull(f"no room to spool streamed transaction {self.xid} ({self.size} bytes so far) in "
                            f"{tempfile.gettempdir()}: {exc.strerror}",
                            fix="give TMPDIR more room; meanwhile capture asks the server to keep such "
                                "transactions until their commit (no streaming)") from exc
        self.buffer.clear()

    def replay(self) -> Iterable[tuple[int, bytes]]:
        """(lsn, payload) of every spooled message whose subtransaction was not aborted, in order."""
        unpack = self._HEADER.unpack_from
        size = self._HEADER.size
        aborted = self.aborted
        for chunk in self._chunks():
            end = len(chunk)
            position = 0
            while position < end:
                subxid, lsn, length = unpack(chunk, position)
                position += size
                if subxid not in aborted:
                    yield lsn, chunk[position:position + length]
                position += length

    def _chunks(self) -> Iterable[bytes]:
        """The spool as pieces holding whole messages (the file's chunks, re-cut at message ends)."""
        if self.file is None:
            yield bytes(self.buffer)
            return
        if self.buffer:
            self._write_file()
        self.file.seek(0)
        size = self._HEADER.size
        rest = b""
        while True:
            data = self.file.read(self.CHUNK)
            if not data:
                if rest:
                    raise SourceError("the spool of a streamed transaction ends inside a message",
                                      fix="restart capture; the server sends the transaction again")
                return
            data = rest + data if rest else data
            # cut after the last whole message
            position, end = 0, len(data)
            while position + size <= end:
                length = self._HEADER.unpack_from(data, position)[2]
                if position + size + length > end:
                    break
                position += size + length
            yield data[:position]
            rest = data[position:]

    def close(self) -> None:
        self.buffer = bytearray()
        if self.file is not None:
            self.file.close()
            self.file = None
