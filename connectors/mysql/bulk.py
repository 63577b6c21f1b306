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
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pymysql.cursors

from cdc.errors import SourceError, TargetError
from cdc.kafka import make_producer
from cdc.offsets import OffsetStore
from cdc.urls import DatabaseUrl
from connectors.mysql.dialect import connect, quote_ident
from connectors.mysql.offsets import position_value
from connectors.mysql.setup import default_server_id
from connectors.mysql.snapshot import begin_consistent_snapshot
from connectors.mysql.source_info import CONNECTOR

ENGINE = "mysql"
FETCH_ROWS = 5000

TABLE_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION
"""
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"})
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
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


def describe(conn, database: str, table: str) -> tuple[list[str], list[str], str | None]:
    """(columns, json columns, single integer primary key or None) of a table."""
    with conn.cursor() as cursor:
        cursor.execute(TABLE_SQL, (database, table))
        rows = cursor.fetchall()
    if not rows:
        raise SourceError(f"table {database}.{table} does not exist")
    columns = [name for name, *_ in rows]
    keys = [(name, data_type) for name, data_type, key in rows if key == "PRI"]
    key = keys[0][0] if len(keys) == 1 and keys[0][1].lower() in INTEGER_TYPES else None
    return columns, [], key


class BulkSource:
    """One snapshot transaction; its binlog position is stored for the capture once the copy succeeded."""

    engine = ENGINE
    parallel = False  # a consistent snapshot belongs to one connection

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.conn = None
        self.position = None

    def start(self, prefix: str, tables: list[str], kafka: str | None) -> str:
        if not kafka:
            raise SourceError("copying from MySQL/MariaDB needs --kafka: the capture's start position is stored there",
                              fix="pass --kafka HOST:PORT (the broker `cdc capture` will use)")
        self.conn = connect(self.url, autocommit=False)
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            mariadb = "mariadb" in cursor.fetchone()[0].lower()
        self.position = begin_consistent_snapshot(self.conn, mariadb)
        return f"{self.position} gtid {self.position.gtid}" if self.position.gtid else str(self.position)

    def open_reader(self):
        return self.conn

    def describe(self, conn, table: str) -> tuple[list[str], list[str], str | None]:
        return describe(conn, self.url.database, table.split(".")[-1])

    def bounds(self, conn, table: str, key: str) -> tuple[int | None, int | None]:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT MIN({quote_ident(key)}), MAX({quote_ident(key)}) FROM {self._ref(table)}")
            return cursor.fetchone()

    def _ref(self, table: str) -> str:
        return f"{quote_ident(self.url.database)}.{quote_ident(table.split('.')[-1])}"

    def read(self, conn, table: str, columns: list[str], json_columns: list[str], key: str | None,
             lo: int | None, hi: int | None) -> Iterator[list[tuple]]:
        """Batches of rows (Python values) of one key range, through an unbuffered cursor."""
        listed = ", ".join(quote_ident(c) for c in columns)
        where = ""
        if key is not None and lo is not None:
            where = f" WHERE {quote_ident(key)} >= {int(lo)} AND {quote_ident(key)} < {int(hi)}"
        with conn.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(f"SELECT {listed} FROM {self._ref(table)}{where}")
            while True:
                rows = cursor.fetchmany(FETCH_ROWS)
                if not rows:
                    return
                yield rows

    def copy_out_text(self, conn, table: str, columns: list[str], key: str | None, lo: int | None,
                      hi: int | None) -> tuple[list[str], Iterator[bytes]]:
        """(binary columns, the interchange text of one key range), built by the server: one line per row,
        PostgreSQL COPY's text format (tab-separated, `\\N` NULL, backslash escapes, binary as `\\x<hex>`)."""
        with conn.cursor() as cursor:
            cursor.execute(TYPES_SQL, (self.url.database, table.split(".")[-1]))
            types = dict(cursor.fetchall())
        fields = [_interchange(quote_ident(c), types[c].lower()) for c in columns]
        where = ""
        if key is not None and lo is not None:
            where = f" WHERE {quote_ident(key)} >= {int(lo)} AND {quote_ident(key)} < {int(hi)}"
        sql = f"SELECT CONCAT_WS('\\t', {', '.join(fields)}) FROM {self._ref(table)}{where}"

        def blocks() -> Iterator[bytes]:
            with conn.cursor(pymysql.cursors.SSCursor) as cursor:
                cursor.execute(sql)
                while True:
                    rows = cursor.fetchmany(FETCH_ROWS)
                    if not rows:
                        return
                    yield ("\n".join(row[0] for row in rows) + "\n").encode()

        return [c for c in columns if types[c].lower() in BINARY_TYPES], blocks()

    def finish(self, ok: bool, kafka: str | None, prefix: str) -> None:
        """End the snapshot; after a successful copy store its position as the capture's start."""
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None
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
    """Multi-row INSERTs into existing, empty tables."""

    engine = ENGINE

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url

    def connect(self):
        return connect(self.url, error=TargetError, autocommit=False, local_infile=True)

    def target_table(self, table: str) -> str:
        return f"{quote_ident(self.url.database)}.{quote_ident(table.split('.')[-1])}"

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
            with conn.cursor() as cursor:
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
