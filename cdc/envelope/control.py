"""The capture's records besides row events: BEGIN/END, table schemas, DDL, heartbeats, dead letters."""

from __future__ import annotations

from time import time_ns as _time_ns
from typing import Any

import orjson

from cdc.envelope.record import SCHEMA_VERSION_HEADER, Record
from cdc.events import TableSchema

_dumps = orjson.dumps


class ControlRecords:
    """The records of `<prefix>.transaction`, `<prefix>.schemas`, the DDL topic, the heartbeat topic
    and `<prefix>.dlq`; `Envelope` builds on it (the topic names and `_debezium` are its own)."""

    __slots__ = ()

    def transaction_record(
        self,
        status: str,
        txn_id: str,
        ts_ms: int,
        event_count: int | None = None,
        data_collections: list[tuple[str, int]] | dict[str, int] | None = None,
    ) -> Record:
        """A BEGIN/END record for `<prefix>.transaction`, in Debezium's shape.

        `data_collections` maps `schema.table` (PG) / `db.table` (MySQL) to its event count in the
        transaction; given on END only, like `event_count`.
        """
        if status not in ("BEGIN", "END"):
            raise ValueError(f"transaction status {status!r} is not BEGIN or END")
        if type(ts_ms) is not int or type(txn_id) is not str:
            return self._transaction_record_dumped(status, txn_id, ts_ms, event_count, data_collections)
        # One per source transaction (two Kafka records): spelled from pieces, the same bytes as
        # `_transaction_record_dumped` gives (tests/test_envelope.py compares them).
        quoted_id = _dumps(txn_id)
        if event_count is None and data_collections is None:
            tail = b',"event_count":null,"data_collections":null,"ts_ms":'
        else:
            collections = b"null"
            if data_collections is not None:
                items = data_collections.items() if isinstance(data_collections, dict) else data_collections
                collections = _dumps([{"data_collection": name, "event_count": count} for name, count in items])
            tail = b',"event_count":' + _dumps(event_count) + b',"data_collections":' + collections + b',"ts_ms":'
        value = b'{"status":"' + status.encode() + b'","id":' + quoted_id + tail + str(ts_ms).encode() + b"}"
        return (self.transaction_topic, b'{"id":' + quoted_id + b"}", value, [])

    def _transaction_record_dumped(self, status, txn_id, ts_ms, event_count, data_collections) -> Record:
        """`transaction_record` by serialising the whole value (the reference spelling)."""
        collections = None
        if data_collections is not None:
            items = data_collections.items() if isinstance(data_collections, dict) else data_collections
            collections = [{"data_collection": name, "event_count": count} for name, count in items]
        value = {
            "status": status,
            "id": txn_id,
            "event_count": event_count,
            "data_collections": collections,
            "ts_ms": ts_ms,
        }
        return (self.transaction_topic, _dumps({"id": txn_id}), _dumps(value), [])

    def schema_record(self, table: TableSchema) -> Record:
        """The table's schema for the compacted `<prefix>.schemas` topic (key `"schema.table"`)."""
        headers = [(SCHEMA_VERSION_HEADER, str(table.version).encode("ascii"))]
        return (self.schemas_topic, _dumps(table.qualified_name), _dumps(table.to_dict()), headers)

    def schema_change_record(
        self,
        ddl: str,
        *,
        db: str,
        table: str | None,
        source: dict[str, Any],
        schema: str | None = None,
        table_schema: TableSchema | None = None,
        change_type: str = "ALTER",
        ts_ms: int | None = None,
        column_details: dict[str, dict[str, Any]] | None = None,
        debezium_schema_history: bool = False,
    ) -> Record:
        """One DDL statement for the schema-change topic.

        Ours (compat "none", and any connector whose Debezium twin has no DDL topic, such as PG's):
        `<prefix>.schema-changes`, key `{"db": db}`, value `{ddl, db, schema, table, source, ts_ms}`.
        `debezium_schema_history` (the connector says so: MySQL's) in compat "debezium": topic
        `<prefix>`, key `{"databaseName": db}`, value as Debezium's MySQL connector writes it (`source,
        ts_ms, databaseName, schemaName, ddl, tableChanges`), the table change built from
        `table_schema` (and `column_details`, see `debezium_table_change`) when given.
        """
        if ts_ms is None:
            ts_ms = _time_ns() // 1_000_000
        if not (self._debezium and debezium_schema_history):
            value = {"ddl": ddl, "db": db, "schema": schema, "table": table, "source": source, "ts_ms": ts_ms}
            return (self.schema_changes_topic, _dumps({"db": db}), _dumps(value), [])
        from cdc.compat import debezium_table_change

        changes = [debezium_table_change(table_schema, change_type, column_details)] if table_schema is not None else []
        value = {
            "source": source,
            "ts_ms": ts_ms,
            "databaseName": db,
            "schemaName": schema,
            "ddl": ddl,
            "tableChanges": changes,
        }
        return (self.prefix, _dumps({"databaseName": db}), _dumps(value), [])

    def heartbeat_record(self, ts_ms: int | None = None) -> Record:
        """A heartbeat: key `{"serverName": prefix}`, value `{"ts_ms": ...}` (Debezium's shape)."""
        if ts_ms is None:
            ts_ms = _time_ns() // 1_000_000
        return (self.heartbeat_topic, _dumps({"serverName": self.prefix}), _dumps({"ts_ms": ts_ms}), [])
