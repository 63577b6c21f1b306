"""MySQL/MariaDB side of `cdc copy`: read one consistent snapshot, write with large multi-row INSERTs.

Source: one connection opens `START TRANSACTION WITH CONSISTENT SNAPSHOT` (MariaDB reports the binlog
file, position and GTID state of that snapshot without a global lock) and reads every table in it.
When the copy succeeded, that position is stored as the capture's position for the prefix
(`__cdc-offsets.<prefix>`, as `cdc capture` stores it), so `cdc capture --prefix <prefix>` streams from
exactly the snapshot's point. Only one connection sees that snapshot, so reading is sequential; the
target side writes in parallel.

Target: pymysql's `executemany` sends one multi-row `INSERT` per batch (up to its packet size).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pymysql.cursors

from cdc.copy.ranges import range_condition
from cdc.copy.tables import KeyPlan, SourceIndex, not_portable
from cdc.errors import SourceError, TargetError
from cdc.events import TableSchema
from cdc.kafka import make_producer
from cdc.offsets import OffsetStore
from cdc.urls import DatabaseUrl
from connectors.mysql import client_stream, local_infile
from connectors.mysql.client_stream import ClientSession
from connectors.mysql.dialect import connect, quote_ident
from connectors.mysql.offsets import position_value
from connectors.mysql.schema import read_columns, table_schema
from connectors.mysql.setup import default_server_id
from connectors.mysql.snapshot import LockUnavailable, begin_consistent_snapshot, begin_shared_snapshot
from connectors.mysql.source_info import CONNECTOR

ENGINE = "mysql"
log = logging.getLogger(__name__)
FETCH_ROWS = 5000

TABLE_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION
"""
KEY_SQL = """
SELECT COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX
"""
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"})
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
INDEXES_SQL = """
SELECT INDEX_NAME, NON_UNIQUE, INDEX_TYPE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX
"""
# Column types an index cannot cover without a prefix length (MariaDB's JSON is LONGTEXT).
UNINDEXABLE_TYPES = frozenset({"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob",
                               "longblob", "json", "geometry"})
TYPES_SQL = "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def _interchange(c: str, data_type: str) -> str:
    """SQL for one field of the interchange text: `\\N` for NULL; text escaped as COPY's text format."""
    if data_type in BINARY_TYPES:
        value = f"CONCAT('\\\\\\\\x', LOWER(HEX({c})))"
    elif data_type in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set"):
        value = (f"REPLACE(REPLACE(REPLACE(REPLACE(CONVERT({c} USING utf8mb4), '\\\\', '\\\\\\\\'), "
                 f"'\\t', '\\\\t'), '\\n', '\\\\n'), '\\r', '\\\\r')")
    elif data_type == "float":
        value = f"CAST(CAST({c} AS DOUBLE) AS CHAR)"  # FLOAT prints 6 digits; as DOUBLE, every bit
    else:
        value = f"CAST({c} AS CHAR)"
    return f"IFNULL({value}, '\\\\N')"


def describe(conn, database: str, table: str) -> tuple[list[str], list[str], tuple[str, ...], bool]:
    """(columns, json columns, primary key columns in key order, whether the key is one integer) of a table."""
    with conn.cursor() as cursor:
        cursor.execute(TABLE_SQL, (database, table))
        rows = cursor.fetchall()
        cursor.execute(KEY_SQL, (database, table))
        keys = [name for (name,) in cursor.fetchall()]
    if not rows:
        raise SourceError(f"table {database}.{table} does not exist")
    types = {name: data_type.lower() for name, data_type, _ in rows}
    return [name for name, *_ in rows], [], tuple(keys), len(keys) == 1 and types[keys[0]] in INTEGER_TYPES


class BulkSource:
    """Snapshot transactions at one binlog position; that position is stored for the capture once the copy succeeded."""

    engine = ENGINE

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.readers: queue.Queue = queue.Queue()
        self.conns: list = []
        self.sessions: queue.Queue = queue.Queue()  # client processes in the snapshot (client_stream.py)
        self.all_sessions: list[ClientSession] = []
        self.position = None
        self.parallel = False  # True once several connections share the snapshot

    def start(self, prefix: str, tables: list[str], kafka: str | None, workers: int = 1) -> str:
        """Open the snapshot on `workers` connections at one position (one connection without RELOAD)."""
        if not kafka:
            raise SourceError("copying from MySQL/MariaDB needs --kafka: the capture's start position is stored there",
                              fix="pass --kafka HOST:PORT (the broker `cdc capture` will use)")
        first = connect(self.url, autocommit=False)
        self.conns.append(first)
        with first.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            mariadb = "mariadb" in cursor.fetchone()[0].lower()
        self.position = self._shared_snapshot(mariadb, workers) if workers > 1 else None
        if self.position is None:
            self.position = begin_consistent_snapshot(first, mariadb)
            del self.conns[1:]
        for conn in self.conns:
            self.readers.put(conn)
        self.parallel = len(self.conns) > 1
        return f"{self.position} gtid {self.position.gtid}" if self.position.gtid else str(self.position)

    def _shared_snapshot(self, mariadb: bool, workers: int):
        """The position of one snapshot opened on `workers` connections under a brief global read lock;
        None (after closing the extra connections) when the lock cannot be had."""
        lock = connect(self.url)
        try:
            self.conns.extend(connect(self.url, autocommit=False) for _ in range(workers - 1))
            if client_stream.usable(self.url):
                host, port = self.conns[0].host, self.conns[0].port
                self.all_sessions = [ClientSession(self.url, host, port) for _ in range(workers)]
            position = begin_shared_snapshot(lock, self.conns, mariadb, tuple(self.all_sessions))
            for session in self.all_sessions:
                self.sessions.put(session)
            return position
        except LockUnavailable as exc:
            log.warning("copy reads in one connection: FLUSH TABLES WITH READ LOCK unavailable (needs RELOAD)",
                        extra={"reason": str(exc)})
            for conn in self.conns:
                conn.rollback()
            for conn in self.conns[1:]:
                conn.close()
            self._close_sessions()
            return None
        finally:
            lock.close()

    def _close_sessions(self) -> None:
        for session in self.all_sessions:
            session.close()
        self.all_sessions = []

    def open_reader(self):
        """A connection in the snapshot (waits for one to be handed back)."""
        return self.readers.get()

    def close_reader(self, conn) -> None:
        self.readers.put(conn)

    def describe(self, conn, table: str) -> tuple[list[str], list[str], tuple[str, ...], bool]:
        return describe(conn, self.url.database, table.split(".")[-1])

    def table_schema(self, conn, table: str) -> TableSchema:
        """The table's engine-neutral schema, as `cdc capture` would publish it."""
        name = table.split(".")[-1]
        return table_schema(self.url.database, name, *read_columns(conn, self.url.database, name))

    def indexes(self, conn, table: str) -> list[SourceIndex]:
        """The table's indexes; `definition` is MySQL DDL: `[UNIQUE|FULLTEXT|SPATIAL] INDEX name (columns)`."""
        with conn.cursor() as cursor:
            cursor.execute(INDEXES_SQL, (self.url.database, table.split(".")[-1]))
            rows = cursor.fetchall()
        parts: dict[str, list] = {}
        for name, non_unique, method, column, prefix in rows:
            parts.setdefault(name, [not non_unique, method.lower(), []])[2].append((column, prefix))
        found = []
        for name, (unique, method, columns) in parts.items():
            listed = ", ".join(quote_ident(c) + (f"({int(p)})" if p else "") for c, p in columns if c is not None)
            kind = "UNIQUE " if unique else ("FULLTEXT " if method == "fulltext" else
                                             "SPATIAL " if method == "spatial" else "")
            plain = all(c is not None and not p for c, p in columns)
            found.append(SourceIndex(name, tuple(c for c, _ in columns) if plain else (), unique, name == "PRIMARY",
                                     method, False, f"{kind}INDEX {quote_ident(name)} ({listed})"))
        return found

    def bounds(self, conn, table: str, key: str) -> tuple[int | None, int | None]:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT MIN({quote_ident(key)}), MAX({quote_ident(key)}) FROM {self._ref(table)}")
            return cursor.fetchone()

    def estimate_rows(self, conn, table: str) -> float:
        """InnoDB's row estimate of the table."""
        with conn.cursor() as cursor:
            cursor.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                           " AND TABLE_NAME = %s", (self.url.database, table.split(".")[-1]))
            row = cursor.fetchone()
        return float(row[0] or 0) if row else 0.0

    def sample_keys(self, conn, table: str, key: tuple[str, ...], fraction: float) -> list[tuple]:
        """A sorted sample of about `fraction` of the table's keys (one scan keeping each row by chance)."""
        with conn.cursor() as cursor:
            listed = ", ".join(map(quote_ident, key))
            sampled = f" WHERE RAND() < {fraction:.9f}" if fraction < 1 else ""
            cursor.execute(f"SELECT {listed} FROM {self._ref(table)}{sampled} ORDER BY {listed}")
            return list(cursor.fetchall())

    def _ref(self, table: str) -> str:
        return f"{quote_ident(self.url.database)}.{quote_ident(table.split('.')[-1])}"

    @staticmethod
    def _where(key: tuple[str, ...], lo: tuple | None, hi: tuple | None) -> tuple[str, list]:
        condition, params = range_condition(key, lo, hi, quote_ident, row_values=False)
        return (f" WHERE {condition}", params) if condition else ("", None)

    def read(self, conn, table: str, columns: list[str], json_columns: list[str], key: tuple[str, ...],
             lo: tuple | None, hi: tuple | None) -> Iterator[list[tuple]]:
        """Batches of rows (Python values) of one key range, through an unbuffered cursor."""
        listed = ", ".join(quote_ident(c) for c in columns)
        where, params = self._where(key, lo, hi)
        with conn.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(f"SELECT {listed} FROM {self._ref(table)}{where}", params)
            while True:
                rows = cursor.fetchmany(FETCH_ROWS)
                if not rows:
                    return
                yield rows

    def copy_out_text(self, conn, table: str, columns: list[str], key: tuple[str, ...], lo: tuple | None,
                      hi: tuple | None) -> tuple[list[str], Iterator[bytes]]:
        """(binary columns, the interchange text of one key range), built by the server: one line per row,
        PostgreSQL COPY's text format (tab-separated, `\\N` NULL, backslash escapes, binary as `\\x<hex>`)."""
        with conn.cursor() as cursor:
            cursor.execute(TYPES_SQL, (self.url.database, table.split(".")[-1]))
            types = dict(cursor.fetchall())
        fields = [_interchange(quote_ident(c), types[c].lower()) for c in columns]
        where, params = self._where(key, lo, hi)
        sql = f"SELECT CONCAT_WS('\\t', {', '.join(fields)}) FROM {self._ref(table)}{where}"

        def blocks() -> Iterator[bytes]:
            with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                cursor.execute(sql, params)
                while True:
                    rows = cursor.fetchmany(FETCH_ROWS)
                    if not rows:
                        return
                    yield ("\n".join(row[0] for row in rows) + "\n").encode()

        def client_blocks() -> Iterator[bytes]:
            session, done = self.sessions.get(), False
            try:
                with conn.cursor() as cursor:
                    query = cursor.mogrify(sql, params)
                yield from session.stream(query)
                done = True
            finally:
                if done:
                    self.sessions.put(session)
                else:  # stopped midway: its output is not drained, so it cannot run another query
                    session.close()

        binary = [c for c in columns if types[c].lower() in BINARY_TYPES]
        return binary, client_blocks() if self.all_sessions else blocks()

    def finish(self, ok: bool, kafka: str | None, prefix: str) -> None:
        """End the snapshot; after a successful copy store its position as the capture's start."""
        for conn in self.conns:
            try:
                conn.rollback()
            finally:
                conn.close()
        self.conns = []
        self._close_sessions()
        if ok and self.position is not None:
            store = OffsetStore(kafka, prefix, CONNECTOR)
            store.ensure_topic()
            producer = make_producer(kafka)
            try:
                topic, key, value, headers = store.record(position_value(self.position, default_server_id(prefix)))
                producer.produce(topic, value, key=key, headers=headers)
                producer.flush(30.0)
            finally:
                producer.close(10.0)


class BulkTarget:
    """LOAD DATA (or multi-row INSERTs) into empty tables; tables it created get their secondary indexes after."""

    engine = ENGINE
    # InnoDB stores rows in primary-key order: a key added after the load rebuilds the whole table, while
    # ranges loaded in key order append; so a created table has its primary key from the start.
    defer_primary_key = False

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url

    def connect(self):
        return local_infile.closed(connect(self.url, error=TargetError, autocommit=False, local_infile=True))

    def target_table(self, table: str) -> str:
        return f"{quote_ident(self.url.database)}.{quote_ident(table.split('.')[-1])}"

    def location(self, table: str) -> tuple[str, str]:
        return self.url.database, table.split(".")[-1]

    def exists(self, conn, table: str) -> bool:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                           self.location(table))
            found = cursor.fetchone() is not None
        conn.rollback()
        return found

    def key_plan(self, conn, table: str, indexes: list[SourceIndex], source_engine: str) -> KeyPlan:
        """One ALTER TABLE adding the source's secondary indexes to the created table (its primary key is
        there already); indexes whose columns became TEXT/BLOB types here are skipped."""
        plan = KeyPlan(table)
        with conn.cursor() as cursor:
            cursor.execute(TYPES_SQL, self.location(table))
            types = {name: data_type.lower() for name, data_type in cursor.fetchall()}
        conn.rollback()
        clauses = []
        for index in indexes:
            if index.primary:
                continue
            if source_engine == ENGINE and index.definition:
                clauses.append(f"ADD {index.definition}")
                continue
            why = not_portable(index)
            if why is None:
                long = [c for c in index.columns if types.get(c) in UNINDEXABLE_TYPES]
                if long:
                    why = f"column(s) {', '.join(long)} map to TEXT/BLOB types, which need a prefix length"
            if why:
                plan.skipped.append((index.name, why))
                continue
            listed = ", ".join(map(quote_ident, index.columns))
            clauses.append(f"ADD {'UNIQUE ' if index.unique else ''}INDEX {quote_ident(index.name[:64])} ({listed})")
        if clauses:
            plan.indexes.append(f"ALTER TABLE {self.target_table(table)} {', '.join(clauses)}")
        return plan

    def run_ddl(self, conn, statements: list[str]) -> None:
        """Run DDL statements in order (each commits by itself)."""
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def check_empty(self, conn, table: str) -> None:
        with conn.cursor() as cursor:
            try:
                cursor.execute(f"SELECT 1 FROM {self.target_table(table)} LIMIT 1")
            except pymysql.err.ProgrammingError as exc:
                raise TargetError(f"target table {self.target_table(table)} does not exist",
                                  fix="create it first (same columns)") from exc
            if cursor.fetchone() is not None:
                raise TargetError(f"target table {self.target_table(table)} is not empty",
                                  fix="the initial copy fills empty tables only")
        conn.rollback()

    def load_text(self, conn, table: str, columns: list[str], binary_columns: list[str],
                  blocks: Iterable[bytes]) -> int:
        """LOAD DATA LOCAL INFILE of the interchange text (tab-separated, `\\N` NULL, backslash escapes, binary
        as `\\x<hex>`), streamed through a named pipe that a thread fills; the row count."""
        targets = [f"@{i}" if c in binary_columns else quote_ident(c) for i, c in enumerate(columns)]
        # binary values arrive as `\\x<hex>` (PostgreSQL's bytea text): after unescaping, `\x` + hex
        assignments = [f"{quote_ident(c)} = UNHEX(SUBSTRING(@{i}, 3))" for i, c in enumerate(columns)
                       if c in binary_columns]
        with tempfile.TemporaryDirectory(prefix="cdc-copy-") as scratch:
            fifo = os.path.join(scratch, "rows.tsv")
            os.mkfifo(fifo, 0o600)
            errors: list[BaseException] = []

            def feed() -> None:
                try:
                    with open(fifo, "wb") as pipe:
                        for block in blocks:
                            pipe.write(block)
                except BaseException as exc:  # noqa: BLE001 - raised again below
                    errors.append(exc)

            feeder = threading.Thread(target=feed, name="copy-feed", daemon=True)
            feeder.start()
            with conn.cursor() as cursor, local_infile.sending(conn, fifo):
                cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
                cursor.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.target_table(table)} CHARACTER SET utf8mb4 "
                               f"({', '.join(targets)})" + (f" SET {', '.join(assignments)}" if assignments else ""),
                               (fifo,))
                count = cursor.rowcount
            feeder.join()
            if errors:
                conn.rollback()
                raise errors[0]
        conn.commit()
        return count

    def write(self, conn, table: str, columns: list[str], batches: Iterable[list[tuple]]) -> int:
        """INSERT the rows (Python values from either engine) in one transaction; the row count."""
        names = ", ".join(quote_ident(c) for c in columns)
        sql = f"INSERT INTO {self.target_table(table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        count = 0
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
            for batch in batches:
                cursor.executemany(sql, [tuple(_value(v) for v in row) for row in batch])
                count += len(batch)
        conn.commit()
        return count


def _value(value: Any) -> Any:
    """A value read from another engine as MariaDB takes it (DATETIME holds UTC wall time, JSON as text)."""
    if value is None or isinstance(value, (int, str, bytes, Decimal, float)):
        return value
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
