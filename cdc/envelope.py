"""Turn `Change` records into Kafka records: topic, key bytes, value bytes (orjson), headers.

The value is Debezium's envelope as its JSON converter writes it with schemas disabled, fields in
Debezium 3.6's order: `before, after, source, transaction, op, ts_ms, ts_us, ts_ns`. Row values reach
us already in the readable forms of docs/event-format.md; with `compat="debezium"` they are converted
per column kind by `cdc.compat` to Debezium's own forms. The key is the JSON object of the primary-key
columns, or None for a table without one. See docs/event-format.md.

Two ways in, same bytes:

- `records(change)`: one `Change` with its `source` and `transaction` dicts (every source calls this);
- `row_records(table, op, before, after, source, source_values, transaction=None)`: the hot path
  of a streaming source, no `Change` and no dicts per event. `source` is a `SourceTemplate` (from
  `source_template(block, variable)`, built once per table, or per transaction and table): the
  block pre-serialised except its `variable` fields, whose values come in `source_values`;
  `transaction` is `(id, total_order, data_collection_order)` or None. Same records, same bytes as
  `records()` of the equivalent `Change`.

The bytes are assembled by `encode_key`, `encode_change_value`, `encode_row_value` and
`RowEncoder` (which holds both paths): the compiled `cdc._ext.envelope` (ext/envelope.pyx) or, with
`CDC_PURE_PYTHON=1`, the readable twins below, which are the specification: `orjson.dumps` of the
envelope dict. (Pieces serialised separately differ from one `orjson.dumps` only in where orjson's
nesting limit of 255 levels is counted.)
"""

from __future__ import annotations

import sys
from time import time_ns as _time_ns
from typing import Any

import orjson

from cdc import __version__
from cdc.codecs import encode_bytes
from cdc.compat import full_row_converter, row_converter
from cdc.errors import ConfigError
from cdc.events import CREATE, DELETE, MESSAGE, READ, TRUNCATE, UPDATE, Change, TableSchema
from cdc.impl import IMPL, load_extension

__all__ = [
    "Envelope", "SourceTemplate", "Record", "COMPAT_MODES", "SCHEMA_VERSION_HEADER", "OLDKEY_HEADER", "NEWKEY_HEADER",
]

# (topic, key, value, headers); a tombstone has value None. Header lists are shared: do not mutate.
Record = tuple[str, "bytes | None", "bytes | None", list[tuple[str, bytes]]]

COMPAT_MODES = ("none", "debezium")
SCHEMA_VERSION_HEADER = "cdc.schema.version"
OLDKEY_HEADER = "__debezium.oldkey"
NEWKEY_HEADER = "__debezium.newkey"

_dumps = orjson.dumps


class _TablePlan:
    """What the envelope precomputes once per table schema: topic, key columns, headers, converters."""

    __slots__ = ("table", "topic", "key_columns", "key_single", "key_heads", "headers", "convert", "convert_row", "row")

    def __init__(self, table: TableSchema, topic: str, convert: Any, convert_row: Any = None) -> None:
        self.table = table
        self.topic = topic
        self.key_columns = _key_columns(table)
        self.key_single = self.key_columns[0] if len(self.key_columns) == 1 else None
        self.key_heads = _key_heads(self.key_columns)
        self.headers = [(SCHEMA_VERSION_HEADER, str(table.version).encode("ascii"))]
        self.convert = convert  # keys: the given fields only
        self.convert_row = convert_row  # before/after: every column, in table order
        self.row = self.row_parts()

    def row_parts(self) -> tuple:
        """What `RowEncoder.records` reads, in one tuple: table, topic, headers, key columns and heads, converter."""
        return (self.table, self.topic, self.headers, self.key_columns, self.key_heads, self.convert_row)


def _key_heads(columns: tuple[str, ...]) -> tuple[bytes, ...]:
    """What precedes each key value in the key's JSON: `{"id":`, then `,"region":`, ..."""
    return tuple((b"{" if index == 0 else b",") + _dumps(name) + b":" for index, name in enumerate(columns))


def _key_columns(table: TableSchema) -> tuple[str, ...]:
    """The key's columns: `TableSchema.primary_key` order, else the flagged columns in table order."""
    if table.primary_key:
        return tuple(table.primary_key)
    return tuple(column.name for column in table.columns if column.primary_key)


class Envelope:
    """Builds every Kafka record the capture side writes for one topic prefix.

    `row_records` is an attribute, not a method: `RowEncoder.records` bound at construction (see
    `RowEncoder` for its arguments), so the compiled path costs no Python frame per event.
    """

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
        "row_records",
        "rows_records",
        "json_rows_records",
        "_change_records",
        "_finish_txn",
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
        # The hot paths, bound once (no Python frame per event with the compiled RowEncoder).
        encoder = ENCODERS.RowEncoder(self, _time_ns)
        self.row_records = encoder.records
        self.rows_records = encoder.records_of_rows
        self.json_rows_records = encoder.records_of_json_rows
        self._change_records = encoder.change_records
        self._finish_txn: tuple[Any, bytes | None] = (None, None)  # (transaction id, its block's head)

    # --- a row event in two halves (a streamed PG transaction: values now, source at commit) ---

    def row_parts(self, table: TableSchema, op: str, before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> tuple[str, bytes | None, bytes, Any, bool] | None:
        """`(topic, key, head, headers, tombstone)` of a row event whose source block is not known yet.

        `head` is the value up to its `source` block (`{"before":...,"after":...`); `finish_row(head,
        ...)` completes it. `tombstone`: a delete with a key, followed by a tombstone. None where
        `row_records` would not give exactly one value (primary-key changes, compat "debezium",
        truncates): such a change is built whole, later. The same bytes as `row_records` in the end.
        """
        _, topic, headers, key_columns, key_heads, convert_row = self._plan(table).row
        if convert_row is not None or op not in _SPLIT_OPS or (
                op == UPDATE and before is not None and key_columns and _key_changed(key_columns, before, after)):
            return None
        if op == DELETE:
            after = None
            key = _encode_key(key_columns, key_heads, before) if before is not None and key_columns else None
        else:
            key = _encode_key(key_columns, key_heads, after) if after is not None and key_columns else None
        return topic, key, _encode_row_head(before, after), headers, op == DELETE and key is not None

    def finish_row(self, head: bytes, op: str, source: SourceTemplate, source_values: tuple[Any, ...],
                   transaction: tuple[str, int, int] | None = None) -> bytes:
        """The value `row_records` gives for the event whose `row_parts` head is `head` (clock read now)."""
        if transaction is None:
            transaction_head = total_order = collection_order = None
        else:
            transaction_id, total_order, collection_order = transaction
            if transaction_id != self._finish_txn[0] or self._finish_txn[1] is None:
                self._finish_txn = (transaction_id, b'{"id":' + _dumps(transaction_id) + b',"total_order":')
            transaction_head = self._finish_txn[1]
        return _finish_row_value(head, op, source, source_values, transaction_head, total_order, collection_order,
                                 _time_ns())

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
            plan.row = plan.row_parts()
        else:
            convert = row_converter(table) if self._debezium else None
            convert_row = full_row_converter(table) if self._debezium else None
            plan = _TablePlan(table, self.topic(table), convert, convert_row)
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
        if row is None or not plan.key_columns:
            return None
        if plan.convert is None:
            return _encode_key(plan.key_columns, plan.key_heads, row)
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
        convert = plan.convert_row
        if convert is not None:
            if before is not None:
                before = convert(before)
            if after is not None:
                after = convert(after)
        return _encode_change_value(change.op, before, after, change.source, change.transaction, now)

    @staticmethod
    def _value(op: str, before: Any, after: Any, change: Change, plan: _TablePlan | None, now: int,
               transaction: Any = None) -> bytes:
        if plan is not None and plan.convert_row is not None:
            convert = plan.convert_row
            if before is not None:
                before = convert(before)
            if after is not None:
                after = convert(after)
        return _encode_change_value(op, before, after, change.source,
                                    change.transaction if transaction is None else transaction, now)

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
        return self._change_records(change)

    def _records(self, change: Change) -> list[Record]:
        """`records`, readable: the twin's whole path, and the compiled one's for the unusual changes."""
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
        if plan.convert_row is not None:
            return [(plan.topic, self._key(plan, after), self._value(op, before, after, change, plan, now), plan.headers)]
        key = _encode_key(plan.key_columns, plan.key_heads, after) if after is not None and plan.key_columns else None
        value = _encode_change_value(op, before, after, change.source, change.transaction, now)
        return [(plan.topic, key, value, plan.headers)]

    # --- the hot path: source template + transaction tuple, no Change ---

    def source_template(self, source: dict[str, Any], variable: tuple[str, ...]) -> SourceTemplate:
        """A `SourceTemplate` of this source block: build one per transaction and table, then reuse it."""
        return SourceTemplate(source, variable)

    @staticmethod
    def _change(table: TableSchema, op: str, before: Any, after: Any, source: SourceTemplate,
                source_values: tuple[Any, ...], transaction: tuple[str, int, int] | None) -> Change:
        """The `Change` that `row_records` stands for (its slow path)."""
        block = None
        if transaction is not None:
            block = {"id": transaction[0], "total_order": transaction[1], "data_collection_order": transaction[2]}
        return Change(op, table, before, after, source.render(source_values), (), block)

    def is_key_change(self, change: Change) -> bool:
        """True when `records(change)` splits it into delete + tombstone + create (a primary-key update).

        Such a change is two events of its transaction, as in Debezium: the delete takes
        `change.transaction`'s place, the create the next one (`total_order` and
        `data_collection_order` + 1), so whoever numbers the transaction's events counts it twice.
        """
        table = change.table
        return table is not None and self.is_row_key_change(table, change.op, change.before, change.after)

    def is_row_key_change(self, table: TableSchema, op: str, before: dict[str, Any] | None,
                          after: dict[str, Any] | None) -> bool:
        """`is_key_change` for `row_records`' arguments (a key change there is two events too)."""
        if op != UPDATE or before is None:
            return False
        plan = self._plans.get(id(table))
        if plan is None or plan.table is not table:
            plan = self._plan(table)
        return bool(plan.key_columns) and _key_changed(plan.key_columns, before, after)

    def _key_change_records(self, plan: _TablePlan, change: Change, now: int) -> list[Record]:
        """A primary-key update as Debezium writes it: delete + tombstone (old key), create (new key).

        The create is the transaction's next event (Debezium counts the two separately).
        """
        old_key = self._key(plan, change.before)
        new_key = self._key(plan, change.after)
        delete_headers = [*plan.headers, (NEWKEY_HEADER, new_key)]
        create_headers = [*plan.headers, (OLDKEY_HEADER, old_key)]
        delete_value = self._value(DELETE, change.before, None, change, plan, now)
        create_value = self._value(CREATE, None, change.after, change, plan, now, _next_in_transaction(change.transaction))
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

    def json_row_keys(self, table: TableSchema) -> tuple[tuple[str, ...], tuple[bytes, ...]] | None:
        """The key columns and their heads for a decoder that writes rows as JSON (`rows_json`), or
        None when this table's rows must reach the envelope as dicts: a row converter (compat
        "debezium") or a float key column (JSON text equality is not float equality: -0.0, NaN)."""
        _, _, _, key_columns, key_heads, convert_row = self._plan(table).row
        if convert_row is not None:
            return None
        kinds = {column.name: column.kind for column in table.columns}
        if any(kinds.get(name) == "float" for name in key_columns or ()):
            return None
        return tuple(key_columns or ()), tuple(key_heads or ())

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
    ) -> Record:
        """One DDL statement for the schema-change topic.

        Ours (compat "none", and PG in any mode since Debezium's PG connector has no DDL topic):
        `<prefix>.schema-changes`, key `{"db": db}`, value `{ddl, db, schema, table, source, ts_ms}`.
        MySQL in compat "debezium": topic `<prefix>`, key `{"databaseName": db}`, value as Debezium's
        MySQL connector writes it (`source, ts_ms, databaseName, schemaName, ddl, tableChanges`), the
        table change built from `table_schema` (and `column_details`, see `debezium_table_change`) when given.
        """
        if ts_ms is None:
            ts_ms = _time_ns() // 1_000_000
        if not self._debezium or source.get("connector") != "mysql":
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

    def dlq_record(self, record: Record, reason: str) -> Record:
        """A poison record for `<prefix>.dlq`: same key and value, the reason and origin in headers."""
        topic, key, value, headers = record
        extra = [("cdc.dlq.reason", reason.encode("utf-8")), ("cdc.dlq.topic", topic.encode("utf-8"))]
        return (self.dlq_topic, key, value, [*headers, *extra])


def _next_in_transaction(transaction: dict[str, Any] | None) -> dict[str, Any] | None:
    """The transaction block of the event after this one in the same transaction and table."""
    if not transaction or transaction.get("total_order") is None:
        return transaction
    return {**transaction, "total_order": transaction["total_order"] + 1,
            "data_collection_order": (transaction.get("data_collection_order") or 0) + 1}


def _key_changed(columns: tuple[str, ...], before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    """True when `before` carries the key and it differs from `after`'s (a primary-key update)."""
    if after is None:
        return False
    for name in columns:
        old = before.get(name)
        if old is not None and old != after.get(name):
            return True
    return False


class SourceTemplate:
    """A `source` block serialised once around the fields that change from event to event.

    `variable` lists those fields in the block's field order. An entry is a field name (the event's
    value is the field's value) or `(name, prefix, suffix)`: the field is the str
    `f"{prefix}{value}{suffix}"`, so a number inside a string costs no string building per event.
    PG: `(("sequence", '["<last commit lsn>","', '"]'), "lsn")` with the values `(lsn, lsn)`; the
    timestamps, `txId` and the table stay fixed within one transaction and table. `pieces` is the
    JSON around the holes (`pieces[0] + hole 0 + pieces[1] + ... + pieces[-1]`); `kinds` has one
    byte per hole: `j` (the value's JSON) or `s` (the value's text, escaped, inside the string).
    A template does not change once built (the compiled encoder keeps the last one's pieces).
    """

    __slots__ = ("fields", "variable", "affixes", "pieces", "kinds")

    def __init__(self, source: dict[str, Any], variable: tuple[str | tuple[str, str, str], ...] = ()) -> None:
        affixes = {}
        for entry in variable:
            name, prefix, suffix = (entry, None, None) if isinstance(entry, str) else entry
            affixes[name] = None if prefix is None else (str(prefix), str(suffix))
        names = tuple(affixes)
        if [name for name in source if name in affixes] != list(names) or len(names) != len(tuple(variable)):
            raise ValueError(f"the variable fields {names!r} must be distinct fields of the source block, "
                             f"in its order ({', '.join(map(str, source))})")
        self.fields = dict(source)
        self.variable = names
        self.affixes = tuple(affixes.values())
        pieces: list[bytes] = []
        current = b"{"
        for index, (name, value) in enumerate(source.items()):
            if not isinstance(name, str):
                raise TypeError(f"source block field names must be str, not {type(name).__name__}")
            current += (b"," if index else b"") + _dumps(name) + b":"
            if name not in affixes:
                current += _dumps(value)
            elif affixes[name] is None:
                pieces.append(current)
                current = b""
            else:
                prefix, suffix = affixes[name]
                pieces.append(current + _dumps(prefix)[:-1])  # the string opened, its prefix written
                current = _dumps(suffix)[1:]
        pieces.append(current + b"}")
        self.pieces = tuple(pieces)
        self.kinds = b"".join(b"j" if affix is None else b"s" for affix in self.affixes)

    def render(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The source block as a dict, with `values` in the variable fields."""
        if len(values) != len(self.variable):
            raise ValueError(f"a source template of {len(self.variable)} fields was given {len(values)} values")
        block = dict(self.fields)
        for name, affix, value in zip(self.variable, self.affixes, values):
            block[name] = value if affix is None else f"{affix[0]}{value}{affix[1]}"
        return block


# --- the encoders: readable twins of cdc._ext.envelope (ext/envelope.pyx), same bytes ---


def encode_json(value: Any) -> bytes:
    """`orjson.dumps(value)`."""
    return _dumps(value)


def encode_key(names: tuple[str, ...], heads: tuple[bytes, ...], row: Any) -> bytes:
    """The key of a row: the JSON object of `names` (`heads`, from `_key_heads(names)`, are the
    compiled twin's shortcut)."""
    if len(heads) != len(names):
        raise ValueError(f"{len(names)} key columns were given {len(heads)} heads")
    return _dumps({name: row.get(name) for name in names})


def encode_change_value(op: Any, before: Any, after: Any, source: Any, transaction: Any, now: int) -> bytes:
    """The envelope of one change, top-level timestamps from `now` (nanoseconds since the epoch)."""
    return _dumps({
        "before": before,
        "after": after,
        "source": source,
        "transaction": transaction,
        "op": op,
        "ts_ms": now // 1_000_000,
        "ts_us": now // 1_000,
        "ts_ns": now,
    })


def encode_row_value(op: Any, before: Any, after: Any, source: SourceTemplate, source_values: tuple[Any, ...],
                     transaction_head: bytes | None, total_order: Any, data_collection_order: Any, now: int) -> bytes:
    """The envelope with the source block from its template and values, and the transaction block
    from its head (`{"id":...,"total_order":`) and orders; `transaction_head` None: transaction null."""
    pieces, kinds = source.pieces, source.kinds
    if len(pieces) != len(source_values) + 1 or len(kinds) != len(source_values):
        raise ValueError(f"a source template of {len(pieces) - 1} fields was given {len(source_values)} values")
    block = bytearray(pieces[0])
    for kind, value, piece in zip(kinds, source_values, pieces[1:]):
        block += (_dumps(value) if kind == ord("j") else _dumps(f"{value}")[1:-1]) + piece
    transaction = None
    if transaction_head is not None:
        transaction = orjson.Fragment(transaction_head + _dumps(total_order) + b',"data_collection_order":'
                                      + _dumps(data_collection_order) + b"}")
    return encode_change_value(op, before, after, orjson.Fragment(bytes(block)), transaction, now)


def encode_row_head(before: Any, after: Any) -> bytes:
    """`{"before":...,"after":...`: how `encode_row_value` begins (the head `finish_row_value` completes)."""
    return _dumps({"before": before, "after": after})[:-1]


def finish_row_value(head: bytes, op: Any, source: SourceTemplate, source_values: tuple[Any, ...],
                     transaction_head: bytes | None, total_order: Any, data_collection_order: Any, now: int) -> bytes:
    """`encode_row_value` of a row whose `{"before":...,"after":...` is `head` (see `Envelope.row_parts`)."""
    if head is None:
        raise TypeError("the head of a row value is needed, not None")
    rest = encode_row_value(op, None, None, source, source_values, transaction_head, total_order,
                            data_collection_order, now)
    return head + rest[len(_NULL_ROWS):]


class RowEncoder:
    """`Envelope.row_records`: the records of one row event (c/u/d/r, or t) from a source template.

    `envelope.row_records(table, op, before, after, source, source_values, transaction=None)`:
    `source` is a `SourceTemplate`, `source_values` the tuple of its variable fields' values,
    `transaction` is `(id, total_order, data_collection_order)` or None. The records are exactly
    `envelope.records(Change(op, table, before, after, source.render(source_values), position,
    {"id": ..., "total_order": ..., "data_collection_order": ...}))`; primary-key changes and
    compat "debezium" are built that way. Bound once per Envelope, so no Python frame per event
    with the compiled twin.
    """

    __slots__ = ("envelope", "clock", "transaction_id", "transaction_head")

    def __init__(self, envelope: Envelope, clock: Any) -> None:
        self.envelope = envelope
        self.clock = clock
        self.transaction_id: Any = None
        self.transaction_head: bytes | None = None

    def change_records(self, change: Change) -> list[Record]:
        """`Envelope.records(change)`: the readable `Envelope._records` (the compiled twin takes a
        shortcut for the common cases)."""
        return self.envelope._records(change)

    def records_of_rows(self, table: TableSchema, op: str, rows: list[tuple[Any, Any]], source: SourceTemplate,
                        position: Any, transaction_id: Any, total: int,
                        collection_order: int) -> tuple[list[Record], int, int] | None:
        """`records(table, op, before, after, source, (position, n), transaction)` for the n-th
        `(before, after)` of `rows`, all in one list, the transaction block numbered on from `total`
        and `collection_order` (no block when `transaction_id` is None). Returns `(records, total,
        collection_order)`, or None when a row needs `records` itself (a primary-key change, a row
        converter)."""
        row = self.envelope._plan(table).row
        key_columns, convert_row = row[3], row[5]
        if convert_row is not None or op == TRUNCATE:
            return None
        if op == UPDATE and key_columns and any(
                before is not None and _key_changed(key_columns, before, after) for before, after in rows):
            return None
        out: list[Record] = []
        for index, (before, after) in enumerate(rows):
            transaction = None
            if transaction_id is not None:
                total += 1
                collection_order += 1
                transaction = (transaction_id, total, collection_order)
            out += self.records(table, op, before, after, source, (position, index), transaction)
        return out, total, collection_order

    def records_of_json_rows(self, table: TableSchema, op: str, rows: list[tuple[Any, Any, Any, Any]],
                             source: SourceTemplate, position: Any, transaction_id: Any, total: int,
                             collection_order: int) -> tuple[list[Record], int, int] | None:
        """`records_of_rows` of rows already in JSON: `(before, after, before_key, after_key)` as the
        binlog decoder's `rows_json` gives them. None also when an update's key JSON changed (the
        caller then decodes the rows as dicts, where `records` tells a real key change)."""
        row = self.envelope._plan(table).row
        key_columns, convert_row = row[3], row[5]
        if convert_row is not None or op == TRUNCATE:
            return None
        if op == UPDATE and key_columns and any(before is not None and before_key != after_key
                                                for before, _, before_key, after_key in rows):
            return None
        # The readable twin reads the JSON back (orjson round-trips every value a row image holds).
        return self.records_of_rows(table, op, [(None if before is None else orjson.loads(before),
                                                 None if after is None else orjson.loads(after))
                                                for before, after, _, _ in rows],
                                    source, position, transaction_id, total, collection_order)

    def records(self, table: TableSchema, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                source: SourceTemplate, source_values: tuple[Any, ...],
                transaction: tuple[str, int, int] | None = None) -> list[Record]:
        """`Envelope.records` of the equivalent Change, without building it."""
        envelope = self.envelope
        plan = envelope._plans.get(id(table))
        if plan is None or plan.row[0] is not table:
            plan = envelope._plan(table)
        _, topic, headers, key_columns, key_heads, convert_row = plan.row
        if convert_row is not None or (
            op == UPDATE and before is not None and key_columns and _key_changed(key_columns, before, after)
        ):
            return envelope.records(envelope._change(table, op, before, after, source, source_values, transaction))
        if transaction is None:
            head = total_order = collection_order = None
        else:
            transaction_id, total_order, collection_order = transaction
            if self.transaction_head is None or transaction_id != self.transaction_id:
                self.transaction_head = b'{"id":' + _dumps(transaction_id) + b',"total_order":'
                self.transaction_id = transaction_id
            head = self.transaction_head
        now = self.clock()
        if op == DELETE:
            value = encode_row_value(op, before, None, source, source_values, head, total_order,
                                     collection_order, now)
            if before is None or not key_columns:
                return [(topic, None, value, headers)]
            key = encode_key(key_columns, key_heads, before)
            return [(topic, key, value, headers), (topic, key, None, headers)]
        if op == TRUNCATE:
            before = after = None
        value = encode_row_value(op, before, after, source, source_values, head, total_order,
                                 collection_order, now)
        key = encode_key(key_columns, key_heads, after) if after is not None and key_columns else None
        return [(topic, key, value, headers)]


def _encoders(impl: str) -> Any:
    """The module whose encoders assemble the bytes: the compiled one, or this one's twins."""
    return load_extension("envelope") if impl == "cython" else sys.modules[__name__]


ENCODERS = _encoders(IMPL)
_encode_key = ENCODERS.encode_key
_encode_change_value = ENCODERS.encode_change_value
_encode_row_value = ENCODERS.encode_row_value
_finish_row_value = ENCODERS.finish_row_value
_encode_row_head = ENCODERS.encode_row_head
_NULL_ROWS = b'{"before":null,"after":null'  # how every value starts when before and after are null
_SPLIT_OPS = frozenset((CREATE, UPDATE, DELETE, READ))
