"""`Envelope`: turns `Change` records (or a row event's parts) into Kafka records of one topic prefix.

See cdc/envelope/__init__.py for the two ways in; the bytes come from the encoders `cdc.impl.twin`
picked (the compiled `cdc._ext.envelope` or the twin cdc/envelope/encoders.py).
"""

from __future__ import annotations

from time import time_ns as _time_ns
from typing import Any

import orjson

from cdc import __version__
from cdc.codecs import encode_bytes
from cdc.compat import full_row_converter, row_converter
from cdc.envelope.control import ControlRecords
from cdc.envelope.record import COMPAT_MODES, NEWKEY_HEADER, OLDKEY_HEADER, Record
from cdc.envelope.source_template import SourceTemplate
from cdc.envelope.table_plan import _key_changed, _TablePlan
from cdc.envelope.topics import Topics
from cdc.errors import ConfigError
from cdc.events import CREATE, DELETE, MESSAGE, READ, TRUNCATE, UPDATE, Change, TableSchema
from cdc.impl import twin

_dumps = orjson.dumps


class Envelope(Topics, ControlRecords):
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
        "_topic_owners",
        "_debezium",
        "row_records",
        "rows_records",
        "json_rows_records",
        "json_reads_records",
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
        self._name_topics(prefix, self._debezium)
        self._plans: dict[int, _TablePlan] = {}
        self._by_name: dict[tuple[str, str], _TablePlan] = {}
        self._topic_owners: dict[str, tuple[str, str]] = {}
        # The hot paths, bound once (no Python frame per event with the compiled RowEncoder).
        encoder = ENCODERS.RowEncoder(self, _time_ns)
        self.row_records = encoder.records
        self.rows_records = encoder.records_of_rows
        self.json_rows_records = encoder.records_of_json_rows
        self.json_reads_records = encoder.records_of_json_reads
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

def _next_in_transaction(transaction: dict[str, Any] | None) -> dict[str, Any] | None:
    """The transaction block of the event after this one in the same transaction and table."""
    if not transaction or transaction.get("total_order") is None:
        return transaction
    return {**transaction, "total_order": transaction["total_order"] + 1,
            "data_collection_order": (transaction.get("data_collection_order") or 0) + 1}


ENCODERS = twin("cdc.envelope.encoders")
_encode_key = ENCODERS.encode_key
_encode_change_value = ENCODERS.encode_change_value
_encode_row_value = ENCODERS.encode_row_value
_finish_row_value = ENCODERS.finish_row_value
_encode_row_head = ENCODERS.encode_row_head
_SPLIT_OPS = frozenset((CREATE, UPDATE, DELETE, READ))
