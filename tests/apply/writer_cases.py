"""Behaviour every target writer must have; each engine's test_target.py imports these with its `target_url`.

The test functions take the fixture `target_url` (a fresh database URL of that engine) and `engine`.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from cdc.apply.dlq import BadEventError, DeadLetterPolicy
from cdc.apply.target import open_writer
from cdc.errors import TargetError
from cdc.events import UNAVAILABLE_VALUE, Column
from tests.apply.scenario import Stream, applier, execute, rows, simple_table


def _where(engine: str, url: str, name: str) -> str:
    if engine == "postgresql":
        return f'public."{name}"'
    return f"`{url.rsplit('/', 1)[1]}`.`{name}`"


def _items(engine: str, url: str) -> list[tuple]:
    return rows(url, f"SELECT id, name, qty, note FROM {_where(engine, url, 'items')} ORDER BY id")


def test_upserts_and_deletes_fold_into_target_rows(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    batch = (
        stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": "x"})
        + stream.insert(schema, {"id": 2, "name": "b", "qty": 2, "note": None})
        + stream.insert(schema, {"id": 3, "name": "c", "qty": 3, "note": None})
        + stream.update(schema, {"id": 1, "name": "a2", "qty": 10, "note": "x2"})
        + stream.delete(schema, {"id": 2, "name": "b", "qty": 2, "note": None})
        + stream.delete(schema, {"id": 3, "name": "c", "qty": 3, "note": None})
        + stream.insert(schema, {"id": 3, "name": "c again", "qty": 30, "note": "back"})
    )
    apply = applier(target_url, schema)
    apply.apply(batch)
    assert _items(engine, target_url) == [(1, "a2", 10, "x2"), (3, "c again", 30, "back")]
    apply.apply(stream.update(schema, {"id": 3, "name": "c", "qty": 31, "note": None})
                + stream.delete(schema, {"id": 1, "name": "a2", "qty": 10, "note": "x2"}))
    assert _items(engine, target_url) == [(3, "c", 31, None)]


def test_update_with_unchanged_toast_placeholder_keeps_target_value(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": "big value"})
                + stream.insert(schema, {"id": 2, "name": "b", "qty": 2, "note": "other"}))
    apply.apply(
        stream.update(schema, {"id": 1, "name": "a2", "qty": 5, "note": UNAVAILABLE_VALUE})
        + stream.update(schema, {"id": 2, "name": "b2", "qty": 6, "note": "changed"})
        + stream.insert(schema, {"id": 3, "name": "c", "qty": 7, "note": "new"})
        # placeholder after an upsert in the same batch takes the batch's value
        + stream.update(schema, {"id": 3, "name": "c2", "qty": 8, "note": UNAVAILABLE_VALUE})
    )
    assert _items(engine, target_url) == [(1, "a2", 5, "big value"), (2, "b2", 6, "changed"), (3, "c2", 8, "new")]


def test_truncate_empties_table_and_later_events_apply(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}))
    apply.apply(stream.insert(schema, {"id": 2, "name": "b", "qty": 2, "note": None})
                + stream.truncate(schema)
                + stream.insert(schema, {"id": 3, "name": "c", "qty": 3, "note": None}))
    assert _items(engine, target_url) == [(3, "c", 3, None)]
    apply.apply(stream.truncate(schema))
    assert _items(engine, target_url) == []


def test_offsets_commit_in_the_same_transaction_as_the_rows(target_url, engine, monkeypatch):
    schema = simple_table(engine)
    other = simple_table(engine, name="others")
    stream = Stream()
    apply = applier(target_url, schema, other)
    first = stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None})
    apply.apply(first)
    batch = stream.update(schema, {"id": 1, "name": "a", "qty": 2, "note": None}) + stream.insert(
        other, {"id": 9, "name": "z", "qty": 9, "note": None})
    real_write = apply.writer.write
    calls = []

    def write_then_crash(table, folded, *converted):
        calls.append(table.name)
        real_write(table, folded, *converted)
        if len(calls) == 2:
            raise ConnectionError("simulated crash after the second table was written")

    monkeypatch.setattr(apply.writer, "write", write_then_crash)
    with pytest.raises(ConnectionError):
        apply.apply(batch)
    monkeypatch.undo()
    offsets = f"SELECT topic, next_offset FROM {_where(engine, target_url, 'cdc_offsets')} ORDER BY topic"
    assert _items(engine, target_url) == [(1, "a", 1, None)]
    assert rows(target_url, f"SELECT count(*) FROM {_where(engine, target_url, 'others')}") == [(0,)]
    assert rows(target_url, offsets) == [("t.public.items" if engine == "postgresql" else "t.shop.items", 1)]
    apply.apply(batch)
    assert _items(engine, target_url) == [(1, "a", 2, None)]
    # a replay of what was applied (a stale member, a restart before the Kafka commit) changes nothing
    apply.apply(first + batch)
    assert _items(engine, target_url) == [(1, "a", 2, None)]
    assert [n for _, n in rows(target_url, offsets)] == [2, 1]


def test_missing_table_without_create_tables_is_a_target_error_naming_it(target_url, engine):
    schema = simple_table(engine, name="absent")
    apply = applier(target_url, schema, create_tables=False)
    with pytest.raises(TargetError, match=r"absent.*does not exist.*--create-tables"):
        apply.apply(Stream().insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}))


def test_schema_change_adds_column_and_widens_type(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}))
    wider = simple_table(engine, version=2, extra=(Column("added", "integer", "int", length=4),))
    wider = type(wider)(wider.engine, wider.namespace, wider.name,
                        tuple(Column("name", "character varying(200)", "string", length=200) if c.name == "name" else c
                              for c in wider.columns), 2, wider.database, wider.primary_key)
    apply.schemas.add(wider)
    long_name = "n" * 150
    apply.apply(stream.insert(wider, {"id": 2, "name": long_name, "qty": 2, "note": None, "added": 7})
                # an event still under version 1 leaves the new column alone
                + stream.update(schema, {"id": 1, "name": "a1", "qty": 1, "note": None}))
    got = rows(target_url, f"SELECT id, name, added FROM {_where(engine, target_url, 'items')} ORDER BY id")
    assert got == [(1, "a1", None), (2, long_name, 7)]


class _Producer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, value, key=None, *, headers=None, **_):
        self.sent.append((topic, key, value, dict(headers or [])))

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass


def test_bad_row_stops_with_topic_partition_offset_and_reason(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    good = stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None})
    bad = stream.insert(schema, {"id": 2, "name": "x" * 80, "qty": 2, "note": None})  # longer than varchar(50)
    with pytest.raises(BadEventError, match=rf"topic {bad[0].topic} partition 0 offset {bad[0].offset}:"):
        apply.apply(good + bad)
    assert _items(engine, target_url) == []


def test_bad_rows_go_to_the_dead_letter_topic_and_the_rest_apply(target_url, engine):
    schema = simple_table(engine)
    stream = Stream()
    producer = _Producer()
    apply = applier(target_url, schema, policy=DeadLetterPolicy(producer, "t"))
    batch = (stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None})
             + stream.insert(schema, {"id": 2, "name": "x" * 80, "qty": 2, "note": None})
             + stream.insert(schema, {"id": 3, "name": "c", "qty": "not a number", "note": None})
             + stream.insert(schema, {"id": 4, "name": "d", "qty": 4, "note": None}))
    malformed = batch[-1].__class__(batch[-1].topic, 0, batch[-1].offset + 1, b'{"id":5}', b"{not json", (), 0)
    apply.apply(batch + [malformed])
    assert _items(engine, target_url) == [(1, "a", 1, None), (4, "d", 4, None)]
    assert [(topic, headers["cdc.dlq.offset"]) for topic, _, _, headers in producer.sent] == [
        ("t.dlq", b"1"), ("t.dlq", b"2"), ("t.dlq", b"4")]
    assert all(headers["cdc.dlq.reason"] for _, _, _, headers in producer.sent)
    offsets = rows(target_url, f"SELECT next_offset FROM {_where(engine, target_url, 'cdc_offsets')}")
    assert offsets == [(5,)]


def test_decimal_and_bytes_keys_and_composite_primary_key(target_url, engine):
    from tests.apply.scenario import table

    schema = table(engine, "pairs", (
        Column("a", "integer", "int", nullable=False, primary_key=True, length=4),
        Column("b", "varchar(10)", "string", nullable=False, primary_key=True, length=10),
        Column("price", "numeric(10,2)", "decimal", precision=10, scale=2),
    ))
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"a": 1, "b": "x", "price": "10.50"})
                + stream.insert(schema, {"a": 1, "b": "y", "price": "0.01"})
                + stream.insert(schema, {"a": 2, "b": "x", "price": None}))
    apply.apply(stream.delete(schema, {"a": 1, "b": "x", "price": "10.50"})
                + stream.update(schema, {"a": 2, "b": "x", "price": "-3.00"}))
    got = rows(target_url, f"SELECT a, b, price FROM {_where(engine, target_url, 'pairs')} ORDER BY a, b")
    assert got == [(1, "y", Decimal("0.01")), (2, "x", Decimal("-3.00"))]


def test_writer_for_url_scheme(target_url, engine):
    writer = open_writer(target_url)
    try:
        assert writer.engine == engine
    finally:
        writer.close()


def test_existing_table_without_a_unique_key_is_a_clear_target_error(target_url, engine):
    where = _where(engine, target_url, "loose")
    execute(target_url, f"CREATE TABLE {where} (id integer, name varchar(50), qty integer, note text)")
    schema = simple_table(engine, name="loose")
    apply = applier(target_url, schema, create_tables=False)
    with pytest.raises(TargetError, match=r"loose has no primary key or unique index on \(id\)"):
        apply.apply(Stream().insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}))


@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_dropped_source_column_is_kept_or_dropped_by_policy(target_url, engine, policy):
    from cdc.apply.batch import BatchApplier
    from tests.apply.scenario import catalog

    schema = simple_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": "kept?"}))
    narrower = type(schema)(schema.engine, schema.namespace, schema.name,
                            tuple(c for c in schema.columns if c.name != "note"), 2, schema.database, schema.primary_key)
    writer = open_writer(target_url, drop_columns=policy)
    later = BatchApplier(writer, catalog(narrower), group="g", prefix="t", policy=apply.policy)
    later.apply(stream.insert(narrower, {"id": 2, "name": "b", "qty": 2}))
    columns = [name for name in writer.describe(*writer.location(narrower))]
    if policy == "keep":
        assert "note" in columns
        assert rows(target_url, f"SELECT id, note FROM {_where(engine, target_url, 'items')} ORDER BY id") == [
            (1, "kept?"), (2, None)]
    else:
        assert "note" not in columns
        assert rows(target_url, f"SELECT id, name FROM {_where(engine, target_url, 'items')} ORDER BY id") == [
            (1, "a"), (2, "b")]


def test_constraint_violation_is_a_bad_event_and_the_rest_apply(target_url, engine):
    where = _where(engine, target_url, "checked")
    execute(target_url, f"CREATE TABLE {where} (id integer PRIMARY KEY, name varchar(50) NOT NULL,"
                        " qty integer CHECK (qty >= 0), note text)")
    schema = simple_table(engine, name="checked")
    stream = Stream()
    producer = _Producer()
    apply = applier(target_url, schema, create_tables=False, policy=DeadLetterPolicy(producer, "t"))
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None})
                + stream.insert(schema, {"id": 2, "name": "b", "qty": -5, "note": None})
                + stream.insert(schema, {"id": 3, "name": None, "qty": 3, "note": None})
                + stream.insert(schema, {"id": 4, "name": "d", "qty": 4, "note": None}))
    assert rows(target_url, f"SELECT id FROM {where} ORDER BY id") == [(1,), (4,)]
    assert [headers["cdc.dlq.offset"] for _, _, _, headers in producer.sent] == [b"1", b"2"]


def test_generated_target_columns_are_computed_not_written(target_url, engine):
    """A source's published generated column (PostgreSQL 18) lands in a target column the target computes."""
    total = Column("total", "integer", "int")
    schema = simple_table(engine, extra=(total,))
    where = _where(engine, target_url, "items")
    key = "id integer PRIMARY KEY" if engine == "postgresql" else "id int PRIMARY KEY"
    generated = ("total integer GENERATED ALWAYS AS (qty * 2) STORED" if engine == "postgresql"
                 else "total int AS (qty * 2) STORED")
    execute(target_url, f"CREATE TABLE {where} ({key}, name varchar(100), qty integer, note text, {generated})")
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 3, "note": None, "total": 6})
                + stream.insert(schema, {"id": 2, "name": "b", "qty": 4, "note": None, "total": 999}))
    apply.apply(stream.update(schema, {"id": 1, "name": "a", "qty": 5, "note": None, "total": 10}))
    assert rows(target_url, f"SELECT id, qty, total FROM {where} ORDER BY id") == [(1, 5, 10), (2, 4, 8)]


def keyless_table(engine: str, name: str = "history"):
    """A history table without a primary key: who, amount, note (nullable)."""
    from tests.apply.scenario import table

    return table(engine, name, (
        Column("who", "character varying(20)", "string", length=20),
        Column("amount", "integer", "int", length=4),
        Column("note", "text", "string"),
    ))


def _history(engine: str, url: str) -> list[tuple]:
    return sorted(rows(url, f"SELECT who, amount, note FROM {_where(engine, url, 'history')}"),
                  key=lambda r: (r[0], r[1], r[2] or ""))


def test_keyless_updates_and_deletes_change_exactly_one_row_matching_the_whole_before_image(target_url, engine):
    schema = keyless_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    twin = {"who": "ann", "amount": 5, "note": None}
    apply.apply(stream.insert(schema, twin) + stream.insert(schema, twin)
                + stream.insert(schema, {"who": "bob", "amount": 7, "note": "x"}))
    assert _history(engine, target_url) == [("ann", 5, None), ("ann", 5, None), ("bob", 7, "x")]
    # one of two identical rows (a NULL in the image) changes, then one of them goes
    apply.apply(stream.update(schema, {"who": "ann", "amount": 6, "note": None}, before=twin))
    assert _history(engine, target_url) == [("ann", 5, None), ("ann", 6, None), ("bob", 7, "x")]
    apply.apply(stream.delete(schema, twin) + stream.delete(schema, {"who": "bob", "amount": 7, "note": "x"}))
    assert _history(engine, target_url) == [("ann", 6, None)]


def test_keyless_events_sent_again_after_a_capture_restart_apply_once(target_url, engine):
    schema = keyless_table(engine)
    stream = Stream()
    apply = applier(target_url, schema)
    first = stream.insert(schema, {"who": "ann", "amount": 1, "note": None}) \
        + stream.insert(schema, {"who": "ann", "amount": 1, "note": None})
    # the originals and their repeats can also arrive in one batch
    apply.apply(first + stream.again(first))
    assert _history(engine, target_url) == [("ann", 1, None), ("ann", 1, None)]
    newer = stream.insert(schema, {"who": "cy", "amount": 3, "note": None})
    # the restarted capture sends the acknowledged-but-not-confirmed events again, then new ones
    apply.apply(stream.again(first) + newer)
    assert _history(engine, target_url) == [("ann", 1, None), ("ann", 1, None), ("cy", 3, None)]
    # and a later apply process (the position is in the target, not in memory) drops them too
    applier(target_url, schema).apply(stream.again(first + newer))
    assert _history(engine, target_url) == [("ann", 1, None), ("ann", 1, None), ("cy", 3, None)]


def test_skip_table_parks_a_table_the_target_refuses_and_keeps_the_others_flowing(target_url, engine):
    from cdc.apply.dlq import SkipTablePolicy, StopPolicy

    schema, other = simple_table(engine), simple_table(engine, name="others")
    stream = Stream()
    applier(target_url, schema, other).apply(stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}))
    execute(target_url, f"ALTER TABLE {_where(engine, target_url, 'items')} ADD CONSTRAINT small CHECK (qty < 100)")
    refused = stream.insert(schema, {"id": 2, "name": "b", "qty": 500, "note": None})
    with pytest.raises(BadEventError, match=r"of table (public|shop)\.items at topic"):
        applier(target_url, schema, other, policy=StopPolicy()).apply(refused)
    apply = applier(target_url, schema, other, policy=SkipTablePolicy())
    apply.metrics_prefix = f"skip-{engine}"
    apply.apply(refused + stream.insert(other, {"id": 1, "name": "o", "qty": 1, "note": None}))
    apply.apply(stream.insert(schema, {"id": 3, "name": "c", "qty": 3, "note": None})
                + stream.insert(other, {"id": 2, "name": "p", "qty": 2, "note": None}))
    assert _items(engine, target_url) == [(1, "a", 1, None)]
    assert rows(target_url, f"SELECT id FROM {_where(engine, target_url, 'others')} ORDER BY id") == [(1,), (2,)]
    assert list(apply.parked) == [schema.qualified_name]
    # shown by the metrics and by `cdc status`
    from prometheus_client import REGISTRY

    from cdc.registry import status_module

    assert REGISTRY.get_sample_value("cdc_apply_table_parked",
                                     {"pipeline": f"skip-{engine}", "table": schema.qualified_name}) == 1
    [state] = [row for row in status_module(target_url).target_table_states(target_url) if row["parked"]]
    assert state["table"] == schema.qualified_name
    assert state["parked"].startswith(f"{refused[0].topic}[0]@{refused[0].offset}: ")  # where, then why
    # parked for good: a new apply process reads it from cdc_table_state
    assert list(applier(target_url, schema, other, policy=SkipTablePolicy()).writer.load_parked_tables("g")) \
        == [schema.qualified_name]


def test_skip_table_parks_a_target_table_apply_cannot_write_at_all(target_url, engine):
    from cdc.apply.dlq import SkipTablePolicy

    schema, other = simple_table(engine), simple_table(engine, name="others")
    # the target's table lacks the primary key upserts need: no event of it can be written
    execute(target_url, f"CREATE TABLE {_where(engine, target_url, 'items')} (id int, name varchar(50), qty int, note text)")
    stream = Stream()
    batch = stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None}) \
        + stream.insert(other, {"id": 1, "name": "o", "qty": 1, "note": None})
    with pytest.raises(TargetError, match=r"items has no primary key or unique index"):
        applier(target_url, schema, other).apply(batch)
    apply = applier(target_url, schema, other, policy=SkipTablePolicy())
    apply.apply(batch)
    assert rows(target_url, f"SELECT id FROM {_where(engine, target_url, 'others')}") == [(1,)]
    assert list(apply.parked) == [schema.qualified_name] and "primary key" in apply.parked[schema.qualified_name]
