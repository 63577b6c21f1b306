"""The encoders that assemble the envelope's bytes: the readable twin of `cdc._ext.envelope`
(ext/cdc/envelope/encoders.pyx), same functions and same bytes; the specification is `orjson.dumps`
of the envelope dict. (Pieces serialised separately differ from one `orjson.dumps` only in where
orjson's nesting limit of 255 levels is counted.) `cdc.impl.twin` picks one of the two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from cdc.envelope.record import Record
from cdc.envelope.source_template import SourceTemplate
from cdc.envelope.table_plan import _key_changed
from cdc.events import DELETE, READ, TRUNCATE, UPDATE, Change, TableSchema

IMPLEMENTATION = "python"  # which twin this is (cdc.impl.twin picks one)

if TYPE_CHECKING:
    from cdc.envelope.builder import Envelope

_dumps = orjson.dumps
_NULL_ROWS = b'{"before":null,"after":null'  # how every value starts when before and after are null


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

    def records_of_json_reads(self, table: TableSchema, rows: list[tuple[Any, Any, Any, Any]],
                              source: SourceTemplate) -> list[Record] | None:
        """`r` records of rows already in JSON, `(None, after, None, after_key)` (an incremental
        snapshot's chunk): one source block for all (`source` has no variable field), no transaction
        block. None when the rows must be built as dicts (a row converter)."""
        if self.envelope._plan(table).row[5] is not None:
            return None
        out: list[Record] = []
        for _, after, _, _ in rows:
            out += self.records(table, READ, None, orjson.loads(after), source, ())
        return out

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
