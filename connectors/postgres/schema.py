"""Table descriptions for PostgreSQL: what the catalog says about captured tables (columns, primary
key, the types the decoder needs), the `TableSchema` of a relation, and its versions while streaming.

Both the streaming side (on each Relation message, `SchemaRegistry`) and the snapshot read tables
through here, so a table has one `TableSchema` shape whichever path produced its events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import psycopg

from cdc.events import Column, TableSchema
from connectors.postgres import types
from connectors.postgres.decode import RelationInfo

if TYPE_CHECKING:
    from cdc.pipeline import CapturePipeline

ENGINE = "postgresql"


@dataclass(slots=True, frozen=True)
class CatalogColumn:
    """One column as pg_attribute/pg_type describe it."""

    name: str
    type_oid: int
    typmod: int
    type_name: str
    not_null: bool
    typtype: str
    base_type_oid: int
    base_typmod: int
    element_oid: int
    enum_values: tuple[str, ...] | None


@dataclass(slots=True, frozen=True)
class CatalogTable:
    """A table's columns, primary key and replica identity, read from the catalog."""

    relid: int
    namespace: str
    name: str
    columns: tuple[CatalogColumn, ...]
    primary_key: tuple[str, ...]
    replica_identity: str
    identity_columns: tuple[str, ...]

    def relation(self) -> RelationInfo:
        """The RelationInfo a pgoutput Relation message would carry for this table now."""
        identity = set(self.primary_key if self.replica_identity == "d" else self.identity_columns)
        columns = tuple(
            (1 if (self.replica_identity == "f" or c.name in identity) else 0, c.name, c.type_oid, c.typmod)
            for c in self.columns
        )
        return RelationInfo(self.relid, self.namespace, self.name, self.replica_identity, columns)


_COLUMNS_SQL = """
SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       t.typtype, t.typbasetype, t.typtypmod, t.typelem,
       CASE WHEN t.typtype = 'e' THEN
         (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped {generated}
ORDER BY a.attnum
"""

_KEY_SQL = """
SELECT i.indisprimary, i.indisreplident, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND (i.indisprimary OR i.indisreplident)
GROUP BY i.indexrelid, i.indisprimary, i.indisreplident
"""


PUBLISHED_GENERATED_VERSION = 180000  # publish_generated_columns: stored generated columns in pgoutput


def _columns_sql(conn: psycopg.Connection) -> str:
    """Column query: the columns pgoutput sends. Generated columns (PG 12+) are left out before PG 18; from
    18 stored ones are in, as the publications capture makes publish them (`publish_generated_columns`)."""
    version = conn.info.server_version
    if version >= PUBLISHED_GENERATED_VERSION:
        generated = "AND a.attgenerated IN ('', 's')"
    elif version >= 120000:
        generated = "AND a.attgenerated = ''"
    else:
        generated = ""
    return _COLUMNS_SQL.replace("{generated}", generated)


def table_oid(conn: psycopg.Connection, namespace: str, name: str) -> int | None:
    """The table's oid, or None when it does not exist."""
    row = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (namespace, name),
    ).fetchone()
    return row[0] if row else None


def read_table(conn: psycopg.Connection, relid: int) -> CatalogTable | None:
    """The catalog's description of table `relid`, or None when it no longer exists."""
    row = conn.execute(
        "SELECT n.nspname, c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = %s",
        (relid,),
    ).fetchone()
    if row is None:
        return None
    namespace, name, replica_identity = row
    columns = tuple(
        CatalogColumn(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], tuple(r[9]) if r[9] else None)
        for r in conn.execute(_columns_sql(conn), (relid,)).fetchall()
    )
    primary_key: tuple[str, ...] = ()
    identity_columns: tuple[str, ...] = ()
    for is_primary, is_identity, names in conn.execute(_KEY_SQL, (relid,)).fetchall():
        if is_primary:
            primary_key = tuple(names)
        if is_identity:
            identity_columns = tuple(names)
    return CatalogTable(relid, namespace, name, columns, primary_key, replica_identity, identity_columns)


def describe(column_name: str, type_oid: int, typmod: int, catalog: CatalogColumn | None) -> Column:
    """The engine-neutral Column for one column (catalog details when the catalog still has it)."""
    type_name = catalog.type_name if catalog is not None else str(type_oid)
    source_type, kind, length, precision, scale, element = types.describe_column(type_oid, typmod, type_name)
    values = None
    if catalog is not None and not types.is_builtin(type_oid):
        if catalog.typtype == "e":
            kind, values = "enum", catalog.enum_values
        elif catalog.typtype == "d" and types.is_builtin(catalog.base_type_oid):
            _, kind, length, precision, scale, element = types.describe_column(
                catalog.base_type_oid, catalog.base_typmod, type_name)
    return Column(
        name=column_name,
        source_type=source_type,
        kind=kind,
        nullable=not catalog.not_null if catalog is not None else True,
        length=length,
        precision=precision,
        scale=scale,
        element=element,
        values=values,
    )


def table_schema(relation: RelationInfo, catalog: CatalogTable | None, *, database: str, version: int = 1) -> TableSchema:
    """The TableSchema of a relation: columns as the Relation message lists them, key from the catalog.

    The Kafka key is the primary key (as Debezium); with no primary key the table has no key, even
    when REPLICA IDENTITY FULL/INDEX makes pgoutput flag columns.
    """
    by_name = {c.name: c for c in catalog.columns} if catalog is not None else {}
    primary_key = catalog.primary_key if catalog is not None else ()
    columns = []
    for _, name, type_oid, typmod in relation.columns:
        column = describe(name, type_oid, typmod, by_name.get(name))
        if name in primary_key:
            column = replace(column, primary_key=True)
        columns.append(column)
    return TableSchema(
        engine=ENGINE,
        namespace=relation.namespace,
        name=relation.name,
        columns=tuple(columns),
        version=version,
        database=database,
        primary_key=tuple(name for name in primary_key if name in relation.column_names),
    )


def type_codec(conn: psycopg.Connection, type_oid: int) -> str:
    """The decoder codec name for a non-built-in type: a domain's base type codec, an array's element's, else text."""
    row = conn.execute("SELECT typtype, typbasetype, typelem, typcategory FROM pg_type WHERE oid = %s",
                       (type_oid,)).fetchone()
    if row is None:
        return "text"
    typtype, base, element, category = row
    if typtype == "d" and base:
        return _codec_name(conn, base)
    if category == "A" and element:
        name = _codec_name(conn, element)
        return name if name.startswith("array:") else f"array:{name}"
    return "text"


def _codec_name(conn: psycopg.Connection, type_oid: int) -> str:
    codec = types.codec_for_oid(type_oid)
    if codec is None:
        return type_codec(conn, type_oid)
    if codec & types.ARRAY:
        scalar = codec & ~types.ARRAY
        return "array:" + next(name for name, value in types.CODEC_NAMES.items() if value == scalar)
    return next(name for name, value in types.CODEC_NAMES.items() if value == codec)


class SchemaRegistry:
    """TableSchema per relid, built from Relation messages + the catalog; a changed relation is a new version."""

    def __init__(self, conn: psycopg.Connection, decoder, database: str, pipeline: "CapturePipeline") -> None:
        self.conn = conn
        self.decoder = decoder
        self.database = database
        self.pipeline = pipeline
        self.by_relid: dict[int, TableSchema] = {}
        self.types_seen: set[int] = set()

    def relation(self, relation: RelationInfo) -> tuple[TableSchema, TableSchema | None]:
        """Register a Relation message; returns (schema, the previous schema when this one is a new version)."""
        for _, _, type_oid, _ in relation.columns:
            if not types.is_builtin(type_oid) and type_oid not in self.types_seen:
                self.types_seen.add(type_oid)
                self.decoder.set_type_codec(type_oid, type_codec(self.conn, type_oid))
        table = read_table(self.conn, relation.relid)
        fresh = table_schema(relation, table, database=self.database)
        previous = self.pipeline.schemas.get(fresh.qualified_name)
        schema = self.pipeline.versioned(fresh)
        self.by_relid[relation.relid] = schema
        if previous is not None and previous.version != schema.version:
            return schema, previous
        return schema, None


def describe_change(previous: TableSchema, schema: TableSchema) -> str:
    """A readable account of a relation change for `<prefix>.schema-changes` (pgoutput carries no DDL text)."""
    old = {c.name: c.source_type for c in previous.columns}
    new = {c.name: c.source_type for c in schema.columns}
    parts = [f"ADD COLUMN {name} {kind}" for name, kind in new.items() if name not in old]
    parts += [f"DROP COLUMN {name}" for name in old if name not in new]
    parts += [f"ALTER COLUMN {name} TYPE {kind}" for name, kind in new.items() if name in old and old[name] != kind]
    if previous.primary_key != schema.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(schema.primary_key)})")
    body = ", ".join(parts) or "ALTER (column attributes)"
    return f"ALTER TABLE {schema.namespace}.{schema.name} {body}"
