"""PostgreSQL side of `cdc copy`: read a consistent snapshot in parallel, write with COPY.

Source: the capture's replication slot (`cdc_<prefix>`) is created with EXPORT_SNAPSHOT, so the copy
reads every table as of the slot's consistent point, and `cdc capture --prefix <prefix>` later resumes
from that slot: the stream starts exactly where the copy's snapshot ends. Each reader connection
imports the exported snapshot (`SET TRANSACTION SNAPSHOT`), so tables and key ranges of one table
are read in parallel. The replication connection stays open (and idle) until the copy ends.

Target: rows go in with `COPY ... FROM STDIN`; from a PostgreSQL source the binary COPY stream is
passed through untouched (no row is decoded in Python).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cdc.copy.ranges import range_condition
from cdc.copy.tables import KeyPlan, SourceIndex, not_portable
from cdc.errors import SourceError, TargetError
from cdc.events import TableSchema
from cdc.urls import DatabaseUrl
from connectors.postgres.dialect import connect, qualified, quote_ident
from connectors.postgres.offsets import lsn_to_text
from connectors.postgres.replication import ReplicationConnection
from connectors.postgres.schema import read_table, table_oid, table_schema
from connectors.postgres.setup import default_name, drop_slots, prepare_source
from connectors.postgres.snapshot import _open_snapshot_connection

ENGINE = "postgresql"
FETCH_ROWS = 5000
_TYPES: dict[tuple[str, str, str], dict[str, str]] = {}  # (database, schema, table) -> column -> type name

TABLE_SQL = """
SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
KEY_SQL = """
SELECT a.attname, t.typname FROM pg_index i CROSS JOIN generate_series(0, i.indnkeyatts - 1) k
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k] JOIN pg_type t ON t.oid = a.atttypid
WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k
"""
INTEGER_TYPES = frozenset({"int2", "int4", "int8"})


# Every valid index of a table; a constraint's definition when the index backs one (primary key, unique, exclusion).
INDEXES_SQL = """
SELECT ic.relname, i.indisunique, i.indisprimary, am.amname, i.indpred IS NOT NULL,
       CASE WHEN i.indexprs IS NULL THEN ARRAY(
           SELECT a.attname FROM generate_series(0, i.indnkeyatts - 1) k
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k] ORDER BY k) END,
       CASE WHEN c.oid IS NOT NULL THEN 'CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid)
            ELSE pg_get_indexdef(i.indexrelid) END,
       c.oid IS NOT NULL, format('%%I.%%I', n.nspname, t.relname)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
WHERE i.indrelid = %s::regclass AND i.indisvalid ORDER BY i.indisprimary DESC, ic.relname
"""


def _split(name: str, namespace: str) -> tuple[str, str]:
    return tuple(name.split(".", 1)) if "." in name else (namespace, name)  # type: ignore[return-value]


# How each type is spelled in the interchange text (`copy_out_text`): what another engine's bulk loader reads.
INTERCHANGE = {
    "bool": "({c})::int", "timestamptz": "({c} AT TIME ZONE 'UTC')", "json": "({c})::text", "jsonb": "({c})::text",
}


def describe(conn, namespace: str, table: str) -> tuple[list[str], list[str], tuple[str, ...], bool]:
    """(columns, json columns, primary key columns in key order, whether the key is one integer) of a table."""
    ref = qualified(namespace, table)
    if conn.execute("SELECT to_regclass(%s)", (ref,)).fetchone()[0] is None:
        raise SourceError(f"table {namespace}.{table} does not exist in {conn.info.dbname}")
    rows = conn.execute(TABLE_SQL, (ref,)).fetchall()
    columns = [name for name, _ in rows]
    _TYPES[(conn.info.dbname, namespace, table)] = dict(rows)
    json_columns = [name for name, typname in rows if typname in ("json", "jsonb")]
    keys = conn.execute(KEY_SQL, (ref,)).fetchall()
    return columns, json_columns, tuple(name for name, _ in keys), len(keys) == 1 and keys[0][1] in INTEGER_TYPES


class BulkSource:
    """The slot's exported snapshot, opened once; readers import it."""

    engine = ENGINE
    parallel = True  # several connections can read the same snapshot

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.namespace = url.options.get("schema", "public")
        self.replication: ReplicationConnection | None = None
        self.snapshot_name: str | None = None
        self.slot: str | None = None

    def start(self, prefix: str, tables: list[str], kafka: str | None, workers: int = 1) -> str:
        """Create the capture's slot (and publication) for `prefix`, exporting its snapshot; the position."""
        self.slot = default_name(prefix)
        with connect(self.url) as conn:
            names = [".".join(_split(t, self.namespace)) for t in tables]
            _, existing = prepare_source(conn, slot=self.slot, publication=self.slot, tables=names, include=None)
        if existing is not None:
            raise SourceError(f"replication slot {self.slot} already exists: its capture has a position already",
                              fix="copy into a new prefix, or drop the slot (and the target's rows) to start over")
        self.replication = ReplicationConnection(self.url)
        created = self.replication.create_slot(self.slot, export_snapshot=True)
        self.snapshot_name = created.snapshot_name
        return lsn_to_text(created.consistent_point)

    def open_reader(self):
        return _open_snapshot_connection(self.url, self.snapshot_name)

    def close_reader(self, conn) -> None:
        conn.close()

    def describe(self, conn, table: str) -> tuple[list[str], list[str], tuple[str, ...], bool]:
        return describe(conn, *_split(table, self.namespace))

    def table_schema(self, conn, table: str) -> TableSchema:
        """The table's engine-neutral schema, as `cdc capture` would publish it."""
        namespace, name = _split(table, self.namespace)
        relid = table_oid(conn, namespace, name)
        catalog = read_table(conn, relid) if relid is not None else None
        if catalog is None:
            raise SourceError(f"table {namespace}.{name} does not exist in {conn.info.dbname}")
        return table_schema(catalog.relation(), catalog, database=conn.info.dbname)

    def indexes(self, conn, table: str) -> list[SourceIndex]:
        """The table's indexes and key/unique constraints; `definition` is PostgreSQL DDL: a constraint's
        `CONSTRAINT name ...` clause, or an index's text from `USING` on."""
        found = []
        for name, unique, primary, method, partial, columns, ddl, constraint, ref in conn.execute(
                INDEXES_SQL, (qualified(*_split(table, self.namespace)),)).fetchall():
            if not constraint:
                ddl = ddl.partition(f" ON {ref} USING ")[2] or ddl.partition(f" ON ONLY {ref} USING ")[2]
                ddl = f"USING {ddl}" if ddl else None
            found.append(SourceIndex(name, tuple(columns or ()), unique, primary, method, partial, ddl))
        return found

    def bounds(self, conn, table: str, key: str) -> tuple[int | None, int | None]:
        ref = qualified(*_split(table, self.namespace))
        return conn.execute(f"SELECT min({quote_ident(key)}), max({quote_ident(key)}) FROM {ref}").fetchone()

    def estimate_rows(self, conn, table: str) -> float:
        """The planner's row count of the table (a count when it was never analyzed)."""
        ref = qualified(*_split(table, self.namespace))
        (estimate,) = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (ref,)).fetchone()
        if estimate <= 0:
            (estimate,) = conn.execute(f"SELECT count(*) FROM {ref}").fetchone()
        return float(estimate)

    def sample_keys(self, conn, table: str, key: tuple[str, ...], fraction: float) -> list[tuple]:
        """A sorted sample of about `fraction` of the table's keys (TABLESAMPLE SYSTEM: whole pages, no full scan)."""
        ref = qualified(*_split(table, self.namespace))
        percent = 100 * fraction
        listed = ", ".join(map(quote_ident, key))
        sampled = f" TABLESAMPLE SYSTEM ({percent:.6f})" if percent < 100 else ""
        return conn.execute(f"SELECT {listed} FROM {ref}{sampled} ORDER BY {listed}").fetchall()

    def _select(self, table: str, columns: list[str], json_columns: list[str], key: tuple[str, ...],
                lo: tuple | None, hi: tuple | None) -> tuple[str, list]:
        """SELECT of one key range and its parameters."""
        ref = qualified(*_split(table, self.namespace))
        listed = ", ".join(f"{quote_ident(c)}::text" if c in json_columns else quote_ident(c) for c in columns)
        condition, params = range_condition(key, lo, hi, quote_ident, row_values=True)
        return f"SELECT {listed} FROM {ref}" + (f" WHERE {condition}" if condition else ""), params or None

    def read(self, conn, table: str, columns: list[str], json_columns: list[str], key: tuple[str, ...],
             lo: tuple | None, hi: tuple | None) -> Iterator[list[tuple]]:
        """Batches of rows (Python values; JSON as its text) of one key range, from a server-side cursor."""
        with conn.cursor(name="cdc_copy") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(*self._select(table, columns, json_columns, key, lo, hi))
            while True:
                rows = cursor.fetchmany(FETCH_ROWS)
                if not rows:
                    return
                yield rows

    def copy_out(self, conn, table: str, columns: list[str], key: tuple[str, ...], lo: tuple | None,
                 hi: tuple | None) -> Iterator[bytes]:
        """The binary COPY stream of one key range (PostgreSQL to PostgreSQL)."""
        select, params = self._select(table, columns, [], key, lo, hi)
        with conn.cursor() as cursor, cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT binary)", params) as copy:
            for block in copy:
                yield bytes(block)

    def copy_out_text(self, conn, table: str, columns: list[str], key: tuple[str, ...], lo: tuple | None,
                      hi: tuple | None) -> tuple[list[str], Iterator[bytes]]:
        """(binary columns, the interchange text of one key range): COPY's text format (tab-separated,
        `\\N` for NULL, backslash escapes; bytea as `\\x<hex>`), booleans as 0/1, timestamptz as UTC wall time."""
        namespace, name = _split(table, self.namespace)
        if (conn.info.dbname, namespace, name) not in _TYPES:
            describe(conn, namespace, name)
        types = _TYPES[(conn.info.dbname, namespace, name)]
        ref = qualified(namespace, name)
        listed = ", ".join(INTERCHANGE.get(types[c], "{c}").format(c=quote_ident(c)) for c in columns)
        condition, params = range_condition(key, lo, hi, quote_ident, row_values=True)
        where = f" WHERE {condition}" if condition else ""

        def blocks() -> Iterator[bytes]:
            with conn.cursor() as cursor, \
                    cursor.copy(f"COPY (SELECT {listed} FROM {ref}{where}) TO STDOUT", params or None) as copy:
                for block in copy:
                    yield bytes(block)

        return [c for c in columns if types[c] == "bytea"], blocks()

    def finish(self, ok: bool, kafka: str | None, prefix: str) -> None:
        """Close the exporting connection; after a failed copy, drop the slot so nothing resumes from it."""
        if self.replication is not None:
            self.replication.close()
            self.replication = None
        if not ok and self.slot:
            drop_slots(self.url, self.slot)


class BulkTarget:
    """COPY into empty tables; tables it created get their keys and indexes after the load."""

    engine = ENGINE
    defer_primary_key = True  # one sorted build after the load beats maintaining the index row by row

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.namespace = url.options.get("schema", "public")

    def connect(self):
        conn = connect(self.url, error=TargetError)
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def target_table(self, table: str) -> str:
        return qualified(self.namespace, table.split(".")[-1])

    def location(self, table: str) -> tuple[str, str]:
        return self.namespace, table.split(".")[-1]

    def exists(self, conn, table: str) -> bool:
        return conn.execute("SELECT to_regclass(%s)", (self.target_table(table),)).fetchone()[0] is not None

    def key_plan(self, conn, table: str, indexes: list[SourceIndex], source_engine: str) -> KeyPlan:
        """Statements that build the source's keys and indexes on the created table (none exist yet)."""
        ref, plan = self.target_table(table), KeyPlan(table)
        for index in indexes:
            if source_engine == ENGINE and index.definition:
                if index.definition.startswith("CONSTRAINT "):
                    plan.keys.append(f"ALTER TABLE {ref} ADD {index.definition}")
                else:
                    unique = "UNIQUE " if index.unique else ""
                    plan.indexes.append(f"CREATE {unique}INDEX {quote_ident(index.name)} ON {ref} {index.definition}")
                continue
            why = not_portable(index)
            if why:
                plan.skipped.append((index.name, why))
                continue
            columns = ", ".join(map(quote_ident, index.columns))
            if index.primary:
                plan.keys.append(f"ALTER TABLE {ref} ADD PRIMARY KEY ({columns})")
            else:
                # index names are per schema in PostgreSQL, per table in MySQL: prefix the table's
                name = quote_ident(f"{self.location(table)[1]}_{index.name}"[:63])
                plan.indexes.append(f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {name} ON {ref} ({columns})")
        return plan

    def run_ddl(self, conn, statements: list[str]) -> None:
        """Run DDL statements in order, each committed."""
        conn.execute("SET maintenance_work_mem = '256MB'")
        for statement in statements:
            with conn.transaction():
                conn.execute(statement)

    def check_empty(self, conn, table: str) -> None:
        ref = self.target_table(table)
        if conn.execute("SELECT to_regclass(%s)", (ref,)).fetchone()[0] is None:
            raise TargetError(f"target table {ref} does not exist", fix="create it first (same columns)")
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {ref})").fetchone()[0]:
            raise TargetError(f"target table {ref} is not empty", fix="the initial copy fills empty tables only")

    def write(self, conn, table: str, columns: list[str], batches: Iterable[list[tuple]]) -> int:
        """COPY rows (Python values) in; the row count."""
        names = ", ".join(quote_ident(c) for c in columns)
        count = 0
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {self.target_table(table)} ({names}) FROM STDIN") as copy:
                for batch in batches:
                    for row in batch:
                        copy.write_row(row)
                    count += len(batch)
        return count

    def load_text(self, conn, table: str, columns: list[str], binary_columns: list[str],
                  blocks: Iterable[bytes]) -> int:
        """COPY the interchange text in (it is COPY's text format; bytea arrives as `\\x<hex>`); the row count."""
        names = ", ".join(quote_ident(c) for c in columns)
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {self.target_table(table)} ({names}) FROM STDIN") as copy:
                for block in blocks:
                    copy.write(block)
            return cursor.rowcount

    def copy_in(self, conn, table: str, columns: list[str], blocks: Iterable[bytes]) -> int:
        """A binary COPY stream from another PostgreSQL, passed through; the row count."""
        names = ", ".join(quote_ident(c) for c in columns)
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY {self.target_table(table)} ({names}) FROM STDIN (FORMAT binary)") as copy:
                for block in blocks:
                    copy.write(block)
            return cursor.rowcount
