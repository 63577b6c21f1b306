"""Envelope cost per event: `key()` + `value()` for a 10-column row (µs/event, one core).

Run: `.venv/bin/python benchmarks/bench_envelope.py [--events N] [--compat none|debezium]`.
The row is already in readable form (what a decoder hands over); the figure excludes decoding and
Kafka. Also times `records()` (what the capture loop calls) and a bare `orjson.dumps` of the same
dict as the floor.
"""

from __future__ import annotations

import argparse
import time

import orjson

import cdc
from cdc.envelope import Envelope
from cdc.events import Change, Column, TableSchema

COLUMNS = (
    Column("id", "bigint", "int", nullable=False, primary_key=True, length=8),
    Column("customer_id", "integer", "int", length=4),
    Column("status", "text", "string"),
    Column("amount", "numeric(12,2)", "decimal", precision=12, scale=2),
    Column("discount", "double precision", "float", length=8),
    Column("created_at", "timestamp without time zone", "timestamp", precision=6),
    Column("paid_at", "timestamp with time zone", "timestamptz", precision=6),
    Column("ship_date", "date", "date"),
    Column("paid", "boolean", "boolean"),
    Column("note", "character varying(200)", "string", length=200),
)
TABLE = TableSchema("postgresql", "public", "orders", COLUMNS, version=3, database="shop", primary_key=("id",))


def make_change(index: int) -> Change:
    """One insert of a realistic row, with a PG source block as the connector builds it."""
    after = {
        "id": index,
        "customer_id": 4711,
        "status": "shipped",
        "amount": "1234.50",
        "discount": 0.15,
        "created_at": "2024-02-29T13:45:00.123456",
        "paid_at": "2024-02-29T12:45:00.123456Z",
        "ship_date": "2024-03-01",
        "paid": True,
        "note": "leave at the door, ring twice",
    }
    lsn = 24023128 + index * 64
    source = {
        "version": cdc.__version__,
        "connector": "postgresql",
        "name": "shop",
        "ts_ms": 1732400000000,
        "snapshot": "false",
        "db": "shop",
        "sequence": f'["24023104","{lsn}"]',
        "ts_us": 1732400000000000,
        "ts_ns": 1732400000000000000,
        "schema": "public",
        "table": "orders",
        "txId": 771,
        "lsn": lsn,
        "xmin": None,
    }
    transaction = {"id": f"771:{lsn}", "total_order": index + 1, "data_collection_order": index + 1}
    return Change("c", TABLE, None, after, source, (lsn, lsn), transaction)


def measure(label: str, func, changes, repeat: int = 3) -> float:
    """Best-of-`repeat` µs per call of `func(change)` over `changes`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for change in changes:
            func(change)
        best = min(best, time.perf_counter() - start)
    per_event = best / len(changes) * 1e6
    print(f"{label:<34} {per_event:6.2f} µs/event  ({1e6 / per_event:,.0f} events/s)")
    return per_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--compat", choices=("none", "debezium"), default="none")
    args = parser.parse_args()

    envelope = Envelope("shop", compat=args.compat)
    changes = [make_change(i) for i in range(args.events)]
    print(f"cdc {cdc.__version__} impl={cdc.__impl__} compat={args.compat} events={args.events}")
    dumps = orjson.dumps

    def floor(change):
        return dumps({"before": None, "after": change.after, "source": change.source,
                      "transaction": change.transaction, "op": "c", "ts_ms": 0, "ts_us": 0, "ts_ns": 0})

    measure("orjson.dumps of the envelope dict", floor, changes)
    key_value = measure("key() + value()", lambda c: (envelope.key(c), envelope.value(c)), changes)
    measure("records()", envelope.records, changes)
    print(f"key()+value(): {key_value:.2f} µs/event")


if __name__ == "__main__":
    main()
