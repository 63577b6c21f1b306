"""What every target writer shares: the table it writes, schema evolution, and the writer interface.

An engine's writer (`connectors/<engine>/target.py`) subclasses `TargetWriter` and supplies the SQL:
describing, creating and altering tables, writing a folded batch, writing one event, and the
`cdc_offsets` rows. Everything here is engine-neutral: mapping a source schema onto the target's
columns, converting rows to tuples in target column order, and deciding which DDL a schema change needs.
"""

from __future__ import annotations

import abc
import logging
import operator
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cdc.apply.fold import FoldedBatch
from cdc.apply.typemap import is_widening
from cdc.apply.values import Converter
from cdc.errors import ConfigError, TargetError
from cdc.events import UNAVAILABLE_VALUE, Column, TableSchema
from cdc.registry import open_writer, type_map  # noqa: F401 - open_writer is also imported from here
from cdc.urls import DatabaseUrl

log = logging.getLogger(__name__)

OFFSETS_TABLE = "cdc_offsets"
TRANSACTIONS_TABLE = "cdc_transactions"  # --consistency transaction: applied source transactions
TABLE_STATE_TABLE = "cdc_table_state"  # per table: last applied source position (keyless), parked reason
TABLE_STATE_COLUMNS = ("source_position", "parked")
DROP_POLICIES = ("keep", "drop")

TopicPartition = tuple[str, int]


@dataclass(slots=True, frozen=True)
class TargetColumn:
    """A column as the target database describes it."""

    name: str
    type: str
    nullable: bool
    generated: bool = False  # computed by the target (GENERATED ALWAYS AS ...): never written


class TargetTable:
    """A source table as written into one target table: column order, key, per-column converters."""

    __slots__ = ("schema", "namespace", "name", "columns", "key", "types", "_convert", "_key_convert",
                 "_get_all", "_index")

    def __init__(self, schema: TableSchema, namespace: str, name: str, target_columns: dict[str, TargetColumn],
                 adapt: Any) -> None:
        self.schema = schema
        self.namespace = namespace
        self.name = name
        by_name = {column.name: column for column in schema.columns}
        self.columns: tuple[str, ...] = tuple(c.name for c in schema.columns
                                              if c.name in target_columns and not target_columns[c.name].generated)
        self.key: tuple[str, ...] = tuple(schema.primary_key) or tuple(c.name for c in schema.columns if c.primary_key)
        self.types = {name: target_columns[name].type for name in self.columns}
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._convert: list[tuple[int, Converter]] = []
        for i, name in enumerate(self.columns):
            convert = adapt(by_name[name], self.types[name])
            if convert is not None:
                self._convert.append((i, convert))
        self._key_convert = [adapt(by_name[name], self.types.get(name, "")) for name in self.key]
        self._get_all = operator.itemgetter(*self.columns) if len(self.columns) > 1 else None

    @property
    def title(self) -> str:
        """`namespace.name` of the target table, for messages."""
        return f"{self.namespace}.{self.name}"

    def row_groups(self, rows: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[list[Any]]]]:
        """Rows as value lists in target column order, grouped by the columns they set.

        Most rows set every column (one group). A row with the unchanged-TOAST placeholder, or one
        written under an older schema that lacks a column, sets only the columns it has: the target
        keeps its value of the others.
        """
        full: list[list[Any]] = []
        partial: dict[tuple[str, ...], list[list[Any]]] = {}
        get_all = self._get_all
        for row in rows:
            try:
                values = list(get_all(row)) if get_all is not None else [row[self.columns[0]]]
            except KeyError:
                values = None
            if values is None or UNAVAILABLE_VALUE in values:
                names = tuple(n for n in self.columns if n in row and row[n] != UNAVAILABLE_VALUE)
                partial.setdefault(names, []).append(self._convert_some(names, row))
                continue
            for i, convert in self._convert:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            full.append(values)
        groups = [(self.columns, full)] if full else []
        groups.extend(partial.items())
        return groups

    def _convert_some(self, names: tuple[str, ...], row: dict[str, Any]) -> list[Any]:
        converters = dict(self._convert)
        values = []
        for name in names:
            value = row[name]
            convert = converters.get(self._index[name])
            values.append(convert(value) if convert is not None and value is not None else value)
        return values

    def key_values(self, keys: Iterable[tuple]) -> list[tuple]:
        """Primary-key tuples converted to the target's types."""
        converters = self._key_convert
        if not any(converters):
            return list(keys)
        return [tuple(v if c is None or v is None else c(v) for v, c in zip(key, converters)) for key in keys]


class TargetWriter(abc.ABC):
    """One connection to a target database, writing batches and offsets in transactions."""

    engine: str = ""
    # Target tables kept per (table, schema version); the least recently used beyond this are forgotten
    # (a DDL flood on the source makes a version per ALTER: docs/security.md, "Resource bounds").
    MAX_CACHED_TABLES = 256

    def __init__(self, url: DatabaseUrl, *, create_tables: bool = False, drop_columns: str = "keep",
                 namespace: str | None = None) -> None:
        if drop_columns not in DROP_POLICIES:
            raise ConfigError(f"drop-columns policy {drop_columns!r} is not one of {', '.join(DROP_POLICIES)}")
        self.url = url
        self.create_tables = create_tables
        self.drop_columns = drop_columns
        self.namespace = namespace
        self._tables: OrderedDict[tuple[str, int], TargetTable] = OrderedDict()
        self._claims: dict[tuple[str, str], str] = {}  # target (namespace, table) -> the source table written there

    # --- engine hooks ---

    @abc.abstractmethod
    def location(self, schema: TableSchema) -> tuple[str, str]:
        """(namespace, table) in the target for a source table."""

    @abc.abstractmethod
    def describe(self, namespace: str, name: str) -> dict[str, TargetColumn] | None:
        """The target table's columns by name (in table order), or None when it does not exist."""

    @abc.abstractmethod
    def unique_keys(self, namespace: str, name: str) -> list[set[str]]:
        """Column sets of the table's primary key and unique indexes."""

    @abc.abstractmethod
    def execute_ddl(self, statement: str) -> None:
        """Run one DDL statement and commit it."""

    @abc.abstractmethod
    def create_table_sql(self, namespace: str, name: str, schema: TableSchema) -> str:
        """CREATE TABLE for a source schema, types from the type map."""

    @abc.abstractmethod
    def add_column_sql(self, namespace: str, name: str, column: Column) -> str: ...

    @abc.abstractmethod
    def alter_type_sql(self, namespace: str, name: str, column: str, type_name: str) -> str: ...

    @abc.abstractmethod
    def drop_column_sql(self, namespace: str, name: str, column: str) -> str: ...

    @abc.abstractmethod
    def drop_not_null_sql(self, namespace: str, name: str, column: TargetColumn) -> str: ...

    @abc.abstractmethod
    def adapt(self, column: Column, target_type: str) -> Converter | None:
        """The converter for a column's values into this engine's column type (None: as they are)."""

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def savepoint(self) -> None:
        """Set the (single, reused) savepoint inside the open transaction."""

    @abc.abstractmethod
    def rollback_to_savepoint(self) -> None: ...

    @abc.abstractmethod
    def write(self, table: TargetTable, folded: FoldedBatch, groups: list | None = None,
              keys: list | None = None, rendered: Any = None) -> None:
        """Write a folded batch (truncate, deletes, upserts) inside the open transaction.

        `groups` / `keys`: the upserts and delete keys already converted (`row_groups`, `key_values`);
        `rendered`: what `render` returned for them.
        """

    def render(self, table: TargetTable, folded: FoldedBatch, groups: list, keys: list) -> Any:
        """Work on a folded batch that needs no connection (e.g. SQL text), for `write(rendered=...)`.

        Runs while the previous batch is being written (the apply worker overlaps them), so the write
        itself only talks to the database. ValueError/TypeError: a value does not fit (the batch is then
        written event by event to isolate it). None (the default): nothing to prepare.
        """
        return None

    @abc.abstractmethod
    def upsert_row(self, table: TargetTable, row: dict[str, Any]) -> None:
        """Insert or update one row with a single statement (row-by-row path)."""

    @abc.abstractmethod
    def delete_key(self, table: TargetTable, key: tuple) -> None:
        """Delete one row by primary key with a single statement (row-by-row path)."""

    @abc.abstractmethod
    def truncate(self, table: TargetTable) -> None:
        """Empty the table inside the open transaction."""

    @abc.abstractmethod
    def ensure_offsets_table(self) -> None:
        """Create `cdc_offsets` unless it exists."""

    @abc.abstractmethod
    def load_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None,
                     *, lock: bool = False) -> dict[TopicPartition, int]:
        """Stored next offsets of the group (only `partitions` when given); lock=True locks the rows."""

    @abc.abstractmethod
    def store_offsets(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        """Upsert next offsets inside the open transaction."""

    @abc.abstractmethod
    def query(self, statement: str, args: Any = ()) -> list[tuple]:
        """Run one statement (%s placeholders) inside the open transaction; its rows, if any."""

    @abc.abstractmethod
    def transactions_table_sql(self) -> tuple[str, str]:
        """(quoted name, CREATE TABLE IF NOT EXISTS statement) of `cdc_transactions`."""

    @abc.abstractmethod
    def table_state_sql(self) -> tuple[str, str]:
        """(quoted name, CREATE TABLE IF NOT EXISTS statement) of `cdc_table_state`
        (group_id, table_name, source_position, parked)."""

    @abc.abstractmethod
    def store_table_state(self, group: str, table: str, column: str, value: str | None) -> None:
        """Set one column (one of TABLE_STATE_COLUMNS) of a table's state row, inside the open transaction."""

    @abc.abstractmethod
    def insert_rows(self, table: TargetTable, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
        """Plain bulk insert (no upsert) into a table without a primary key."""

    @abc.abstractmethod
    def delete_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any]) -> bool:
        """Delete exactly one row whose columns equal `values` (NULL matches NULL); False when none does."""

    @abc.abstractmethod
    def update_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any],
                   set_columns: tuple[str, ...], set_values: list[Any]) -> bool:
        """Update exactly one row whose columns equal `values` (NULL matches NULL); False when none does."""

    @abc.abstractmethod
    def is_data_error(self, exc: BaseException) -> bool:
        """True when exc is about the data of a row (bad value, constraint), not the connection."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- shared logic ---

    def column_type(self, column: Column, source_engine: str) -> str:
        """This engine's column type for a column captured from `source_engine` (its type map)."""
        return type_map(self.engine).column_type(column, source_engine)

    def ensure_transactions_table(self) -> None:
        """Create `cdc_transactions` (group_id, txn_id, positions) unless it exists."""
        self.execute_ddl(self.transactions_table_sql()[1])

    def ensure_table_state_table(self) -> None:
        """Create `cdc_table_state` unless it exists."""
        self.execute_ddl(self.table_state_sql()[1])

    def load_parked_tables(self, group: str) -> dict[str, str]:
        """Tables parked by `--on-error skip-table`: source table -> reason."""
        rows = self.query(f"SELECT table_name, parked FROM {self.table_state_sql()[0]}"
                          " WHERE group_id = %s AND parked IS NOT NULL", (group,))
        self.rollback()
        return dict(rows)

    def load_applied_transactions(self, group: str) -> dict[str, str]:
        """Applied source transactions whose events may still be read again: txn id -> positions JSON."""
        name = self.transactions_table_sql()[0]
        rows = self.query(f"SELECT txn_id, positions FROM {name} WHERE group_id = %s", (group,))
        self.rollback()
        return dict(rows)

    def store_applied_transaction(self, group: str, txn_id: str, positions: str) -> None:
        """Record an applied source transaction (inside the transaction that applies it)."""
        name = self.transactions_table_sql()[0]
        self.query(f"INSERT INTO {name} (group_id, txn_id, positions) VALUES (%s, %s, %s)", (group, txn_id, positions))

    def forget_applied_transactions(self, group: str, txn_ids: list[str]) -> None:
        """Drop records of transactions none of whose events can be read again."""
        if txn_ids:
            name = self.transactions_table_sql()[0]
            marks = ", ".join(["%s"] * len(txn_ids))
            self.query(f"DELETE FROM {name} WHERE group_id = %s AND txn_id IN ({marks})", (group, *txn_ids))

    def claim(self, schema: TableSchema) -> tuple[str, str]:
        """The target (namespace, table) of a source table; TargetError when another source table maps there.

        The mapping rule is the engine's `location` (docs/security.md, "Names and topics"): a MySQL
        target puts every source schema's tables in the URL's database, so `public.orders` and
        `archive.orders` would fold into one table; that is refused, never merged.
        """
        location = self.location(schema)
        owner = self._claims.setdefault(location, schema.qualified_name)
        if owner != schema.qualified_name:
            raise TargetError(
                f"source tables {owner} and {schema.qualified_name} both map to target table"
                f" {location[0]}.{location[1]}",
                fix="apply them to different target databases (one `cdc apply` per source schema, with --tables),"
                    " or rename one at the source")
        return location

    def table_for(self, schema: TableSchema) -> TargetTable:
        """The target table for a schema version: checked, created or evolved once per version (LRU-bounded)."""
        cache_key = (schema.qualified_name, schema.version)
        tables = self._tables
        table = tables.get(cache_key)
        if table is None:
            self.claim(schema)
            table = self._prepare(schema)
            tables[cache_key] = table
            while len(tables) > self.MAX_CACHED_TABLES:
                self.forget_table(tables.popitem(last=False)[1])
        else:
            tables.move_to_end(cache_key)
        return table

    def forget_table(self, table: TargetTable) -> None:
        """Drop what the writer keeps for a target table it no longer caches (engine hook; nothing by default)."""

    def knows(self, schema: TableSchema) -> bool:
        """True when the target table for this schema version was checked already (no DDL needed)."""
        return (schema.qualified_name, schema.version) in self._tables

    def forget_tables(self) -> None:
        """Forget what is known about target tables (after an error or outside DDL)."""
        for table in self._tables.values():
            self.forget_table(table)
        self._tables.clear()

    def _prepare(self, schema: TableSchema) -> TargetTable:
        namespace, name = self.location(schema)
        existing = self.describe(namespace, name)
        if existing is None:
            if not self.create_tables:
                raise TargetError(
                    f"target table {namespace}.{name} (for source table {schema.qualified_name}) does not exist"
                    f" in {self.url.redacted()}",
                    fix="create it, or run `cdc apply` with --create-tables to create it from the source schema",
                )
            self.execute_ddl(self.create_table_sql(namespace, name, schema))
            log.info("created target table", extra={"table": f"{namespace}.{name}"})
            existing = self.describe(namespace, name)
            if existing is None:
                raise TargetError(f"target table {namespace}.{name} was created but cannot be found")
        elif self._evolve(namespace, name, schema, existing):
            existing = self.describe(namespace, name) or {}
        table = TargetTable(schema, namespace, name, existing, self.adapt)
        missing_key = [column for column in table.key if column not in existing]
        if missing_key:
            raise TargetError(f"target table {namespace}.{name} lacks primary-key column(s) {', '.join(missing_key)}",
                              fix="add them, or drop the table and run with --create-tables")
        if table.key and set(table.key) not in self.unique_keys(namespace, name):
            raise TargetError(
                f"target table {namespace}.{name} has no primary key or unique index on ({', '.join(table.key)}),"
                " the source's primary key, which upserts need",
                fix=f"add PRIMARY KEY ({', '.join(table.key)}) to the target table")
        return table

    def _evolve(self, namespace: str, name: str, schema: TableSchema, existing: dict[str, TargetColumn]) -> bool:
        """Apply a schema change: add new columns, widen types, keep or drop removed columns."""
        statements = []
        for column in schema.columns:
            wanted = self.column_type(column, schema.engine)
            current = existing.get(column.name)
            if current is None:
                statements.append(self.add_column_sql(namespace, name, column))
            elif current.generated:
                continue  # the target computes it (a source's published generated column, PG 18)
            elif is_widening(current.type, wanted.removesuffix(" NULL")):
                statements.append(self.alter_type_sql(namespace, name, column.name, wanted))
        source_names = set(schema.column_names)
        for column in existing.values():
            if column.name in source_names:
                continue
            if self.drop_columns == "drop":
                statements.append(self.drop_column_sql(namespace, name, column.name))
            elif not column.nullable:
                statements.append(self.drop_not_null_sql(namespace, name, column))
        for statement in statements:
            log.info("schema change", extra={"table": f"{namespace}.{name}", "ddl": statement})
            self.execute_ddl(statement)
        return bool(statements)

