"""Records that cross module boundaries: table schemas and change records.

A decoder turns protocol frames into `Change` records whose `before`/`after` values are already in
the readable JSON forms of docs/event-format.md (compat "none"); `cdc.envelope` turns a `Change` into
Kafka key and value bytes. Table schemas travel on `<prefix>.schemas` as `TableSchema.to_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Operation codes (Debezium's).
CREATE = "c"
UPDATE = "u"
DELETE = "d"
READ = "r"
TRUNCATE = "t"
MESSAGE = "m"
OPS = (CREATE, UPDATE, DELETE, READ, TRUNCATE, MESSAGE)

# Engine-neutral column kinds: what apply maps to target types and verify canonicalises.
KINDS = (
    "boolean",      # PG boolean (MySQL TINYINT(1) stays "int")
    "int",          # length = byte width (1, 2, 3, 4, 8); unsigned for MySQL
    "decimal",      # precision/scale, None when unconstrained
    "float",        # length = 4 or 8 bytes
    "string",       # char/varchar/text; length = max characters, None when unbounded
    "enum",         # values = allowed members
    "set",          # values = allowed members (MySQL SET)
    "bytes",        # bytea/binary/varbinary/blob; length = max bytes when bounded
    "bits",         # PG bit/varbit, MySQL BIT(n); length = bits
    "date",
    "time",         # precision = fractional digits
    "timestamp",    # without time zone / DATETIME
    "timestamptz",  # PG timestamptz / MySQL TIMESTAMP (UTC)
    "interval",
    "json",
    "uuid",
    "inet",
    "cidr",
    "macaddr",
    "money",
    "xml",
    "tsvector",
    "range",
    "year",
    "geometry",
    "array",        # element = kind of the elements
    "text",         # unknown or extension type: carried as its text form
)

# Placeholder Debezium writes for an unchanged TOASTed PG value; apply keeps the target's value.
UNAVAILABLE_VALUE = "__debezium_unavailable_value"


@dataclass(slots=True, frozen=True)
class Column:
    """One column of a captured table, with its source type and engine-neutral kind."""

    name: str
    source_type: str
    kind: str
    nullable: bool = True
    primary_key: bool = False
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    unsigned: bool = False
    charset: str | None = None
    element: str | None = None
    values: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form published on `<prefix>.schemas` (None fields left out)."""
        out: dict[str, Any] = {
            "name": self.name,
            "source_type": self.source_type,
            "kind": self.kind,
            "nullable": self.nullable,
            "primary_key": self.primary_key,
        }
        for name in ("length", "precision", "scale", "charset", "element"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.unsigned:
            out["unsigned"] = True
        if self.values is not None:
            out["values"] = list(self.values)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        """Inverse of `to_dict`."""
        values = data.get("values")
        return cls(
            name=data["name"],
            source_type=data["source_type"],
            kind=data["kind"],
            nullable=data.get("nullable", True),
            primary_key=data.get("primary_key", False),
            length=data.get("length"),
            precision=data.get("precision"),
            scale=data.get("scale"),
            unsigned=data.get("unsigned", False),
            charset=data.get("charset"),
            element=data.get("element"),
            values=tuple(values) if values is not None else None,
        )


@dataclass(slots=True, frozen=True)
class TableSchema:
    """A captured table: `namespace` is the PG schema or the MySQL database."""

    engine: str
    namespace: str
    name: str
    columns: tuple[Column, ...]
    version: int = 1
    database: str = ""
    primary_key: tuple[str, ...] = field(default=())

    @property
    def qualified_name(self) -> str:
        """`namespace.name`, the key on `<prefix>.schemas`."""
        return f"{self.namespace}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form published on `<prefix>.schemas`."""
        return {
            "engine": self.engine,
            "database": self.database,
            "namespace": self.namespace,
            "table": self.name,
            "version": self.version,
            "primary_key": list(self.primary_key),
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        """Inverse of `to_dict`; InvalidSchemaRecord (a ValueError) when a field is outside its closed set."""
        from cdc.schema_checks import check_table_record

        check_table_record(data, KINDS)
        return cls(
            engine=data["engine"],
            database=data.get("database", ""),
            namespace=data["namespace"],
            name=data["table"],
            version=data.get("version", 1),
            primary_key=tuple(data.get("primary_key", ())),
            columns=tuple(Column.from_dict(c) for c in data["columns"]),
        )


@dataclass(slots=True)
class Change:
    """One row change (or truncate/message) ready for the envelope.

    `source` is the complete Debezium `source` block for this event, in Debezium's field order, built
    by the connector. `position` is the engine's strictly increasing position (a tuple that compares
    correctly), used to drop repeats after a crash. `transaction` is Debezium's
    `{"id", "total_order", "data_collection_order"}` block or None.
    """

    op: str
    table: TableSchema | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    source: dict[str, Any]
    position: tuple
    transaction: dict[str, Any] | None = None
    content: dict[str, Any] | None = None  # op "m": {"prefix", "content"} of a logical message
