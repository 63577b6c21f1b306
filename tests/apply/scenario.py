"""Test helpers for apply: change records built with the real envelope, applied through BatchApplier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cdc.apply.batch import BatchApplier
from cdc.apply.dlq import StopPolicy
from cdc.apply.schemas import SchemaCatalog
from cdc.apply.target import open_writer
from cdc.envelope import Envelope
from cdc.events import Change, Column, TableSchema
from cdc.kafka import Record

PREFIX = "t"


def table(engine: str, name: str, columns: Iterable[Column], namespace: str | None = None, version: int = 1) -> TableSchema:
    """A TableSchema whose primary key is the columns flagged primary_key."""
    columns = tuple(columns)
    namespace = namespace or ("public" if engine == "postgresql" else "shop")
    return TableSchema(engine=engine, namespace=namespace, name=name, columns=columns, version=version,
                       primary_key=tuple(c.name for c in columns if c.primary_key))


def simple_table(engine: str = "postgresql", name: str = "items", version: int = 1, extra: tuple[Column, ...] = ()) -> TableSchema:
    """id int PK, name varchar(50), qty int, note text (+ extra columns)."""
    return table(engine, name, (
        Column("id", "integer", "int", nullable=False, primary_key=True, length=4),
        Column("name", "character varying(50)", "string", length=50),
        Column("qty", "integer", "int", length=4),
        Column("note", "text", "string"),
    ) + extra, version=version)


class Stream:
    """Builds the Kafka records of a change stream, with increasing offsets per (topic, partition)."""

    def __init__(self, prefix: str = PREFIX, partition: int = 0) -> None:
        self.envelope = Envelope(prefix)
        self.partition = partition
        self.offsets: dict[tuple[str, int], int] = {}
        self.position = 0

    def _records(self, change: Change) -> list[Record]:
        out = []
        for topic, key, value, headers in self.envelope.records(change):
            tp = (topic, self.partition)
            offset = self.offsets.get(tp, 0)
            self.offsets[tp] = offset + 1
            out.append(Record(topic, self.partition, offset, key, value, tuple(headers), 0))
        return out

    def change(self, op: str, schema: TableSchema, before: dict | None, after: dict | None) -> list[Record]:
        self.position += 1
        if schema.engine == "postgresql":
            source = {"connector": "postgresql", "name": PREFIX, "snapshot": "false", "db": "src",
                      "schema": schema.namespace, "table": schema.name, "lsn": 1000 + self.position}
        else:
            source = {"connector": "mysql", "name": PREFIX, "snapshot": "false", "db": schema.namespace,
                      "table": schema.name, "file": "binlog.000001", "pos": 1000 + self.position, "row": 0}
        return self._records(Change(op, schema, before, after, source, (self.position,)))

    def insert(self, schema: TableSchema, row: dict[str, Any]) -> list[Record]:
        return self.change("c", schema, None, row)

    def update(self, schema: TableSchema, row: dict[str, Any], before: dict | None = None) -> list[Record]:
        return self.change("u", schema, before, row)

    def delete(self, schema: TableSchema, row: dict[str, Any]) -> list[Record]:
        return self.change("d", schema, row, None)

    def truncate(self, schema: TableSchema) -> list[Record]:
        return self.change("t", schema, None, None)

    def again(self, records: list[Record]) -> list[Record]:
        """The same events sent once more at new offsets, as a restarted capture sends them."""
        out = []
        for record in records:
            tp = (record.topic, record.partition)
            offset = self.offsets.get(tp, 0)
            self.offsets[tp] = offset + 1
            out.append(Record(record.topic, record.partition, offset, record.key, record.value, record.headers,
                              record.timestamp_ms))
        return out


def catalog(*schemas: TableSchema) -> SchemaCatalog:
    found = SchemaCatalog()
    for schema in schemas:
        found.add(schema)
    return found


def applier(url: str, *schemas: TableSchema, create_tables: bool = True, policy: Any = None,
            group: str = "g") -> BatchApplier:
    writer = open_writer(url, create_tables=create_tables)
    writer.ensure_offsets_table()
    writer.ensure_table_state_table()
    return BatchApplier(writer, catalog(*schemas), group=group, prefix=PREFIX, policy=policy or StopPolicy())


def rows(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    """Run a query on a fresh connection and return all rows."""
    if url.startswith("postgres"):
        from connectors.postgres.dialect import connect

        with connect(url) as conn:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    from connectors.mysql.dialect import connect

    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def execute(url: str, sql: str) -> None:
    if url.startswith("postgres"):
        from connectors.postgres.dialect import connect

        with connect(url) as conn:
            conn.execute(sql)
        return
    from connectors.mysql.dialect import connect

    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()
