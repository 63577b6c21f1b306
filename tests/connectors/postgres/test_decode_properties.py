"""Property tests for pgoutput decoding: garbage never crashes, both implementations always agree, and
values round-trip (through hand-built wire forms and through the sandbox PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import importlib
import struct
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.errors import DecodeError
from tests.connectors.postgres.test_decode import (
    IMPLEMENTATIONS,
    LSN,
    NULL,
    UNCHANGED,
    begin_msg,
    binary,
    commit_msg,
    delete_msg,
    i32,
    i64,
    insert_msg,
    load_implementation,
    message_msg,
    relation_msg,
    text,
    truncate_msg,
    type_msg,
    u8,
    u32,
    update_msg,
)

MIXED = (
    (1, "id", 23, -1), (0, "name", 25, -1), (0, "price", 1700, -1), (0, "score", 701, -1),
    (0, "seen", 1184, -1), (0, "day", 1082, -1), (0, "tags", 1009, -1), (0, "blob", 17, -1),
    (0, "ok", 16, -1), (0, "ids", 1016, -1), (0, "span", 1186, -1), (0, "at", 1083, -1),
)
RELATION = relation_msg(7, "public", "mixed", "d", MIXED)
TEXT_ROW = (
    text("1"), text("ann"), text("10.50"), text("1.5"), text("2024-02-29 12:45:00.5+00"), text("2024-02-29"),
    text('{"a b",NULL,"c\\"d"}'), text("\\x0102"), text("t"), text("{{1,2},{3,4}}"), text("P1D"), text("13:45:00.1"),
)
BINARY_ROW = (
    binary(i32(1)), binary(b"ann"), binary(struct.pack(">hhHhhh", 2, 0, 0, 2, 10, 5000)),
    binary(struct.pack(">d", 1.5)), binary(i64(762_525_900_500_000)), binary(i32(8825)),
    binary(i32(1) + i32(1) + u32(25) + i32(2) + i32(1) + i32(3) + b"a b" + i32(-1)), binary(b"\x01\x02"),
    binary(b"\x01"), binary(i32(1) + i32(0) + u32(20) + i32(1) + i32(1) + i32(8) + i64(5)),
    binary(i64(0) + i32(1) + i32(0)), binary(i64(49_500_100_000)),
)
VALID_FRAMES = [
    begin_msg(100, 1_700_000_000_000_000, 5), commit_msg(0, 100, 148, 1_700_000_000_000_000),
    b"O" + struct.pack(">Q", 9) + b"up\0", RELATION, type_msg(16390, "public", "mood"),
    insert_msg(7, *TEXT_ROW), insert_msg(7, *BINARY_ROW),
    update_msg(7, TEXT_ROW, old=BINARY_ROW), update_msg(7, (NULL,) * 6 + (UNCHANGED,) * 6),
    delete_msg(7, TEXT_ROW, kind=b"O"), truncate_msg((7, 8), options=1), message_msg(True, 5, "p", b"xyz"),
    b"S" + u32(5) + u8(1), b"E", b"c" + u32(5) + u8(0) + struct.pack(">QQq", 1, 2, 3), b"A" + u32(5) + u32(6),
]


def _fresh_pair():
    twin = importlib.import_module(IMPLEMENTATIONS[0]).PgoutputDecoder()
    cython = load_implementation(IMPLEMENTATIONS[1]).PgoutputDecoder()
    for decoder in (twin, cython):
        decoder.decode(RELATION, LSN)
    return twin, cython


def _outcome(decoder, frame: bytes):
    """The decoded tuple, or ("DecodeError", message); any other exception fails the test."""
    try:
        return decoder.decode(frame, LSN)
    except DecodeError as error:
        assert error.lsn == LSN and 0 <= error.offset <= len(frame)
        return ("DecodeError", str(error))


def _assert_same_outcome(frame: bytes) -> None:
    twin, cython = _fresh_pair()
    expected = _outcome(twin, frame)
    assert _outcome(cython, frame) == expected
    assert isinstance(expected, tuple)


@given(st.binary(max_size=200))
def test_random_bytes_give_a_result_or_a_decode_error(frame):
    _assert_same_outcome(frame)


@given(st.sampled_from(b"BCORYIUDTMSEcA"), st.binary(max_size=120))
def test_random_bodies_after_a_valid_tag(tag, body):
    _assert_same_outcome(bytes([tag]) + body)


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("flip"), st.integers(0, 400), st.integers(1, 255)),
    st.tuples(st.just("int32"), st.integers(0, 400), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("insert"), st.integers(0, 400), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 400), st.integers(1, 8)),
)


def _mutate(frame: bytes, mutation) -> bytes:
    kind, at = mutation[0], mutation[1] % (len(frame) + 1)
    if kind == "truncate":
        return frame[:at]
    if kind == "flip":
        if not frame:
            return frame
        at = min(at, len(frame) - 1)
        return frame[:at] + bytes([frame[at] ^ mutation[2]]) + frame[at + 1:]
    if kind == "int32":
        return frame[:at] + struct.pack(">i", mutation[2]) + frame[at + 4:]
    if kind == "insert":
        return frame[:at] + mutation[2] + frame[at:]
    return frame[:at] + frame[at + mutation[2]:]


@given(st.sampled_from(VALID_FRAMES), st.lists(mutations, min_size=1, max_size=3))
def test_mutated_valid_frames_give_a_result_or_a_decode_error(frame, applied):
    for mutation in applied:
        frame = _mutate(frame, mutation)
    _assert_same_outcome(frame)


def test_valid_frames_decode():
    for frame in VALID_FRAMES:
        twin, cython = _fresh_pair()
        assert twin.decode(frame, LSN) == cython.decode(frame, LSN)
        assert twin.decode(frame, LSN)[0] != "DecodeError"


# -- value round trips through hand-built wire forms --------------------------------------------------------


@pytest.fixture(scope="module", params=IMPLEMENTATIONS, ids=("python", "cython"))
def impl(request):
    return load_implementation(request.param)


def _value(impl, type_oid: int, column) -> object:
    decoder = impl.PgoutputDecoder()
    decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
    return decoder.decode(insert_msg(1, column), LSN)[3]["v"]


def numeric_send_of(textual: str) -> bytes:
    """PG's numeric_send of a plain decimal string (base-10000 digits, weight, sign, display scale)."""
    negative = textual.startswith("-")
    whole, _, fraction = textual.lstrip("-").partition(".")
    dscale = len(fraction)
    whole = whole.lstrip("0")
    whole = "0" * (-len(whole) % 4) + whole
    fraction = fraction + "0" * (-len(fraction) % 4)
    groups = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    weight = len(groups) - 1
    groups += [int(fraction[i:i + 4]) for i in range(0, len(fraction), 4)]
    while groups and groups[0] == 0:  # PG strips leading and trailing zero groups
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    sign = 0x4000 if negative and groups else 0
    return struct.pack(">hhHh", len(groups), weight, sign, dscale) + b"".join(struct.pack(">h", g) for g in groups)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d.adjusted()) < 60))
def test_numeric_binary_matches_its_text(impl, number: Decimal):
    textual = format(number, "f")
    if textual.startswith("-") and Decimal(textual) == 0:
        textual = textual[1:]
    assert _value(impl, 1700, binary(numeric_send_of(textual))) == textual
    assert _value(impl, 1700, text(textual)) == textual


@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_timestamp_binary_matches_its_text(impl, moment: dt.datetime):
    pg_us = (moment - dt.datetime(2000, 1, 1)) // dt.timedelta(microseconds=1)
    wire = moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else "")
    expected = moment.isoformat()
    assert _value(impl, 1114, binary(i64(pg_us))) == expected
    assert _value(impl, 1114, text(wire)) == expected
    assert _value(impl, 1184, binary(i64(pg_us))) == expected + "Z"
    assert _value(impl, 1184, text(wire + "+00")) == expected + "Z"
    assert _value(impl, 1082, binary(i32(pg_us // 86_400_000_000))) == expected[:10]


@given(st.integers(-(2**62), 2**62))
def test_timestamps_out_of_the_common_range_agree(pg_us):
    twin, cython = (load_implementation(name) for name in IMPLEMENTATIONS)
    assert _value(twin, 1184, binary(i64(pg_us))) == _value(cython, 1184, binary(i64(pg_us)))
    days = max(-(2**31), min(2**31 - 1, pg_us // 86_400_000_000))
    assert _value(twin, 1082, binary(i32(days))) == _value(cython, 1082, binary(i32(days)))


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float4_binary_gives_the_shortest_round_tripping_number(impl, number):
    value = _value(impl, 700, binary(struct.pack(">f", number)))
    assert struct.unpack(">f", struct.pack(">f", value))[0] == number
    assert _value(impl, 700, text(repr(value))) == value


def _array_text(items) -> str:
    parts = []
    for item in items:
        if isinstance(item, list):
            parts.append(_array_text(item))
        elif item is None:
            parts.append("NULL")
        else:
            parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


element_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=8)


@given(st.lists(st.one_of(st.none(), element_text), max_size=6),
       st.lists(st.lists(st.one_of(st.none(), element_text), min_size=2, max_size=2), min_size=1, max_size=3))
def test_text_arrays_round_trip(impl, flat, nested):
    assert _value(impl, 1009, text(_array_text(flat))) == flat
    assert _value(impl, 1009, text(_array_text(nested))) == nested


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=8))
def test_binary_int8_arrays_round_trip(impl, items):
    if items:
        wire = i32(1) + i32(int(None in items)) + u32(20) + i32(len(items)) + i32(1)
        wire += b"".join(i32(-1) if item is None else i32(8) + i64(item) for item in items)
    else:
        wire = i32(0) + i32(0) + u32(20)
    assert _value(impl, 1016, binary(wire)) == items
    assert _value(impl, 1016, text("{" + ",".join("NULL" if i is None else str(i) for i in items) + "}")) == items


# -- random values through the database -----------------------------------------------------------------------

DB_COLUMNS = (
    ("i8", "bigint", st.integers(-(2**63), 2**63 - 1)),
    ("n", "numeric", st.decimals(allow_nan=True, allow_infinity=False, places=None)
     .filter(lambda d: d.is_nan() or abs(d.adjusted()) < 100)),
    ("f8", "double precision", st.floats(allow_nan=True, allow_infinity=True)),
    ("f4", "real", st.floats(width=32, allow_nan=False, allow_infinity=True)),
    ("t", "text", st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=20)),
    ("tz", "timestamptz", st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                                       timezones=st.just(dt.timezone.utc))),
    ("d", "date", st.dates()),
    ("tm", "time", st.times()),
    ("by", "bytea", st.binary(max_size=20)),
    ("ia", "bigint[]", st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=4)),
    ("ta", "text[]", st.lists(st.one_of(st.none(), element_text), max_size=4)),
    ("iv", "interval", st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000),
                                 st.integers(-(10**12), 10**12))),
)


@pytest.fixture(scope="module")
def roundtrip_db(pg_url):
    import uuid

    from connectors.postgres.dialect import connect, quote_ident

    from tests.connectors.postgres.test_decode import _database_url

    name = f"t_pg_decode_props_{uuid.uuid4().hex[:12]}"
    with connect(pg_url) as admin:
        admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    try:
        with connect(_database_url(pg_url, name)) as conn:
            conn.execute("SET synchronous_commit = on")  # peeks read flushed WAL only
            columns = ", ".join(f"{column} {sql_type}" for column, sql_type, _ in DB_COLUMNS)
            conn.execute(f"CREATE TABLE roundtrip (id serial PRIMARY KEY, {columns})")
            conn.execute("CREATE PUBLICATION pub FOR TABLE roundtrip")
            conn.execute("SELECT pg_create_logical_replication_slot('props', 'pgoutput')")
            yield conn
            conn.execute("SELECT pg_drop_replication_slot('props')")
    finally:
        with connect(pg_url) as admin:
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                          (name,))
            admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def _sql_value(column: str, value):
    if column == "iv":
        months, days, micros = value
        return f"{months} months {days} days {micros} microseconds"
    if column == "n":
        return "NaN" if value.is_nan() else format(value, "f")
    return value


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(*(strategy for _, _, strategy in DB_COLUMNS)), min_size=1, max_size=5))
def test_random_rows_through_the_database_decode_alike_in_text_and_binary(roundtrip_db, rows):
    conn = roundtrip_db
    names = ", ".join(column for column, _, _ in DB_COLUMNS)
    marks = ", ".join(["%s"] * len(DB_COLUMNS))
    with conn.transaction():
        for row in rows:
            conn.execute(f"INSERT INTO roundtrip ({names}) VALUES ({marks})",
                         [_sql_value(column, value) for (column, _, _), value in zip(DB_COLUMNS, row)])
    peek = ("SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes('props', NULL, NULL, "
            "'proto_version', '1', 'publication_names', 'pub', 'binary', %s)")
    decoded = {}
    for name in IMPLEMENTATIONS:
        impl = load_implementation(name)
        for mode in ("false", "true"):
            decoder = impl.PgoutputDecoder(binary=mode == "true")
            inserts = []
            for _, data in conn.execute(peek, (mode,)).fetchall():
                message = decoder.decode(bytes(data), LSN)
                if message[0] == "I":
                    inserts.append(message[3])
            decoded[name, mode] = inserts
    conn.execute("SELECT pg_replication_slot_advance('props', pg_current_wal_lsn())")
    reference = decoded[IMPLEMENTATIONS[0], "false"]
    assert len(reference) == len(rows)
    for key, inserts in decoded.items():
        assert inserts == reference, key
    for row, got in zip(rows, reference):
        values = dict(zip((column for column, _, _ in DB_COLUMNS), row))
        assert got["i8"] == values["i8"]
        assert got["t"] == values["t"]
        assert got["ia"] == values["ia"]
        assert got["ta"] == values["ta"]
        assert got["d"] == values["d"].isoformat()
        assert got["tm"] == values["tm"].isoformat()
        assert got["tz"] == values["tz"].replace(tzinfo=None).isoformat() + "Z"
        if values["n"].is_nan():
            assert got["n"] == "NaN"
        else:
            assert Decimal(got["n"]) == values["n"]
        f8 = values["f8"]
        assert got["f8"] == ("NaN" if f8 != f8 else "Infinity" if f8 == float("inf")
                             else "-Infinity" if f8 == float("-inf") else f8)


# -- the Cython fast paths agree with the twin on any text, near-valid or not ---------------------------------

TEXT_SHAPES = {
    23: st.from_regex(r"\A-?[0-9]{0,20}[.x ]?\Z"),
    16: st.from_regex(r"\A[tf]?[tfx]?\Z"),
    701: st.one_of(st.from_regex(r"\A[-+]?[0-9]{0,5}(\.[0-9]{0,5})?([eE][-+]?[0-9]{0,4})?\Z"),
                   st.sampled_from(["NaN", "Infinity", "-Infinity", "inf", "1_0", " 1", "1e999", "nan"])),
    1114: st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,7})?( BC)?\Z"),
    1184: st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,7})?[+-][0-9]{2}(:[0-9]{2})?( BC)?\Z"),
    1082: st.from_regex(r"\A[0-9]{4,5}-[0-9]{2}-[0-9]{2}( BC)?\Z"),
    1083: st.from_regex(r"\A[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,8})?\Z"),
    17: st.from_regex(r"\A\\x[0-9a-fA-Fg ]{0,12}\Z"),
    1007: st.from_regex(r"\A\{[0-9,{}NULnul-]{0,12}\}?\Z"),
    1009: st.from_regex(r'\A\{[a-c,{}"\\NUL é]{0,14}\}?\Z'),
    1022: st.from_regex(r"\A\{[0-9,.eNaIfinty-]{0,14}\}\Z"),
    1185: st.from_regex(r'\A\{("?2024-02-29 12:45:0[0-9](\.[0-9]{1,3})?\+0[01]"?,?){0,3}\}\Z'),
}


@given(st.sampled_from(sorted(TEXT_SHAPES)).flatmap(lambda oid: st.tuples(st.just(oid), st.one_of(
    TEXT_SHAPES[oid], st.text(max_size=30)))))
def test_text_fast_paths_agree_with_the_twin(case):
    type_oid, wire = case
    frame = insert_msg(1, text(wire))
    outcomes = []
    for name in IMPLEMENTATIONS:
        decoder = load_implementation(name).PgoutputDecoder()
        decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
        outcomes.append(_outcome(decoder, frame))
    assert outcomes[0] == outcomes[1] or (outcomes[0][0] == "I" and _same_floats(outcomes[0], outcomes[1]))


def _same_floats(a, b) -> bool:
    x, y = a[3]["v"], b[3]["v"]
    return isinstance(x, float) and isinstance(y, float) and x != x and y != y


binary_array_shapes = st.builds(
    lambda ndim, flags, size, elements, tail: i32(ndim) + i32(flags) + u32(25) + i32(size) + i32(1)
    + b"".join(i32(len(e)) + e if e is not None else i32(-1) for e in elements) + tail,
    st.sampled_from([0, 1, 2, -1]), st.integers(0, 1), st.integers(-1, 5),
    st.lists(st.one_of(st.none(), st.binary(max_size=6)), max_size=5), st.binary(max_size=3),
)


@given(st.sampled_from([1007, 1009, 1016, 1185, 1231]), st.one_of(binary_array_shapes, st.binary(max_size=40)))
def test_binary_array_fast_path_agrees_with_the_twin(type_oid, wire):
    frame = insert_msg(1, binary(wire))
    outcomes = []
    for name in IMPLEMENTATIONS:
        decoder = load_implementation(name).PgoutputDecoder(binary=True)
        decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
        outcomes.append(_outcome(decoder, frame))
    assert outcomes[0] == outcomes[1]
