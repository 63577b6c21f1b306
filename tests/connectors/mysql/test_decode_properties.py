"""Property tests: random and mutated ROWS bodies never crash either decoder, and both agree.

For any body, the Cython decoder and the twin give the same rows or raise the same DecodeError (same
message, naming position and byte offset); nothing else may escape, and nothing reads past the body.
"""

from __future__ import annotations

import struct

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.codecs import encode_float4
from cdc.envelope import _key_heads
from cdc.errors import DecodeError
from connectors.mysql import decode as twin
from connectors.mysql.binlog import ROWS_EVENTS, TABLE_MAP_EVENT
from connectors.mysql.decoder import RowDecoder
from tests.connectors.mysql.mysql_binlog_capture import record_events

compiled = pytest.importorskip("cdc._ext.binlog_rows", reason="cdc._ext.binlog_rows is not built")

ROWS_TYPES = [23, 24, 25, 30, 31, 32]


def outcome(implementation, columns, body: bytes, event_type: int, position="mysql-bin.000001:4"):
    """('rows', rows) or ('error', message) — any other exception fails the test."""
    plan = implementation.compile_plan(columns)
    try:
        return "rows", implementation.decode_rows(plan, body, event_type, position)
    except DecodeError as exc:
        return "error", str(exc)


def json_outcome(implementation, columns, body: bytes, event_type: int, key_names: tuple,
                 position="mysql-bin.000001:4"):
    """('rows', rows_json(...)) or ('error', message), as `outcome`."""
    plan = implementation.compile_plan(columns)
    try:
        return "rows", implementation.rows_json(plan, body, event_type, key_names, _key_heads(key_names), position)
    except DecodeError as exc:
        return "error", str(exc)


def as_json(result: tuple, key_names: tuple) -> tuple:
    """What rows_json should give, from decode_rows' outcome: images and keys through orjson."""
    kind, rows = result
    if kind == "error":
        return result

    def key(row):
        return None if row is None or not key_names else orjson.dumps({name: row.get(name) for name in key_names})

    return "rows", [(None if before is None else orjson.dumps(before), None if after is None else orjson.dumps(after),
                     key(before), key(after)) for before, after in rows]


def assert_same_outcome(columns, body: bytes, event_type: int) -> tuple:
    """Both decoders agree, on dicts and on JSON (`rows_json`, which must be `decode_rows` through orjson,
    keys included: the first column, a missing one, or none)."""
    expected = outcome(twin, columns, body, event_type)
    assert outcome(compiled, columns, body, event_type) == expected
    for key_names in ((columns[0][0], "absent"), ()):
        want = as_json(expected, key_names)
        assert json_outcome(twin, columns, body, event_type, key_names) == want
        assert json_outcome(compiled, columns, body, event_type, key_names) == want
    return expected


@st.composite
def column_plans(draw) -> tuple:
    """A valid `(name, codec, a, b, extra)` plan for a few columns of random types."""
    count = draw(st.integers(1, 8))
    columns = []
    for index in range(count):
        codec = draw(st.integers(1, 29))
        a = b = 0
        extra = None
        if codec == twin.C_DECIMAL:
            a = draw(st.integers(1, 65))
            b = draw(st.integers(0, min(30, a)))
        elif codec in (twin.C_DATETIME2, twin.C_TIMESTAMP2, twin.C_TIME2):
            a = draw(st.integers(0, 6))
        elif codec == twin.C_BIT:
            a = draw(st.integers(1, 64))
        elif codec == twin.C_TEXT:
            a = draw(st.integers(1, 4))
            b = draw(st.sampled_from([1, 2]))
            extra = None if b == 1 else draw(st.sampled_from(["mysql_latin1", "utf-16-be", "ascii", "shift_jis"]))
        elif codec == twin.C_BYTES:
            a = draw(st.integers(1, 4))
            b = draw(st.integers(0, 20))
        elif codec in (twin.C_GEOMETRY, twin.C_JSON):
            a = draw(st.integers(1, 4))
            extra = twin.json_text if codec == twin.C_JSON else None
        elif codec == twin.C_ENUM:
            a = draw(st.integers(1, 2))
            extra = tuple(draw(st.lists(st.text(max_size=3), max_size=5)))
        elif codec == twin.C_SET:
            a = draw(st.integers(1, 8))
            extra = tuple(draw(st.lists(st.text(max_size=3), max_size=10)))
        columns.append((f"c{index}", codec, a, b, extra))
    return tuple(columns)


def rows_header(event_type: int, count: int) -> bytes:
    """A well-formed ROWS header with every column present, so random bytes reach the value codecs."""
    header = bytes(6) + b"\x01\x00" + (b"\x02\x00" if event_type >= 30 else b"")
    bitmap = b"\xff" * ((count + 7) // 8)
    return header + bytes([count]) + bitmap + (bitmap if event_type in (24, 31) else b"")


# import connectors.mysql.charsets registers the mysql_latin1 codec the plans name
import connectors.mysql.charsets  # noqa: E402,F401


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(columns=column_plans(), event_type=st.sampled_from(ROWS_TYPES), tail=st.binary(max_size=200))
def test_random_values_after_a_valid_header_agree(columns, event_type, tail) -> None:
    assert_same_outcome(columns, rows_header(event_type, len(columns)) + tail, event_type)


@settings(max_examples=200)
@given(columns=column_plans(), event_type=st.sampled_from(ROWS_TYPES), body=st.binary(max_size=64))
def test_random_bodies_agree(columns, event_type, body) -> None:
    assert_same_outcome(columns, body, event_type)


@settings(max_examples=300)
@given(st.one_of(st.floats(width=32, allow_nan=False), st.integers(1 << 24, 1 << 31).map(float)))
def test_float4_values_agree_and_match_postgres_output_rules(number) -> None:
    """FLOAT is the shortest number that reads back, a halfway candidate refused (53975712, not 53975710)."""
    body = rows_header(30, 1) + b"\x00" + struct.pack("<f", number)
    kind, rows = assert_same_outcome((("f", twin.C_FLOAT, 4, 0, None),), body, 30)
    assert kind == "rows"
    assert rows[0][1]["f"] == encode_float4(struct.unpack("<f", struct.pack("<f", number))[0])


def test_truncated_header_names_position_and_offset() -> None:
    columns = (("id", twin.C_INT32, 0, 0, None),)
    for implementation in (twin, compiled):
        with pytest.raises(DecodeError) as caught:
            implementation.decode_rows(implementation.compile_plan(columns), b"\x01\x02", 23, "mysql-bin.000007:1234")
        assert "mysql-bin.000007:1234 byte 0" in str(caught.value)
        assert "header needs 8 bytes, 2 left" in str(caught.value)


def test_value_running_past_the_body_is_an_error_not_a_read() -> None:
    columns = (("name", twin.C_TEXT, 4, 1, None),)
    body = rows_header(23, 1) + b"\x00" + (2**31).to_bytes(4, "little") + b"abc"
    kind, message = assert_same_outcome(columns, body, 23)
    assert kind == "error"
    assert "column 'name' needs 2147483648 bytes, 3 left" in message


def test_column_count_differing_from_the_table_map_is_an_error() -> None:
    columns = (("id", twin.C_INT32, 0, 0, None),)
    kind, message = assert_same_outcome(columns, rows_header(23, 2) + b"\x00" + bytes(8), 23)
    assert kind == "error" and "column count 2 differs from its TABLE_MAP's 1" in message


def test_invalid_enum_index_and_decimal_digits_are_errors() -> None:
    enum = (("e", twin.C_ENUM, 1, 0, ("a", "b")),)
    assert assert_same_outcome(enum, rows_header(23, 1) + b"\x00\x03", 23)[0] == "error"
    decimal = (("d", twin.C_DECIMAL, 9, 0, None),)
    assert assert_same_outcome(decimal, rows_header(23, 1) + b"\x00\xff\xff\xff\xff", 23)[0] == "error"


def test_bad_plans_are_refused_by_both() -> None:
    for columns in ((("d", twin.C_DECIMAL, 66, 0, None),), (("t", twin.C_TEXT, 5, 1, None),),
                    (("x", 99, 0, 0, None),), (("s", twin.C_SET, 9, 0, ()),)):
        for implementation in (twin, compiled):
            with pytest.raises(ValueError):
                implementation.compile_plan(columns)


@pytest.fixture(scope="module")
def real_rows(mysql_url: str):
    """(column plan, body, event type) of real ROWS events over a table of mixed column types."""
    from connectors.mysql.dialect import connect

    database = "t_binlog_rows_mutations"
    admin = connect(mysql_url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    admin.close()
    url = mysql_url.rsplit("/", 1)[0] + "/" + database

    def work(cursor):
        cursor.execute(
            "CREATE TABLE m (id INT PRIMARY KEY, u BIGINT UNSIGNED, d DECIMAL(30,7), f FLOAT, dt DATETIME(4),"
            " ts TIMESTAMP(6) NULL, tm TIME(3), y YEAR, b BIT(12), c VARCHAR(40), l TEXT CHARACTER SET latin1,"
            " bn VARBINARY(20), e ENUM('x','y'), s SET('p','q','r'), j JSON, g POINT)"
        )
        for n in range(1, 6):
            cursor.execute(
                "INSERT INTO m VALUES (%s, %s, %s, %s, '2024-02-29 13:45:00.1234', '2001-01-01 00:00:00.5',"
                " '-12:00:00.5', 2020, b'101', %s, 'caf\u00e9', x'00ff10', 'y', 'p,r', '[1, {\"a\": null}]',"
                " POINT(1, 2))",
                (n, 2**64 - n, f"-{n}.1234567", n / 3, "x" * n),
            )
        # text the JSON writer must escape, or hand to the str path: quotes, backslash, control, non-ASCII
        cursor.execute("INSERT INTO m (id, c, dt) VALUES (9, %s, '0000-00-00 00:00:00')", ('a"b\\c\x01 caf\u00e9 \U0001d11e',))
        cursor.execute("INSERT INTO m (id, u, c) VALUES (-2147483648, 0, '')")
        cursor.execute("UPDATE m SET c = 'changed', d = d * 2")
        cursor.execute("DELETE FROM m WHERE id > 3")

    events = record_events(url, work)
    decoder = RowDecoder(implementation=twin)
    cases = []
    for event in events:
        if event.type == TABLE_MAP_EVENT:
            table = decoder.table_map(event.body)
        elif event.type in ROWS_EVENTS:
            cases.append((table.plan, event.body, event.type))
    admin = connect(mysql_url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
    admin.close()
    assert len(cases) >= 3
    return cases


def test_real_bodies_decode_identically(real_rows) -> None:
    for columns, body, event_type in real_rows:
        assert assert_same_outcome(columns, body, event_type)[0] == "rows"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_bodies_agree(real_rows, data) -> None:
    columns, body, event_type = data.draw(st.sampled_from(real_rows))
    mutated = bytearray(body)
    mutation = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    at = data.draw(st.integers(0, len(body) - 1))
    if mutation == "truncate":
        mutated = mutated[:at]
    elif mutation == "flip":
        mutated[at] ^= data.draw(st.integers(1, 255))
    elif mutation == "insert":
        mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        del mutated[at:at + data.draw(st.integers(1, 8))]
    assert_same_outcome(columns, bytes(mutated), event_type)


def test_every_truncation_of_a_real_body_is_caught(real_rows) -> None:
    for columns, body, event_type in real_rows:
        _, full = assert_same_outcome(columns, body, event_type)
        for end in range(len(body)):
            kind, rows = assert_same_outcome(columns, body[:end], event_type)
            # a cut exactly at a row boundary is a shorter valid event: its rows are a prefix
            assert kind == "error" or (rows == full[:len(rows)] and len(rows) < len(full))


@pytest.mark.parametrize("document, text", [
    (b"\x04\x01", "true"),
    (b"\x04\x00", "null"),
    (b"\x05\x2a\x00", "42"),
    (b"\x0b" + struct.pack("<d", 2.5), "2.5"),
    (b"\x0c\x03abc", '"abc"'),
    (b"\x0c\x02\xc3\xa9", '"\u00e9"'),
    (b"\x02\x02\x00\x0c\x00\x05\x01\x00\x0c\x0a\x00\x01x", '[1,"x"]'),
    (b"\x00\x01\x00\x0c\x00\x0b\x00\x01\x00\x05\x07\x00k", '{"k":7}'),
])
def test_mysql_binary_json_becomes_json_text(document: bytes, text: str) -> None:
    assert twin.json_text(document) == text


@pytest.mark.parametrize("document", [b"", b"\x02\x05\x00", b"\x0c\x09ab", b"\x04\x07", b"\x0e\x00"])
def test_malformed_binary_json_is_a_decode_error(document: bytes) -> None:
    with pytest.raises(DecodeError, match="invalid binary JSON"):
        twin.json_text(document)


def test_binary_json_column_errors_name_the_column() -> None:
    columns = (("doc", twin.C_JSON, 4, 0, twin.json_text),)
    body = rows_header(30, 1) + b"\x00" + (2).to_bytes(4, "little") + b"\x04\x07"
    kind, message = assert_same_outcome(columns, body, 30)
    assert kind == "error" and "column 'doc' holds invalid binary JSON" in message
