"""Debezium's transaction block: numbering the events of one source transaction.

`TransactionOrder` numbers events inside a transaction (Debezium's `total_order`,
`data_collection_order`) so the pipeline can fill `Change.transaction`; a primary-key change counts as
two events (the envelope splits it into delete and create), in the orders and in END's `event_count`.
"""

from __future__ import annotations

from typing import Any


class TransactionOrder:
    """Debezium's transaction block: id, total_order and data_collection_order per table."""

    __slots__ = ("id", "total", "per_table")

    def __init__(self, transaction_id: str) -> None:
        self.id = transaction_id
        self.total = 0
        self.per_table: dict[str, int] = {}

    def next(self, data_collection: str) -> dict[str, Any]:
        """The transaction block for the next event on `data_collection` (`schema.table` / `db.table`)."""
        self.total += 1
        order = self.per_table.get(data_collection, 0) + 1
        self.per_table[data_collection] = order
        return {"id": self.id, "total_order": self.total, "data_collection_order": order}

    def next_tuple(self, data_collection: str) -> tuple[str, int, int]:
        """`next()` as the envelope's hot path takes it: `(id, total_order, data_collection_order)`."""
        self.total += 1
        per_table = self.per_table
        order = per_table.get(data_collection, 0) + 1
        per_table[data_collection] = order
        return (self.id, self.total, order)

    def skip(self, data_collection: str) -> None:
        """Count one more event on `data_collection` without a block: the create half of a primary-key
        change (the envelope numbers it `total_order` + 1 from the delete's block, as Debezium counts it)."""
        self.total += 1
        self.per_table[data_collection] = self.per_table.get(data_collection, 0) + 1
