"""Incremental snapshots on MySQL/MariaDB: watermarks and signals as rows of a signal table, chunks by key range.

The signal table `cdc_signal` (in the URL's database; Debezium's `id`, `type`, `data` columns) is
written by `cdc snapshot` (a signal) and by the capture itself (the low and high watermarks of each
chunk, deleted again once the high one is written): the binlog carries the inserts in commit order
with the data, and the capture's stream hands them to the controller instead of to Kafka. Chunks are
read as text and turned into values by the regular snapshot's converters (`connectors.mysql.snapshot`),
so an `r` row and a streamed row of the same data are identical.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pymysql

from cdc.errors import ConfigError
from cdc.events import READ
from cdc.incremental.controller import Chunk, watermark_payload
from cdc.incremental.signals import SnapshotSignal
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.mysql.dialect import connect, qualified, quote_ident
from connectors.mysql.raw_query import select_rows_json
from connectors.mysql.snapshot import SnapshotTable, captured_tables, describe_table, snapshot_connection_kwargs
from connectors.mysql.source_info import source_block

log = logging.getLogger(__name__)

SIGNAL_TABLE = "cdc_signal"
WATERMARK_TYPE = "watermark"


def default_namespace(url: DatabaseUrl) -> str:
    """The database of a table named without one."""
    return url.database


def ensure_signal_table(conn, database: str) -> None:
    """Create the signal table when missing (Debezium's shape: id, type, data)."""
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {qualified(database, SIGNAL_TABLE)} ("
                       "id VARCHAR(64) NOT NULL PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT)")


def send_signal(url: DatabaseUrl, signal: SnapshotSignal) -> None:
    """Insert `signal` into the signal table, where the capture's binlog stream reads it."""
    conn = connect(url)
    try:
        ensure_signal_table(conn, url.database)
        with conn.cursor() as cursor:
            cursor.execute(f"INSERT INTO {qualified(url.database, SIGNAL_TABLE)} (id, type, data) VALUES (%s, %s, %s)",
                           (signal.id, signal.type, signal.to_json().decode()))
    finally:
        conn.close()


@dataclass(slots=True)
class _ChunkTable:
    name: str
    described: SnapshotTable
    select: str
    key_list: str
    key_columns: list[str]  # quoted
    key_positions: list[int]
    names: list[str]
    key_is_integer: list[bool]  # an integer key compared with a string would not use the primary key's index
    json_names: tuple[bytes, ...]  # '"name":' per column, as orjson writes a dict key
    json_keys: tuple[tuple[str, ...], tuple[bytes, ...]] | None  # the envelope's key names and heads; None: rows as dicts


class MysqlChunks:
    """The `cdc.incremental.ChunkSource` of a MySQL/MariaDB capture."""

    def __init__(self, url: DatabaseUrl, pipeline, *, prefix: str, server_id: int, table_filter: TableFilter,
                 schemas: dict) -> None:
        self.url = url
        self.pipeline = pipeline
        self.prefix = prefix
        self.server_id = server_id
        self.table_filter = table_filter
        self.schemas = schemas  # the stream's db.table -> TableSchema
        self.conn = connect(url, autocommit=True, **snapshot_connection_kwargs())  # the stream's thread
        self.read_conn = connect(url, autocommit=True, **snapshot_connection_kwargs())  # the chunk reader's
        self.signal_table = qualified(url.database, SIGNAL_TABLE)
        try:
            ensure_signal_table(self.conn, url.database)
        except pymysql.err.MySQLError as exc:
            log.warning("no signal table %s (%s): incremental snapshots need it; create it as "
                        "(id VARCHAR(64) PRIMARY KEY, type VARCHAR(32), data TEXT)", self.signal_table, exc.args[-1])
        self.tables: dict[str, _ChunkTable] = {}
        self.position: tuple[str, int] = ("", 0)  # the stream's last binlog position, for `source`

    def close(self) -> None:
        self.conn.close()
        self.read_conn.close()

    def topic_of(self, table: str) -> str:
        plan = self.tables.get(table) or self._prepare(table)
        self.pipeline.publish_schema(plan.described.schema)
        return self.pipeline.envelope.topic(plan.described.schema)

    def is_signal_table(self, database: str, table: str) -> bool:
        """True for the signal table of this capture's database."""
        return table == SIGNAL_TABLE and database == self.url.database

    def write_watermark(self, chunk_id: str, kind: str) -> None:
        row_id = f"{chunk_id}-{kind}"
        with self.read_conn.cursor() as cursor:
            cursor.execute(f"INSERT INTO {self.signal_table} (id, type, data) VALUES (%s, %s, %s)",
                           (row_id, WATERMARK_TYPE, watermark_payload(self.prefix, chunk_id, kind)))
            if kind == "high":
                cursor.execute(f"DELETE FROM {self.signal_table} WHERE id IN (%s, %s)", (f"{chunk_id}-low", row_id))

    def captures(self, table: str) -> bool:
        database, _, name = table.partition(".")
        return self.table_filter(database, name)

    def captured_tables(self) -> list[str]:
        return [f"{database}.{name}" for database, name in captured_tables(self.conn, self.table_filter)
                if not self.is_signal_table(database, name)]

    def read_chunk(self, table: str, after: list[Any] | None, low: list[Any] | None, high: list[Any] | None,
                   where: str | None, limit: int) -> Chunk:
        plan = self.tables[table]  # prepared by topic_of
        conditions, params = [], []
        for bound, operator in ((after, ">"), (None if after is not None else low, ">="), (high, "<=")):
            if bound is not None:
                condition, values = keyset_condition(plan.key_columns, operator, bound)
                conditions.append(condition)
                params += values
        if where:
            conditions.append(f"({where})")
        sql = plan.select + (" WHERE " + " AND ".join(conditions) if conditions else "") + \
            f" ORDER BY {plan.key_list} LIMIT {int(limit)}"
        if not self.read_conn.open:
            self.read_conn.ping(reconnect=True)  # closed by a chunk read that failed half-way
        try:
            if plan.json_keys is not None:
                return self._json_records(plan, self.read_conn.cursor().mogrify(sql, params))
            with self.read_conn.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        except pymysql.err.ProgrammingError as exc:
            raise ConfigError(f"the chunk query of {table} failed: {exc.args[-1]}") from None
        return self._records(plan, rows)

    def _json_records(self, plan: _ChunkTable, sql: str) -> Chunk:
        """The chunk read straight into row JSON (`connectors.mysql.raw_query`), records built by the
        envelope's JSON-rows path, as the stream's binlog rows are."""
        described = plan.described
        key_names, key_heads = plan.json_keys
        positions = {name: index for index, name in enumerate(plan.names)}
        rows, last = select_rows_json(self.read_conn, sql, described.kinds, described.converters, tuple(plan.names),
                                      plan.json_names, tuple(positions[name] for name in key_names), key_heads)
        envelope = self.pipeline.envelope
        topic = envelope.topic(described.schema)
        if not rows:
            return Chunk(plan.name, topic, [], None, 0, True)
        records = envelope.json_reads_records(described.schema, rows, self._template(plan))
        last_row_key = dict(zip(key_names, last))
        last_key = [_json_key(last_row_key[plan.names[i]], integer)
                    for i, integer in zip(plan.key_positions, plan.key_is_integer)]
        return Chunk(plan.name, topic, records, last_key, len(rows), False)

    def _template(self, plan: _ChunkTable):
        """The source block of every event of a chunk: the stream's position at the low watermark, `row`
        0 (as Debezium's incremental snapshot writes it)."""
        described = plan.described
        file, position = self.position
        source = source_block(self.prefix, ts_ms=time.time_ns() // 1_000_000, snapshot="incremental",
                              db=described.database, table=described.name, server_id=self.server_id, gtid=None,
                              file=file, pos=position, row=0, thread=None)
        return self.pipeline.envelope.source_template(source, ())

    def _records(self, plan: _ChunkTable, rows) -> Chunk:
        described = plan.described
        schema = described.schema
        topic = self.pipeline.envelope.topic(schema)
        if not rows:
            return Chunk(plan.name, topic, [], None, 0, True)
        template = self._template(plan)
        row_records = self.pipeline.envelope.row_records
        names = plan.names
        converters = described.converters
        records: list = []
        extend = records.extend
        for raw in rows:
            row = {name: (None if value is None else convert(value))
                   for name, value, convert in zip(names, raw, converters)}
            extend(row_records(schema, READ, None, row, template, (), None))
        last = [_json_key(rows[-1][i], integer) for i, integer in zip(plan.key_positions, plan.key_is_integer)]
        return Chunk(plan.name, topic, records, last, len(rows), False)

    def _prepare(self, table: str) -> _ChunkTable:
        database, _, name = table.partition(".")
        described = describe_table(self.conn, database, name)
        if not described.schema.columns:
            raise ConfigError(f"table {table} does not exist", fix="name a captured table")
        known = self.schemas.get(table)
        if known is not None and (known.columns, known.primary_key) == (described.schema.columns,
                                                                          described.schema.primary_key):
            described.schema = known
        else:
            described.schema = self.pipeline.versioned(described.schema)
        if not described.key:
            raise ConfigError(f"table {table} has no primary key: an incremental snapshot reads by key range",
                              fix="add a primary key, or snapshot it with a new capture (--snapshot initial)")
        names = [column.name for column in described.schema.columns]
        kinds = {column.name: column.kind for column in described.schema.columns}
        key_list = ", ".join(quote_ident(key) for key in described.key)
        json_keys = self.pipeline.envelope.json_row_keys(described.schema)
        if json_keys is not None and set(json_keys[0]) != set(described.key):
            json_keys = None  # the envelope keys the topic otherwise: rows as dicts
        plan = _ChunkTable(table, described,
                           f"SELECT {', '.join(described.expressions)} FROM {qualified(database, name)}",
                           key_list, [quote_ident(key) for key in described.key],
                           [names.index(key) for key in described.key], names,
                           [kinds[key] == "int" for key in described.key],
                           tuple(orjson.dumps(name) + b":" for name in names), json_keys)
        self.tables[table] = plan
        return plan

    def forget(self, table: str) -> None:
        """Read the table's definition again at its next chunk (its schema changed)."""
        self.tables.pop(table, None)


def keyset_condition(columns: list[str], operator: str, values: list[Any]) -> tuple[str, list[Any]]:
    """`(k1, k2, ...) <op> (v1, v2, ...)` spelled so MariaDB reads it as a range of the primary key
    (it scans the whole table for a row-constructor comparison): `k1 >= v1 AND (k1 > v1 OR ...)`."""
    strict = {">": ">", ">=": ">", "<=": "<"}[operator]
    loose = {">": ">=", ">=": ">=", "<=": "<="}[operator]
    last = len(columns) - 1
    condition = f"{columns[last]} {operator} %s"
    params: list[Any] = [values[last]]
    for index in range(last - 1, -1, -1):
        column = columns[index]
        condition = f"{column} {loose} %s AND ({column} {strict} %s OR {condition})"
        params = [values[index], values[index], *params]
    return f"({condition})", params


def _json_key(value: Any, integer: bool) -> Any:
    """A key value as the progress record stores it and the next chunk's query compares it: an int for
    an integer column, else text (the driver returns every value as bytes)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8")
    return int(value) if integer else value
