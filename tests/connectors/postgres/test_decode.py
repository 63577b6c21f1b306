"""pgoutput decoding: hand-built frames and real frames from the sandbox PostgreSQL, on both implementations.

Every test runs against the pure-Python twin (`connectors.postgres.decode`) and the Cython module
(`cdc._ext.pgoutput`); they must give identical output and identical errors.
"""

from __future__ import annotations

import base64
import importlib
import struct

import pytest

from cdc.codecs import days_from_civil
from cdc.errors import DecodeError
from cdc.events import UNAVAILABLE_VALUE
from connectors.postgres import types
from connectors.postgres.decode import PG_EPOCH_OFFSET_US, RelationInfo

IMPLEMENTATIONS = ("connectors.postgres.decode", "cdc._ext.pgoutput")
LSN = 0x1_6B37_48


def load_implementation(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not built (CDC_EXT_ONLY=pgoutput python setup.py build_ext --inplace)")


@pytest.fixture(params=IMPLEMENTATIONS, ids=("python", "cython"))
def impl(request):
    return load_implementation(request.param)


@pytest.fixture
def decoder(impl):
    return impl.PgoutputDecoder()


# -- encoding helpers: pgoutput messages built by hand -------------------------------------------------


def u8(value: int) -> bytes:
    return struct.pack(">B", value)


def i16(value: int) -> bytes:
    return struct.pack(">h", value)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def i64(value: int) -> bytes:
    return struct.pack(">q", value)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def pg_ts(unix_us: int) -> bytes:
    return i64(unix_us - PG_EPOCH_OFFSET_US)


def xid_part(xid: int | None) -> bytes:
    return b"" if xid is None else u32(xid)


NULL = object()
UNCHANGED = object()


def text(value: str | bytes) -> tuple[str, bytes]:
    return ("t", value.encode() if isinstance(value, str) else value)


def binary(value: bytes) -> tuple[str, bytes]:
    return ("b", value)


def tuple_data(*columns) -> bytes:
    """TupleData: a column is NULL, UNCHANGED, text(...) or binary(...)."""
    out = i16(len(columns))
    for column in columns:
        if column is NULL:
            out += b"n"
        elif column is UNCHANGED:
            out += b"u"
        else:
            kind, raw = column
            out += kind.encode() + i32(len(raw)) + raw
    return out


def begin_msg(final_lsn: int, unix_us: int, xid: int) -> bytes:
    return b"B" + u64(final_lsn) + pg_ts(unix_us) + u32(xid)


def commit_msg(flags: int, commit_lsn: int, end_lsn: int, unix_us: int) -> bytes:
    return b"C" + u8(flags) + u64(commit_lsn) + u64(end_lsn) + pg_ts(unix_us)


def relation_msg(relid, namespace, name, identity, columns, xid=None) -> bytes:
    """columns: (flags, name, type_oid, typmod) tuples."""
    out = b"R" + xid_part(xid) + u32(relid) + cstr(namespace) + cstr(name) + identity.encode() + i16(len(columns))
    for flags, column, type_oid, typmod in columns:
        out += u8(flags) + cstr(column) + u32(type_oid) + i32(typmod)
    return out


def type_msg(type_oid, namespace, name, xid=None) -> bytes:
    return b"Y" + xid_part(xid) + u32(type_oid) + cstr(namespace) + cstr(name)


def insert_msg(relid, *columns, xid=None) -> bytes:
    return b"I" + xid_part(xid) + u32(relid) + b"N" + tuple_data(*columns)


def update_msg(relid, new, old=None, old_kind=b"O", xid=None) -> bytes:
    out = b"U" + xid_part(xid) + u32(relid)
    if old is not None:
        out += old_kind + tuple_data(*old)
    return out + b"N" + tuple_data(*new)


def delete_msg(relid, old, kind=b"K", xid=None) -> bytes:
    return b"D" + xid_part(xid) + u32(relid) + kind + tuple_data(*old)


def truncate_msg(relids, options=0, xid=None) -> bytes:
    return b"T" + xid_part(xid) + i32(len(relids)) + u8(options) + b"".join(u32(r) for r in relids)


def message_msg(transactional, lsn, prefix, content, xid=None) -> bytes:
    return b"M" + xid_part(xid) + u8(1 if transactional else 0) + u64(lsn) + cstr(prefix) + i32(len(content)) + content


PEOPLE = (
    (1, "id", 23, -1),
    (0, "name", 25, -1),
    (0, "price", 1700, (10 << 16 | 2) + 4),
    (0, "seen", 1184, -1),
)


def people_relation(relid=16401, xid=None) -> bytes:
    return relation_msg(relid, "public", "people", "d", PEOPLE, xid=xid)


# -- message framing -----------------------------------------------------------------------------------


def test_begin_reports_unix_microseconds(decoder):
    assert decoder.decode(begin_msg(0x1234, 1_732_400_000_123_456, 771), LSN) == (
        "B", 0x1234, 1_732_400_000_123_456, 771)


def test_commit(decoder):
    assert decoder.decode(commit_msg(0, 100, 148, 1_732_400_000_000_000), LSN) == (
        "C", 0, 100, 148, 1_732_400_000_000_000)


def test_origin(decoder):
    assert decoder.decode(b"O" + u64(77) + cstr("upstream"), LSN) == ("O", 77, "upstream")


def test_relation_is_cached_and_reports_changes(decoder, impl):
    first = decoder.decode(people_relation(), LSN)
    assert first[0] == "R" and first[2] is False
    info = first[1]
    assert isinstance(info, RelationInfo)
    assert (info.relid, info.namespace, info.name, info.replica_identity) == (16401, "public", "people", "d")
    assert info.columns == PEOPLE
    assert info.key_columns == ("id",)
    assert decoder.relation(16401) == info
    assert decoder.decode(people_relation(), LSN)[2] is False
    widened = relation_msg(16401, "public", "people", "d", PEOPLE + ((0, "extra", 25, -1),))
    assert decoder.decode(widened, LSN)[2] is True
    assert decoder.relation(16401).column_names == ("id", "name", "price", "seen", "extra")
    with pytest.raises(KeyError):
        decoder.relation(99)


def test_type_message(decoder):
    assert decoder.decode(type_msg(16390, "public", "mood"), LSN) == ("Y", 16390, "public", "mood")


def test_insert_decodes_text_columns(decoder):
    decoder.decode(people_relation(), LSN)
    frame = insert_msg(16401, text("1"), text("ann"), text("10.50"), text("2024-02-29 12:45:00.5+00"))
    assert decoder.decode(frame, LSN) == (
        "I", 16401, None, {"id": 1, "name": "ann", "price": "10.50", "seen": "2024-02-29T12:45:00.500000Z"})


def test_insert_null_and_unchanged_toast(decoder):
    decoder.decode(people_relation(), LSN)
    frame = insert_msg(16401, text("2"), NULL, UNCHANGED, NULL)
    assert decoder.decode(frame, LSN)[3] == {"id": 2, "name": None, "price": UNAVAILABLE_VALUE, "seen": None}


def test_update_without_old_tuple(decoder):
    decoder.decode(people_relation(), LSN)
    frame = update_msg(16401, (text("1"), text("bob"), UNCHANGED, NULL))
    assert decoder.decode(frame, LSN) == (
        "U", 16401, None, None, None, {"id": 1, "name": "bob", "price": UNAVAILABLE_VALUE, "seen": None})


def test_update_with_key_old_tuple(decoder):
    decoder.decode(people_relation(), LSN)
    frame = update_msg(16401, (text("2"), text("bob"), NULL, NULL), old=(text("1"), NULL, NULL, NULL), old_kind=b"K")
    result = decoder.decode(frame, LSN)
    assert result[:5] == ("U", 16401, None, {"id": 1, "name": None, "price": None, "seen": None}, "K")
    assert result[5]["id"] == 2


def test_update_with_full_old_tuple(decoder):
    decoder.decode(people_relation(), LSN)
    frame = update_msg(16401, (text("1"), text("bob"), NULL, NULL), old=(text("1"), text("ann"), NULL, NULL))
    assert decoder.decode(frame, LSN)[3:5] == ({"id": 1, "name": "ann", "price": None, "seen": None}, "O")


def test_delete(decoder):
    decoder.decode(people_relation(), LSN)
    assert decoder.decode(delete_msg(16401, (text("7"), NULL, NULL, NULL)), LSN) == (
        "D", 16401, None, {"id": 7, "name": None, "price": None, "seen": None}, "K")
    assert decoder.decode(delete_msg(16401, (text("7"), text("x"), NULL, NULL), kind=b"O"), LSN)[4] == "O"


def test_truncate(decoder):
    assert decoder.decode(truncate_msg((16401, 16402), options=3), LSN) == ("T", None, 3, (16401, 16402))


def test_logical_message(decoder):
    assert decoder.decode(message_msg(True, 500, "pfx", b"\x00hello"), LSN) == (
        "M", None, True, 500, "pfx", b"\x00hello")
    assert decoder.decode(message_msg(False, 501, "", b""), LSN) == ("M", None, False, 501, "", b"")


def test_streamed_block_carries_xids(decoder):
    assert decoder.decode(b"S" + u32(900) + u8(1), LSN) == ("S", 900, True)
    assert decoder.decode(people_relation(xid=900), LSN)[1].name == "people"
    assert decoder.decode(type_msg(1, "s", "t", xid=900), LSN) == ("Y", 1, "s", "t")
    frame = insert_msg(16401, text("1"), NULL, NULL, NULL, xid=900)
    assert decoder.decode(frame, LSN)[:3] == ("I", 16401, 900)
    assert decoder.decode(delete_msg(16401, (text("1"), NULL, NULL, NULL), xid=901), LSN)[2] == 901
    assert decoder.decode(truncate_msg((5,), xid=900), LSN) == ("T", 900, 0, (5,))
    assert decoder.decode(message_msg(True, 9, "p", b"c", xid=900), LSN)[1] == 900
    assert decoder.decode(b"E", LSN) == ("E",)
    assert decoder.decode(insert_msg(16401, text("2"), NULL, NULL, NULL), LSN)[2] is None
    assert decoder.decode(b"S" + u32(900) + u8(0), LSN) == ("S", 900, False)
    assert decoder.decode(b"E", LSN) == ("E",)
    commit = b"c" + u32(900) + u8(0) + u64(1000) + u64(1048) + pg_ts(1_700_000_000_000_000)
    assert decoder.decode(commit, LSN) == ("c", 900, 0, 1000, 1048, 1_700_000_000_000_000)
    assert decoder.decode(b"A" + u32(900) + u32(901), LSN) == ("A", 900, 901, None, None)
    # protocol v4 (streaming 'parallel', PG 16+) appends abort_lsn and abort_ts
    abort = b"A" + u32(900) + u32(900) + u64(5) + pg_ts(1_700_000_000_000_000)
    assert decoder.decode(abort, LSN) == ("A", 900, 900, 5, 1_700_000_000_000_000)
    with pytest.raises(DecodeError):
        decoder.decode(b"A" + u32(900) + u32(900) + u64(5), LSN)


def test_set_type_codec_applies_to_cached_relations(decoder):
    decoder.decode(relation_msg(1, "public", "t", "d", ((1, "id", 23, -1), (0, "mood", 16390, -1),
                                                        (0, "n", 16396, -1), (0, "moods", 16389, -1))), LSN)
    frame = insert_msg(1, text("1"), text("happy"), text("5"), text("{sad,happy}"))
    assert decoder.decode(frame, LSN)[3] == {"id": 1, "mood": "happy", "n": "5", "moods": "{sad,happy}"}
    decoder.set_type_codec(16396, "int")
    decoder.set_type_codec(16389, "array:text")
    decoder.set_type_codec(16390, "text")
    assert decoder.decode(frame, LSN)[3] == {"id": 1, "mood": "happy", "n": 5, "moods": ["sad", "happy"]}
    assert decoder.binary_capable(16396) and not decoder.binary_capable(869)
    with pytest.raises(ValueError):
        decoder.set_type_codec(1, "nope")


def test_codec_ids_agree_between_implementations():
    cython = load_implementation("cdc._ext.pgoutput")
    for name, codec in types.CODEC_NAMES.items():
        assert cython.CODEC_IDS[name] == codec, name
    assert cython.CODEC_IDS["array"] == types.ARRAY


def test_twin_picks_an_implementation():
    from cdc.impl import twin

    decode = twin("connectors.postgres.decode")
    assert decode.__name__ in IMPLEMENTATIONS
    assert decode.PgoutputDecoder().decode(begin_msg(1, 0, 2), 0)[0] == "B"


# -- errors ------------------------------------------------------------------------------------------


def _decode_error(decoder, frame: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decoder.decode(frame, LSN)
    return caught.value


def test_every_truncation_is_a_decode_error_naming_lsn_and_offset(impl):
    frames = [
        begin_msg(1, 2, 3), commit_msg(0, 1, 2, 3), b"O" + u64(1) + cstr("o"), people_relation(),
        type_msg(1, "a", "b"), truncate_msg((1, 2)), message_msg(True, 1, "p", b"abc"),
        insert_msg(16401, text("1"), text("ann"), text("1.00"), NULL),
        update_msg(16401, (text("1"), NULL, NULL, NULL), old=(text("1"), NULL, NULL, NULL)),
        delete_msg(16401, (text("1"), NULL, NULL, NULL)),
        b"S" + u32(1) + u8(1), b"c" + u32(1) + u8(0) + u64(1) + u64(2) + i64(3), b"A" + u32(1) + u32(1),
    ]
    for frame in frames:
        for cut in range(len(frame)):
            decoder = impl.PgoutputDecoder()
            decoder.decode(people_relation(), LSN)
            error = _decode_error(decoder, frame[:cut])
            assert error.lsn == LSN and 0 <= error.offset <= len(frame), (frame, cut)
            assert "LSN 0/16B3748" in str(error)


def test_errors_are_identical_in_both_implementations():
    twin = importlib.import_module(IMPLEMENTATIONS[0]).PgoutputDecoder()
    cython = load_implementation(IMPLEMENTATIONS[1]).PgoutputDecoder()
    frame = insert_msg(16401, text("1"), text("ann"), text("1.00"), text("not a time"))
    for bad in (frame, frame[:-3], b"Z", b"", insert_msg(5, text("1")), frame + b"x",
                insert_msg(16401, text("x"), NULL, NULL, NULL), insert_msg(16401, text("1"))):
        messages = []
        for decoder in (twin, cython):
            decoder.decode(people_relation(), LSN)
            messages.append(str(_decode_error(decoder, bad)))
        assert messages[0] == messages[1]


def test_unknown_relation_is_a_decode_error(decoder):
    error = _decode_error(decoder, insert_msg(42, text("1")))
    assert "relation 42" in str(error) and error.offset == 1


def test_column_count_mismatch_is_a_decode_error(decoder):
    decoder.decode(people_relation(), LSN)
    assert "columns" in str(_decode_error(decoder, insert_msg(16401, text("1"))))


def test_bad_value_is_a_decode_error_naming_column_and_offset(decoder):
    decoder.decode(people_relation(), LSN)
    frame = insert_msg(16401, text("12x"), NULL, NULL, NULL)
    error = _decode_error(decoder, frame)
    assert "'id'" in str(error) and error.offset == frame.index(b"12x")


def test_trailing_bytes_and_unknown_tags_are_decode_errors(decoder):
    assert "unexpected bytes" in str(_decode_error(decoder, begin_msg(1, 2, 3) + b"\0"))
    assert "unknown message type" in str(_decode_error(decoder, b"Q"))
    assert "empty" in str(_decode_error(decoder, b""))
    decoder.decode(people_relation(), LSN)
    frame = b"I" + u32(16401) + b"N" + i16(4) + b"x"
    assert "column kind" in str(_decode_error(decoder, frame))


def test_huge_lengths_do_not_read_past_the_message(decoder):
    decoder.decode(people_relation(), LSN)
    frame = b"I" + u32(16401) + b"N" + i16(4) + b"t" + i32(0x7FFFFFFF) + b"12"
    assert "runs past the end" in str(_decode_error(decoder, frame))
    frame = b"I" + u32(16401) + b"N" + i16(4) + b"t" + i32(-5) + b"12"
    assert "runs past the end" in str(_decode_error(decoder, frame))
    assert "does not fit" in str(_decode_error(decoder, b"T" + i32(1 << 30) + u8(0) + u32(1)))


def test_memoryview_and_bytearray_frames(decoder):
    frame = begin_msg(1, 2, 3)
    assert decoder.decode(memoryview(frame), LSN) == decoder.decode(bytearray(frame), LSN) == decoder.decode(frame, LSN)


# -- value codecs: text forms ---------------------------------------------------------------------------

TEXT_CASES = [
    (23, "-2147483648", -2147483648),
    (20, "9223372036854775807", 9223372036854775807),
    (21, "0", 0),
    (26, "4294967295", 4294967295),
    (16, "t", True),
    (16, "f", False),
    (1700, "10.50", "10.50"),
    (1700, "NaN", "NaN"),
    (1700, "-Infinity", "-Infinity"),
    (700, "0.1", 0.1),
    (701, "1.5e+300", 1.5e300),
    (701, "-0", -0.0),
    (701, "NaN", "NaN"),
    (701, "Infinity", "Infinity"),
    (701, "-Infinity", "-Infinity"),
    (25, "héllo ✓", "héllo ✓"),
    (25, "", ""),
    (1042, "ab ", "ab "),
    (17, "\\x0102ff", "AQL/"),
    (17, "\\x", ""),
    (17, "a\\\\b\\001", base64.b64encode(b"a\\b\x01").decode()),
    (1560, "0101", "0101"),
    (1562, "", ""),
    (1082, "2024-02-29", "2024-02-29"),
    (1082, "0044-03-15 BC", "-0043-03-15"),
    (1082, "infinity", "infinity"),
    (1082, "-infinity", "-infinity"),
    (1082, "10000-01-01", "+10000-01-01"),
    (1083, "13:45:00", "13:45:00"),
    (1083, "13:45:00.1", "13:45:00.100000"),
    (1083, "13:45:00.123456", "13:45:00.123456"),
    (1083, "24:00:00", "24:00:00"),
    (1266, "13:45:00.1+05:30", "08:15:00.100000Z"),
    (1266, "00:10:00-02", "02:10:00Z"),
    (1114, "2024-02-29 13:45:00.123456", "2024-02-29T13:45:00.123456"),
    (1114, "2024-02-29 13:45:00", "2024-02-29T13:45:00"),
    (1114, "2024-02-29 13:45:00.5", "2024-02-29T13:45:00.500000"),
    (1114, "0044-03-15 13:45:00 BC", "-0043-03-15T13:45:00"),
    (1114, "-infinity", "-infinity"),
    (1184, "2024-02-29 12:45:00.123456+00", "2024-02-29T12:45:00.123456Z"),
    (1184, "2024-02-29 12:45:00+00", "2024-02-29T12:45:00Z"),
    (1184, "2024-02-29 12:45:00.5+00", "2024-02-29T12:45:00.500000Z"),
    (1184, "2024-03-01 01:15:00+05:30", "2024-02-29T19:45:00Z"),
    (1184, "0044-03-15 13:45:00+00 BC", "-0043-03-15T13:45:00Z"),
    (1184, "infinity", "infinity"),
    (1186, "P1Y2M3DT4H5M6.7S", "P1Y2M3DT4H5M6.7S"),
    (1186, "PT0S", "PT0S"),
    (114, '{"a": [1, 2]}', '{"a": [1, 2]}'),
    (3802, '{"a": "x", "b": 1}', '{"a": "x", "b": 1}'),
    (2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    (869, "10.0.0.1/8", "10.0.0.1/8"),
    (790, "$1,234.56", "$1,234.56"),
    (3904, "[1,5)", "[1,5)"),
    (99999, "(1,\"x y\")", "(1,\"x y\")"),
    (1007, "{1,NULL,3}", [1, None, 3]),
    (1007, "{}", []),
    (1007, "[0:1]={7,8}", [7, 8]),
    (1007, "{{1,2},{3,4}}", [[1, 2], [3, 4]]),
    (1009, '{"a b","\\"q",NULL,"NULL","",x}', ["a b", '"q', None, "NULL", "", "x"]),
    (1009, '{{"a","b"},{NULL,"\\\\"}}', [["a", "b"], [None, "\\"]]),
    (1231, "{1.5,NaN}", ["1.5", "NaN"]),
    (1001, '{"\\\\x01",NULL}', ["AQ==", None]),
    (1185, '{"2024-02-29 12:45:00+00"}', ["2024-02-29T12:45:00Z"]),
    (1000, "{t,f}", [True, False]),
    (1022, "{NaN,1.5,-Infinity}", ["NaN", 1.5, "-Infinity"]),
    (1020, "{(1,1),(0,0);(2,2),(1,1)}", ["(1,1),(0,0)", "(2,2),(1,1)"]),
    (1115, '{"2024-02-29 13:45:00"}', ["2024-02-29T13:45:00"]),
]


@pytest.mark.parametrize("type_oid,wire,expected", TEXT_CASES, ids=[f"{c[0]}:{c[1][:24]}" for c in TEXT_CASES])
def test_text_values(decoder, type_oid, wire, expected):
    decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
    value = decoder.decode(insert_msg(1, text(wire)), LSN)[3]["v"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("type_oid,wire", [
    (23, "1.5"), (23, ""), (16, "yes"), (701, "abc"), (17, "\\xZZ"), (1007, "{1,2"), (1007, "1,2}"),
    (1009, '{"abc}'), (1007, "{1,x}"), (1184, "2024-02-29"), (25, b"\xff\xfe"),
])
def test_malformed_text_values_are_decode_errors(decoder, type_oid, wire):
    decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
    with pytest.raises(DecodeError):
        decoder.decode(insert_msg(1, text(wire)), LSN)


# -- value codecs: binary forms ---------------------------------------------------------------------------


def numeric_send(ndigits_weight_sign_dscale, digits=()) -> bytes:
    ndigits, weight, sign, dscale = ndigits_weight_sign_dscale
    return struct.pack(">hhHh", ndigits, weight, sign, dscale) + b"".join(struct.pack(">h", d) for d in digits)


def array_send(element_oid, dims, elements) -> bytes:
    out = i32(len(dims)) + i32(int(any(e is None for e in elements))) + u32(element_oid)
    for size in dims:
        out += i32(size) + i32(1)
    for element in elements:
        out += i32(-1) if element is None else i32(len(element)) + element
    return out


BINARY_CASES = [
    (21, struct.pack(">h", -5), -5),
    (23, i32(-2147483648), -2147483648),
    (20, i64(2**63 - 1), 2**63 - 1),
    (26, u32(4294967295), 4294967295),
    (16, b"\x01", True),
    (16, b"\x00", False),
    (700, struct.pack(">f", 0.1), 0.1),
    (700, struct.pack(">f", float("inf")), "Infinity"),
    (701, struct.pack(">d", 1.5e300), 1.5e300),
    (701, struct.pack(">d", float("nan")), "NaN"),
    (701, struct.pack(">d", float("-inf")), "-Infinity"),
    (1700, numeric_send((2, 0, 0, 2), (10, 5000)), "10.50"),
    (1700, numeric_send((0, 0, 0, 0)), "0"),
    (1700, numeric_send((0, 0, 0, 3)), "0.000"),
    (1700, numeric_send((1, -1, 0x4000, 4), (1,)), "-0.0001"),
    (1700, numeric_send((3, 2, 0, 0), (12, 3456, 7890)), "1234567890"),
    (1700, numeric_send((1, 1, 0, 0), (5,)), "50000"),
    (1700, numeric_send((2, -1, 0, 9), (12, 3400)), "0.001234000"),
    (1700, numeric_send((2, -2, 0, 9), (12, 3400)), "0.000000123"),
    (1700, numeric_send((0, 0, 0xC000, 0)), "NaN"),
    (1700, numeric_send((0, 0, 0xD000, 0)), "Infinity"),
    (1700, numeric_send((0, 0, 0xF000, 0)), "-Infinity"),
    (25, "héllo".encode(), "héllo"),
    (3802, b"\x01{\"a\": 1}", '{"a": 1}'),
    (114, b"[1]", "[1]"),
    (17, b"\x01\x02\xff", "AQL/"),
    (17, b"", ""),
    (1560, i32(4) + b"\x50", "0101"),
    (1562, i32(10) + b"\xff\xc0", "1111111111"),
    (1082, i32(8825), "2024-02-29"),
    (1082, i32(days_from_civil(-43, 3, 15) - 10_957), "-0043-03-15"),
    (1082, i32(2**31 - 1), "infinity"),
    (1082, i32(-(2**31)), "-infinity"),
    (1083, i64(49_500_100_000), "13:45:00.100000"),
    (1083, i64(86_400_000_000), "24:00:00"),
    (1266, i64(49_500_100_000) + i32(-19800), "08:15:00.100000Z"),
    (1114, i64(762_529_500_123_456), "2024-02-29T13:45:00.123456"),
    (1114, i64(2**63 - 1), "infinity"),
    (1184, i64(762_525_900_500_000), "2024-02-29T12:45:00.500000Z"),
    (1184, i64(-(2**63)), "-infinity"),
    (1184, i64((days_from_civil(-43, 3, 15) - 10_957) * 86_400_000_000 + 1), "-0043-03-15T00:00:00.000001Z"),
    (1114, i64((days_from_civil(10000, 1, 1) - 10_957) * 86_400_000_000), "+10000-01-01T00:00:00"),
    (1186, i64(14_706_700_000) + i32(3) + i32(14), "P1Y2M3DT4H5M6.7S"),
    (1186, i64(-14_706_700_000) + i32(3) + i32(-14), "P-1Y-2M3DT-4H-5M-6.7S"),
    (1186, i64(0) + i32(0) + i32(0), "PT0S"),
    (2950, bytes.fromhex("a0eebc999c0b4ef8bb6d6bb9bd380a11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    (869, b"\x02\x08\x00\x04\x0a\x00\x00\x01", "\\x020800040a000001"),
    (1007, array_send(23, (3,), (i32(1), None, i32(3))), [1, None, 3]),
    (1007, array_send(23, (), ()), []),
    (1007, array_send(23, (2, 2), (i32(1), i32(2), i32(3), i32(4))), [[1, 2], [3, 4]]),
    (1009, array_send(25, (2,), (b"a b", None)), ["a b", None]),
    (1231, array_send(1700, (1,), (numeric_send((0, 0, 0xC000, 0)),)), ["NaN"]),
]


@pytest.mark.parametrize("type_oid,wire,expected", BINARY_CASES, ids=[f"{c[0]}:{c[1].hex()[:20]}" for c in BINARY_CASES])
def test_binary_values(impl, type_oid, wire, expected):
    decoder = impl.PgoutputDecoder(binary=True)
    decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
    value = decoder.decode(insert_msg(1, binary(wire)), LSN)[3]["v"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("type_oid,wire", [
    (23, b"\x00\x01\x02"), (16, b""), (701, b"\x00" * 4), (1700, b"\x00\x01"),
    (1700, numeric_send((1, 0, 0, 0), (10000,))), (1700, numeric_send((1, 0, 0x1234, 0), (1,))),
    (3802, b"\x02{}"), (1560, i32(9) + b"\x00"), (1082, b"\x00"), (1083, i64(-1)), (1186, b"\x00" * 15),
    (2950, b"\x00" * 15), (1007, b"\x00" * 5), (1007, i32(1) + i32(0) + u32(23) + i32(5) + i32(1) + i32(4) + i32(1)),
    (1007, i32(1) + i32(0) + u32(23) + i32(1) + i32(1) + i32(9) + i32(1)), (25, b"\xff"),
])
def test_malformed_binary_values_are_decode_errors(impl, type_oid, wire):
    decoder = impl.PgoutputDecoder(binary=True)
    decoder.decode(relation_msg(1, "s", "t", "d", ((0, "v", type_oid, -1),)), LSN)
    with pytest.raises(DecodeError):
        decoder.decode(insert_msg(1, binary(wire)), LSN)


# -- type descriptions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,expected", [
    ((23, -1, "int4"), ("integer", "int", 4, None, None, None)),
    ((20, -1, "int8"), ("bigint", "int", 8, None, None, None)),
    ((1043, 24, "varchar"), ("character varying(20)", "string", 20, None, None, None)),
    ((1042, 5, "bpchar"), ("character(1)", "string", 1, None, None, None)),
    ((1700, (10 << 16 | 2) + 4, "numeric"), ("numeric(10,2)", "decimal", None, 10, 2, None)),
    ((1700, -1, "numeric"), ("numeric", "decimal", None, None, None, None)),
    ((1184, 3, "timestamptz"), ("timestamp(3) with time zone", "timestamptz", None, 3, None, None)),
    ((1114, -1, "timestamp"), ("timestamp without time zone", "timestamp", None, None, None, None)),
    ((1083, 0, "time"), ("time(0) without time zone", "time", None, 0, None, None)),
    ((700, -1, "float4"), ("real", "float", 4, None, None, None)),
    ((1560, 4, "bit"), ("bit(4)", "bits", 4, None, None, None)),
    ((1007, -1, "_int4"), ("integer[]", "array", 4, None, None, "int")),
    ((1015, 14, "_varchar"), ("character varying(10)[]", "array", 10, None, None, "string")),
    ((3802, -1, "jsonb"), ("jsonb", "json", None, None, None, None)),
    ((16390, -1, "mood"), ("mood", "text", None, None, None, None)),
])
def test_describe_column(args, expected):
    assert types.describe_column(*args) == expected


def test_every_builtin_codec_decodes_text_in_both_implementations():
    for type_oid in list(types._SCALARS) + list(types._ARRAYS):
        assert types.codec_for_oid(type_oid) is not None
        assert types.describe_column(type_oid, -1, "x")[1] in __import__("cdc.events").events.KINDS


# -- real frames from the sandbox PostgreSQL --------------------------------------------------------------

# (column, type, SQL literal, readable value): every one of these also goes through binary mode.
REAL_COLUMNS = [
    ("i2", "smallint", "-32768", -32768),
    ("i4", "integer", "2147483647", 2147483647),
    ("i8", "bigint", "-9223372036854775808", -9223372036854775808),
    ("o", "oid", "4294967295", 4294967295),
    ("n", "numeric(10,2)", "10.5", "10.50"),
    ("n_free", "numeric", "'-123456789012345678901234567890.000000001'", "-123456789012345678901234567890.000000001"),
    ("n_small", "numeric", "'0.00001200'", "0.00001200"),
    ("n_nan", "numeric", "'NaN'", "NaN"),
    ("n_inf", "numeric", "'-Infinity'", "-Infinity"),
    ("f4", "real", "0.1", 0.1),
    ("f8", "double precision", "1.5e300", 1.5e300),
    ("f8_third", "double precision", "1.0/3", 1.0 / 3),
    ("f8_inf", "double precision", "'Infinity'", "Infinity"),
    ("f8_nan", "double precision", "'NaN'", "NaN"),
    ("b", "boolean", "true", True),
    ("c", "char(3)", "'ab'", "ab "),
    ("vc", "varchar(10)", "'héllo ✓'", "héllo ✓"),
    ("t", "text", "''", ""),
    ("by", "bytea", "'\\x0102ff'", "AQL/"),
    ("bt", "bit(4)", "B'0101'", "0101"),
    ("vb", "varbit", "B'1111111111'", "1111111111"),
    ("d", "date", "'2024-02-29'", "2024-02-29"),
    ("d_bc", "date", "'0044-03-15 BC'", "-0043-03-15"),
    ("d_inf", "date", "'infinity'", "infinity"),
    ("tm", "time", "'13:45:00.1'", "13:45:00.100000"),
    ("tm0", "time(0)", "'13:45:00'", "13:45:00"),
    ("ttz", "timetz", "'13:45:00.1+05:30'", "08:15:00.100000Z"),
    ("ts", "timestamp", "'2024-02-29 13:45:00.123456'", "2024-02-29T13:45:00.123456"),
    ("ts_bc", "timestamp", "'0044-03-15 13:45:00 BC'", "-0043-03-15T13:45:00"),
    ("ts_ninf", "timestamp", "'-infinity'", "-infinity"),
    ("tz", "timestamptz", "'2024-02-29 13:45:00.5+01'", "2024-02-29T12:45:00.500000Z"),
    ("tz3", "timestamptz(3)", "'2024-02-29 13:45:00.1239+00'", "2024-02-29T13:45:00.124000Z"),
    ("iv", "interval", "'1 year 2 mons 3 days 04:05:06.7'", "P1Y2M3DT4H5M6.7S"),
    ("iv_neg", "interval", "'-1 year -2 mons +3 days -04:05:06.7'", "P-1Y-2M3DT-4H-5M-6.7S"),
    ("iv0", "interval", "'0'", "PT0S"),
    ("j", "json", "'{\"a\": [1, 2]}'", '{"a": [1, 2]}'),
    ("jb", "jsonb", "'{\"b\": 1, \"a\": \"x\"}'", '{"a": "x", "b": 1}'),
    ("u", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("ia", "int[]", "'{1,NULL,3}'", [1, None, 3]),
    ("ia2", "int[][]", "'{{1,2},{3,4}}'", [[1, 2], [3, 4]]),
    ("ia_empty", "int[]", "'{}'", []),
    ("ia_lb", "int[]", "'[0:1]={7,8}'", [7, 8]),
    ("ta", "text[]", "ARRAY['a b', '\"q', NULL, 'NULL', '', 'back\\slash', '{}']",
     ["a b", '"q', None, "NULL", "", "back\\slash", "{}"]),
    ("ta2", "text[][]", "'{{\"a\",\"b\"},{NULL,\"c,d\"}}'", [["a", "b"], [None, "c,d"]]),
    ("na", "numeric[]", "'{1.50,NaN}'", ["1.50", "NaN"]),
    ("fa", "float8[]", "'{-Infinity,2.5}'", ["-Infinity", 2.5]),
    ("ba", "bytea[]", "ARRAY['\\x01'::bytea, NULL]", ["AQ==", None]),
    ("tza", "timestamptz[]", "ARRAY['2024-02-29 12:45:00+00'::timestamptz]", ["2024-02-29T12:45:00Z"]),
    ("da", "date[]", "ARRAY['2024-02-29'::date, 'infinity']", ["2024-02-29", "infinity"]),
    ("m", "mood", "'happy'", "happy"),
    ("ma", "mood[]", "'{sad,happy}'", ["sad", "happy"]),
    ("p", "posint", "5", 5),
]

# Types with no binary decoder: checked in text mode against PG's own text output.
TEXT_ONLY_COLUMNS = [
    ("pr", "pair", "'(1,\"x y\")'"),
    ("inet", "inet", "'10.0.0.1/8'"),
    ("cidr", "cidr", "'10.0.0.0/8'"),
    ("mac", "macaddr", "'08:00:2b:01:02:03'"),
    ("mo", "money", "12.34"),
    ("x", "xml", "'<a>1</a>'"),
    ("tv", "tsvector", "'a fat cat'"),
    ("r", "int4range", "'[1,5)'"),
    ("pt", "point", "'(1,2)'"),
    ("lsn", "pg_lsn", "'0/16B3748'"),
]
BOX_ARRAY = ("bx", "box[]", "ARRAY[box '(1,1),(0,0)', box '(2,2),(1,1)']", ["(1,1),(0,0)", "(2,2),(1,1)"])

STREAMED_ROWS = 3000


class Capture:
    """Frames peeked from one slot in three modes, and what the type OIDs of the test types are."""

    def __init__(self):
        self.frames: dict[str, list[tuple[int, bytes]]] = {}
        self.type_codecs: dict[int, str] = {}
        self.text_forms: dict[str, str] = {}
        self.server_version = 0

    def decode_all(self, impl, mode: str) -> list[tuple]:
        decoder = impl.PgoutputDecoder(binary=mode == "binary")
        out = []
        for lsn, data in self.frames[mode]:
            message = decoder.decode(data, lsn)
            if message[0] == "R":
                for _, _, type_oid, _ in message[1].columns:
                    if type_oid in self.type_codecs:
                        decoder.set_type_codec(type_oid, self.type_codecs[type_oid])
            out.append(message)
        return out


def _lsn(text_lsn: str) -> int:
    high, low = text_lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _database_url(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _text_only_columns(conn) -> list[tuple[str, str, str]]:
    """TEXT_ONLY_COLUMNS this server can hold (xml needs a server built with libxml)."""
    from tests.conftest import pg_has_xml

    return [column for column in TEXT_ONLY_COLUMNS if column[1] != "xml" or pg_has_xml(conn)]


def _run_workload(conn, origin: str) -> None:
    conn.execute("SET synchronous_commit = on")  # peeks read flushed WAL only; the sandbox runs with it off
    columns = REAL_COLUMNS + [(name, sql_type, literal, None) for name, sql_type, literal in _text_only_columns(conn)]
    columns.append(BOX_ARRAY)
    conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    conn.execute("CREATE DOMAIN posint AS integer CHECK (VALUE > 0)")
    conn.execute("CREATE TYPE pair AS (a integer, b text)")
    definition = ", ".join(f"{name} {sql_type}" for name, sql_type, _, _ in columns)
    binary_definition = ", ".join(f"{name} {sql_type}" for name, sql_type, _, _ in REAL_COLUMNS)
    conn.execute(f"CREATE TABLE all_types (id integer PRIMARY KEY, {definition})")
    conn.execute(f"CREATE TABLE bin_types (id integer PRIMARY KEY, {binary_definition})")
    conn.execute("CREATE TABLE ri_default (id integer PRIMARY KEY, name text, big text)")
    conn.execute("ALTER TABLE ri_default ALTER big SET STORAGE EXTERNAL")
    conn.execute("CREATE TABLE ri_full (id integer PRIMARY KEY, name text)")
    conn.execute("ALTER TABLE ri_full REPLICA IDENTITY FULL")
    conn.execute("CREATE TABLE ri_index (id integer, code text NOT NULL, name text)")
    conn.execute("CREATE UNIQUE INDEX ri_index_code ON ri_index (code)")
    conn.execute("ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code")
    conn.execute("CREATE TABLE trunc_a (id serial PRIMARY KEY)")
    conn.execute("CREATE TABLE trunc_b (id integer PRIMARY KEY REFERENCES trunc_a)")
    conn.execute("CREATE TABLE streamed (id integer PRIMARY KEY, pad text)")
    conn.execute("CREATE PUBLICATION pub_all FOR TABLE all_types, ri_default, ri_full, ri_index, trunc_a, trunc_b")
    conn.execute("CREATE PUBLICATION pub_bin FOR TABLE bin_types")
    conn.execute("CREATE PUBLICATION pub_stream FOR TABLE streamed")
    conn.execute("SELECT pg_create_logical_replication_slot('decode_test', 'pgoutput')")

    literals = ", ".join(literal for _, _, literal, _ in columns)
    conn.execute(f"INSERT INTO all_types VALUES (1, {literals})")
    conn.execute("INSERT INTO all_types (id) VALUES (2)")
    binary_literals = ", ".join(literal for _, _, literal, _ in REAL_COLUMNS)
    conn.execute(f"INSERT INTO bin_types VALUES (1, {binary_literals})")
    conn.execute("INSERT INTO bin_types (id) VALUES (2)")

    conn.execute("INSERT INTO ri_default SELECT 1, 'ann', string_agg(md5(g::text), '') FROM generate_series(1, 200) g")
    conn.execute("UPDATE ri_default SET name = 'bob' WHERE id = 1")
    conn.execute("UPDATE ri_default SET id = 2 WHERE id = 1")
    conn.execute("DELETE FROM ri_default WHERE id = 2")
    conn.execute("INSERT INTO ri_full VALUES (1, 'ann')")
    conn.execute("UPDATE ri_full SET name = 'bob' WHERE id = 1")
    conn.execute("DELETE FROM ri_full WHERE id = 1")
    conn.execute("INSERT INTO ri_index VALUES (1, 'c1', 'ann')")
    conn.execute("UPDATE ri_index SET name = 'bob' WHERE code = 'c1'")
    conn.execute("UPDATE ri_index SET code = 'c2' WHERE code = 'c1'")
    conn.execute("DELETE FROM ri_index WHERE code = 'c2'")
    conn.execute("INSERT INTO trunc_a VALUES (1)")
    conn.execute("TRUNCATE trunc_a, trunc_b RESTART IDENTITY CASCADE")
    conn.execute("SELECT pg_logical_emit_message(true, 'pfx', 'hello')")
    conn.execute("SELECT pg_logical_emit_message(false, 'pfx2', '\\x00ff'::bytea)")

    conn.execute("SELECT pg_replication_origin_create(%s)", (origin,))
    conn.execute("SELECT pg_replication_origin_session_setup(%s)", (origin,))
    with conn.transaction():
        conn.execute("SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())")
        conn.execute("INSERT INTO ri_full VALUES (10, 'from upstream')")
    conn.execute("SELECT pg_replication_origin_session_reset()")

    half = STREAMED_ROWS // 2
    with conn.transaction():
        conn.execute("INSERT INTO streamed SELECT g, repeat('x', 100) FROM generate_series(1, %s::int) g", (half,))
        conn.execute("SAVEPOINT sp")
        conn.execute("INSERT INTO streamed SELECT g, repeat('y', 100) FROM generate_series(100001, %s::int) g",
                     (100000 + half,))
        conn.execute("ROLLBACK TO SAVEPOINT sp")
        conn.execute("INSERT INTO streamed SELECT g, repeat('z', 100) FROM generate_series(%s::int, %s::int) g",
                     (half + 1, STREAMED_ROWS))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO streamed SELECT g, repeat('w', 100) FROM generate_series(200001, 203000) g")
    conn.execute("ROLLBACK")
    conn.execute("CREATE TABLE wal_flush_marker ()")  # a commit flushes the abort record for the peek to see


@pytest.fixture(scope="module")
def captured(pg_url):
    """One database with every test type and workload; its pgoutput frames in text, binary and streaming modes."""
    import uuid

    from connectors.postgres.dialect import connect, quote_ident

    name = f"t_pg_decode_{uuid.uuid4().hex[:12]}"
    origin = f"decode_test_{uuid.uuid4().hex[:8]}"
    with connect(pg_url) as admin:
        admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    capture = Capture()
    try:
        with connect(_database_url(pg_url, name)) as conn:
            _run_workload(conn, origin)
            for (oid, typname) in conn.execute(
                    "SELECT oid, typname FROM pg_type WHERE typname IN ('mood', '_mood', 'posint', 'pair')"):
                capture.type_codecs[oid] = {"mood": "text", "_mood": "array:text", "posint": "int"}.get(typname, "text")
            capture.server_version = conn.info.server_version
            text_only = _text_only_columns(conn)
            select = ", ".join(f"{column}::text" for column, _, _ in text_only)
            row = conn.execute(f"SELECT {select} FROM all_types WHERE id = 1").fetchone()
            capture.text_forms = dict(zip([column for column, _, _ in text_only], row))
            peek = "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes('decode_test', NULL, NULL, {})"
            modes = {
                "text": "'proto_version', '1', 'publication_names', 'pub_all', 'messages', 'true'",
                "binary": "'proto_version', '1', 'publication_names', 'pub_bin', 'binary', 'true'",
                "stream": "'proto_version', '2', 'publication_names', 'pub_stream', 'streaming', 'on'",
            }
            if conn.info.server_version >= 160000:  # protocol v4: in-progress transactions streamed in parallel
                modes["parallel"] = "'proto_version', '4', 'publication_names', 'pub_stream', 'streaming', 'parallel'"
            conn.execute("SET logical_decoding_work_mem = '64kB'")
            for mode, options in modes.items():
                rows = conn.execute(peek.format(options)).fetchall()
                capture.frames[mode] = [(_lsn(lsn), bytes(data)) for lsn, data in rows]
            conn.execute("SELECT pg_drop_replication_slot('decode_test')")
        yield capture
    finally:
        with connect(pg_url) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                          (name,))
            admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
            admin.execute("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = %s",
                          (origin,))


def _changes(messages, relation_name, tags="IUD"):
    names = {m[1].relid: m[1].name for m in messages if m[0] == "R"}
    return [m for m in messages if m[0] in tags and names.get(m[1]) == relation_name]


@pytest.mark.parametrize("mode", ["text", "binary"])
def test_real_values_of_every_type(captured, impl, mode):
    messages = captured.decode_all(impl, mode)
    inserts = _changes(messages, "all_types" if mode == "text" else "bin_types", "I")
    assert [m[3]["id"] for m in inserts] == [1, 2]
    row, nulls = inserts[0][3], inserts[1][3]
    for column, sql_type, _, expected in REAL_COLUMNS:
        assert row[column] == expected and type(row[column]) is type(expected), (column, sql_type, row[column])
    if mode == "text":
        for column, text_form in captured.text_forms.items():
            assert row[column] == text_form, column
        assert row[BOX_ARRAY[0]] == BOX_ARRAY[3]
    assert set(nulls.values()) == {2, None}


def test_real_frames_decode_identically_in_both_implementations(captured):
    twin = importlib.import_module(IMPLEMENTATIONS[0])
    cython = load_implementation(IMPLEMENTATIONS[1])
    for mode in captured.frames:
        assert captured.decode_all(twin, mode) == captured.decode_all(cython, mode), mode


def test_real_replica_identity_default(captured, impl):
    messages = captured.decode_all(impl, "text")
    insert, update, key_change, delete = _changes(messages, "ri_default")
    assert len(insert[3]["big"]) == 6400
    assert update[3:6] == (None, None, {"id": 1, "name": "bob", "big": UNAVAILABLE_VALUE})
    assert key_change[3:5] == ({"id": 1, "name": None, "big": None}, "K")
    assert key_change[5]["id"] == 2 and key_change[5]["big"] == UNAVAILABLE_VALUE
    assert delete[3:] == ({"id": 2, "name": None, "big": None}, "K")
    assert impl.PgoutputDecoder is not None and messages[0][0] == "B"


def test_real_replica_identity_full_and_index(captured, impl):
    messages = captured.decode_all(impl, "text")
    insert, update, delete = _changes(messages, "ri_full")[:3]
    assert update[3:6] == ({"id": 1, "name": "ann"}, "O", {"id": 1, "name": "bob"})
    assert delete[3:] == ({"id": 1, "name": "bob"}, "O")
    relation = next(m[1] for m in messages if m[0] == "R" and m[1].name == "ri_index")
    assert relation.replica_identity == "i" and relation.key_columns == ("code",)
    insert, update, code_change, delete = _changes(messages, "ri_index")
    assert update[3:5] == (None, None)
    assert code_change[3:5] == ({"id": None, "code": "c1", "name": None}, "K")
    assert delete[3:] == ({"id": None, "code": "c2", "name": None}, "K")


def test_real_truncate_messages_and_origin(captured, impl):
    messages = captured.decode_all(impl, "text")
    relids = {m[1].name: m[1].relid for m in messages if m[0] == "R"}
    truncate = next(m for m in messages if m[0] == "T")
    assert truncate[1] is None and truncate[2] == 3 and set(truncate[3]) == {relids["trunc_a"], relids["trunc_b"]}
    logical = [m for m in messages if m[0] == "M"]
    assert [(m[2], m[4], m[5]) for m in logical] == [(True, "pfx", b"hello"), (False, "pfx2", b"\x00\xff")]
    origin = next(m for m in messages if m[0] == "O")
    assert origin[1] == 0xABCDEF and origin[2].startswith("decode_test_")
    begins = [m for m in messages if m[0] == "B"]
    commits = [m for m in messages if m[0] == "C"]
    assert len(begins) == len(commits) and all(1_600_000_000_000_000 < m[2] < 4_000_000_000_000_000 for m in begins)


@pytest.mark.parametrize("mode", ["stream", "parallel"])
def test_real_streamed_transactions(captured, impl, mode):
    """Inside a streamed block the I/U/D xid is the (sub)transaction's own; Stream Start names the top one.

    `parallel` is protocol v4 (PostgreSQL 16+): the same stream, and Stream Abort carries its LSN and time.
    """
    if mode not in captured.frames:
        pytest.skip("protocol v4 (streaming 'parallel') needs PostgreSQL 16+: run with CDC_PG_VERSION=18")
    messages = captured.decode_all(impl, mode)
    abort_details = [m[3:] for m in messages if m[0] == "A"]
    if mode == "parallel":
        assert abort_details and all(lsn > 0 and 1_600_000_000_000_000 < ts < 4_000_000_000_000_000
                                     for lsn, ts in abort_details)
    else:
        assert abort_details and all(detail == (None, None) for detail in abort_details)
    starts = [m for m in messages if m[0] == "S"]
    assert len(starts) > 2 and starts[0][2] is True
    assert len(starts) == len([m for m in messages if m[0] == "E"])
    committed_xid = next(m for m in messages if m[0] == "c")[1]
    aborts = [m[1:3] for m in messages if m[0] == "A"]
    aborted_subxids = {subxid for xid, subxid in aborts if xid == committed_xid and subxid != xid}
    assert len(aborted_subxids) == 1
    if captured.server_version < 160000:
        # PostgreSQL 16+ checks the clog before streaming and drops a transaction it knows aborted: the
        # rolled-back one is then never streamed (our peek runs after its ROLLBACK)
        assert any(xid == subxid != committed_xid for xid, subxid in aborts), (aborts, [m for m in messages if m[0] in "SEcBC"][-8:])
    top_xid, kept, discarded = None, [], []
    for message in messages:
        if message[0] == "S":
            top_xid = message[1]
        elif message[0] == "I":
            assert message[2] is not None
            if top_xid == committed_xid:
                (discarded if message[2] in aborted_subxids else kept).append(message[3])
    assert sorted(row["id"] for row in kept) == list(range(1, STREAMED_ROWS + 1))
    assert {row["pad"][0] for row in discarded} == {"y"}
