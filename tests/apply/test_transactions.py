"""`--consistency transaction`: a source transaction reaches the target whole or not at all, in commit order."""

from __future__ import annotations

import time

import pytest

from cdc.apply.worker import ApplyOptions, ApplyWorker
from cdc.envelope import Envelope
from cdc.errors import ConfigError
from cdc.events import Change
from cdc.kafka import make_admin, make_producer
from tests.apply.kafka_stream import FAST_GROUP, unique_prefix
from tests.apply.scenario import rows, simple_table

ITEMS = simple_table("postgresql", name="items")
OTHERS = simple_table("postgresql", name="others")


class TransactionStream:
    def __init__(self, kafka: str, prefix: str) -> None:
        self.envelope = Envelope(prefix)
        with make_admin(kafka) as admin:
            for schema in (ITEMS, OTHERS):
                admin.ensure_topic(self.envelope.topic(schema), 3)
            admin.ensure_topic(self.envelope.schemas_topic, 1, compacted=True)
            admin.ensure_topic(self.envelope.transaction_topic, 1)
        self.producer = make_producer(kafka, linger_ms=5)
        for schema in (ITEMS, OTHERS):
            topic, key, value, headers = self.envelope.schema_record(schema)
            self.producer.produce(topic, value, key, headers=headers)
        self.position = 0

    def transaction(self, txn: str, changes: list[tuple], end: bool = True) -> None:
        counts: dict[str, int] = {}
        for order, (op, schema, row) in enumerate(changes, start=1):
            self.position += 1
            counts[schema.qualified_name] = counts.get(schema.qualified_name, 0) + 1
            source = {"connector": "postgresql", "schema": schema.namespace, "table": schema.name}
            change = Change(op, schema, row if op == "d" else None, None if op == "d" else row, source,
                            (self.position,), {"id": txn, "total_order": order,
                                               "data_collection_order": counts[schema.qualified_name]})
            for topic, key, value, headers in self.envelope.records(change):
                self.producer.produce(topic, value, key, headers=headers)
        self.producer.flush(30)
        if end:
            self.end(txn, len(changes), counts)

    def end(self, txn: str, count: int, counts: dict[str, int]) -> None:
        topic, key, value, headers = self.envelope.transaction_record("END", txn, int(time.time() * 1000),
                                                                      event_count=count, data_collections=counts)
        self.producer.produce(topic, value, key, headers=headers)
        self.producer.flush(30)


def _options(kafka: str, prefix: str, target: str) -> ApplyOptions:
    return ApplyOptions(kafka=kafka, prefix=prefix, target=target, create_tables=True, consistency="transaction",
                        batch_size=500, linger_ms=50, idle_exit_s=2.0, **FAST_GROUP)


def _state(url: str) -> tuple[list[tuple], list[tuple]]:
    return (rows(url, "SELECT id, name, qty FROM public.items ORDER BY id"),
            rows(url, "SELECT id, name, qty FROM public.others ORDER BY id"))


def _row(key: int, name: str, qty: int) -> dict:
    return {"id": key, "name": name, "qty": qty, "note": None}


def test_transactions_apply_whole_in_commit_order_and_never_twice(kafka_bootstrap, pg_database):
    prefix = unique_prefix("tx")
    stream = TransactionStream(kafka_bootstrap, prefix)
    stream.transaction("1:100", [("c", ITEMS, _row(1, "a", 10)), ("c", OTHERS, _row(1, "b", -10)),
                                 ("c", ITEMS, _row(2, "c", 5))])
    # a transfer whose END is not there yet: none of it may show
    stream.transaction("2:200", [("u", ITEMS, _row(1, "a", 7)), ("u", OTHERS, _row(1, "b", -7))], end=False)
    ApplyWorker(_options(kafka_bootstrap, prefix, pg_database)).run()
    assert _state(pg_database) == ([(1, "a", 10), (2, "c", 5)], [(1, "b", -10)])

    stream.end("2:200", 2, {"public.items": 1, "public.others": 1})
    stream.transaction("3:300", [("d", ITEMS, _row(2, "c", 5)), ("u", OTHERS, _row(1, "b", 0))])
    ApplyWorker(_options(kafka_bootstrap, prefix, pg_database)).run()
    assert _state(pg_database) == ([(1, "a", 7)], [(1, "b", 0)])

    # a later worker reads the held-back region again: transactions 2 and 3 are not applied twice
    stream.transaction("4:400", [("c", ITEMS, _row(2, "again", 1))])
    worker = ApplyWorker(_options(kafka_bootstrap, prefix, pg_database))
    worker.run()
    assert _state(pg_database) == ([(1, "a", 7), (2, "again", 1)], [(1, "b", 0)])
    left = rows(pg_database, "SELECT count(*) FROM public.cdc_transactions")[0][0]
    assert left <= 4


def test_transaction_mode_needs_one_worker():
    with pytest.raises(ConfigError, match="--workers 1"):
        ApplyOptions(kafka="k:1", prefix="p", target="postgresql://x@h/db", consistency="transaction", workers=2).check()
