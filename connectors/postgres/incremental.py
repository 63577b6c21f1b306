"""Incremental snapshots on PostgreSQL: watermarks and signals as logical messages, chunks by key range.

Watermarks are non-transactional logical messages (`pg_logical_emit_message(false, 'cdc-watermark',
...)`): the slot decodes them at their place in the WAL, between the transactions committed before
and after, which is what the DBLog window needs. `cdc snapshot` sends its signal the same way
(prefix `cdc-signal`), so a signal is ordered with the data. Chunks are read on their own connection
in PG's text form and turned into values by the same pgoutput decoder as the regular snapshot
(`connectors.postgres.snapshot`), so an `r` row and a streamed row of the same data are identical.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from cdc.errors import ConfigError
from cdc.events import READ, TableSchema
from cdc.impl import twin
from cdc.incremental.controller import Chunk, watermark_payload
from cdc.incremental.signals import SnapshotSignal
from cdc.tables import TableFilter
from cdc.urls import DatabaseUrl
from connectors.postgres.dialect import connect, qualified, quote_ident
from connectors.postgres.offsets import lsn_to_int
from connectors.postgres.schema import CatalogTable, read_table, table_oid, table_schema, type_codec
from connectors.postgres.snapshot import relation_message
from connectors.postgres.source_info import source_block
from connectors.postgres.types import is_builtin

PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder

_INSERT_HEAD = struct.Struct("!cIch")
_TEXT_VALUE = struct.Struct("!ci")
WATERMARK_PREFIX = "cdc-watermark"
SIGNAL_PREFIX = "cdc-signal"


def default_namespace(url: DatabaseUrl) -> str:
    """The schema of a table named without one."""
    return "public"


def send_signal(url: DatabaseUrl, signal: SnapshotSignal) -> int:
    """Write `signal` into the source's WAL, where the capture's slot reads it; returns its LSN."""
    with connect(url) as conn:
        row = conn.execute("SELECT pg_logical_emit_message(false, %s, %s)::text",
                           (SIGNAL_PREFIX, signal.to_json().decode())).fetchone()
    return row[0]


@dataclass(slots=True)
class _ChunkTable:
    """What reading one table's chunks needs, prepared once."""

    name: str
    catalog: CatalogTable
    schema: TableSchema
    select: str  # SELECT ... FROM ... (no WHERE)
    key_list: str
    key_bound: str  # (%s::type, ...)
    key_positions: list[int]


class PostgresChunks:
    """The `cdc.incremental.ChunkSource` of a PG capture."""

    def __init__(self, url: DatabaseUrl, pipeline, *, prefix: str, database: str, publication: str,
                 table_filter: TableFilter) -> None:
        self.url = url
        self.pipeline = pipeline
        self.prefix = prefix
        self.database = database
        self.publication = publication
        self.table_filter = table_filter
        self.conn = connect(url)  # the stream's thread: catalog, tables
        self.read_conn = connect(url)  # the chunk reader's thread: watermarks and chunks
        self.decoder = PgoutputDecoder()
        self.tables: dict[str, _ChunkTable] = {}
        self.low_lsn = 0

    def close(self) -> None:
        self.conn.close()
        self.read_conn.close()

    def topic_of(self, table: str) -> str:
        plan = self.tables.get(table) or self._prepare(table)
        self.pipeline.publish_schema(plan.schema)
        return self.pipeline.envelope.topic(plan.schema)

    def write_watermark(self, chunk_id: str, kind: str) -> None:
        """A non-transactional logical message: decoded where it is in the WAL."""
        row = self.read_conn.execute("SELECT pg_logical_emit_message(false, %s, %s)",
                                (WATERMARK_PREFIX, watermark_payload(self.prefix, chunk_id, kind))).fetchone()
        if kind == "low":
            self.low_lsn = lsn_to_int(str(row[0]))

    def captures(self, table: str) -> bool:
        namespace, _, name = table.partition(".")
        if not self.table_filter(namespace, name):
            return False
        row = self.conn.execute("SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s "
                                "AND tablename = %s", (self.publication, namespace, name)).fetchone()
        return row is not None

    def captured_tables(self) -> list[str]:
        rows = self.conn.execute("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                                 (self.publication,)).fetchall()
        return sorted(f"{namespace}.{name}" for namespace, name in rows if self.table_filter(namespace, name))

    def read_chunk(self, table: str, after: list[Any] | None, low: list[Any] | None, high: list[Any] | None,
                   where: str | None, limit: int) -> Chunk:
        plan = self.tables[table]  # prepared by topic_of
        conditions, params = [], []
        if after is not None:
            conditions.append(f"({plan.key_list}) > ({plan.key_bound})")
            params += after
        elif low is not None:
            conditions.append(f"({plan.key_list}) >= ({plan.key_bound})")
            params += low
        if high is not None:
            conditions.append(f"({plan.key_list}) <= ({plan.key_bound})")
            params += high
        if where:
            conditions.append(f"({where})")
        sql = plan.select + (" WHERE " + " AND ".join(conditions) if conditions else "") + \
            f" ORDER BY {plan.key_list} LIMIT {int(limit)}"
        try:
            with self.read_conn.transaction():
                self.read_conn.execute("SET TRANSACTION READ ONLY")
                cursor = self.read_conn.execute(sql, params)
                result = cursor.pgresult
        except psycopg.errors.SyntaxError as exc:
            raise ConfigError(f"the snapshot condition of {table} is not valid SQL: {str(exc).strip()}") from None
        except psycopg.errors.UndefinedTable:
            raise ConfigError(f"table {table} no longer exists") from None
        return self._records(plan, result)

    def _records(self, plan: _ChunkTable, result) -> Chunk:
        """The chunk's `r` records, built by the regular snapshot's decoder and the envelope's row path."""
        schema = plan.schema
        count = result.ntuples if result is not None else 0
        topic = self.pipeline.envelope.topic(schema)
        if not count:
            return Chunk(plan.name, topic, [], None, 0, True)
        ncols = result.nfields
        get = result.get_value
        relid = plan.catalog.relid
        decode = self.decoder.decode
        lsn = self.low_lsn
        source = source_block(self.prefix, self.database, time.time_ns() // 1000, "incremental", schema.namespace,
                              schema.name, None, lsn, None)
        template = self.pipeline.envelope.source_template(source, ())
        row_records = self.pipeline.envelope.row_records
        records: list = []
        extend = records.extend
        columns = range(ncols)
        head = _INSERT_HEAD.pack(b"I", relid, b"N", ncols)  # a pgoutput Insert, as insert_message builds it
        text = _TEXT_VALUE.pack
        for index in range(count):
            parts = [head]
            for column in columns:
                value = get(index, column)
                if value is None:
                    parts.append(b"n")
                else:
                    parts.append(text(b"t", len(value)))
                    parts.append(value)
            row = decode(b"".join(parts), lsn)[3]
            extend(row_records(schema, READ, None, row, template, (), None))
        last = [get(count - 1, position).decode() for position in plan.key_positions]
        return Chunk(plan.name, topic, records, last, count, False)

    def _prepare(self, table: str) -> _ChunkTable:
        namespace, _, name = table.partition(".")
        relid = table_oid(self.conn, namespace, name)
        catalog = read_table(self.conn, relid) if relid is not None else None
        if catalog is None:
            raise ConfigError(f"table {table} does not exist", fix="name a captured table")
        if not catalog.primary_key:
            raise ConfigError(f"table {table} has no primary key: an incremental snapshot reads by key range",
                              fix="add a primary key, or snapshot it with a new capture (--snapshot initial)")
        for column in catalog.columns:
            if not is_builtin(column.type_oid):
                self.decoder.set_type_codec(column.type_oid, type_codec(self.conn, column.type_oid))
        self.decoder.decode(relation_message(catalog), 0)
        schema = self.pipeline.versioned(table_schema(catalog.relation(), catalog, database=self.database))
        names = [column.name for column in catalog.columns]
        types = {column.name: column.type_name for column in catalog.columns}
        key_list = ", ".join(quote_ident(key) for key in catalog.primary_key)
        plan = _ChunkTable(
            table, catalog, schema,
            f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {qualified(namespace, name)}",
            key_list, ", ".join(f"%s::{types[key]}" for key in catalog.primary_key),
            [names.index(key) for key in catalog.primary_key])
        self.tables[table] = plan
        return plan

    def forget(self, table: str) -> None:
        """Read the table's definition again at its next chunk (its schema changed)."""
        self.tables.pop(table, None)
