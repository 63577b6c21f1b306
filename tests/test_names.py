"""Names that break a stream: topic sanitising and clashes, `--tables` quoting, unknown entries, target folding."""

from __future__ import annotations

import pytest

from cdc.envelope import Envelope
from cdc.envelope.topics import check_distinct_topics, table_topic
from cdc.errors import ConfigError, SourceError, TargetError
from cdc.pipeline import CaptureOptions, StopSignal
from cdc.tables import TableFilter, split_table_entry
from tests.apply.scenario import Stream, applier, simple_table, table


@pytest.mark.parametrize("entry, expected", [
    ('public."order items$ü x"', ("public", "order items$ü x")),
    ("db.`order items$ü x`", ("db", "order items$ü x")),
    ('public."a.b"', ("public", "a.b")),
    ('"public.a".b', ("public.a", "b")),
    ('"a""b".`c``d`', ('a"b', "c`d")),
    ("orders", ("dflt", "orders")),
    ("Shop.Orders", ("Shop", "Orders")),
])
def test_tables_entries_are_quoted_as_each_engine_quotes_names(entry, expected):
    assert split_table_entry(entry, "dflt") == expected


@pytest.mark.parametrize("entry", ['public."open', '"a".b.c', 'pub"lic.t', "a.", '"a"b'])
def test_malformed_tables_entries_are_errors(entry):
    with pytest.raises(ConfigError, match="table name"):
        split_table_entry(entry)


def test_table_filter_reports_entries_that_match_no_table():
    wanted = TableFilter(['shop."order items"', "shop.orders"], default_namespace="shop")
    assert wanted("shop", "order items")
    assert wanted.missing([("shop", "orders")]) == [("shop", "order items")]


def test_topic_names_are_sanitised_as_debezium_does():
    assert table_topic("p", "public", 'order items$ü x"; DROP') == "p.public.order_items___x___DROP"
    assert table_topic("p", "my-db", "t_1.x") == "p.my-db.t_1.x"


def test_two_tables_on_one_topic_are_refused_naming_both():
    with pytest.raises(ConfigError, match=r'"public"\."a\.b" and "public\.a"\."b" would both be written to topic'):
        check_distinct_topics("p", [("public", "a.b"), ("public.a", "b")])
    with pytest.raises(ConfigError, match="over Kafka's 249"):
        check_distinct_topics("p", [("public", "t" * 250)])
    envelope = Envelope("p")
    envelope.topic(table("postgresql", "a.b", simple_table().columns, namespace="public"))
    with pytest.raises(ConfigError, match="would both be written"):
        envelope.topic(table("postgresql", "b", simple_table().columns, namespace="public.a"))


def test_envelope_keeps_the_exact_source_names():
    from cdc.events import Change

    schema = table("postgresql", "order items$ü", simple_table().columns, namespace="sch ü")
    source = {"connector": "postgresql", "name": "p", "db": "d", "schema": "sch ü", "table": "order items$ü"}
    (topic, _, value, _), = Envelope("p").records(Change("c", schema, None, {"id": 1, "name": "a", "qty": 1,
                                                                                "note": None}, source, (1,)))
    assert topic == "p.sch__.order_items__"
    assert b'"schema":"sch \xc3\xbc"' in value and b'"table":"order items$\xc3\xbc"' in value


def test_mysql_target_refuses_two_schemas_folded_into_one_table(mysql_database):
    orders = table("postgresql", "orders", simple_table().columns, namespace="public")
    archived = table("postgresql", "orders", simple_table().columns, namespace="archive")
    stream = Stream()
    work = applier(mysql_database, orders, archived)
    try:
        work.apply(stream.insert(orders, {"id": 1, "name": "a", "qty": 1, "note": None}))
        with pytest.raises(TargetError, match=r"public\.orders and archive\.orders both map to target table"):
            work.apply(stream.insert(archived, {"id": 2, "name": "b", "qty": 1, "note": None}))
    finally:
        work.writer.close()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_tables_entry_matching_no_table_is_an_error(engine, request, kafka_bootstrap):
    from cdc.registry import connector_module

    url = request.getfixturevalue("pg_database" if engine == "postgresql" else "mysql_database")
    quoted = 'public."no such"' if engine == "postgresql" else f"`{url.rsplit('/', 1)[1]}`.`no such`"
    options = CaptureOptions(source=url, kafka=kafka_bootstrap, prefix="nt", tables=(quoted,),
                             extra={} if engine == "postgresql" else {"server_id": 4242})
    with pytest.raises(SourceError, match="no such.*does not exist"):
        connector_module(engine, "source").run_capture(options, StopSignal(signals=()))


def test_a_comma_inside_a_quoted_name_does_not_split_the_list():
    from cdc.commands.options import split_names

    assert split_names(['a,public."x, y""z"', "db.`p,q`,c"]) == ("a", 'public."x, y""z"', "db.`p,q`", "c")


def test_apply_tables_take_quoted_names_exactly():
    from cdc.apply.worker import table_filter

    wanted = table_filter(('public."order items$ü x"', "shop.`a.b`", "other*"))
    assert wanted("public.order items$ü x") and wanted("shop.a.b") and wanted("x.other1")
    assert not wanted("public.order") and not wanted("shop.a")


def test_apply_refuses_folded_tables_at_start(kafka_bootstrap, mysql_database):
    from cdc.apply.worker import ApplyOptions, ApplyWorker
    from tests.apply.kafka_stream import FAST_GROUP, KafkaStream, unique_prefix

    prefix = unique_prefix("fold")
    stream = KafkaStream(kafka_bootstrap, prefix, table("postgresql", "orders", simple_table().columns,
                                                        namespace="public"), partitions=1)
    try:
        stream.publish_schema(table("postgresql", "orders", simple_table().columns, namespace="archive"))
        options = ApplyOptions(kafka=kafka_bootstrap, prefix=prefix, target=mysql_database, create_tables=True,
                               idle_exit_s=2.0, **FAST_GROUP)
        with pytest.raises(TargetError, match=r"archive\.orders and public\.orders both map to target table"):
            ApplyWorker(options).run()
        # --tables picks one of them: no clash (a group of its own: the first left the group mid-join)
        only_public = ApplyOptions(kafka=kafka_bootstrap, prefix=prefix, target=mysql_database, create_tables=True,
                                   idle_exit_s=1.0, tables=("public.orders",), group=f"{prefix}-one", **FAST_GROUP)
        ApplyWorker(only_public).run()
    finally:
        stream.close()
