"""PostgreSQL target writer: COPY into a temporary stage table, then one set-based statement per step.

A folded batch becomes, inside the caller's transaction:
    TRUNCATE target                                          (when the batch truncated)
    COPY keys -> stage;  DELETE FROM target USING stage      (deletes)
    COPY rows -> stage;  INSERT INTO target SELECT .. FROM stage ON CONFLICT (pk) DO UPDATE SET ..
A batch of snapshot reads only: COPY rows -> target under a savepoint; a key already in the target rolls
it back to the savepoint, and the table's next 20 batches take the stage path.
Identifiers are quoted with `quote_ident`; every value travels as COPY data or a bound parameter.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

import psycopg

from cdc.apply.fold import FoldedBatch
from cdc.apply.target import OFFSETS_TABLE, TABLE_STATE_COLUMNS, TABLE_STATE_TABLE, TRANSACTIONS_TABLE, TargetColumn, TargetTable, TargetWriter, TopicPartition
from connectors.postgres.typemap import column_type as pg_type
from cdc.apply.values import Converter, converter
from cdc.errors import TargetError
from cdc.events import Column, TableSchema
from cdc.urls import DatabaseUrl
from connectors.postgres.dialect import connect, qualified, quote_ident

# Kinds whose readable JSON form is already PostgreSQL input syntax for the column's type ("10.50",
# "NaN", "2024-02-29T12:45:00Z", "P1Y2M", "0101"): COPY parses them by the target column's type, and
# refuses (as a bad row) a value that is not one. Converting them in Python first would only cost time.
SERVER_PARSED_KINDS = frozenset({"decimal", "float", "date", "time", "timestamp", "timestamptz", "interval", "bits"})

# Advisory lock key serialising apply's DDL across workers ("cdcapply" as a number).
DDL_LOCK_KEY = 0x6364636170706C79

_stage_numbers = itertools.count(1)
_TYPMOD = re.compile(r"\(\d+(?:,\d+)?\)")


UPSERT_AFTER_CONFLICT = 20  # batches of a table upserted after one whose keys were in the target already


def _parameter_type(type_name: str) -> str:
    """The column's type without its length/precision, for a parameter cast.

    An explicit cast to `varchar(50)` or `bit(4)` would silently cut a longer value; cast to the
    unbounded type and let the assignment to the column check (and refuse) it, as COPY does.
    """
    base = _TYPMOD.sub("", type_name)
    return {"character": "text", "bit": "bit varying"}.get(base.removesuffix("[]"), base.removesuffix("[]")) + (
        "[]" if base.endswith("[]") else "")


def _comparable(type_name: str) -> str:
    """A cast that gives the type an equality operator (json has none): `::jsonb`, else nothing."""
    return "::jsonb" if _TYPMOD.sub("", type_name) in ("json", "json[]") else ""


def _array_type(type_name: str) -> str:
    """The array type a list of key values is cast to for `= ANY(..)`: the column's own base type, so the
    primary-key index serves the comparison (`character(n)` as `bpchar`, not text, which would not)."""
    if _TYPMOD.sub("", type_name) == "character":
        return "bpchar[]"
    return _parameter_type(type_name) + "[]"


class Writer(TargetWriter):
    """Writes folded batches and `cdc_offsets` rows into a PostgreSQL database."""

    engine = "postgresql"

    def __init__(self, url: DatabaseUrl, **options: Any) -> None:
        super().__init__(url, **options)
        self.conn = connect(url, error=TargetError, autocommit=False)
        # Each batch commits its rows and its cdc_offsets row in one transaction, so not waiting for the
        # WAL flush at commit cannot lose an offset without also losing the rows it covers: a server
        # crash may undo the last few commits (at most wal_writer_delay x 3) as if they had been rolled
        # back, never half of one, and a restart reads those records again from the offsets that did
        # survive. Nothing is acknowledged to the source side on the strength of a target commit.
        self.conn.execute("SET synchronous_commit = off")
        self.conn.commit()
        self._stages: dict[tuple[int, str], str] = {}
        self._new_stages: list[tuple[int, str]] = []
        self._retired_stages: list[str] = []  # of forgotten tables: dropped in the next write transaction
        self._dropping: list[str] = []  # retired stages whose DROP is in the open transaction
        self._dirty: set[str] = set()
        self._upsert_next: dict[int, int] = {}  # id(table) -> batches of snapshot reads still to upsert
        self._offsets = qualified(self.namespace or "public", OFFSETS_TABLE)

    # --- tables ---

    def location(self, schema: TableSchema) -> tuple[str, str]:
        namespace = self.namespace or (schema.namespace if schema.engine == "postgresql" else "public")
        return namespace, schema.name

    def describe(self, namespace: str, name: str) -> dict[str, TargetColumn] | None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, "
                + ("a.attgenerated <> ''" if self.conn.info.server_version >= 120000 else "false")
                + " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
                " ORDER BY a.attnum",
                (qualified(namespace, name),),
            )
            rows = cur.fetchall()
        self.conn.rollback()
        if not rows:
            return None
        return {name: TargetColumn(name, type_name, nullable, generated)
                for name, type_name, nullable, generated in rows}

    def unique_keys(self, namespace: str, name: str) -> list[set[str]]:
        rows = self.conn.execute(
            "SELECT array_agg(a.attname::text) FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL GROUP BY i.indexrelid",
            (qualified(namespace, name),),
        ).fetchall()
        self.conn.rollback()
        return [set(columns) for (columns,) in rows]

    def execute_ddl(self, statement: str) -> None:
        """Run DDL, one apply worker at a time (`CREATE .. IF NOT EXISTS` races between sessions)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
                cur.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            self.conn.rollback()
            raise TargetError(f"user {self.url.user!r} may not create or change tables in {self.url.redacted()}: "
                              f"{str(exc).strip()}", fix="grant what apply needs (docs/security.md, Grants)") from exc
        self.conn.commit()

    def create_table_sql(self, namespace: str, name: str, schema: TableSchema) -> str:
        columns = [
            f"{quote_ident(c.name)} {pg_type(c, schema.engine)}{'' if c.nullable or c.primary_key else ' NOT NULL'}"
            for c in schema.columns
        ]
        if schema.primary_key:
            columns.append(f"PRIMARY KEY ({', '.join(map(quote_ident, schema.primary_key))})")
        return (f"CREATE SCHEMA IF NOT EXISTS {quote_ident(namespace)};"
                f" CREATE TABLE IF NOT EXISTS {qualified(namespace, name)} ({', '.join(columns)})")

    def add_column_sql(self, namespace: str, name: str, column: Column) -> str:
        return (f"ALTER TABLE {qualified(namespace, name)} ADD COLUMN IF NOT EXISTS"
                f" {quote_ident(column.name)} {pg_type(column)}")

    def alter_type_sql(self, namespace: str, name: str, column: str, type_name: str) -> str:
        return (f"ALTER TABLE {qualified(namespace, name)} ALTER COLUMN {quote_ident(column)}"
                f" TYPE {type_name} USING {quote_ident(column)}::{type_name}")

    def drop_column_sql(self, namespace: str, name: str, column: str) -> str:
        return f"ALTER TABLE {qualified(namespace, name)} DROP COLUMN IF EXISTS {quote_ident(column)}"

    def drop_not_null_sql(self, namespace: str, name: str, column: TargetColumn) -> str:
        return f"ALTER TABLE {qualified(namespace, name)} ALTER COLUMN {quote_ident(column.name)} DROP NOT NULL"

    def adapt(self, column: Column, target_type: str) -> Converter | None:
        if column.kind in SERVER_PARSED_KINDS:
            return None
        return converter(column)

    # --- transactions ---

    def begin(self) -> None:
        """psycopg opens the transaction with the first statement (a DROP of retired stages, when any)."""
        self._dirty.clear()
        if self._retired_stages:
            self._dropping = self._retired_stages
            self._retired_stages = []
            self.conn.execute("DROP TABLE IF EXISTS " + ", ".join(map(quote_ident, self._dropping)))

    def commit(self) -> None:
        self.conn.commit()
        self._new_stages.clear()
        self._dropping = []

    def forget_table(self, table: TargetTable) -> None:
        """Retire the stage tables of a table version the writer no longer caches (its id may be reused)."""
        for role in ("keys", "rows"):
            stage = self._stages.pop((id(table), role), None)
            if stage is not None:
                self._retired_stages.append(stage)
                self._dirty.discard(stage)

    def rollback(self) -> None:
        self.conn.rollback()
        for stage in self._new_stages:  # created inside the rolled-back transaction: gone
            self._stages.pop(stage, None)
        self._new_stages.clear()
        self._retired_stages += self._dropping  # their DROP was rolled back too
        self._dropping = []

    def savepoint(self) -> None:
        self.conn.execute("SAVEPOINT cdc_row")

    def rollback_to_savepoint(self) -> None:
        self.conn.execute("ROLLBACK TO SAVEPOINT cdc_row")

    def close(self) -> None:
        self.conn.close()

    # --- writing ---

    def _stage(self, table: TargetTable, columns: tuple[str, ...], role: str) -> str:
        """A session temp table with `columns` of the target (rows vanish at commit), made once per table."""
        cache_key = (id(table), role)
        stage = self._stages.get(cache_key)
        if stage is None:
            stage = f"cdc_stage_{next(_stage_numbers)}"
            self.conn.execute(
                f"CREATE TEMP TABLE {quote_ident(stage)} ON COMMIT DELETE ROWS AS SELECT"
                f" {', '.join(map(quote_ident, columns))} FROM {qualified(table.namespace, table.name)} WITH NO DATA"
            )
            self._stages[cache_key] = stage
            self._new_stages.append(cache_key)
        elif stage in self._dirty:
            self.conn.execute(f"TRUNCATE {quote_ident(stage)}")
        self._dirty.add(stage)
        return stage

    def _copy(self, stage: str, columns: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> None:
        self._copy_into(quote_ident(stage), columns, rows)

    def _copy_into(self, target: str, columns: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> None:
        """COPY rows into `target` (a quoted name)."""
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {target} ({', '.join(map(quote_ident, columns))}) FROM STDIN") as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)

    def write(self, table: TargetTable, folded: FoldedBatch, groups: list | None = None,
              keys: list | None = None, rendered: Any = None) -> None:
        target = qualified(table.namespace, table.name)
        if folded.truncate:
            self.truncate(table)
        if folded.deletes:
            keys = keys if keys is not None else table.key_values(folded.deletes)
            if len(table.key) == 1:
                # One bound array: the primary-key index is probed per element, no stage, no join.
                column = table.key[0]
                self.conn.execute(
                    f"DELETE FROM {target} WHERE {quote_ident(column)} = ANY(%s::{_array_type(table.types[column])})",
                    ([key[0] for key in keys],),
                )
            else:
                stage = self._stage(table, table.key, "keys")
                self._copy(stage, table.key, keys)
                match = " AND ".join(f"t.{quote_ident(c)} = s.{quote_ident(c)}" for c in table.key)
                # At most one batch of keys: probing the primary-key index per key beats the hash join the
                # planner picks for a fresh temp table, which reads the whole target table every batch.
                # One round trip (no parameters: the simple query protocol runs the statements in turn).
                self.conn.execute(
                    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;"
                    f" DELETE FROM {target} AS t USING {quote_ident(stage)} AS s WHERE {match};"
                    " SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on")
        if folded.upserts:
            groups = groups if groups is not None else table.row_groups(folded.upserts)
            if folded.reads_only and not folded.deletes and self._copied_straight(table, target, groups):
                return
            for columns, rows in groups:
                stage = self._stage(table, table.columns, "rows")
                self._copy(stage, columns, rows)
                names = ", ".join(map(quote_ident, columns))
                self.conn.execute(
                    f"INSERT INTO {target} ({names}) SELECT {names} FROM {quote_ident(stage)}"
                    f"{self._on_conflict(table, columns)}"
                )

    def _copied_straight(self, table: TargetTable, target: str, groups: list) -> bool:
        """COPY a batch of snapshot reads straight into the target table, when none of its keys is there
        yet (the usual case: the stage and the upsert cost as much again); False, with nothing written,
        when one is (a batch read again after a restart): the next batches of the table are then upserted."""
        skip = self._upsert_next.get(id(table), 0)
        if skip:
            self._upsert_next[id(table)] = skip - 1
            return False
        self.conn.execute("SAVEPOINT cdc_copy_straight")
        try:
            for columns, rows in groups:
                self._copy_into(target, columns, rows)
        except psycopg.errors.UniqueViolation:
            self.conn.execute("ROLLBACK TO SAVEPOINT cdc_copy_straight")
            self._upsert_next[id(table)] = UPSERT_AFTER_CONFLICT
            return False
        self.conn.execute("RELEASE SAVEPOINT cdc_copy_straight")
        return True

    @staticmethod
    def _on_conflict(table: TargetTable, columns: tuple[str, ...]) -> str:
        updates = [f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in columns if c not in table.key]
        conflict = f" ON CONFLICT ({', '.join(map(quote_ident, table.key))})"
        return f"{conflict} DO UPDATE SET {', '.join(updates)}" if updates else f"{conflict} DO NOTHING"

    def upsert_row(self, table: TargetTable, row: dict[str, Any]) -> None:
        for columns, rows in table.row_groups([row]):
            names = ", ".join(map(quote_ident, columns))
            params = ", ".join(f"%s::{_parameter_type(table.types[c])}" for c in columns)
            self.conn.execute(
                f"INSERT INTO {qualified(table.namespace, table.name)} ({names}) VALUES ({params})"
                f"{self._on_conflict(table, columns)}",
                rows[0],
            )

    def delete_key(self, table: TargetTable, key: tuple) -> None:
        match = " AND ".join(f"{quote_ident(c)} = %s::{_parameter_type(table.types[c])}" for c in table.key)
        self.conn.execute(f"DELETE FROM {qualified(table.namespace, table.name)} WHERE {match}",
                          table.key_values([key])[0])

    def truncate(self, table: TargetTable) -> None:
        self.conn.execute(f"TRUNCATE {qualified(table.namespace, table.name)}")

    # --- tables without a primary key ---

    def insert_rows(self, table: TargetTable, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
        """COPY straight into the target table."""
        self._copy_into(qualified(table.namespace, table.name), columns, rows)

    def _match(self, table: TargetTable, columns: tuple[str, ...], values: list[Any]) -> tuple[str, list[Any]]:
        """`ctid = (SELECT ctid .. LIMIT 1)` over the whole image: one row, NULLs matched with IS NULL."""
        conditions, params = [], []
        for column, value in zip(columns, values):
            if value is None:
                conditions.append(f"{quote_ident(column)} IS NULL")
            else:
                conditions.append(f"{quote_ident(column)}{_comparable(table.types[column])}"
                                  f" = %s::{_parameter_type(table.types[column])}{_comparable(table.types[column])}")
                params.append(value)
        target = qualified(table.namespace, table.name)
        where = " AND ".join(conditions) or "true"
        return f"ctid = (SELECT ctid FROM {target} WHERE {where} LIMIT 1)", params

    def delete_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any]) -> bool:
        match, params = self._match(table, columns, values)
        return self.conn.execute(f"DELETE FROM {qualified(table.namespace, table.name)} WHERE {match}",
                                 params).rowcount == 1

    def update_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any],
                   set_columns: tuple[str, ...], set_values: list[Any]) -> bool:
        match, params = self._match(table, columns, values)
        assignments = ", ".join(f"{quote_ident(c)} = %s::{_parameter_type(table.types[c])}" for c in set_columns)
        return self.conn.execute(f"UPDATE {qualified(table.namespace, table.name)} SET {assignments} WHERE {match}",
                                 [*set_values, *params]).rowcount == 1

    # --- offsets ---

    def ensure_offsets_table(self) -> None:
        self.execute_ddl(
            f"CREATE TABLE IF NOT EXISTS {self._offsets} (group_id text NOT NULL, topic text NOT NULL,"
            " partition integer NOT NULL, next_offset bigint NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (group_id, topic, partition))"
        )

    def load_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None,
                     *, lock: bool = False) -> dict[TopicPartition, int]:
        wanted = set(partitions) if partitions is not None else None
        rows = self.conn.execute(
            f"SELECT topic, partition, next_offset FROM {self._offsets} WHERE group_id = %s"
            f"{' FOR UPDATE' if lock else ''}",
            (group,),
        ).fetchall()
        if not lock:
            self.conn.rollback()
        return {(t, p): o for t, p, o in rows if wanted is None or (t, p) in wanted}

    def store_offsets(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {self._offsets} (group_id, topic, partition, next_offset)"
                " SELECT %s, * FROM unnest(%s::text[], %s::integer[], %s::bigint[])"
                " ON CONFLICT (group_id, topic, partition) DO UPDATE"
                " SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                (group, [t for t, _ in offsets], [p for _, p in offsets], list(offsets.values())),
            )

    def query(self, statement: str, args: Any = ()) -> list[tuple]:
        cur = self.conn.execute(statement, args)
        return cur.fetchall() if cur.description else []

    def transactions_table_sql(self) -> tuple[str, str]:
        name = qualified(self.namespace or "public", TRANSACTIONS_TABLE)
        return name, (f"CREATE TABLE IF NOT EXISTS {name} (group_id text NOT NULL, txn_id text NOT NULL,"
                      " positions text NOT NULL, PRIMARY KEY (group_id, txn_id))")

    def table_state_sql(self) -> tuple[str, str]:
        name = qualified(self.namespace or "public", TABLE_STATE_TABLE)
        return name, (f"CREATE TABLE IF NOT EXISTS {name} (group_id text NOT NULL, table_name text NOT NULL,"
                      " source_position text, parked text, updated_at timestamptz NOT NULL DEFAULT now(),"
                      " PRIMARY KEY (group_id, table_name))")

    def store_table_state(self, group: str, table: str, column: str, value: str | None) -> None:
        if column not in TABLE_STATE_COLUMNS:
            raise ValueError(f"not a cdc_table_state column: {column!r}")
        self.conn.execute(
            f"INSERT INTO {self.table_state_sql()[0]} (group_id, table_name, {column}) VALUES (%s, %s, %s)"
            f" ON CONFLICT (group_id, table_name) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = now()",
            (group, table, value))

    def is_data_error(self, exc: BaseException) -> bool:
        if isinstance(exc, (ValueError, TypeError, psycopg.DataError, psycopg.IntegrityError)):
            return True
        if isinstance(exc, psycopg.ProgrammingError) and "cannot adapt" in str(exc):
            return True  # a JSON object where the column wants a scalar
        sqlstate = getattr(exc, "sqlstate", None) or ""
        # 22: data exception, 23: integrity violation, 42804: datatype mismatch (value of the wrong kind)
        return sqlstate[:2] in ("22", "23") or sqlstate == "42804"
