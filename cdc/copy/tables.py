"""Target tables that `cdc copy --create-tables` makes: created from the source's schema, keys built after the load.

A missing target table is created with the DDL `cdc apply --create-tables` uses (the target writer's
`create_table_sql`, types from the target's type map: docs/type-mapping.md). Where the target's
engine builds a primary key faster after the rows are in (PostgreSQL), the table is created without
it; every index and unique constraint of the source table is built after the load, `workers` at a
time. Same engine (PostgreSQL to PostgreSQL): the source's own definitions; across engines: plain
column indexes whose column types the target can index, the rest skipped with a reason.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cdc.registry import open_writer

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class SourceIndex:
    """One index (or key/unique constraint) of a source table."""

    name: str
    columns: tuple[str, ...]  # plain columns in key order; empty for an index on expressions
    unique: bool = False
    primary: bool = False
    method: str = "btree"  # btree, hash, gin, fulltext, spatial, ...
    partial: bool = False  # PostgreSQL: has a WHERE predicate
    definition: str | None = None  # the source engine's own DDL for it (same-engine targets), see bulk.py


@dataclass(slots=True)
class KeyPlan:
    """What to build on one created table once its rows are in."""

    table: str
    keys: list[str] = field(default_factory=list)     # primary key / constraints: in order, one connection
    indexes: list[str] = field(default_factory=list)  # independent statements: in parallel
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (index, why)


def not_portable(index: SourceIndex) -> str | None:
    """Why an index from another engine cannot be rebuilt from its column list (None: it can)."""
    if not index.columns:
        return "it indexes expressions or column prefixes"
    if index.partial:
        return "it is partial"
    if index.method not in ("btree", "hash"):
        return f"its method {index.method} has no equivalent"
    return None


def missing_tables(target, conn, tables: list[str]) -> list[str]:
    """The tables whose target table does not exist."""
    return [table for table in tables if not target.exists(conn, table)]


def create_tables(source, reader, target, target_url: str, tables: list[str],
                  created: list[str]) -> list[KeyPlan]:
    """Create each table in the target from the source's schema (as of the snapshot), appending it to
    `created` as it is made; their key plans."""
    writer, conn = open_writer(target_url), target.connect()
    plans = []
    try:
        for table in tables:
            schema = source.table_schema(reader, table)
            if target.defer_primary_key:
                schema = dataclasses.replace(schema, primary_key=())
            namespace, name = target.location(table)
            writer.execute_ddl(writer.create_table_sql(namespace, name, schema))
            created.append(table)
            log.info("created target table", extra={"table": f"{namespace}.{name}"})
            plan = target.key_plan(conn, table, source.indexes(reader, table), source.engine)
            for index, why in plan.skipped:
                log.warning("index not created", extra={"table": table, "index": index, "reason": why})
            plans.append(plan)
    finally:
        conn.close()
        writer.close()
    return plans


def build_keys(target, plans: list[KeyPlan], workers: int) -> None:
    """Run the key plans: each table's keys in order, then every index, `workers` statements at a time."""
    def run(statements: list[str]) -> None:
        conn = target.connect()
        try:
            target.run_ddl(conn, statements)
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="copy-keys") as pool:
        list(pool.map(run, [plan.keys for plan in plans if plan.keys]))
        list(pool.map(run, [[index] for plan in plans for index in plan.indexes]))


def drop_tables(target, tables: list[str]) -> None:
    """Drop tables this copy created (after a failed copy, so a new run starts from nothing)."""
    conn = target.connect()
    try:
        target.run_ddl(conn, [f"DROP TABLE IF EXISTS {target.target_table(table)}" for table in tables])
    finally:
        conn.close()
