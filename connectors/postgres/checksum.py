"""PostgreSQL side of `cdc verify`: catalog reading and the SQL that computes canonical row text.

The canonical forms are specified in `cdc.verify.canonical`; this module spells them in PostgreSQL.
Sessions run with `TimeZone=UTC` and `extra_float_digits=3` (see `dialect.SESSION_OPTIONS`), so
float text is the shortest exact round-trip form.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from cdc.errors import VerifyError
from cdc.urls import DatabaseUrl
from cdc.verify.canonical import FIXED_FLOAT_RANGE
from cdc.verify.checksum import EngineDialect
from cdc.verify.plan import ColumnShape, TableShape
from connectors.postgres.dialect import connect, quote_ident

ENGINE = "postgresql"
GRID_MARK = "/* cdc verify grid */ "

KIND_OF_TYPE = {
    "bool": "boolean", "int2": "int", "int4": "int", "int8": "int", "oid": "int",
    "numeric": "decimal", "float4": "float", "float8": "float",
    "text": "string", "varchar": "string", "bpchar": "string", "name": "string", "citext": "string", "char": "string",
    "bytea": "bytes", "bit": "bits", "varbit": "bits",
    "date": "date", "time": "time", "timetz": "time", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "interval": "interval", "json": "json", "jsonb": "json", "uuid": "uuid",
    "inet": "inet", "cidr": "cidr", "macaddr": "macaddr", "macaddr8": "macaddr", "money": "money", "xml": "xml",
    "tsvector": "tsvector",
}

# Kinds psycopg reads into Python values in any session; others (interval in iso_8601 style, arrays of
# exotic types, ...) are shown as their text.
# json is read as its text (a JSON string value must not look like the document's text; the report
# parses it, cdc/verify/values.py).
NATIVE_DISPLAY_KINDS = frozenset({"boolean", "int", "decimal", "float", "string", "bytes", "date", "time",
                                  "timestamp", "timestamptz", "uuid", "enum"})

COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory, a.atttypmod, a.attnotnull
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

KEYS_SQL = """
SELECT i.indisprimary, array_agg(a.attname ORDER BY k.ordinality), bool_and(a.attnotnull)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s::regclass AND (i.indisprimary OR i.indisunique) AND i.indpred IS NULL
  AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
"""


class PostgresChecksumDialect(EngineDialect):
    """Connections, catalog and canonical-text SQL for one PostgreSQL database."""

    engine = ENGINE

    def __init__(self, url: DatabaseUrl) -> None:
        # `?schema=` picks the namespace; it is ours, not a libpq keyword, so it is not passed on.
        self.namespace = url.options.get("schema", "public")
        self.url = replace(url, options={k: v for k, v in url.options.items() if k != "schema"})
        self._sort_off: set[int] = set()  # id() of connections whose session has enable_sort = off

    # connections -------------------------------------------------------------------------------
    def connect(self):
        """A read-only autocommit session (only SELECT is ever run)."""
        conn = connect(self.url, error=VerifyError)
        conn.execute("SET default_transaction_read_only = on")
        # Verify runs `--workers` queries per side itself; PostgreSQL's parallel workers on top of them
        # only add their start-up and gather costs (bit_xor plans went parallel: +20% server CPU).
        conn.execute("SET max_parallel_workers_per_gather = 0")
        if conn.info.server_version >= 140000:
            self.unique_rows_aggregate = "BIT_XOR"  # bit_xor(bigint) came with PostgreSQL 14
        return conn

    def grid_query(self, sql: str) -> str:
        return GRID_MARK + sql

    def execute(self, conn, sql: str, params: tuple = ()) -> list[tuple]:
        """As the base, but grid queries run with `enable_sort = off` (other queries with it on).

        A grid query groups by an expression of the key whose distinct count the planner takes to be
        the row count, so for some range sizes it picks Sort (spilling to disk) + GroupAggregate,
        20-30% slower than a HashAggregate of the few groups there really are. Turning sorts off for
        those queries only (catalog queries plan badly without sorts) changes plans, never results.
        """
        grid = sql.startswith(GRID_MARK)
        if grid != (id(conn) in self._sort_off):
            with conn.cursor() as cursor:
                cursor.execute("SET enable_sort = off" if grid else "SET enable_sort = on")
            (self._sort_off.add if grid else self._sort_off.discard)(id(conn))
        return super().execute(conn, sql, params)

    def stream(self, conn, sql: str, params: tuple = (), batch: int = 5000) -> Iterator[tuple]:
        """Rows of a large result without holding them all (server-side cursor)."""
        conn.autocommit = False
        try:
            with conn.cursor(name="cdc_verify_stream") as cursor:
                cursor.itersize = batch
                cursor.execute(sql, params or None)
                yield from cursor
        finally:
            conn.rollback()
            conn.autocommit = True

    # catalog -----------------------------------------------------------------------------------
    def list_tables(self, conn) -> list[str]:
        rows = self.execute(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            (self.namespace,),
        )
        return [row[0] for row in rows]

    def read_table(self, conn, table: str) -> TableShape | None:
        """The table's columns and keys, or None when it does not exist."""
        ref = self.table_ref(table)
        exists = self.execute(conn, "SELECT to_regclass(%s)", (ref,))[0][0]
        if exists is None:
            return None
        columns = []
        for name, source_type, typname, category, typmod, not_null in self.execute(conn, COLUMNS_SQL, (ref,)):
            kind = KIND_OF_TYPE.get(typname)
            if kind is None:
                kind = {"A": "array", "E": "enum", "R": "range"}.get(category, "text")
            scale = ((typmod - 4) & 0xFFFF) if typname == "numeric" and typmod >= 0 else None
            length = 4 if typname == "float4" else 8 if typname == "float8" else None
            columns.append(ColumnShape(name, kind, source_type, scale=scale, length=length, nullable=not not_null))
        primary: tuple[str, ...] = ()
        unique: tuple[str, ...] = ()
        for is_primary, names, all_not_null in self.execute(conn, KEYS_SQL, (ref,)):
            if is_primary and not primary:
                primary = tuple(names)
            elif not is_primary and all_not_null and not unique:
                unique = tuple(names)
        return TableShape(table, tuple(columns), primary, unique)

    def estimate_rows(self, conn, table: str) -> int:
        rows = self.execute(conn, "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (self.table_ref(table),))
        return max(int(rows[0][0]), 0) if rows else 0

    # canonical text ----------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return quote_ident(name)

    def canonical(self, column: ColumnShape, cls: str) -> str:
        """SQL for the canonical text of one column (NULL stays NULL)."""
        c = quote_ident(column.name)
        kind = column.kind
        if cls == "number":
            if kind == "boolean":
                return f"({c})::int::text"
            if kind == "decimal":
                return f"trim_scale({c})::text"
            if kind == "float":
                return f"trim_scale(({c})::numeric)::text"
            return f"({c})::text"
        if cls == "fixed":
            return f"({c})::text"
        if cls == "float_exact":
            return self.float_exact(column)
        if cls == "timestamp":
            if kind in ("timestamp", "timestamptz"):
                return (f"CASE WHEN isfinite({c}) THEN (extract(epoch FROM {c}) * 1000000)::bigint::text "
                        f"ELSE ({c})::text END")
            return f"({c})::text"
        if cls == "time":
            if kind == "time":
                return f"(extract(epoch FROM {c}) * 1000000)::bigint::text"
            return f"({c})::text"
        if cls == "date":
            return f"({c})::text" if kind == "date" else f"({c})::date::text"
        if cls == "bytes":
            return f"encode({c}, 'hex')" if kind == "bytes" else f"encode(convert_to(({c})::text, 'UTF8'), 'hex')"
        if cls == "uuid":
            return f"lower(({c})::text)"
        if cls == "json":
            if column.source_type == "json":
                return f"({c})::jsonb::text"
            return f"({c})::text"
        return f"({c})::text"

    def float_exact(self, column: ColumnShape) -> str:
        """`canonical.canonical_float_exact`: the shortest text in range (extra_float_digits > 0), else
        `b` and the IEEE bits of abs(x) as a bigint, negated when x < 0 (NaN compares above every
        number, so it takes the bits branch, as do the infinities)."""
        c = quote_ident(column.name)
        x = f"({c})::float8"
        bits = f"('x' || encode(float8send(abs({x})), 'hex'))::bit(64)::bigint"
        low, high = FIXED_FLOAT_RANGE
        return (f"CASE WHEN abs({x}) >= float8 '{low!r}' AND abs({x}) < float8 '{high!r}' THEN ({x})::text "
                f"WHEN {c} < 0 THEN 'b' || (-{bits})::text ELSE 'b' || ({bits})::text END")

    def json_text_forms(self, column: ColumnShape) -> list[str]:
        """The texts of a JSON/array column that another engine's stored text may equal (class json_text)."""
        c = quote_ident(column.name)
        if column.kind == "array":
            return [f"array_to_json({c})::text"]
        if column.source_type == "json":
            return [f"({c})::jsonb::text", f"({c})::text"]
        return [f"({c})::text"]

    def client_value(self, column: ColumnShape, cls: str) -> str:
        """SQL for a client-side-compared column: JSON and arrays as JSON text, floats as they are."""
        c = quote_ident(column.name)
        if cls == "json":
            if column.kind == "array":
                return f"array_to_json({c})::text"
            return f"({c})::text"
        return c

    def display_value(self, column: ColumnShape) -> str:
        """SQL for a column's value as shown in a diff: types the driver reads natively, others as text."""
        c = quote_ident(column.name)
        if column.kind in NATIVE_DISPLAY_KINDS:
            return c
        if column.kind == "array":
            return f"array_to_json({c})::text"  # shown as JSON, as it is compared
        return f"({c})::text"

    def token(self, canonical_sql: str, cls: str, length_prefixed: bool) -> str:
        if length_prefixed:
            return f"coalesce(octet_length({canonical_sql})::text || ':' || {canonical_sql}, 'N')"
        return f"coalesce({canonical_sql}, 'N')"

    def concat(self, parts: list[str]) -> str:
        # One concat_ws instead of a `||` chain, which copies the growing text once per token (~4% of a
        # 13-column grid query); tokens are never NULL (NULL is 'N'), so none is skipped. A function
        # takes at most 100 arguments: longer rows nest (joining with '|' is associative).
        if not parts:
            return "''"
        while len(parts) > 99:
            parts = [f"concat_ws('|', {', '.join(parts[i:i + 99])})" for i in range(0, len(parts), 99)]
        return f"concat_ws('|', {', '.join(parts)})"

    def hash60(self, text_sql: str) -> str:
        # First 15 hex digits of SHA-256 of the UTF-8 bytes (the first 8 bytes, cut to 60 bits).
        return (f"('x' || encode(substring(sha256(convert_to({text_sql}, 'UTF8')) FROM 1 FOR 8), 'hex'))"
                f"::bit(60)::bigint")

    def native_row_hash(self, conn, columns: list[ColumnShape], table: str | None = None) -> str | None:
        """A faster row hash for PG<->PG with identical column types: PG's own hash of the row value.

        `hash_record_extended` hashes each column with its type's hash function, which agrees with
        equality (numeric 10.5 = 10.50, same instant = same hash), so it can stand in for the
        canonical text when both sides are PostgreSQL with the same types. None when a column type
        has no extended hash function (json, xml, point, ...): then the canonical text is used.
        """
        if not columns:
            return None
        if table is not None and self.execute(
            conn,
            "SELECT count(*) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
            "WHERE a.attrelid = %s::regclass AND NOT c.collisdeterministic",
            (self.table_ref(table),),
        )[0][0]:
            return None  # a nondeterministic collation hashes 'a' and 'A' alike: compare canonical bytes
        probe = ", ".join(f"NULL::{column.source_type}" for column in columns)
        try:
            self.execute(conn, f"SELECT hash_record_extended(ROW({probe}), 0)")
        except Exception:  # noqa: BLE001 - psycopg raises a family of errors here; any means "not hashable"
            return None
        row = ", ".join(quote_ident(column.name) for column in columns)
        # 60 bits, so it is never negative and `% modulus` is a bucket number on both sides.
        return f"(hash_record_extended(ROW({row}), 0) & 1152921504606846975)"

    def int_div(self, a: str, b: int) -> str:
        return f"(({a}) / {int(b)})"

    def int_literal(self, value: int) -> str:
        # bigint arithmetic, so `int4 key - lower bound` cannot overflow (and btree still uses the index)
        return f"({int(value)})::numeric" if abs(value) >= 2**63 else f"({int(value)})::bigint"

    # replication position, for --wait-for-lag --------------------------------------------------
    def current_position(self, conn) -> str:
        return str(self.execute(conn, "SELECT pg_current_wal_lsn()::text")[0][0])

    records_capture_position = True  # logical slots keep the flush LSN capture confirmed

    def capture_confirmed(self, conn, position: str) -> bool | None:
        """True/False when this database's logical slots have/haven't confirmed `position`; None without slots."""
        rows = self.execute(
            conn,
            "SELECT bool_and(confirmed_flush_lsn >= %s::pg_lsn), count(*) FROM pg_replication_slots "
            "WHERE database = current_database() AND slot_type = 'logical'",
            (position,),
        )
        flushed, slots = rows[0]
        return None if not slots else bool(flushed)


ChecksumDialect = PostgresChecksumDialect  # the name `cdc.registry` looks up
