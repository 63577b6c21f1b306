"""The envelope: Debezium's field order, keys, tombstones, headers, PK changes, topics, compat forms."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.codecs import encode_timestamptz

from cdc.compat import (
    bits_to_debezium,
    date_to_days,
    interval_to_debezium,
    money_to_decimal_string,
    time_to_micros,
    timestamp_to_epoch_micros,
    timestamptz_to_debezium,
    timetz_to_debezium,
)
from cdc.envelope import NEWKEY_HEADER, OLDKEY_HEADER, SCHEMA_VERSION_HEADER, Envelope
from cdc.errors import ConfigError
from cdc.events import UNAVAILABLE_VALUE, Change, Column, TableSchema

ORDERS = TableSchema(
    "postgresql",
    "public",
    "orders",
    (
        Column("id", "integer", "int", nullable=False, primary_key=True, length=4),
        Column("region", "text", "string", nullable=False, primary_key=True),
        Column("price", "numeric(10,2)", "decimal", precision=10, scale=2),
        Column("day", "date", "date"),
        Column("at", "timestamp without time zone", "timestamp", precision=6),
        Column("at_ms", "timestamp(3) without time zone", "timestamp", precision=3),
        Column("paid", "timestamp with time zone", "timestamptz", precision=6),
        Column("clock", "time without time zone", "time", precision=6),
        Column("flags", "bit(4)", "bits", length=4),
        Column("flag", "bit(1)", "bits", length=1),
        Column("span", "interval", "interval"),
        Column("blob", "bytea", "bytes"),
        Column("days", "date[]", "array", element="date"),
        Column("cash", "money", "money"),
        Column("doc", "jsonb", "json"),
    ),
    version=7,
    database="shop",
    primary_key=("id", "region"),
)
NO_KEY = TableSchema("mysql", "shop", "log", (Column("line", "text", "string"),), database="shop")
SOURCE = {"version": "0.1.0", "connector": "postgresql", "name": "shop", "ts_ms": 1732400000000, "snapshot": "false",
          "db": "shop", "sequence": '["1","2"]', "schema": "public", "table": "orders", "txId": 771, "lsn": 2}
TRANSACTION = {"id": "771:2", "total_order": 1, "data_collection_order": 1}
ROW = {
    "id": 1, "region": "eu", "price": "10.50", "day": "2024-02-29", "at": "2024-02-29T13:45:00.123456",
    "at_ms": "2024-02-29T13:45:00.123000", "paid": "2024-02-29T12:45:00.1Z", "clock": "13:45:00.5",
    "flags": "0101", "flag": "1", "span": "P1Y2M3DT4H5M6.7S", "blob": "AQI=", "days": [["2024-02-29", None]],
    "cash": "-$1,234.56", "doc": '{"a": 1}',
}


def change(op, before=None, after=None, table=ORDERS, transaction=TRANSACTION, **extra):
    return Change(op, table, before, after, SOURCE, (1, 2), transaction, **extra)


@pytest.fixture
def envelope():
    return Envelope("shop")


def test_value_has_debeziums_field_order_and_timestamps(envelope):
    before_ns = time.time_ns()
    value = orjson.loads(envelope.value(change("c", after=ROW)))
    assert list(value) == ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"]
    assert value["before"] is None and value["after"] == ROW and value["op"] == "c"
    assert value["source"] == SOURCE and value["transaction"] == TRANSACTION
    assert before_ns <= value["ts_ns"] <= time.time_ns()
    assert value["ts_us"] == value["ts_ns"] // 1000 and value["ts_ms"] == value["ts_ns"] // 1_000_000


def test_transaction_is_present_and_null_when_off(envelope):
    value = orjson.loads(envelope.value(change("r", after=ROW, transaction=None)))
    assert "transaction" in value and value["transaction"] is None


def test_key_is_the_primary_key_in_key_order(envelope):
    assert envelope.key(change("c", after=ROW)) == b'{"id":1,"region":"eu"}'
    assert envelope.key(change("d", before={"id": 1, "region": "eu"})) == b'{"id":1,"region":"eu"}'


def test_table_without_primary_key_has_a_null_key_and_no_tombstone(envelope):
    records = envelope.records(change("d", before={"line": "x"}, table=NO_KEY))
    assert [(topic, key, value is None) for topic, key, value, _ in records] == [("shop.shop.log", None, False)]


def test_delete_is_followed_by_a_tombstone_with_the_same_key(envelope):
    (topic, key, value, headers), tombstone = envelope.records(change("d", before=ROW))
    assert topic == "shop.public.orders" and key == b'{"id":1,"region":"eu"}'
    assert orjson.loads(value)["op"] == "d" and orjson.loads(value)["after"] is None
    assert tombstone == (topic, key, None, headers)
    assert headers == [(SCHEMA_VERSION_HEADER, b"7")]


def test_insert_update_and_read_are_one_record(envelope):
    for op in ("c", "u", "r"):
        records = envelope.records(change(op, before=ROW if op == "u" else None, after=ROW))
        assert len(records) == 1 and orjson.loads(records[0][2])["op"] == op


def test_update_with_unchanged_key_is_a_plain_update(envelope):
    old = {"id": 1, "region": "eu", "price": "9.00"}
    [(_, key, value, _)] = envelope.records(change("u", before=old, after=ROW))
    assert orjson.loads(value)["before"] == old


def test_primary_key_change_is_delete_tombstone_create_with_key_headers(envelope):
    new = dict(ROW, id=2)
    old_key, new_key = b'{"id":1,"region":"eu"}', b'{"id":2,"region":"eu"}'
    delete, tombstone, create = envelope.records(change("u", before={"id": 1, "region": "eu"}, after=new))
    assert delete[1] == old_key and orjson.loads(delete[2])["op"] == "d"
    assert orjson.loads(delete[2])["before"] == {"id": 1, "region": "eu"}
    assert delete[3] == [(SCHEMA_VERSION_HEADER, b"7"), (NEWKEY_HEADER, new_key)]
    assert tombstone == (delete[0], old_key, None, delete[3])
    assert create[1] == new_key and orjson.loads(create[2])["op"] == "c"
    assert orjson.loads(create[2])["before"] is None and orjson.loads(create[2])["after"] == new
    assert create[3] == [(SCHEMA_VERSION_HEADER, b"7"), (OLDKEY_HEADER, old_key)]


def test_truncate_has_no_key_and_no_rows(envelope):
    [(topic, key, value, _)] = envelope.records(change("t"))
    body = orjson.loads(value)
    assert topic == "shop.public.orders" and key is None
    assert body["op"] == "t" and body["before"] is None and body["after"] is None and body["source"] == SOURCE


def test_logical_message_goes_to_the_message_topic(envelope):
    message = change("m", table=None, content={"prefix": "audit", "content": b"\x01\x02"})
    [(topic, key, value, headers)] = envelope.records(message)
    assert topic == "shop.message" and key == b'{"prefix":"audit"}' and headers == []
    body = orjson.loads(value)
    assert list(body) == ["op", "ts_ms", "source", "message"]
    assert body["message"] == {"prefix": "audit", "content": "AQI="}


def test_topic_names():
    ours, debezium = Envelope("shop"), Envelope("shop", compat="debezium")
    assert ours.topic(ORDERS) == "shop.public.orders" and ours.topic(NO_KEY) == "shop.shop.log"
    assert (ours.transaction_topic, ours.schemas_topic, ours.schema_changes_topic) == (
        "shop.transaction", "shop.schemas", "shop.schema-changes")
    assert ours.heartbeat_topic == "__cdc-heartbeat.shop"
    assert debezium.heartbeat_topic == "__debezium-heartbeat.shop"
    assert ours.offsets_topic == "__cdc-offsets.shop" and ours.dlq_topic == "shop.dlq"


def test_bad_compat_or_prefix_is_a_config_error():
    with pytest.raises(ConfigError):
        Envelope("shop", compat="avro")
    with pytest.raises(ConfigError):
        Envelope("")


def test_transaction_records_have_debeziums_shape(envelope):
    topic, key, value, _ = envelope.transaction_record("BEGIN", "771:2", 1732400000000)
    assert topic == "shop.transaction" and key == b'{"id":"771:2"}'
    assert orjson.loads(value) == {"status": "BEGIN", "id": "771:2", "event_count": None,
                                   "data_collections": None, "ts_ms": 1732400000000}
    _, _, value, _ = envelope.transaction_record("END", "771:2", 1, event_count=3,
                                                 data_collections=[("public.orders", 2), ("public.items", 1)])
    body = orjson.loads(value)
    assert list(body) == ["status", "id", "event_count", "data_collections", "ts_ms"]
    assert body["data_collections"] == [{"data_collection": "public.orders", "event_count": 2},
                                        {"data_collection": "public.items", "event_count": 1}]


@given(st.sampled_from(["BEGIN", "END"]), st.text(max_size=20), st.integers(min_value=-2**63, max_value=2**63 - 1),
       st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
       st.one_of(st.none(), st.lists(st.tuples(st.text(max_size=12), st.integers(min_value=0, max_value=2**31)),
                                     max_size=3)))
def test_transaction_record_pieces_are_the_serialised_value(status, txn_id, ts_ms, event_count, collections):
    envelope = Envelope("shop")
    spelled = envelope.transaction_record(status, txn_id, ts_ms, event_count=event_count, data_collections=collections)
    dumped = envelope._transaction_record_dumped(status, txn_id, ts_ms, event_count, collections)
    assert spelled == dumped


def test_schema_record_is_the_table_dict_keyed_by_name(envelope):
    topic, key, value, headers = envelope.schema_record(ORDERS)
    assert topic == "shop.schemas" and key == b'"public.orders"'
    assert TableSchema.from_dict(orjson.loads(value)) == ORDERS
    assert headers == [(SCHEMA_VERSION_HEADER, b"7")]


def test_schema_change_records():
    ours = Envelope("shop").schema_change_record("ALTER TABLE t ADD c int", db="shop", table="t", source=SOURCE)
    assert ours[0] == "shop.schema-changes"
    assert {"ddl", "db", "table", "source"} <= set(orjson.loads(ours[2]))
    mysql_source = dict(SOURCE, connector="mysql")
    topic, key, value, _ = Envelope("shop", compat="debezium").schema_change_record(
        "ALTER TABLE log ADD c int", db="shop", table="log", source=mysql_source, table_schema=NO_KEY,
        debezium_schema_history=True)
    assert topic == "shop" and key == b'{"databaseName":"shop"}'
    body = orjson.loads(value)
    assert list(body) == ["source", "ts_ms", "databaseName", "schemaName", "ddl", "tableChanges"]
    assert body["tableChanges"][0]["id"] == '"shop"."log"'
    assert body["tableChanges"][0]["table"]["columns"][0]["name"] == "line"


def test_the_debezium_schema_history_shape_is_the_connectors_choice_not_its_name():
    """Only a connector that says so (MySQL's) gets Debezium's schema history topic and shape; the
    envelope does not look at the source block's connector name."""
    debezium = Envelope("shop", compat="debezium")
    mysql_source = dict(SOURCE, connector="mysql")
    ours = debezium.schema_change_record("ALTER TABLE t ADD c int", db="shop", table="t", source=mysql_source)
    assert ours[0] == "shop.schema-changes" and ours[1] == b'{"db":"shop"}'
    history = debezium.schema_change_record("ALTER TABLE t ADD c int", db="shop", table="t", source=SOURCE,
                                            debezium_schema_history=True)
    assert history[0] == "shop" and history[1] == b'{"databaseName":"shop"}'
    assert debezium.schema_change_topic() == "shop.schema-changes"
    assert debezium.schema_change_topic(debezium_schema_history=True) == "shop"
    assert Envelope("shop").schema_change_topic(debezium_schema_history=True) == "shop.schema-changes"


def test_heartbeat_record():
    topic, key, value, _ = Envelope("shop", compat="debezium").heartbeat_record(5)
    assert (topic, key, value) == ("__debezium-heartbeat.shop", b'{"serverName":"shop"}', b'{"ts_ms":5}')


def test_a_new_table_schema_version_gets_its_own_plan(envelope):
    envelope.records(change("c", after=ROW))
    newer = TableSchema(ORDERS.engine, ORDERS.namespace, ORDERS.name, ORDERS.columns, version=8,
                        database="shop", primary_key=ORDERS.primary_key)
    [(_, _, _, headers)] = envelope.records(change("c", after=ROW, table=newer))
    assert headers == [(SCHEMA_VERSION_HEADER, b"8")]


# --- compat "debezium" ---


def test_debezium_compat_values():
    after = orjson.loads(Envelope("shop", compat="debezium").value(change("c", after=ROW)))["after"]
    assert after["price"] == "10.50"
    assert after["day"] == 19782
    assert after["at"] == 1_709_214_300_123_456
    assert after["at_ms"] == 1_709_214_300_123
    assert after["paid"] == "2024-02-29T12:45:00.100000Z"
    assert after["clock"] == 49_500_500_000
    assert after["flags"] == "BQ=="
    assert after["flag"] is True
    assert after["span"] == "P1Y2M3DT4H5M6.7S"
    assert after["blob"] == "AQI="
    assert after["days"] == [[19782, None]]
    assert after["cash"] == "-1234.56"
    assert after["doc"] == '{"a": 1}'


def test_debezium_compat_key_is_converted_too():
    table = TableSchema("postgresql", "public", "d", (Column("day", "date", "date", primary_key=True),),
                        primary_key=("day",))
    key = Envelope("shop", compat="debezium").key(change("c", after={"day": "1970-01-02"}, table=table))
    assert key == b'{"day":1}'


def test_debezium_compat_unavailable_toast_values():
    row = dict(ROW, blob=UNAVAILABLE_VALUE, doc=UNAVAILABLE_VALUE, days=UNAVAILABLE_VALUE)
    after = orjson.loads(Envelope("shop", compat="debezium").value(change("u", after=row)))["after"]
    assert after["blob"] == "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="
    assert after["doc"] == UNAVAILABLE_VALUE
    assert after["days"] == [UNAVAILABLE_VALUE]


def test_compat_none_passes_values_through():
    after = orjson.loads(Envelope("shop").value(change("c", after=ROW)))["after"]
    assert after == ROW


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2024-02-29", 19782), ("1970-01-01", 0), ("-0043-03-15", -735160), ("+10000-01-01", 2932897),
     ("infinity", "infinity")],
)
def test_date_to_days(text, expected):
    assert date_to_days(text) == expected


def test_time_and_timestamp_parsers():
    assert time_to_micros("-838:59:59") == -3_020_399_000_000
    assert time_to_micros("13:45:00.12") == 49_500_120_000
    assert timestamp_to_epoch_micros("1969-12-31T23:59:59.999999") == -1
    assert timestamp_to_epoch_micros("-infinity") == "-infinity"


@pytest.mark.parametrize(
    ("text", "precision", "expected"),
    [("2024-02-29T12:45:00Z", 6, "2024-02-29T12:45:00.000000Z"),
     ("2024-02-29T12:45:00.123456Z", 3, "2024-02-29T12:45:00.123Z"),
     ("2024-02-29T12:45:00.120000Z", 0, "2024-02-29T12:45:00.12Z"),
     ("2024-02-29T12:45:00Z", 0, "2024-02-29T12:45:00Z"),
     ("infinity", 6, "infinity")],
)
def test_timestamptz_to_debezium(text, precision, expected):
    assert timestamptz_to_debezium(text, precision) == expected


def test_timetz_to_debezium():
    assert timetz_to_debezium("11:45:00.120000Z") == "11:45:00.12Z"
    assert timetz_to_debezium("11:45:00Z") == "11:45:00Z"


@pytest.mark.parametrize(
    ("text", "length", "engine", "expected"),
    [("0101", 4, "postgresql", "BQ=="), ("0000", 4, "postgresql", "AA=="), ("1", 1, "postgresql", True),
     ("0", 1, "mysql", False), ("0000", 4, "mysql", "AA=="), ("0000000100000010", 16, "mysql", "AgE="),
     ("0000000000000101", 16, "postgresql", "BQ==")],
)
def test_bits_to_debezium(text, length, engine, expected):
    assert bits_to_debezium(text, length, engine) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("PT0S", "P0Y0M0DT0H0M0S"), ("P1Y2M3DT4H5M6.7S", "P1Y2M3DT4H5M6.7S"), ("P1D", "P0Y0M1DT0H0M0S"),
     ("P-1Y-2M3DT-4H-5M-6.7S", "P-1Y-2M3DT-4H-5M-6.7S"), ("PT0.000001S", "P0Y0M0DT0H0M0.000001S")],
)
def test_interval_to_debezium(text, expected):
    assert interval_to_debezium(text) == expected


def test_money_to_decimal_string():
    assert money_to_decimal_string("$1,234.56") == "1234.56"
    assert money_to_decimal_string("-$0.01") == "-0.01"


def test_hstore_becomes_a_json_object_string():
    table = TableSchema("postgresql", "public", "h", (Column("id", "integer", "int", primary_key=True),
                                                       Column("attrs", "hstore", "text")), primary_key=("id",))
    row = {"id": 1, "attrs": '"a"=>"1", "b"=>NULL, "c d"=>"x\\"y"'}
    after = orjson.loads(Envelope("shop", compat="debezium").value(change("c", after=row, table=table)))["after"]
    assert orjson.loads(after["attrs"]) == {"a": "1", "b": None, "c d": 'x"y'}


def test_plans_stay_one_per_table_when_schema_objects_are_rebuilt(envelope):
    for version in (1, 1, 2, 2, 3):
        table = TableSchema(ORDERS.engine, ORDERS.namespace, ORDERS.name, ORDERS.columns, version=version,
                            database="shop", primary_key=ORDERS.primary_key)
        [(_, _, _, headers)] = envelope.records(change("c", after=ROW, table=table))
        assert headers == [(SCHEMA_VERSION_HEADER, str(version).encode())]
    assert len(envelope._plans) == 1


@given(st.integers(-(2**62), 2**62), st.integers(0, 9))
def test_timestamptz_to_debezium_pads_or_trims_to_the_precision(micros, precision):
    text = encode_timestamptz(micros)
    whole, _, fraction = text[:-1].partition(".")
    if precision:
        expected = f"{whole}.{(fraction + '0' * 9)[:precision]}Z"
    else:
        expected = f"{whole}.{fraction.rstrip('0')}Z" if fraction.rstrip("0") else f"{whole}Z"
    assert timestamptz_to_debezium(text, precision) == expected
