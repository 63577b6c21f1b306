"""MySQL/MariaDB target writer: multi-row `INSERT .. ON DUPLICATE KEY UPDATE` and `DELETE .. IN`.

A folded batch becomes, inside the caller's transaction:
    DELETE FROM target                                        (when the batch truncated: TRUNCATE
                                                               would commit the transaction)
    DELETE FROM target WHERE (pk) IN ((..), ..)               (deletes, in chunks)
    INSERT INTO target (..) VALUES (..), .. ON DUPLICATE KEY UPDATE c = VALUES(c), ..
The statements' text is rendered before the transaction (`render`, overlapped with the previous
batch's write by the apply worker); the transaction only sends it.
A batch of snapshot reads only is rendered as `LOAD DATA LOCAL INFILE` rows instead (`load_data`) and
loaded under a savepoint through a private temporary file: when the server skipped a row (LOCAL loads
skip duplicate keys) or warned about a value, it is rolled back to the savepoint and written with the
INSERT statements; after a duplicate key the table's next 20 batches take the INSERT path. A server
that refuses LOCAL INFILE is logged once and the writer keeps to the INSERT path.
Identifiers are quoted with `quote_ident`; values are bound (escaped by the driver). The session runs
in strict SQL mode, so a value that does not fit its column is an error, never silently truncated.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import shutil
import tempfile
from decimal import Decimal
from collections.abc import Iterable
from typing import Any

import orjson
import pymysql

from cdc.apply.fold import FoldedBatch
from cdc.apply.target import OFFSETS_TABLE, TABLE_STATE_COLUMNS, TABLE_STATE_TABLE, TRANSACTIONS_TABLE, TargetColumn, TargetTable, TargetWriter, TopicPartition
from connectors.mysql.typemap import column_type as mysql_type
from cdc.apply.values import Converter, converter
from cdc.errors import TargetError
from cdc.events import Column, TableSchema
from cdc.urls import DatabaseUrl
from connectors.mysql import load_data, local_infile
from connectors.mysql.dialect import connect, qualified, quote_ident

log = logging.getLogger(__name__)

DENIED_CODES = (1044, 1142, 1143)  # access denied to a database, a table command, a column

SESSION_INIT = ("SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
                "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")
# Kinds whose readable JSON form MySQL parses by the column's type in strict mode ("10.50",
# "2024-02-29T13:45:00.123456", "-838:59:59"), refusing a value that is not one.
SERVER_PARSED_KINDS = frozenset({"decimal", "date", "time", "timestamp"})
# Most rows per INSERT / keys per DELETE statement; a statement is also cut at STATEMENT_CHARS characters,
# and at a quarter of the server's max_allowed_packet (read at connect; utf8mb4 takes up to 4 bytes a
# character), so a batch of a few thousand rows is one statement: each costs a round trip and a parse.
CHUNK_ROWS = 20_000
STATEMENT_CHARS = 4 * 1024 * 1024
# Server errors about a row's data (bad value, constraint), not about the connection or the SQL.
DATA_ERRNOS = frozenset({
    1048, 1062, 1263, 1264, 1265, 1292, 1364, 1366, 1367, 1406, 1411, 1416, 1451, 1452, 1690, 3140, 3819,
    4025, 4078,
})
# The server refuses LOAD DATA LOCAL: not allowed (local_infile off; 4166 on MariaDB), disabled (MySQL 8), denied.
LOAD_REFUSED_ERRNOS = frozenset({1148, 2068, 3948, 4166, *DENIED_CODES})
UPSERT_AFTER_CONFLICT = 20  # batches of a table upserted after a load that met keys already there


class LoadBatch:
    """A rendered batch of snapshot reads: per column group, the LOAD DATA statement tail, rows text, row count."""

    __slots__ = ("loads",)

    def __init__(self, loads: list[tuple[str, bytes, int]]) -> None:
        self.loads = loads


class Writer(TargetWriter):
    """Writes folded batches and `cdc_offsets` rows into a MySQL/MariaDB database."""

    engine = "mysql"

    def __init__(self, url: DatabaseUrl, **options: Any) -> None:
        super().__init__(url, **options)
        # local_infile: the capability is announced at connect; pymysql only answers the server's
        # request for a file while `_load` runs (the flag is off otherwise).
        self.conn = local_infile.closed(connect(url, error=TargetError, autocommit=False, init_command=SESSION_INIT,
                                                local_infile=True))
        self._load_refused = not local_infile.GUARDED  # no guarded file sender: INSERT statements only
        self._load_dir: str | None = None
        self._upsert_next: dict[int, int] = {}  # id(table) -> batches of snapshot reads still to upsert
        self._offsets = qualified(url.database, OFFSETS_TABLE)
        (packet,) = self._execute("SELECT @@max_allowed_packet").fetchone()
        self.conn.rollback()
        self._statement_chars = max(16 * 1024, min(STATEMENT_CHARS, int(packet) // 4))

    def _execute(self, statement: str, args: Any = None) -> pymysql.cursors.Cursor:
        cur = self.conn.cursor()
        cur.execute(statement, args)
        return cur

    # --- tables ---

    def location(self, schema: TableSchema) -> tuple[str, str]:
        return self.namespace or self.url.database, schema.name

    def describe(self, namespace: str, name: str) -> dict[str, TargetColumn] | None:
        rows = self._execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES', EXTRA LIKE '%%GENERATED%%'"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (namespace, name),
        ).fetchall()
        self.conn.rollback()
        if not rows:
            return None
        return {name: TargetColumn(name, type_name, bool(nullable), bool(generated))
                for name, type_name, nullable, generated in rows}

    def unique_keys(self, namespace: str, name: str) -> list[set[str]]:
        rows = self._execute(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0",
            (namespace, name),
        ).fetchall()
        self.conn.rollback()
        keys: dict[str, set[str]] = {}
        for index, column in rows:
            keys.setdefault(index, set()).add(column)
        return list(keys.values())

    def execute_ddl(self, statement: str) -> None:
        try:
            self._execute(statement)
        except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as exc:
            if exc.args[0] not in DENIED_CODES:
                raise
            raise TargetError(f"user {self.url.user!r} may not create or change tables in {self.url.redacted()}: "
                              f"{exc.args[-1]}", fix="grant what apply needs (docs/security.md, Grants)") from exc
        self.conn.commit()

    def create_table_sql(self, namespace: str, name: str, schema: TableSchema) -> str:
        columns = []
        for c in schema.columns:
            type_name = mysql_type(c, schema.engine)
            not_null = not c.nullable or c.primary_key
            if type_name.endswith(" NULL"):
                type_name = type_name.removesuffix(" NULL") + ("" if not_null else " NULL")
            columns.append(f"{quote_ident(c.name)} {type_name}{' NOT NULL' if not_null else ''}")
        if schema.primary_key:
            columns.append(f"PRIMARY KEY ({', '.join(map(quote_ident, schema.primary_key))})")
        return (f"CREATE TABLE IF NOT EXISTS {qualified(namespace, name)} ({', '.join(columns)})"
                " DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin")

    def add_column_sql(self, namespace: str, name: str, column: Column) -> str:
        return (f"ALTER TABLE {qualified(namespace, name)} ADD COLUMN IF NOT EXISTS"
                f" {quote_ident(column.name)} {mysql_type(column)}")

    def alter_type_sql(self, namespace: str, name: str, column: str, type_name: str) -> str:
        return f"ALTER TABLE {qualified(namespace, name)} MODIFY COLUMN {quote_ident(column)} {type_name}"

    def drop_column_sql(self, namespace: str, name: str, column: str) -> str:
        return f"ALTER TABLE {qualified(namespace, name)} DROP COLUMN IF EXISTS {quote_ident(column)}"

    def drop_not_null_sql(self, namespace: str, name: str, column: TargetColumn) -> str:
        return f"ALTER TABLE {qualified(namespace, name)} MODIFY COLUMN {quote_ident(column.name)} {column.type} NULL"

    def adapt(self, column: Column, target_type: str) -> Converter | None:
        kind = column.kind
        target_type = target_type.lower()
        if kind in ("array", "json") and target_type.startswith(("json", "longtext")):
            return _to_json_text if kind == "array" else None
        if kind == "bits" and target_type.startswith("bit"):
            return _bits_to_int
        if kind == "timestamptz":
            return _to_utc_naive
        if kind == "float":
            return _finite_float
        if kind == "array":
            return _to_json_text
        if kind in SERVER_PARSED_KINDS:
            return None
        return converter(column)

    # --- transactions ---

    def begin(self) -> None:
        self.conn.begin()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def savepoint(self) -> None:
        self._execute("SAVEPOINT cdc_row")

    def rollback_to_savepoint(self) -> None:
        self._execute("ROLLBACK TO SAVEPOINT cdc_row")

    def close(self) -> None:
        self.conn.close()
        if self._load_dir is not None:
            shutil.rmtree(self._load_dir, ignore_errors=True)
            self._load_dir = None

    # --- writing ---

    def write(self, table: TargetTable, folded: FoldedBatch, groups: list | None = None,
              keys: list | None = None, rendered: Any = None) -> None:
        if folded.truncate:
            self.truncate(table)
        if rendered is None or isinstance(rendered, LoadBatch):
            groups = groups if groups is not None else table.row_groups(folded.upserts)
            keys = keys if keys is not None else table.key_values(folded.deletes)
            if rendered is None:
                rendered = self.render(table, folded, groups, keys)
            if isinstance(rendered, LoadBatch):
                if self._loaded(table, rendered):
                    return
                rendered = self._statements(table, groups, keys)
        execute = self.conn.cursor().execute
        for statement in rendered:
            execute(statement)

    def render(self, table: TargetTable, folded: FoldedBatch, groups: list, keys: list) -> list[str] | LoadBatch:
        """The batch's DELETE and INSERT .. ON DUPLICATE KEY UPDATE statements, values as literals.

        Built while the previous batch is written (no round trip: `_literal` escapes as the driver
        does); see `_chunked` for how rows are split into statements. A batch of snapshot reads only
        becomes a `LoadBatch` when every value has a LOAD DATA form.
        """
        if (folded.reads_only and not keys and groups and not self._load_refused
                and load_data.loadable(table)):
            try:
                return LoadBatch([(load_data.statement_tail(table, columns),
                                   load_data.rows_text(table, columns, rows), len(rows))
                                  for columns, rows in groups if rows])
            except load_data.NotLoadable:
                pass
        return self._statements(table, groups, keys)

    def _loaded(self, table: TargetTable, batch: LoadBatch) -> bool:
        """LOAD DATA the batch under a savepoint; False, with nothing written, when a row was skipped
        (a key already there: the table's next batches are upserted), a value drew a warning (the INSERT
        path reports it as strict mode does) or the server refuses LOCAL INFILE (remembered)."""
        skip = self._upsert_next.get(id(table), 0)
        if skip:
            self._upsert_next[id(table)] = skip - 1
            return False
        self._execute("SAVEPOINT cdc_load")
        try:
            for tail, text, count in batch.loads:
                loaded, warnings = self._load(tail, text)
                if loaded != count or warnings:
                    self._execute("ROLLBACK TO SAVEPOINT cdc_load")
                    if loaded < count:
                        self._upsert_next[id(table)] = UPSERT_AFTER_CONFLICT
                    return False
        except pymysql.err.MySQLError as exc:
            if not (exc.args and exc.args[0] in LOAD_REFUSED_ERRNOS):
                raise
            self._execute("ROLLBACK TO SAVEPOINT cdc_load")
            self._load_refused = True
            log.warning("the target refuses LOAD DATA LOCAL INFILE; snapshot reads are written with INSERT"
                        " statements (enable local_infile on the server for the faster initial copy)",
                        extra={"reason": str(exc.args[-1])})
            return False
        self._execute("RELEASE SAVEPOINT cdc_load")
        return True

    def _load(self, tail: str, text: bytes) -> tuple[int, int]:
        """One LOAD DATA LOCAL INFILE of `text` through a file made 0600 in a private (0700) directory and
        removed right after; (rows loaded, warnings)."""
        if self._load_dir is None:
            self._load_dir = tempfile.mkdtemp(prefix="cdc-load-")
        fd, path = tempfile.mkstemp(dir=self._load_dir, suffix=".tsv")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(text)
            cur = self.conn.cursor()
            with local_infile.sending(self.conn, path):
                cur.execute(f"LOAD DATA LOCAL INFILE {self.conn.escape(path)}{tail}")
            return cur.rowcount, cur.warning_count
        finally:
            os.unlink(path)

    def _statements(self, table: TargetTable, groups: list, keys: list) -> list[str]:
        """The DELETE and INSERT .. ON DUPLICATE KEY UPDATE statements of the batch."""
        statements = []
        if keys:
            statements.extend(self._delete_statements(table, keys))
        for columns, rows in groups:
            if rows:
                statements.extend(self._insert_statements(table, columns, rows))
        return statements

    def _literal(self, value: Any) -> str:
        """A value as an SQL literal: the common types directly, the rest through the driver's escaping."""
        render = _LITERALS.get(type(value))
        return render(value) if render is not None else self.conn.escape(value)

    def _insert_statements(self, table: TargetTable, columns: tuple[str, ...], rows: list[list[Any]],
                           upsert: bool = True) -> list[str]:
        literals = _LITERALS
        escape = self.conn.escape
        texts = []
        for row in rows:
            parts = []
            for value in row:
                render = literals.get(type(value))
                parts.append(render(value) if render is not None else escape(value))
            texts.append("(" + ",".join(parts) + ")")
        return self._chunked(f"{self._insert_head(table, columns)} VALUES ", texts,
                             self._on_duplicate(table, columns) if upsert else "")

    def _delete_statements(self, table: TargetTable, keys: list[tuple]) -> list[str]:
        literal = self._literal
        if len(table.key) == 1:
            column = quote_ident(table.key[0])
            members = [literal(key[0]) for key in keys]
        else:
            column = "(" + ", ".join(map(quote_ident, table.key)) + ")"
            members = ["(" + ",".join(map(literal, key)) + ")" for key in keys]
        return self._chunked(f"DELETE FROM {qualified(table.namespace, table.name)} WHERE {column} IN (", members, ")")

    def _chunked(self, head: str, items: list[str], tail: str) -> list[str]:
        """`head` + items joined by commas + `tail`, in as few statements as the size limits allow."""
        budget = self._statement_chars - len(head) - len(tail)
        statements = []
        start = size = 0
        for index, text in enumerate(items):
            if index > start and (size + len(text) > budget or index - start >= CHUNK_ROWS):
                statements.append(head + ",".join(items[start:index]) + tail)
                start, size = index, 0
            size += len(text) + 1
        if start < len(items):
            statements.append(head + ",".join(items[start:]) + tail)
        return statements

    @staticmethod
    def _insert_head(table: TargetTable, columns: tuple[str, ...]) -> str:
        return f"INSERT INTO {qualified(table.namespace, table.name)} ({', '.join(map(quote_ident, columns))})"

    @staticmethod
    def _on_duplicate(table: TargetTable, columns: tuple[str, ...]) -> str:
        updates = [f"{quote_ident(c)} = VALUES({quote_ident(c)})" for c in columns if c not in table.key]
        if not updates:  # every column is in the key: nothing to update, keep the row
            first = quote_ident(table.key[0])
            updates = [f"{first} = {first}"]
        return f" ON DUPLICATE KEY UPDATE {', '.join(updates)}"

    def upsert_row(self, table: TargetTable, row: dict[str, Any]) -> None:
        for columns, rows in table.row_groups([row]):
            params = ", ".join(["%s"] * len(columns))
            self._execute(f"{self._insert_head(table, columns)} VALUES ({params}){self._on_duplicate(table, columns)}",
                          rows[0])

    def delete_key(self, table: TargetTable, key: tuple) -> None:
        match = " AND ".join(f"{quote_ident(c)} = %s" for c in table.key)
        self._execute(f"DELETE FROM {qualified(table.namespace, table.name)} WHERE {match}", table.key_values([key])[0])

    def truncate(self, table: TargetTable) -> None:
        self._execute(f"DELETE FROM {qualified(table.namespace, table.name)}")

    # --- tables without a primary key ---

    def insert_rows(self, table: TargetTable, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
        """Multi-row INSERTs, chunked like the upserts."""
        execute = self.conn.cursor().execute
        for statement in self._insert_statements(table, columns, rows, upsert=False):
            execute(statement)

    @staticmethod
    def _match(columns: tuple[str, ...]) -> str:
        """The whole image, NULL-safe (`<=>`), one row (`LIMIT 1`)."""
        return " AND ".join(f"{quote_ident(c)} <=> %s" for c in columns) + " LIMIT 1"

    def delete_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any]) -> bool:
        return self._execute(f"DELETE FROM {qualified(table.namespace, table.name)} WHERE {self._match(columns)}",
                             values).rowcount == 1

    def update_one(self, table: TargetTable, columns: tuple[str, ...], values: list[Any],
                   set_columns: tuple[str, ...], set_values: list[Any]) -> bool:
        assignments = ", ".join(f"{quote_ident(c)} = %s" for c in set_columns)
        cursor = self._execute(
            f"UPDATE {qualified(table.namespace, table.name)} SET {assignments} WHERE {self._match(columns)}",
            [*set_values, *values])
        # rowcount counts changed rows: an update to the same values matches a row but changes none
        return cursor.rowcount == 1 or set_values == values

    # --- offsets ---

    def ensure_offsets_table(self) -> None:
        self.execute_ddl(
            f"CREATE TABLE IF NOT EXISTS {self._offsets} (group_id varchar(255) NOT NULL,"
            " topic varchar(255) NOT NULL, `partition` int NOT NULL, next_offset bigint NOT NULL,"
            " updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),"
            " PRIMARY KEY (group_id, topic, `partition`)) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
        )

    def load_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None,
                     *, lock: bool = False) -> dict[TopicPartition, int]:
        wanted = set(partitions) if partitions is not None else None
        rows = self._execute(
            f"SELECT topic, `partition`, next_offset FROM {self._offsets} WHERE group_id = %s"
            f"{' FOR UPDATE' if lock else ''}",
            (group,),
        ).fetchall()
        if not lock:
            self.conn.rollback()
        return {(t, p): o for t, p, o in rows if wanted is None or (t, p) in wanted}

    def store_offsets(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        rows = ",".join(["(%s, %s, %s, %s)"] * len(offsets))
        args = [value for (topic, partition), offset in offsets.items() for value in (group, topic, partition, offset)]
        self._execute(
            f"INSERT INTO {self._offsets} (group_id, topic, `partition`, next_offset) VALUES {rows}"
            " ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)",
            args,
        )

    def query(self, statement: str, args: Any = ()) -> list[tuple]:
        cur = self._execute(statement, args)
        return list(cur.fetchall()) if cur.description else []

    def transactions_table_sql(self) -> tuple[str, str]:
        name = qualified(self.url.database, TRANSACTIONS_TABLE)
        return name, (f"CREATE TABLE IF NOT EXISTS {name} (group_id varchar(255) NOT NULL,"
                      " txn_id varchar(255) NOT NULL, positions text NOT NULL, PRIMARY KEY (group_id, txn_id))"
                      " DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin")

    def table_state_sql(self) -> tuple[str, str]:
        name = qualified(self.url.database, TABLE_STATE_TABLE)
        return name, (f"CREATE TABLE IF NOT EXISTS {name} (group_id varchar(255) NOT NULL,"
                      " table_name varchar(255) NOT NULL, source_position text, parked text,"
                      " updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),"
                      " PRIMARY KEY (group_id, table_name)) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin")

    def store_table_state(self, group: str, table: str, column: str, value: str | None) -> None:
        if column not in TABLE_STATE_COLUMNS:
            raise ValueError(f"not a cdc_table_state column: {column!r}")
        self._execute(f"INSERT INTO {self.table_state_sql()[0]} (group_id, table_name, {column}) VALUES (%s, %s, %s)"
                      f" ON DUPLICATE KEY UPDATE {column} = VALUES({column})", (group, table, value))

    def is_data_error(self, exc: BaseException) -> bool:
        if isinstance(exc, (ValueError, TypeError, pymysql.err.DataError, pymysql.err.IntegrityError)):
            return True
        return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] in DATA_ERRNOS


# Same output as pymysql's escaping (the session has no NO_BACKSLASH_ESCAPES), without its dispatch.
_ESCAPES = str.maketrans({"\0": "\\0", "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z",
                          "'": "\\'", '"': '\\"'})


def _float_literal(value: float) -> str:
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"MySQL cannot store the floating-point value {text}")
    return text if "e" in text else text + "e0"


_LITERALS: dict[type, Any] = {
    str: lambda v: "'" + v.translate(_ESCAPES) + "'",
    int: int.__repr__,
    float: _float_literal,
    bool: lambda v: "1" if v else "0",
    type(None): lambda v: "NULL",
    Decimal: lambda v: format(v, "f"),
}


def _to_json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _bits_to_int(value: Any) -> int:
    if not isinstance(value, str) or value.strip("01"):
        raise ValueError(f"expected a bit string such as '0101', got {value!r}")
    return int(value, 2) if value else 0


def _to_utc_naive(value: Any) -> dt.datetime | str:
    """A UTC instant as MySQL DATETIME/TIMESTAMP input (the session time zone is UTC)."""
    if type(value) is str and value.endswith("Z") and "T" in value:
        return value[:-1]
    from cdc.apply.values import to_timestamptz

    stamp = to_timestamptz(value)
    if isinstance(stamp, str):
        raise ValueError(f"MySQL cannot store the timestamp {stamp!r}")
    return stamp.replace(tzinfo=None)


def _finite_float(value: Any) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    from cdc.apply.values import to_float

    number = to_float(value)
    if not math.isfinite(number):
        raise ValueError(f"MySQL cannot store the floating-point value {value!r}")
    return number
