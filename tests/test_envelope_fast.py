"""The envelope's fast paths give the very bytes of `orjson.dumps` of the envelope dict.

Both encoder implementations (the compiled `cdc._ext.envelope` and the twin cdc/envelope/encoders.py) are
held to `orjson.dumps` on random rows, source blocks and scalars, and `Envelope.row_records` (source
template + transaction tuple) to `Envelope.records` of the equivalent `Change`.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

import cdc.envelope.builder as envelope_module
import cdc.envelope.encoders as twin_encoders
from cdc.envelope import Envelope, SourceTemplate, _key_heads
from cdc.events import Change, Column, TableSchema
from cdc.impl import implementations

NOW = 1_732_400_000_123_456_789


IMPLEMENTATIONS = implementations("cdc.envelope.encoders")  # {"python": twin, "cython": compiled or None}
ENCODER_PARAMS = [
    pytest.param(module, id=name, marks=pytest.mark.skipif(module is None, reason="cdc._ext.envelope is not built"))
    for name, module in IMPLEMENTATIONS.items()
]


def use_encoders(patch, module) -> None:
    """Make cdc.envelope assemble its bytes with `module`'s encoders, the clock frozen at NOW."""
    for name in ("encode_key", "encode_change_value", "encode_row_value", "finish_row_value", "encode_row_head"):
        patch.setattr(envelope_module, f"_{name}", getattr(module, name))
    patch.setattr(envelope_module, "ENCODERS", module)
    patch.setattr(envelope_module, "_time_ns", lambda: NOW)


@pytest.fixture(params=ENCODER_PARAMS)
def encoder(request):
    return request.param


@pytest.fixture(params=ENCODER_PARAMS)
def envelope(request, monkeypatch):
    """An Envelope whose bytes come from one implementation, with the clock frozen at NOW."""
    module = request.param
    use_encoders(monkeypatch, module)
    return Envelope("shop")


# -- strategies ---------------------------------------------------------------------------------------

AWKWARD_TEXT = st.sampled_from(['"', "\\", 'a"b\\c', "\x00", "\x1f", "\x7f", "é", "日本", "\U0001f600", "\ud800",
                                "line\nbreak", "tab\t", "/", ""])
TEXT = st.one_of(st.text(max_size=20), st.text(alphabet=st.characters(max_codepoint=127), max_size=30), AWKWARD_TEXT)
INTEGERS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**70), 2**70),
                     st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, 0, -1]))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
ROWS = st.one_of(st.none(), st.dictionaries(TEXT, VALUES, max_size=10))
BLOCKS = st.one_of(st.dictionaries(TEXT, VALUES, max_size=14), st.just({"a": 1, 2: "non-str key"}))
TIMES = st.one_of(st.integers(-(2**62), 2**63 - 1), st.integers(0, 10**7), st.just(NOW))
OPS = st.sampled_from(["c", "u", "d", "r", "t"])


def _outcome(function, *args):
    """The bytes a call returns, or the kind of error it raises (both implementations must agree)."""
    try:
        return function(*args)
    except orjson.JSONEncodeError:
        return orjson.JSONEncodeError
    except (TypeError, ValueError, OverflowError) as exc:
        return type(exc)


def _reference(op, before, after, source, transaction, now) -> bytes:
    return orjson.dumps({"before": before, "after": after, "source": source, "transaction": transaction, "op": op,
                         "ts_ms": now // 1_000_000, "ts_us": now // 1_000, "ts_ns": now})


# -- the encoders against orjson ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(VALUES, BLOCKS))
def test_encode_json_is_orjson_dumps(value):
    for module in filter(None, IMPLEMENTATIONS.values()):
        assert _outcome(module.encode_json, value) == _outcome(orjson.dumps, value)


@settings(max_examples=300, deadline=None)
@given(op=st.one_of(OPS, TEXT), before=ROWS, after=ROWS, source=BLOCKS, transaction=st.one_of(st.none(), BLOCKS),
       now=TIMES)
def test_change_value_is_orjson_dumps_of_the_envelope_dict(op, before, after, source, transaction, now):
    expected = _outcome(_reference, op, before, after, source, transaction, now)
    for module in filter(None, IMPLEMENTATIONS.values()):
        assert _outcome(module.encode_change_value, op, before, after, source, transaction, now) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), op=OPS, before=ROWS, after=ROWS, source=BLOCKS, now=TIMES,
       transaction=st.one_of(st.none(), st.tuples(TEXT, INTEGERS, INTEGERS)))
def test_row_value_from_a_source_template_is_orjson_dumps_of_the_envelope_dict(data, op, before, after, source, now,
                                                                               transaction):
    names = [name for name in source if data.draw(st.booleans())]
    variable = tuple(name if data.draw(st.booleans()) else (name, data.draw(TEXT), data.draw(TEXT)) for name in names)
    values = tuple(data.draw(st.one_of(VALUES, INTEGERS)) for _ in variable)
    try:
        template = SourceTemplate(source, variable)
    except TypeError:  # a field orjson refuses (JSONEncodeError is a TypeError): nothing to compare
        reject()
    block = template.render(values)
    head = total = collection = transaction_block = None
    if transaction is not None:
        # the envelope builds the head with orjson: an id it refuses never reaches the encoder
        assume(_outcome(orjson.dumps, transaction[0]) is not orjson.JSONEncodeError)
        head = b'{"id":' + orjson.dumps(transaction[0]) + b',"total_order":'
        total, collection = transaction[1:]
        transaction_block = {"id": transaction[0], "total_order": total, "data_collection_order": collection}
    expected = _outcome(_reference, op, before, after, block, transaction_block, now)
    for module in filter(None, IMPLEMENTATIONS.values()):
        got = _outcome(module.encode_row_value, op, before, after, template, values, head, total, collection, now)
        assert got == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), row=st.dictionaries(TEXT, VALUES, max_size=6))
def test_key_is_orjson_dumps_of_the_key_columns(data, row):
    names = tuple(data.draw(st.lists(st.one_of(st.sampled_from(sorted(row) or ["id"]), TEXT), min_size=1, max_size=3,
                                     unique=True)))
    # a name orjson refuses: no table has such a column, its plan (and heads) could not be built
    assume(all(_outcome(orjson.dumps, name) is not orjson.JSONEncodeError for name in names))
    heads = _key_heads(names)
    expected = _outcome(orjson.dumps, {name: row.get(name) for name in names})
    for module in filter(None, IMPLEMENTATIONS.values()):
        assert _outcome(module.encode_key, names, heads, row) == expected


def test_key_of_a_row_that_is_not_a_dict_reads_it_with_get(encoder):
    class Row:
        def get(self, name):
            return {"id": 7}.get(name)

    assert encoder.encode_key(("id", "x"), _key_heads(("id", "x")), Row()) == b'{"id":7,"x":null}'


def test_template_with_the_wrong_number_of_values_is_refused(encoder):
    template = SourceTemplate({"a": 1, "lsn": 2}, ("lsn",))
    with pytest.raises(ValueError, match="1 fields was given 2 values"):
        encoder.encode_row_value("c", None, None, template, (1, 2), None, None, None, NOW)


def test_template_variable_fields_must_follow_the_block_order():
    with pytest.raises(ValueError, match="in its order"):
        SourceTemplate({"sequence": "[]", "lsn": 1}, ("lsn", "sequence"))
    with pytest.raises(ValueError, match="distinct fields"):
        SourceTemplate({"lsn": 1}, ("txId",))


def test_template_renders_the_block_in_its_field_order():
    template = SourceTemplate({"a": 1, "sequence": None, "b": "x", "lsn": None, "c": None}, ("sequence", "lsn"))
    assert list(template.render(("[]", 5))) == ["a", "sequence", "b", "lsn", "c"]
    assert b"".join([template.pieces[0], b'"[]"', template.pieces[1], b"5", template.pieces[2]]) == orjson.dumps(
        template.render(("[]", 5)))
    assert template.kinds == b"jj"


def test_template_splices_a_number_into_a_string_field(encoder):
    block = pg_source(24023128)
    template = SourceTemplate(block, (("sequence", '["24023104","', '"]'), "lsn"))
    assert template.kinds == b"sj" and template.render((24023128, 24023128)) == block
    value = encoder.encode_row_value("c", None, ROW, template, (24023128, 24023128), None, None, None, NOW)
    assert value == _reference("c", None, ROW, block, None, NOW)
    assert b'"sequence":"[\\"24023104\\",\\"24023128\\"]"' in value


# -- Envelope.row_records against Envelope.records --------------------------------------------------------

ORDERS = TableSchema(
    "postgresql", "public", "orders",
    (
        Column("id", "bigint", "int", nullable=False, primary_key=True, length=8),
        Column("region", "text", "string", nullable=False, primary_key=True),
        Column("status", "text", "string"),
        Column("amount", "numeric(12,2)", "decimal", precision=12, scale=2),
        Column("discount", "double precision", "float", length=8),
        Column("created_at", "timestamp without time zone", "timestamp"),
        Column("paid_at", "timestamp with time zone", "timestamptz"),
        Column("ship_date", "date", "date"),
        Column("paid", "boolean", "boolean"),
        Column("note", "character varying(200)", "string", length=200),
    ),
    version=3, database="shop", primary_key=("id", "region"),
)
NO_KEY = TableSchema("postgresql", "public", "log", (Column("line", "text", "string"),), database="shop")
ROW = {"id": 1, "region": "eu", "status": "shipped", "amount": "1234.50", "discount": 0.15,
       "created_at": "2024-02-29T13:45:00.123456", "paid_at": "2024-02-29T12:45:00.123456Z",
       "ship_date": "2024-03-01", "paid": True, "note": 'leave at the "door", ring twice \\ é'}

def pg_variable(last_commit_lsn: int | None = 24023104) -> tuple:
    """The PG source template's variable fields: the lsn, inside `sequence` and as `lsn`."""
    head = "[null," if last_commit_lsn is None else f'["{last_commit_lsn}",'
    return ((("sequence", head + '"', '"]'), "lsn"))


def pg_source(lsn: int, last_commit_lsn: int | None = 24023104, table: str = "orders") -> dict:
    """A PG source block as connectors/postgres/source.py builds it."""
    sequence = orjson.dumps([None if last_commit_lsn is None else str(last_commit_lsn), str(lsn)]).decode()
    return {"version": "0.1.0", "connector": "postgresql", "name": "shop", "ts_ms": 1732400000000, "snapshot": "false",
            "db": "shop", "sequence": sequence, "ts_us": 1732400000000000, "ts_ns": 1732400000000000000,
            "schema": "public", "table": table, "txId": 771, "lsn": lsn, "xmin": None}


def both_ways(envelope: Envelope, table, op, before, after, lsn=24023128, transaction=("771:24023104", 3, 2)):
    """(row_records, records of the equivalent Change built by hand)."""
    source = pg_source(lsn, table=table.name)
    template = envelope.source_template(source, pg_variable())
    fast = envelope.row_records(table, op, before, after, template, (lsn, lsn), transaction)
    plain = envelope.source_template(source, ("sequence", "lsn"))
    assert envelope.row_records(table, op, before, after, plain, (source["sequence"], lsn), transaction) == fast
    block = None if transaction is None else dict(zip(("id", "total_order", "data_collection_order"), transaction))
    return fast, envelope.records(Change(op, table, before, after, source, (24023104, lsn, 0), block))


@pytest.mark.parametrize("op", ["c", "r", "u", "d", "t"])
def test_row_records_are_the_records_of_the_change(envelope, op):
    before = dict(ROW, status="paid") if op in ("u", "d") else None
    after = None if op in ("d", "t") else ROW
    fast, slow = both_ways(envelope, ORDERS, op, before, after)
    assert fast == slow
    assert orjson.loads(fast[0][2])["transaction"] == {"id": "771:24023104", "total_order": 3,
                                                       "data_collection_order": 2}


def test_row_records_of_a_delete_end_with_a_tombstone(envelope):
    fast, slow = both_ways(envelope, ORDERS, "d", {"id": 1, "region": "eu"}, None)
    assert fast == slow and len(fast) == 2 and fast[1][2] is None and fast[1][1] == b'{"id":1,"region":"eu"}'


def test_row_records_of_a_primary_key_change_split_as_records_does(envelope):
    fast, slow = both_ways(envelope, ORDERS, "u", {"id": 1, "region": "eu"}, dict(ROW, id=2))
    assert fast == slow and len(fast) == 3


def test_row_records_without_a_key_or_a_transaction(envelope):
    for op, before, after in (("c", None, {"line": "x"}), ("d", {"line": "x"}, None)):
        fast, slow = both_ways(envelope, NO_KEY, op, before, after, transaction=None)
        assert fast == slow and fast[0][1] is None and len(fast) == 1


def test_row_records_follow_a_new_transaction_id(envelope):
    first, _ = both_ways(envelope, ORDERS, "c", None, ROW, transaction=("1:10", 1, 1))
    second, slow = both_ways(envelope, ORDERS, "c", None, ROW, transaction=("2:20", 1, 1))
    assert second == slow and orjson.loads(second[0][2])["transaction"]["id"] == "2:20"
    assert orjson.loads(first[0][2])["transaction"]["id"] == "1:10"


def test_json_reads_are_row_records_with_one_source_block(envelope):
    """An incremental snapshot's chunk: rows already in JSON, every record with the same source block."""
    source = envelope.source_template(dict(pg_source(24023128), snapshot="incremental"), ())
    rows = [ROW, dict(ROW, id=2, note=None)]
    json_rows = [(None, orjson.dumps(row), None, orjson.dumps({"id": row["id"], "region": row["region"]}))
                 for row in rows]
    expected = [record for row in rows for record in envelope.row_records(ORDERS, "r", None, row, source, ())]
    assert envelope.json_reads_records(ORDERS, json_rows, source) == expected


def test_row_records_in_debezium_compat_take_the_change_path(monkeypatch):
    monkeypatch.setattr(envelope_module, "_time_ns", lambda: NOW)
    envelope = Envelope("shop", compat="debezium")
    assert type(envelope.row_records.__self__).__module__ == envelope_module.ENCODERS.__name__
    fast, slow = both_ways(envelope, ORDERS, "c", None, ROW)
    assert fast == slow and orjson.loads(fast[0][2])["after"]["ship_date"] == 19783


def test_records_value_and_key_are_orjson_dumps_of_the_envelope_dict(envelope):
    source = pg_source(24023128)
    transaction = {"id": "771:24023104", "total_order": 1, "data_collection_order": 1}
    change = Change("c", ORDERS, None, ROW, source, (1, 2, 0), transaction)
    expected = _reference("c", None, ROW, source, transaction, NOW)
    assert envelope.value(change) == expected
    assert envelope.key(change) == orjson.dumps({"id": 1, "region": "eu"})
    assert envelope.records(change) == [("shop.public.orders", b'{"id":1,"region":"eu"}', expected,
                                         [("cdc.schema.version", b"3")])]


@settings(max_examples=200, deadline=None)
@given(op=OPS, before=st.one_of(st.none(), st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r})),
       after=st.one_of(st.none(), st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r})),
       lsn=st.integers(0, 2**64 - 1), last_commit_lsn=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
       transaction=st.one_of(st.none(), st.tuples(TEXT, st.integers(1, 10**9), st.integers(1, 10**9))))
def test_row_records_match_records_on_random_rows_and_source_blocks(op, before, after, lsn, last_commit_lsn,
                                                                    transaction):
    for module in filter(None, IMPLEMENTATIONS.values()):
        with pytest.MonkeyPatch.context() as patch:
            use_encoders(patch, module)
            envelope = Envelope("shop")
            source = pg_source(lsn, last_commit_lsn)
            template = envelope.source_template(source, pg_variable(last_commit_lsn))
            block = None if transaction is None else dict(zip(("id", "total_order", "data_collection_order"),
                                                              transaction))
            change = Change(op, ORDERS, before, after, source, (0, lsn, 0), block)
            expected = _outcome(envelope.records, change)
            got = _outcome(envelope.row_records, ORDERS, op, before, after, template, (lsn, lsn), transaction)
            assert got == expected


def test_row_records_use_the_chosen_implementation(envelope):
    assert type(envelope.row_records.__self__) is envelope_module.ENCODERS.RowEncoder


def test_row_records_follow_an_equal_schema_object_and_a_new_version(envelope):
    fast, slow = both_ways(envelope, ORDERS, "c", None, ROW)
    copy = TableSchema(ORDERS.engine, ORDERS.namespace, ORDERS.name, ORDERS.columns, version=ORDERS.version,
                       database=ORDERS.database, primary_key=ORDERS.primary_key)
    again, _ = both_ways(envelope, copy, "c", None, ROW)
    assert again == fast
    newer = TableSchema(ORDERS.engine, ORDERS.namespace, ORDERS.name, ORDERS.columns, version=4,
                        database=ORDERS.database, primary_key=("id",))
    fast, slow = both_ways(envelope, newer, "c", None, ROW)
    assert fast == slow and fast[0][1] == b'{"id":1}' and fast[0][3] == [("cdc.schema.version", b"4")]


@settings(max_examples=200, deadline=None)
@given(op=OPS, before=st.one_of(st.none(), st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r})),
       after=st.one_of(st.none(), st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r})),
       source=BLOCKS, transaction=st.one_of(st.none(), BLOCKS), table=st.sampled_from([ORDERS, NO_KEY]))
def test_records_of_either_implementation_are_the_readable_records(op, before, after, source, transaction, table):
    """`Envelope.records` (the compiled shortcut, or the twin) against `Envelope._records` with orjson."""
    change = Change(op, table, before, after, source, (), transaction)
    for module in filter(None, IMPLEMENTATIONS.values()):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(envelope_module, "ENCODERS", module)
            patch.setattr(envelope_module, "_time_ns", lambda: NOW)
            envelope = Envelope("shop")
            got = _outcome(envelope.records, change)
            patch.setattr(envelope_module, "_encode_key", twin_encoders.encode_key)
            patch.setattr(envelope_module, "_encode_change_value", twin_encoders.encode_change_value)
            assert got == _outcome(envelope._records, change)


def test_a_key_change_is_known_before_row_records_split_it(envelope):
    assert envelope.is_row_key_change(ORDERS, "u", {"id": 1, "region": "eu"}, dict(ROW, id=2))
    assert not envelope.is_row_key_change(ORDERS, "u", {"id": 1, "region": "eu"}, ROW)
    assert not envelope.is_row_key_change(ORDERS, "c", None, ROW)
    assert not envelope.is_row_key_change(NO_KEY, "u", {"line": "a"}, {"line": "b"})


def test_key_heads_must_match_the_key_columns(encoder):
    assert encoder.encode_key((), (), {"id": 1}) == b"{}"
    with pytest.raises(ValueError, match="2 key columns were given 1 heads"):
        encoder.encode_key(("id", "region"), (b'{"id":',), {"id": 1})


def test_values_larger_than_the_stack_buffer_grow_on_the_heap(envelope):
    big = dict(ROW, region="r" * 3000 + '"', note="x" * 5000 + '"\\' * 1000)
    source = dict(pg_source(24023128), table="t" * 3000)
    template = envelope.source_template(source, ("sequence", "lsn"))
    for op, before, after in (("c", None, big), ("u", big, big), ("d", big, None)):
        fast = envelope.row_records(ORDERS, op, before, after, template, (source["sequence"], 24023128), None)
        assert fast == envelope.records(Change(op, ORDERS, before, after, source, (), None))
        assert len(fast[0][2]) > 12_000 and len(fast[0][1]) > 3000


def test_none_where_a_tuple_belongs_is_a_type_error_not_a_crash(encoder, envelope):
    template = SourceTemplate({"lsn": 1}, ("lsn",))
    with pytest.raises(TypeError):
        encoder.encode_row_value("c", None, None, template, None, None, None, None, NOW)
    with pytest.raises(TypeError):
        encoder.encode_key(None, None, {"id": 1})
    with pytest.raises(TypeError):
        envelope.row_records(ORDERS, "c", None, ROW, template, None)


# -- a row event in two halves (streamed PG transactions: Envelope.row_parts, then finish_row) ---------


def in_two_halves(envelope: Envelope, table, op, before, after, lsn=24023128, transaction=("771:24023104", 3, 2)):
    """The records `row_parts` + `finish_row` give, as row_records lists them; None when not split."""
    parts = envelope.row_parts(table, op, before, after)
    if parts is None:
        return None
    topic, key, head, headers, tombstone = parts
    template = envelope.source_template(pg_source(lsn, table=table.name), pg_variable())
    records = [(topic, key, envelope.finish_row(head, op, template, (lsn, lsn), transaction), headers)]
    return records + [(topic, key, None, headers)] if tombstone else records


@pytest.mark.parametrize("op", ["c", "r", "u", "d"])
def test_row_in_two_halves_is_row_records(envelope, op):
    before = dict(ROW, status="paid") if op in ("u", "d") else None
    after = None if op == "d" else ROW
    fast, _ = both_ways(envelope, ORDERS, op, before, after)
    assert in_two_halves(envelope, ORDERS, op, before, after) == fast
    for transaction in (None, ("2:20", 1, 1)):
        fast, _ = both_ways(envelope, NO_KEY, op, {"line": "x"} if before else None, {"line": "y"} if after else None,
                            transaction=transaction)
        assert in_two_halves(envelope, NO_KEY, op, {"line": "x"} if before else None,
                             {"line": "y"} if after else None, transaction=transaction) == fast


def test_a_column_named_source_does_not_confuse_the_split(envelope):
    table = TableSchema("postgresql", "public", "feeds", (
        Column("id", "integer", "int", nullable=False, primary_key=True), Column("source", "text", "string")),
        primary_key=("id",), database="shop")
    row = {"id": 7, "source": ',"source":{"x":1}'}
    fast, _ = both_ways(envelope, table, "c", None, row)
    assert in_two_halves(envelope, table, "c", None, row) == fast


def test_changes_that_are_not_one_value_are_not_split(envelope, monkeypatch):
    assert envelope.row_parts(ORDERS, "u", {"id": 1, "region": "eu"}, dict(ROW, id=2)) is None  # key change
    assert envelope.row_parts(ORDERS, "t", None, None) is None
    assert Envelope("shop", compat="debezium").row_parts(ORDERS, "c", None, ROW) is None


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(["c", "r", "u", "d"]),
       before=st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r}),
       after=st.dictionaries(TEXT, VALUES, max_size=4).map(lambda r: {**ROW, **r}),
       lsn=st.integers(0, 2**64 - 1),
       transaction=st.one_of(st.none(), st.tuples(TEXT, st.integers(1, 10**9), st.integers(1, 10**9))))
def test_row_in_two_halves_matches_row_records_on_random_rows(op, before, after, lsn, transaction):
    before = None if op in ("c", "r") else before
    after = None if op == "d" else after
    for module in filter(None, IMPLEMENTATIONS.values()):
        with pytest.MonkeyPatch.context() as patch:
            use_encoders(patch, module)
            envelope = Envelope("shop")
            halves = _outcome(in_two_halves, envelope, ORDERS, op, before, after, lsn, transaction)
            if halves is None:  # a key change: built whole
                assert envelope.is_row_key_change(ORDERS, op, before, after)
                continue
            template = envelope.source_template(pg_source(lsn), pg_variable())
            assert halves == _outcome(envelope.row_records, ORDERS, op, before, after, template, (lsn, lsn),
                                      transaction)


@pytest.mark.parametrize("op", ["c", "r", "u", "d"])
@pytest.mark.parametrize("transaction_id", [None, "0-1-5"])
def test_records_of_rows_are_records_per_row(envelope, op, transaction_id):
    """One call per binlog rows event gives the records of `row_records` per row, numbered on."""
    rows = [(dict(ROW, status="paid", id=n) if op in ("u", "d") else None, None if op == "d" else dict(ROW, id=n))
            for n in range(4)]
    template = envelope.source_template({"version": "x", "connector": "mysql", "name": "shop", "pos": 0, "row": 0},
                                        ("pos", "row"))
    records, total, order = envelope.rows_records(ORDERS, op, rows, template, 120, transaction_id, 7, 3)
    expected = []
    for n, (before, after) in enumerate(rows):
        block = None if transaction_id is None else (transaction_id, 8 + n, 4 + n)
        expected += envelope.row_records(ORDERS, op, before, after, template, (120, n), block)
    assert records == expected
    assert (total, order) == ((7, 3) if transaction_id is None else (11, 7))


def test_records_of_rows_leave_key_changes_and_truncates_to_records(envelope):
    template = envelope.source_template({"version": "x", "pos": 0, "row": 0}, ("pos", "row"))
    rows = [(dict(ROW), dict(ROW, status="x")), (dict(ROW), dict(ROW, id=9))]
    assert envelope.rows_records(ORDERS, "u", rows, template, 1, "t", 0, 0) is None
    assert envelope.rows_records(ORDERS, "t", [(None, None)], template, 1, "t", 0, 0) is None
    assert envelope.rows_records(ORDERS, "c", [], template, 1, "t", 2, 2) == ([], 2, 2)


def _as_json_rows(envelope, table, rows):
    """rows as the binlog decoder's `rows_json` gives them: images and keys in JSON."""
    names, heads = envelope.json_row_keys(table)

    def key(row):
        return None if row is None or not names else orjson.dumps({name: row.get(name) for name in names})

    return [(None if before is None else orjson.dumps(before), None if after is None else orjson.dumps(after),
             key(before), key(after)) for before, after in rows]


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["c", "u", "d"]), values=st.lists(st.dictionaries(st.sampled_from(["status", "note", "x"]),
                                                                          SCALARS, max_size=3), min_size=1, max_size=4),
       transaction_id=st.one_of(st.none(), TEXT))
def test_records_of_json_rows_are_records_of_rows(op, values, transaction_id):
    """Rows handed over as JSON (`rows_json`) give the very records of the same rows as dicts."""
    for module in filter(None, IMPLEMENTATIONS.values()):
        with pytest.MonkeyPatch.context() as patch:
            use_encoders(patch, module)
            envelope = Envelope("shop")
            rows = [(dict(ROW, id=n, **extra) if op in ("u", "d") else None,
                     None if op == "d" else {**ROW, "id": n, "status": f"s{n}", **extra}) for n, extra in enumerate(values)]
            template = envelope.source_template({"version": "x", "connector": "mysql", "name": "shop", "pos": 0,
                                                 "row": 0}, ("pos", "row"))
            try:
                json_rows = _as_json_rows(envelope, ORDERS, rows)
            except TypeError:  # e.g. a lone surrogate: no decoder gives such a row as JSON
                continue
            expected = _outcome(envelope.rows_records, ORDERS, op, rows, template, 120, transaction_id, 7, 3)
            assert _outcome(envelope.json_rows_records, ORDERS, op, json_rows, template, 120, transaction_id, 7,
                            3) == expected


def test_json_rows_with_a_changed_key_or_a_converter_go_back_as_dicts(envelope):
    template = envelope.source_template({"version": "x", "pos": 0, "row": 0}, ("pos", "row"))
    changed = _as_json_rows(envelope, ORDERS, [(dict(ROW), dict(ROW, status="x")), (dict(ROW), dict(ROW, id=9))])
    assert envelope.json_rows_records(ORDERS, "u", changed, template, 1, "t", 0, 0) is None
    assert envelope.json_rows_records(ORDERS, "t", [(None, None, None, None)], template, 1, "t", 0, 0) is None
    assert Envelope("shop", compat="debezium").json_row_keys(ORDERS) is None  # a row converter: dicts
    floats = TableSchema("mysql", "shop", "f", (Column("k", "double", "float", nullable=False, primary_key=True),),
                         primary_key=("k",), database="shop")
    assert envelope.json_row_keys(floats) is None  # -0.0 == 0.0 but their JSON differs
    assert envelope.json_row_keys(ORDERS) == (("id", "region"), (b'{"id":', b',"region":'))
