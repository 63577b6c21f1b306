"""Hostile `<prefix>.schemas` records never become SQL: each field is checked before any DDL/DML.

Each case writes a schema record with one hostile field (most of them an SQL payload), then an event
that needs that schema, against a real PostgreSQL and MariaDB target that holds an `accounts` table.
Apply must stop with a bad-event error naming the field, and `accounts` must still be there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cdc.apply.dlq import BadEventError
from cdc.apply.worker import ApplyOptions, ApplyWorker
from cdc.events import KINDS, Column
from cdc.kafka import Record
from cdc.schema_checks import InvalidSchemaRecord, check_table_record
from tests.apply.kafka_stream import FAST_GROUP, KafkaStream, unique_prefix
from tests.apply.scenario import Stream, applier, execute, rows, simple_table
from tests.conftest import create_mysql_database, create_pg_database, drop_mysql_database, drop_pg_database

PAYLOAD = "1); DROP TABLE accounts; --"
NAME_PAYLOAD = 'x"; DROP TABLE accounts; --' + "y" * 200  # over the name bound; quoting handles the rest


def _column(name: str = "extra", **fields: Any) -> dict[str, Any]:
    return {"name": name, "source_type": "character varying(10)", "kind": "string", "nullable": True,
            "primary_key": False, "length": 10} | fields


# field -> how the hostile record differs from a valid one (the schema of `items` with one more column)
CASES: dict[str, Any] = {
    "length": lambda r: r["columns"].append(_column(length=PAYLOAD)),
    "length_bool": lambda r: r["columns"].append(_column(length=True)),
    "precision": lambda r: r["columns"].append(_column(kind="decimal", source_type="numeric", length=None,
                                                       precision=PAYLOAD, scale=2)),
    "scale": lambda r: r["columns"].append(_column(kind="decimal", source_type="numeric", length=None,
                                                   precision=10, scale=PAYLOAD)),
    "kind": lambda r: r["columns"].append(_column(kind="text); DROP TABLE accounts; --")),
    "element": lambda r: r["columns"].append(_column(kind="array", element=PAYLOAD)),
    "name": lambda r: r["columns"].append(_column(name=NAME_PAYLOAD)),
    "table": lambda r: r.update(table=NAME_PAYLOAD),
    "namespace": lambda r: r.update(namespace=NAME_PAYLOAD),
    "engine": lambda r: r.update(engine="oracle'; DROP TABLE accounts; --"),
    "version": lambda r: r.update(version="2; DROP TABLE accounts"),
    "nullable": lambda r: r["columns"].append(_column(nullable="NOT NULL; DROP TABLE accounts; --")),
    "unsigned": lambda r: r["columns"].append(_column(kind="int", length=4, unsigned="yes")),
    "charset": lambda r: r["columns"].append(_column(charset="utf8mb4; DROP TABLE accounts")),
    "values": lambda r: r["columns"].append(_column(kind="enum", length=None, values=["a", 1])),
    "source_type": lambda r: r["columns"].append(_column(source_type="varchar\n" + "x" * 300)),
    "primary_key": lambda r: r.update(primary_key=["id); DROP TABLE accounts; --"]),
}
# The name each case's error must mention.
FIELD_IN_MESSAGE = {"length_bool": "length"}


def _target(engine: str, request: pytest.FixtureRequest) -> Iterator[str]:
    server = request.getfixturevalue("pg_url" if engine == "postgresql" else "mysql_url")
    create, drop = ((create_pg_database, drop_pg_database) if engine == "postgresql"
                    else (create_mysql_database, drop_mysql_database))
    url = create(server, f"hostile_{engine}")
    try:
        yield url
    finally:
        drop(server, url)


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def target(request: pytest.FixtureRequest) -> Iterator[str]:
    """A target database (one per engine for the module) with `accounts` and `items` tables."""
    yield from _target(request.param, request)


def _accounts(url: str) -> list[tuple]:
    return rows(url, "SELECT id FROM accounts ORDER BY id")


def _prepare(url: str) -> None:
    execute(url, "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY)")
    if not _accounts(url):
        execute(url, "INSERT INTO accounts VALUES (1)")


def _schema_record(offset: int, key: str, value: dict[str, Any]) -> Record:
    return Record("t.schemas", 0, offset, orjson.dumps(key), orjson.dumps(value), (), 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_schema_field_is_a_bad_event_never_sql(case, target):
    _prepare(target)
    engine = "postgresql" if target.startswith("postgres") else "mysql"
    namespace = "public" if engine == "postgresql" else target.rsplit("/", 1)[1]
    v1 = simple_table(engine, name=f"items_{case}")
    v1 = type(v1)(engine=engine, namespace=namespace, name=v1.name, columns=v1.columns, version=1,
                  primary_key=v1.primary_key)
    stream = Stream()
    work = applier(target, v1)
    try:
        work.apply(stream.insert(v1, {"id": 1, "name": "a", "qty": 1, "note": None}))
        v2 = type(v1)(engine=engine, namespace=namespace, name=v1.name, version=2, primary_key=v1.primary_key,
                      columns=v1.columns + (Column("extra", "character varying(10)", "string", length=10),))
        hostile = v2.to_dict()
        hostile["columns"] = hostile["columns"][:-1]
        CASES[case](hostile)
        work.schemas.add_record(_schema_record(0, v2.qualified_name, hostile))
        event = stream.insert(v2, {"id": 2, "name": "b", "qty": 2, "note": None, "extra": "x"})
        field = FIELD_IN_MESSAGE.get(case, case)
        with pytest.raises(BadEventError, match=rf"schema record .* refused: .*\b{field}\b"):
            work.apply(event)
    finally:
        work.writer.close()
    assert _accounts(target) == [(1,)], "the hostile record reached the target"
    assert rows(target, f"SELECT id FROM items_{case}") == [(1,)]


def test_op_codes_come_from_the_closed_set(target):
    _prepare(target)
    engine = "postgresql" if target.startswith("postgres") else "mysql"
    schema = simple_table(engine, name="items_op")
    stream = Stream()
    work = applier(target, schema)
    try:
        (record,) = stream.insert(schema, {"id": 1, "name": "a", "qty": 1, "note": None})
        value = orjson.loads(record.value)
        value["op"] = "c'; DROP TABLE accounts; --"
        forged = Record(record.topic, record.partition, record.offset, record.key, orjson.dumps(value),
                        record.headers, 0)
        with pytest.raises(BadEventError, match="unknown op"):
            work.apply([forged])
    finally:
        work.writer.close()
    assert _accounts(target) == [(1,)]


@pytest.mark.parametrize("value, field", [
    ({"precision": True}, "precision"), ({"length": 1.5}, "length"), ({"length": -1}, "length"),
    ({"scale": 10**6}, "scale"), ({"length": 2**40}, "length"),
])
def test_integer_parameters_are_real_integers_in_range(value, field):
    record = simple_table().to_dict()
    record["columns"][1].update(value)
    with pytest.raises(InvalidSchemaRecord, match=rf"\b{field}\b"):
        check_table_record(record, KINDS)


def test_a_valid_record_with_hostile_but_bounded_names_passes():
    record = simple_table().to_dict()
    record["table"] = 'x"; DROP TABLE y; --'
    record["columns"][3]["name"] = "ü `q` \"w\" select"
    check_table_record(record, KINDS)


def test_hostile_record_through_kafka_stops_the_worker(kafka_bootstrap, target):
    """The whole path: a hostile record on the real schemas topic, a real consumer group, a real target."""
    _prepare(target)
    engine = "postgresql" if target.startswith("postgres") else "mysql"
    namespace = "public" if engine == "postgresql" else target.rsplit("/", 1)[1]
    prefix = unique_prefix("hostile")
    v1 = simple_table(engine, name="items_kafka")
    v1 = type(v1)(engine=engine, namespace=namespace, name=v1.name, columns=v1.columns, primary_key=v1.primary_key)
    execute(target, "CREATE TABLE items_kafka (id int PRIMARY KEY, name varchar(50), qty int, note text)")
    stream = KafkaStream(kafka_bootstrap, prefix, v1, partitions=1)
    try:
        v2 = type(v1)(engine=engine, namespace=namespace, name=v1.name, version=2, primary_key=v1.primary_key,
                      columns=v1.columns + (Column("extra", "character varying(10)", "string", length=10),))
        topic, key, value, headers = stream.envelope.schema_record(v2)
        hostile = orjson.loads(value)
        hostile["columns"][-1]["length"] = PAYLOAD
        stream.producer.produce(topic, orjson.dumps(hostile), key, headers=headers)
        stream.schema = v2
        stream.upsert({"id": 1, "name": "a", "qty": 1, "note": None, "extra": "x"}, "c")
        stream.producer.flush(30)
        options = ApplyOptions(kafka=kafka_bootstrap, prefix=prefix, target=target, batch_size=100, linger_ms=20,
                               idle_exit_s=3.0, **FAST_GROUP)
        with pytest.raises(BadEventError, match=r"refused: .*length '1\); DROP TABLE accounts; --'"):
            ApplyWorker(options).run()
    finally:
        stream.close()
    assert _accounts(target) == [(1,)]
    assert rows(target, "SELECT count(*) FROM items_kafka") == [(0,)]


def test_under_the_dlq_policy_the_events_of_a_refused_schema_are_parked(kafka_bootstrap, target):
    from cdc.apply.dlq import DeadLetterPolicy
    from cdc.kafka import make_admin, make_producer, read_topic

    _prepare(target)
    engine = "postgresql" if target.startswith("postgres") else "mysql"
    namespace = "public" if engine == "postgresql" else target.rsplit("/", 1)[1]
    prefix = unique_prefix("hdlq")
    with make_admin(kafka_bootstrap) as admin:
        admin.ensure_topic(f"{prefix}.dlq", 1)
    v1 = simple_table(engine, name="items_dlq")
    v1 = type(v1)(engine=engine, namespace=namespace, name=v1.name, columns=v1.columns, primary_key=v1.primary_key)
    stream = Stream()
    work = applier(target, v1, policy=DeadLetterPolicy(make_producer(kafka_bootstrap), prefix))
    try:
        work.apply(stream.insert(v1, {"id": 1, "name": "a", "qty": 1, "note": None}))
        v2 = type(v1)(engine=engine, namespace=namespace, name=v1.name, version=2, primary_key=v1.primary_key,
                      columns=v1.columns + (Column("extra", "character varying(10)", "string", length=10),))
        hostile = v2.to_dict()
        hostile["columns"][-1]["length"] = PAYLOAD
        work.schemas.add_record(_schema_record(0, v2.qualified_name, hostile))
        work.apply(stream.insert(v2, {"id": 2, "name": "b", "qty": 2, "note": None, "extra": "x"}))
    finally:
        work.policy.close()
        work.writer.close()
    (dead,) = read_topic(kafka_bootstrap, f"{prefix}.dlq", timeout=30.0)
    assert b"refused: column 'extra': length '1); DROP TABLE accounts; --'" in dict(dead.headers)["cdc.dlq.reason"]
    assert _accounts(target) == [(1,)]
    assert rows(target, "SELECT id FROM items_dlq") == [(1,)]
