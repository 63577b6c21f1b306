"""Table schemas from the compacted `<prefix>.schemas` topic: the column kinds apply converts by.

Every change event names its table (`source.schema`/`source.db` + `source.table`) and carries the
schema version in the `cdc.schema.version` header. The catalog answers with that version or, as the
topic is compacted and keeps only the latest, with a newer one: rows of an older version lack only
columns added since, which the writer then leaves alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import orjson

from cdc.events import TableSchema
from cdc.kafka import Record

log = logging.getLogger(__name__)


class UnknownSchema(LookupError):
    """No schema (or no recent enough version) of a table is on the schemas topic."""


class SchemaCatalog:
    """Latest known TableSchema per `namespace.table`, refreshed from the topic when an event needs it."""

    # A table missing from the topic should not cost a topic read per event: re-read for it at most this often.
    REFRESH_INTERVAL_S = 5.0

    def __init__(self, refresh: Callable[[], Iterable[Record]] | None = None) -> None:
        self._refresh = refresh
        self._latest: dict[str, TableSchema] = {}
        self._missing_since: dict[str, float] = {}
        self._refused: dict[str, str] = {}  # namespace.table -> why its newest schema record was refused

    def add(self, schema: TableSchema) -> None:
        """Remember a schema (a newer version replaces an older one, never the other way round)."""
        known = self._latest.get(schema.qualified_name)
        if known is None or schema.version >= known.version:
            self._latest[schema.qualified_name] = schema

    def add_record(self, record: Record) -> None:
        """Take one record of the schemas topic (tombstones skipped; a refused record is remembered by its key).

        A record that is not a valid schema (docs/security.md, "Input from Kafka") never becomes a
        TableSchema: the events of its table then fail with its reason, as bad events.
        """
        if record.value is None:
            return
        try:
            schema = TableSchema.from_dict(orjson.loads(record.value))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            key = _table_of_key(record.key)
            reason = f"schema record at {record.topic}[{record.partition}]@{record.offset} refused: {exc}"
            self._refused[key] = reason
            log.warning("refusing an invalid schema record",
                        extra={"topic": record.topic, "partition": record.partition, "offset": record.offset,
                               "reason": str(exc)})
            return
        self._refused.pop(schema.qualified_name, None)
        self.add(schema)

    def get(self, table: str, version: int | None) -> TableSchema:
        """The schema of `table` at `version` or newer; reads the topic again once when it is not known yet."""
        schema = self._latest.get(table)
        if schema is None or (version is not None and schema.version < version):
            missed = self._missing_since.get(table)
            if self._refresh is not None and (missed is None or time.monotonic() - missed >= self.REFRESH_INTERVAL_S):
                for record in self._refresh():
                    self.add_record(record)
                self._missing_since[table] = time.monotonic()
            schema = self._latest.get(table)
        refused = self._refused.get(table)
        if refused is not None and (schema is None or version is None or schema.version < version):
            raise UnknownSchema(f"no valid schema for table {table}: {refused}")
        if schema is None:
            raise UnknownSchema(f"no schema for table {table} on the schemas topic")
        if version is not None and schema.version < version:
            raise UnknownSchema(f"schema version {version} of table {table} is not on the schemas topic"
                                f" (latest there: {schema.version})")
        return schema

    def tables(self) -> list[str]:
        return sorted(self._latest)

    def latest(self) -> list[TableSchema]:
        """The newest valid schema of every known table."""
        return [self._latest[name] for name in sorted(self._latest)]



def _table_of_key(key: bytes | None) -> str:
    """The `namespace.table` a schemas-topic key names (the key is a JSON string)."""
    try:
        table = orjson.loads(key) if key is not None else None
    except orjson.JSONDecodeError:
        table = None
    return table if type(table) is str else ""
