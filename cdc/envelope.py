"""Turn `Change` records into Kafka records: topic, key bytes, value bytes (orjson), headers.

The value is Debezium's envelope as its JSON converter writes it with schemas disabled, fields in
Debezium 3.6's order: `before, after, source, transaction, op, ts_ms, ts_us, ts_ns`. Row values reach
us already in the readable forms of DESIGN.md section 2; with `compat="debezium"` they are converted
per column kind by `cdc.compat` to Debezium's own forms. The key is the JSON object of the primary-key
columns, or None for a table without one. See docs/event-format.md.
"""

from __future__ import annotations

from time import time_ns as _time_ns
from typing import Any

import orjson

from cdc import __version__
from cdc.codecs import encode_bytes
from cdc.compat import row_converter
from cdc.errors import ConfigError
from cdc.events import CREATE, DELETE, MESSAGE, TRUNCATE, UPDATE, Change, TableSchema

__all__ = ["Envelope", "Record", "COMPAT_MODES", "SCHEMA_VERSION_HEADER", "OLDKEY_HEADER", "NEWKEY_HEADER"]

# (topic, key, value, headers); a tombstone has value None. Header lists are shared: do not mutate.
Record = tuple[str, "bytes | None", "bytes | None", list[tuple[str, bytes]]]

COMPAT_MODES = ("none", "debezium")
SCHEMA_VERSION_HEADER = "cdc.schema.version"
OLDKEY_HEADER = "__debezium.oldkey"
NEWKEY_HEADER = "__debezium.newkey"

_dumps = orjson.dumps


class _TablePlan:
    """What the envelope precomputes once per table schema: topic, key columns, headers, converters."""

    __slots__ = ("table", "topic", "key_columns", "key_single", "headers", "convert")

    def __init__(self, table: TableSchema, topic: str, convert: Any) -> None:
        self.table = table
        self.topic = topic
        self.key_columns = _key_columns(table)
        self.key_single = self.key_columns[0] if len(self.key_columns) == 1 else None
        self.headers = [(SCHEMA_VERSION_HEADER, str(table.version).encode("ascii"))]
        self.convert = convert


def _key_columns(table: TableSchema) -> tuple[str, ...]:
    """The key's columns: `TableSchema.primary_key` order, else the flagged columns in table order."""
    if table.primary_key:
        return tuple(table.primary_key)
    return tuple(column.name for column in table.columns if column.primary_key)


class Envelope:
    """Builds every Kafka record the capture side writes for one topic prefix."""

    __slots__ = (
        "prefix",
        "compat",
        "version",
        "transaction_topic",
        "schemas_topic",
        "schema_changes_topic",
        "heartbeat_topic",
        "offsets_topic",
        "dlq_topic",
        "message_topic",
        "_plans",
        "_by_name",
        "_debezium",
    )

    def __init__(self, prefix: str, *, compat: str = "none", version: str = __version__) -> None:
        if compat not in COMPAT_MODES:
            raise ConfigError(f"compat {compat!r} is not one of {', '.join(COMPAT_MODES)}",
                              fix='set compat = "none" (readable values) or "debezium"')
        if not prefix:
            raise ConfigError("the topic prefix is empty", fix="set prefix to a short name, e.g. prefix = \"shop\"")
        self.prefix = prefix
        self.compat = compat
        self.version = version
        self._debezium = compat == "debezium"
        self.transaction_topic = f"{prefix}.transaction"
        self.schemas_topic = f"{prefix}.schemas"
        self.schema_changes_topic = f"{prefix}.schema-changes"
        self.heartbeat_topic = f"__debezium-heartbeat.{prefix}" if self._debezium else f"__cdc-heartbeat.{prefix}"
        self.offsets_topic = f"__cdc-offsets.{prefix}"
        self.dlq_topic = f"{prefix}.dlq"
        self.message_topic = f"{prefix}.message"
        self._plans: dict[int, _TablePlan] = {}
        self._by_name: dict[tuple[str, str], _TablePlan] = {}

    # --- per-table plan ---

    def _plan(self, table: TableSchema) -> _TablePlan:
        """The cached plan of this table schema object; one plan per table name is kept."""
        plan = self._plans.get(id(table))
        if plan is not None and plan.table is table:
            return plan
        name = (table.namespace, table.name)
        previous = self._by_name.get(name)
        if previous is not None:
            self._plans.pop(id(previous.table), None)
        if previous is not None and previous.table == table:
            plan = previous
            plan.table = table  # an equal schema object: keep its plan, follow the new object
        else:
            convert = row_converter(table) if self._debezium else None
            plan = _TablePlan(table, self.topic(table), convert)
        self._by_name[name] = plan
        self._plans[id(table)] = plan
        return plan

    # --- topics ---

    def topic(self, table: TableSchema) -> str:
        """`<prefix>.<schema>.<table>` (PG) or `<prefix>.<db>.<table>` (MySQL)."""
        return f"{self.prefix}.{table.namespace}.{table.name}"

    def schema_change_topic(self, connector: str = "postgresql") -> str:
        """DDL history: `<prefix>.schema-changes`; MySQL in debezium compat: `<prefix>` (as Debezium)."""
        return self.prefix if self._debezium and connector == "mysql" else self.schema_changes_topic

    # --- change records ---

    def key(self, change: Change) -> bytes | None:
        """JSON of the primary-key columns from `after` (or `before` for deletes); None without a key."""
        table = change.table
        if table is None:
            return None
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            plan = self._plan(table)
        row = change.after if change.after is not None else change.before
        return self._key(plan, row)

    @staticmethod
    def _key(plan: _TablePlan, row: dict[str, Any] | None) -> bytes | None:
        if row is None:
            return None
        single = plan.key_single
        if single is not None:
            key = {single: row.get(single)}
        elif plan.key_columns:
            key = {name: row.get(name) for name in plan.key_columns}
        else:
            return None
        if plan.convert is not None:
            key = plan.convert(key)
        return _dumps(key)

    def value(self, change: Change) -> bytes:
        """The Debezium envelope of one change as JSON bytes (top-level timestamps = now)."""
        now = _time_ns()
        table = change.table
        if table is None:
            if change.op == MESSAGE:
                return self._message_value(change, now)
            return self._value(change.op, change.before, change.after, change, None, now)
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            plan = self._plan(table)
        before, after = change.before, change.after
        convert = plan.convert
        if convert is not None:
            if before is not None:
                before = convert(before)
            if after is not None:
                after = convert(after)
        return _dumps({
            "before": before,
            "after": after,
            "source": change.source,
            "transaction": change.transaction,
            "op": change.op,
            "ts_ms": now // 1_000_000,
            "ts_us": now // 1_000,
            "ts_ns": now,
        })

    @staticmethod
    def _value(op: str, before: Any, after: Any, change: Change, plan: _TablePlan | None, now: int) -> bytes:
        if plan is not None and plan.convert is not None:
            convert = plan.convert
            if before is not None:
                before = convert(before)
            if after is not None:
                after = convert(after)
        return _dumps({
            "before": before,
            "after": after,
            "source": change.source,
            "transaction": change.transaction,
            "op": op,
            "ts_ms": now // 1_000_000,
            "ts_us": now // 1_000,
            "ts_ns": now,
        })

    def _message_value(self, change: Change, now: int) -> bytes:
        content = change.content or {}
        body = content.get("content")
        if isinstance(body, (bytes, bytearray, memoryview)):
            body = encode_bytes(body)
        return _dumps({
            "op": MESSAGE,
            "ts_ms": now // 1_000_000,
            "source": change.source,
            "message": {"prefix": content.get("prefix"), "content": body},
        })

    def records(self, change: Change) -> list[Record]:
        """Every Kafka record for one change: the event, a tombstone after a delete, PK change split."""
        op = change.op
        table = change.table
        now = _time_ns()
        if table is None:
            if op == MESSAGE:
                prefix = (change.content or {}).get("prefix")
                return [(self.message_topic, _dumps({"prefix": prefix}), self._message_value(change, now), [])]
            raise ValueError(f"a change with op {op!r} needs its table schema")
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            plan = self._plan(table)
        before, after = change.before, change.after
        if op == DELETE:
            key = self._key(plan, before)
            value = self._value(op, before, None, change, plan, now)
            if key is None:
                return [(plan.topic, None, value, plan.headers)]
            return [(plan.topic, key, value, plan.headers), (plan.topic, key, None, plan.headers)]
        if op == TRUNCATE:
            return [(plan.topic, None, self._value(op, None, None, change, plan, now), plan.headers)]
        if op == UPDATE and before is not None and plan.key_columns and _key_changed(plan.key_columns, before, after):
            return self._key_change_records(plan, change, now)
        if plan.convert is not None:
            return [(plan.topic, self._key(plan, after), self._value(op, before, after, change, plan, now), plan.headers)]
        single = plan.key_single
        if single is not None and after is not None:
            key = _dumps({single: after.get(single)})
        else:
            key = self._key(plan, after)
        value = _dumps({
            "before": before,
            "after": after,
            "source": change.source,
            "transaction": change.transaction,
            "op": op,
            "ts_ms": now // 1_000_000,
            "ts_us": now // 1_000,
            "ts_ns": now,
        })
        return [(plan.topic, key, value, plan.headers)]

    def _key_change_records(self, plan: _TablePlan, change: Change, now: int) -> list[Record]:
        """A primary-key update as Debezium writes it: delete + tombstone (old key), create (new key)."""
        old_key = self._key(plan, change.before)
        new_key = self._key(plan, change.after)
        delete_headers = [*plan.headers, (NEWKEY_HEADER, new_key)]
        create_headers = [*plan.headers, (OLDKEY_HEADER, old_key)]
        delete_value = self._value(DELETE, change.before, None, change, plan, now)
        create_value = self._value(CREATE, None, change.after, change, plan, now)
        return [
            (plan.topic, old_key, delete_value, delete_headers),
            (plan.topic, old_key, None, delete_headers),
            (plan.topic, new_key, create_value, create_headers),
        ]

    # --- other topics ---

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
    ) -> Record:
        """One DDL statement for the schema-change topic.

        Ours (compat "none", and PG in any mode since Debezium's PG connector has no DDL topic):
        `<prefix>.schema-changes`, key `{"db": db}`, value `{ddl, db, schema, table, source, ts_ms}`.
        MySQL in compat "debezium": topic `<prefix>`, key `{"databaseName": db}`, value as Debezium's
        MySQL connector writes it (`source, ts_ms, databaseName, schemaName, ddl, tableChanges`), the
        table change built from `table_schema` when given.
        """
        if ts_ms is None:
            ts_ms = _time_ns() // 1_000_000
        if not self._debezium or source.get("connector") != "mysql":
            value = {"ddl": ddl, "db": db, "schema": schema, "table": table, "source": source, "ts_ms": ts_ms}
            return (self.schema_changes_topic, _dumps({"db": db}), _dumps(value), [])
        from cdc.compat import debezium_table_change

        changes = [debezium_table_change(table_schema, change_type)] if table_schema is not None else []
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

    def dlq_record(self, record: Record, reason: str) -> Record:
        """A poison record for `<prefix>.dlq`: same key and value, the reason and origin in headers."""
        topic, key, value, headers = record
        extra = [("cdc.dlq.reason", reason.encode("utf-8")), ("cdc.dlq.topic", topic.encode("utf-8"))]
        return (self.dlq_topic, key, value, [*headers, *extra])


def _key_changed(columns: tuple[str, ...], before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    """True when `before` carries the key and it differs from `after`'s (a primary-key update)."""
    if after is None:
        return False
    for name in columns:
        old = before.get(name)
        if old is not None and old != after.get(name):
            return True
    return False
