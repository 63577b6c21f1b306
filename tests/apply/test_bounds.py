"""Resource bounds of apply: per-schema-version caches under a DDL flood, the transaction buffer."""

from __future__ import annotations

import time

import orjson
import pytest

from cdc.apply.transactions import TransactionApplier
from cdc.errors import PERMANENT_EXIT_CODE, ResourceLimitError
from cdc.events import Change, Column, TableSchema
from cdc.kafka import Record
from tests.apply.scenario import Stream, applier, rows, simple_table

VERSIONS = 1000


def _stage_tables(url: str) -> int:
    return rows(url, "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'cdc_stage_%%'")[0][0]


def _version(base: TableSchema, version: int, added: int) -> TableSchema:
    """Version `version` of `base` with `added` more int columns."""
    columns = base.columns + tuple(Column(f"c{i}", "integer", "int", length=4) for i in range(1, added + 1))
    return TableSchema("postgresql", "public", base.name, columns, version, primary_key=("id",))


@pytest.mark.timeout(180)
def test_a_ddl_flood_keeps_the_target_table_cache_bounded(pg_database):
    """1,000 schema versions (a source ALTER each; every 50th adds a column the target must get too)."""
    base = simple_table("postgresql", name="flood")
    work = applier(pg_database, base)
    writer = work.writer
    started = time.monotonic()
    try:
        for version in range(1, VERSIONS + 1):
            writer.table_for(_version(base, version, version // 50))
            assert len(writer._tables) <= writer.MAX_CACHED_TABLES
        newest = writer.table_for(_version(base, VERSIONS, VERSIONS // 50))
        assert newest.columns[-1] == f"c{VERSIONS // 50}"
        assert len(writer._tables) == writer.MAX_CACHED_TABLES
    finally:
        writer.close()
    print(f"{VERSIONS} schema versions in {time.monotonic() - started:.1f}s")


def test_stage_tables_follow_the_table_cache(pg_database):
    """The PostgreSQL writer's temp stage tables of a forgotten table version are dropped (and never reused)."""
    base = simple_table("postgresql", name="staged")
    stream = Stream()
    work = applier(pg_database, base)
    writer = work.writer
    writer.MAX_CACHED_TABLES = 4
    try:
        for version in range(1, 13):
            schema = _version(base, version, version // 3)
            work.schemas.add(schema)
            row = {"id": version % 5, "name": "n", "qty": version, "note": None}
            row.update({c.name: version for c in schema.columns[4:]})
            work.apply(stream.insert(schema, row))
            work.apply(stream.delete(schema, {"id": (version + 1) % 5}))
            assert len(writer._stages) <= 2 * writer.MAX_CACHED_TABLES
        assert _stage_tables(pg_database) <= 2 * writer.MAX_CACHED_TABLES + 2
        assert rows(pg_database, "SELECT qty, c4 FROM staged WHERE id = 2") == [(12, 12)]
    finally:
        writer.close()


def _transaction_records(stream: Stream, schema: TableSchema, txn: str, count: int) -> list[Record]:
    records = []
    for order in range(1, count + 1):
        stream.position += 1
        source = {"connector": "postgresql", "schema": schema.namespace, "table": schema.name}
        change = Change("c", schema, None, {"id": order, "name": "x", "qty": order, "note": "y" * 200}, source,
                        (stream.position,), {"id": txn, "total_order": order, "data_collection_order": order})
        records += stream._records(change)
    return records


def test_a_transaction_over_the_bound_stops_apply_writing_nothing(pg_database):
    schema = simple_table("postgresql", name="big_txn")
    stream = Stream()
    work = TransactionApplier(applier(pg_database, schema), "t", max_held_bytes=20_000)
    try:
        small = _transaction_records(stream, schema, "1:1", 5)
        end = Record("t.transaction", 0, 0, b"{}", orjson.dumps({"status": "END", "id": "1:1", "event_count": 5}),
                     (), 0)
        work.apply(small + [end])
        assert rows(pg_database, "SELECT count(*) FROM big_txn") == [(5,)]
        with pytest.raises(ResourceLimitError, match=r"over --max-transaction-bytes 20000; the largest, transaction"
                                                     r" 2:2, has \d+ events") as raised:
            work.apply(_transaction_records(stream, schema, "2:2", 200))
        assert raised.value.exit_code == PERMANENT_EXIT_CODE
        assert rows(pg_database, "SELECT count(*) FROM big_txn") == [(5,)]
    finally:
        work.writer.close()
