"""Value codecs (cdc.codecs): the readable forms of docs/event-format.md.

Examples pin the contract's table; property tests check that values round-trip through Python's
datetime/decimal and that malformed text of any length is a ValueError, also through the compiled PG
decoder; the PostgreSQL tests check the PG-text conversions and `encode_interval` against what a real
server prints (they fail, not skip, when the server cannot be reached).
"""

from __future__ import annotations

import base64
import os
import random
import struct
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cdc.codecs as python_codecs
from cdc.errors import DecodeError
from cdc.impl import IMPL, implementations
from cdc.compat import date_to_days, time_to_micros, timestamp_to_epoch_micros


# cdc.codecs has no compiled twin (cdc.impl.TWINS); the list keeps the tests ready for one.
IMPLEMENTATIONS = [
    pytest.param(module, id=name) for name, module in implementations("cdc.codecs").items() if module is not None
]

PUBLIC = [name for name in python_codecs.__all__ if name not in ("days_from_civil", "civil_from_days")]


@pytest.fixture(params=IMPLEMENTATIONS)
def codecs(request):
    return request.param


# --- examples: the contract's table, both implementations ---


@pytest.mark.parametrize(
    ("data", "expected"), [(b"", ""), (b"\x01\x02", "AQI="), (b"abc", "YWJj"), (b"\xff" * 4, "/////w==")]
)
def test_bytes_are_base64(codecs, data, expected):
    assert codecs.encode_bytes(data) == expected
    assert codecs.encode_bytes(bytearray(data)) == expected
    assert codecs.encode_bytes(memoryview(data)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (-0.25, -0.25), (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")],
)
def test_float_special_values_are_strings(codecs, value, expected):
    assert codecs.encode_float(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(0.1, 0.1), (3.4028234663852886e38, 3.4028235e38), (1 / 3, 0.33333334),
                                               (53975712.0, 53975712.0)])  # 5.397571e7 lies halfway: refused, as PostgreSQL does
def test_float4_is_the_shortest_text_that_reads_back(codecs, value, expected):
    assert codecs.encode_float4(struct.unpack("<f", struct.pack("<f", value))[0]) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("10.50"), "10.50"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.0000001"), "0.0000001"),
        (Decimal("-12.000"), "-12.000"),
        (Decimal("NaN"), "NaN"),
        (Decimal("Infinity"), "Infinity"),
        (Decimal("-Infinity"), "-Infinity"),
        ("10.50", "10.50"),
        ("NaN", "NaN"),
        (42, "42"),
    ],
)
def test_decimal_is_exact_with_its_scale(codecs, value, expected):
    assert codecs.encode_decimal(value) == expected


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "1970-01-01"),
        (19782, "2024-02-29"),
        (-719162, "0001-01-01"),
        (-719163, "0000-12-31"),  # 1 BC
        (-735160, "-0043-03-15"),  # 44 BC
        (2932896, "9999-12-31"),
        (2932897, "+10000-01-01"),
        (2**31 - 1, "infinity"),
        (-(2**31), "-infinity"),
    ],
)
def test_date_from_days(codecs, days, expected):
    assert codecs.encode_date(days) == expected


def test_date_from_fields_keeps_mysql_zero_date_as_null(codecs):
    assert codecs.encode_date_ymd(2024, 2, 29) == "2024-02-29"
    assert codecs.encode_date_ymd(0, 0, 0) is None
    assert codecs.encode_date_ymd(2024, 0, 0) == "2024-00-00"


@pytest.mark.parametrize(
    ("micros", "expected"),
    [
        (0, "00:00:00"),
        (49_500_123_456, "13:45:00.123456"),
        (49_500_000_000, "13:45:00"),
        (49_500_100_000, "13:45:00.100000"),
        (86_400_000_000, "24:00:00"),
        (-3_020_399_000_000, "-838:59:59"),
        (3_020_399_000_000, "838:59:59"),
        (-1, "-00:00:00.000001"),
    ],
)
def test_time_keeps_mysql_negative_and_long_durations(codecs, micros, expected):
    assert codecs.encode_time(micros) == expected


@pytest.mark.parametrize(
    ("micros", "expected"),
    [
        (0, "1970-01-01T00:00:00"),
        (1_709_214_300_123_456, "2024-02-29T13:45:00.123456"),
        (-1, "1969-12-31T23:59:59.999999"),
        (-62_135_596_800_000_000, "0001-01-01T00:00:00"),
        (-62_135_596_800_000_001, "0000-12-31T23:59:59.999999"),
        (253_402_300_800_000_000, "+10000-01-01T00:00:00"),
        (2**63 - 1, "infinity"),
        (-(2**63), "-infinity"),
    ],
)
def test_timestamp_from_epoch_micros(codecs, micros, expected):
    assert codecs.encode_timestamp(micros) == expected
    zoned = codecs.encode_timestamptz(micros)
    assert zoned == (expected if "infinity" in expected else expected + "Z")


def test_timestamp_from_fields(codecs):
    assert codecs.encode_timestamp_parts(2024, 2, 29, 13, 45, 0, 120000) == "2024-02-29T13:45:00.120000"
    assert codecs.encode_timestamp_parts(2024, 2, 29, 13, 45, 0) == "2024-02-29T13:45:00"
    assert codecs.encode_timestamp_parts(0, 0, 0, 0, 0, 0, 0) is None


@pytest.mark.parametrize(
    ("months", "days", "micros", "expected"),
    [
        (0, 0, 0, "PT0S"),
        (14, 3, 14_706_700_000, "P1Y2M3DT4H5M6.7S"),
        (12, 0, 0, "P1Y"),
        (0, 1, 0, "P1D"),
        (0, 0, 1, "PT0.000001S"),
        (0, 0, -1_500_000, "PT-1.5S"),
        (0, 0, -500_000, "PT-0.5S"),
        (-14, 3, -14_706_700_000, "P-1Y-2M3DT-4H-5M-6.7S"),
        (0, -1, 7_200_000_000, "P-1DT2H"),
        (0, 0, 3_600_000_000 * 1000, "PT1000H"),
        (0, 0, 60_000_000, "PT1M"),
        (2**31 - 1, 2**31 - 1, 2**63 - 1, "infinity"),
        (-(2**31), -(2**31), -(2**63), "-infinity"),
    ],
)
def test_interval_as_postgres_prints_iso_8601(codecs, months, days, micros, expected):
    assert codecs.encode_interval(months, days, micros) == expected


def test_bits(codecs):
    assert codecs.encode_bits("0101") == "0101"
    assert codecs.encode_bits_bytes(b"\x05", 4) == "0101"
    assert codecs.encode_bits_bytes(b"\x01\x02", 16) == "0000000100000010"
    assert codecs.encode_bits_bytes(b"\x00" * 9, 70) == "0" * 70
    assert codecs.encode_bits_int(5, 4) == "0101"
    assert codecs.encode_bits_int(0, 1) == "0"
    assert codecs.encode_bits_int(2**64 - 1, 64) == "1" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", "2024-02-29"),
        ("0044-03-15 BC", "-0043-03-15"),
        ("0001-01-01 BC", "0000-01-01"),
        ("10000-01-01", "+10000-01-01"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
    ],
)
def test_pg_date_text(codecs, text, expected):
    assert codecs.pg_date_text_to_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("13:45:00", "13:45:00"), ("13:45:00.12", "13:45:00.120000"), ("24:00:00", "24:00:00")],
)
def test_pg_time_text(codecs, text, expected):
    assert codecs.pg_time_text_to_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13:45:00.12+02", "11:45:00.120000Z"),
        ("13:45:00+00", "13:45:00Z"),
        ("01:00:00-03:30", "04:30:00Z"),
        ("01:00:00+02", "23:00:00Z"),
    ],
)
def test_pg_timetz_text_is_utc(codecs, text, expected):
    assert codecs.pg_timetz_text_to_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29 13:45:00", "2024-02-29T13:45:00"),
        ("2024-02-29 13:45:00.123456", "2024-02-29T13:45:00.123456"),
        ("2024-02-29 13:45:00.12", "2024-02-29T13:45:00.120000"),
        ("0044-03-15 13:45:00 BC", "-0043-03-15T13:45:00"),
        ("0044-03-15 13:45:00.123 BC", "-0043-03-15T13:45:00.123000"),
        ("10000-01-01 00:00:00", "+10000-01-01T00:00:00"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
    ],
)
def test_pg_timestamp_text(codecs, text, expected):
    assert codecs.pg_timestamp_text_to_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29 12:45:00+00", "2024-02-29T12:45:00Z"),
        ("2024-02-29 12:45:00.123456+00", "2024-02-29T12:45:00.123456Z"),
        ("2024-02-29 12:45:00.5+00", "2024-02-29T12:45:00.500000Z"),
        ("2024-02-29 14:45:00.5+02", "2024-02-29T12:45:00.500000Z"),
        ("2024-03-01 05:15:00+05:30", "2024-02-29T23:45:00Z"),
        ("1900-01-01 00:53:28+00:53:28", "1900-01-01T00:00:00Z"),
        ("0044-03-15 12:00:00+00 BC", "-0043-03-15T12:00:00Z"),
        ("0001-01-01 00:30:00+01 BC", "-0001-12-31T23:30:00Z"),
        ("294247-02-01 00:00:00+01", "+294247-01-31T23:00:00Z"),  # past int64 microseconds since 1970
        ("294276-12-31 23:59:59.999999-15:59:59", "+294277-01-01T15:59:58.999999Z"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
    ],
)
def test_pg_timestamptz_text_is_utc(codecs, text, expected):
    assert codecs.pg_timestamptz_text_to_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("\\x", ""), ("\\x0102", "AQI="), ("\\xDEADbeef", "3q2+7w=="), ("ab\\\\c\\001", "YWJcYwE=")],
)
def test_pg_bytea_text_to_base64(codecs, text, expected):
    assert codecs.pg_bytea_hex_to_base64(text) == expected


DAYS = st.integers(min_value=-2_500_000, max_value=2**31 - 1) | st.integers(-800_000, 3_000_000)


# --- round trips through Python's types and the compat parsers ---


@given(DAYS)
def test_date_round_trips(days):
    for codecs in (python_codecs,):
        text = codecs.encode_date(days)
        if "infinity" in text:
            continue
        assert date_to_days(text) == days
        if 1 <= python_codecs.civil_from_days(days)[0] <= 9999:
            assert date.fromisoformat(text) == date(1970, 1, 1) + timedelta(days=days)


@given(st.integers(-(2**62), 2**62))
def test_timestamp_round_trips(micros):
    for codecs in (python_codecs,):
        text = codecs.encode_timestamp(micros)
        assert timestamp_to_epoch_micros(text) == micros
        assert timestamp_to_epoch_micros(codecs.encode_timestamptz(micros)) == micros
        if -62_135_596_800_000_000 <= micros < 253_402_300_800_000_000:
            assert datetime.fromisoformat(text) == datetime(1970, 1, 1) + timedelta(microseconds=micros)


@given(st.integers(-(2**62), 2**62))
def test_time_round_trips(micros):
    for codecs in (python_codecs,):
        assert time_to_micros(codecs.encode_time(micros)) == micros


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_round_trips_with_scale(value):
    for codecs in (python_codecs,):
        text = codecs.encode_decimal(value)
        assert "E" not in text and "e" not in text
        assert Decimal(text) == value
        if value.as_tuple().exponent <= 0:
            assert -Decimal(text).as_tuple().exponent == -value.as_tuple().exponent


@given(st.binary(max_size=64))
def test_bytes_round_trip(data):
    for codecs in (python_codecs,):
        assert base64.b64decode(codecs.encode_bytes(data)) == data


# --- against a real PostgreSQL ---


@pytest.fixture(scope="module")
def pg_session(request):
    """A PG session with the replication session's settings; skipped without a server."""
    psycopg = pytest.importorskip("psycopg")
    url = os.environ.get("CDC_PG_URL")
    if not url:
        try:
            url = request.getfixturevalue("pg_url")
        except pytest.FixtureLookupError:
            pytest.skip("no pg_url fixture and no CDC_PG_URL")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET DateStyle = 'ISO'; SET IntervalStyle = 'iso_8601'; SET TimeZone = 'UTC'")
        yield conn


def _rows(session, sql, values):
    return session.execute(sql, (values,)).fetchall()


def _random_values(low, high, count=300, seed=20240229):
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(count)]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_interval_matches_postgres(pg_session, impl):
    rng = random.Random(7)
    fields = [(0, 0, 0), (14, 3, 14_706_700_000), (0, 0, -1_500_000), (-14, 3, -14_706_700_000)]
    for _ in range(300):
        fields.append((rng.randint(-5000, 5000), rng.randint(-5000, 5000), rng.randint(-(10**13), 10**13)))
    months, days, micros = (list(column) for column in zip(*fields))
    rows = pg_session.execute(
        "SELECT m, d, u, (make_interval(months => m, days => d) + u * interval '1 microsecond')::text"
        " FROM unnest(%s::int[], %s::int[], %s::bigint[]) AS t(m, d, u)",
        (months, days, micros),
    ).fetchall()
    for m, d, u, text in rows:
        assert impl.encode_interval(m, d, u) == text, (m, d, u)


DAY_US = 86_400_000_000
PG_MIN_US = -210_866_803_200_000_000  # 4714-11-24 BC
PG_MAX_US = 9_224_318_015_999_999_999 // 1000 * 1000 - 1  # below 294277-01-01


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_timestamps_match_postgres(pg_session, impl):
    values = _random_values(PG_MIN_US, 9_200_000_000_000_000_000) + [0, -1, 1_709_214_300_123_456, PG_MIN_US]
    split = [(v // DAY_US, v % DAY_US) for v in values]
    rows = pg_session.execute(
        "SELECT ('epoch'::timestamp + d * interval '1 day' + u * interval '1 microsecond')::text,"
        "       ('epoch'::timestamptz + d * interval '1 day' + u * interval '1 microsecond')::text"
        " FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS t(d, u, n) ORDER BY n",
        ([d for d, _ in split], [u for _, u in split]),
    ).fetchall()
    for value, (plain, zoned) in zip(values, rows):
        assert impl.pg_timestamp_text_to_iso(plain) == impl.encode_timestamp(value), plain
        assert impl.pg_timestamptz_text_to_iso(zoned) == impl.encode_timestamptz(value), zoned


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_timestamptz_in_other_zones_is_converted_to_utc(pg_session, impl):
    values = _random_values(-5_000_000_000_000_000, 5_000_000_000_000_000, 100)
    for zone in ("Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"):
        pg_session.execute(f"SET TimeZone = '{zone}'")
        try:
            rows = pg_session.execute(
                "SELECT ('epoch'::timestamptz + u * interval '1 microsecond')::text"
                " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(u, n) ORDER BY n",
                (values,),
            ).fetchall()
        finally:
            pg_session.execute("SET TimeZone = 'UTC'")
        for value, (text,) in zip(values, rows):
            assert impl.pg_timestamptz_text_to_iso(text) == impl.encode_timestamptz(value), (zone, text)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_dates_and_times_match_postgres(pg_session, impl):
    days = _random_values(-2_440_000, 2_000_000_000) + [0, -719_163, -735_160, 2_932_897]
    rows = pg_session.execute(
        "SELECT ('epoch'::date + d)::text FROM unnest(%s::int[]) WITH ORDINALITY AS t(d, n) ORDER BY n", (days,)
    ).fetchall()
    for value, (text,) in zip(days, rows):
        assert impl.pg_date_text_to_iso(text) == impl.encode_date(value), text
    micros = _random_values(0, DAY_US) + [0, DAY_US, 1, 49_500_120_000]
    rows = pg_session.execute(
        "SELECT CASE WHEN u = %s THEN '24:00:00'::time ELSE 'allballs'::time + u * interval '1 microsecond' END::text"
        " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(u, n) ORDER BY n",
        (DAY_US, micros),
    ).fetchall()
    for value, (text,) in zip(micros, rows):
        assert impl.pg_time_text_to_iso(text) == impl.encode_time(value), text


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_special_values_and_bytea_match_postgres(pg_session, impl):
    row = pg_session.execute(
        "SELECT 'infinity'::date::text, '-infinity'::timestamp::text, 'infinity'::timestamptz::text,"
        " '0044-03-15 BC'::date::text, '13:45:00.12+05:30'::timetz::text, '\\x00ff10'::bytea::text"
    ).fetchone()
    assert impl.pg_date_text_to_iso(row[0]) == "infinity"
    assert impl.pg_timestamp_text_to_iso(row[1]) == "-infinity"
    assert impl.pg_timestamptz_text_to_iso(row[2]) == "infinity"
    assert impl.pg_date_text_to_iso(row[3]) == "-0043-03-15"
    assert impl.pg_timetz_text_to_iso(row[4]) == "08:15:00.120000Z"
    assert impl.pg_bytea_hex_to_base64(row[5]) == base64.b64encode(b"\x00\xff\x10").decode()


# --- malformed text of any length: an error, never a crash (issue 13: a compiled parser once wrote
# past its buffer on "1-" + "0" * 400) ---

PG_TEXT_FUNCTIONS = ("pg_date_text_to_iso", "pg_time_text_to_iso", "pg_timetz_text_to_iso",
                     "pg_timestamp_text_to_iso", "pg_timestamptz_text_to_iso", "pg_bytea_hex_to_base64")
LONG_TEXTS = (
    st.builds(lambda digits, tail: "1-" + "0" * digits + tail, st.integers(40, 5000),
              st.sampled_from(["", " BC", "-01", "-01-01", ":00", "-01-01 00:00:00+00"]))
    | st.builds(lambda part, count: part * count, st.sampled_from(["1:", "0.", "12", "+1", "-", ":", "\\x0"]),
                st.integers(40, 3000))
    | st.text(alphabet="0123456789-:.+ BCADinfty", min_size=40, max_size=3000)
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(PG_TEXT_FUNCTIONS), text=LONG_TEXTS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_long_malformed_pg_text_is_an_error_not_a_crash(impl, name, text):
    try:
        result = getattr(impl, name)(text)
    except (ValueError, IndexError):
        return  # the twin's error (callers turn it into a DecodeError)
    assert isinstance(result, str)


# Text-mode pgoutput columns whose text the decoders parse (date, time, timetz, timestamp, timestamptz,
# bytea, numeric, interval): the compiled decoder must give the twin's value or error at any length.
PG_TEXT_TYPES = (1082, 1083, 1266, 1114, 1184, 17, 1700, 1186)


def _relation(type_oid: int) -> bytes:
    return (b"R" + struct.pack(">I", 16384) + b"public\0t\0" + b"d" + struct.pack(">h", 1)
            + b"\1" + b"v\0" + struct.pack(">Ii", type_oid, -1))


def _insert(text: str) -> bytes:
    value = text.encode()
    return b"I" + struct.pack(">I", 16384) + b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", len(value)) + value


def _decoders() -> dict:
    decoders = implementations("connectors.postgres.decode")
    if decoders["cython"] is None and IMPL == "cython":
        pytest.fail("CDC_IMPL=cython but cdc._ext.pgoutput is not built")
    return {name: module for name, module in decoders.items() if module is not None}


def _outcome(module, type_oid: int, text: str):
    decoder = module.PgoutputDecoder()
    decoder.decode(_relation(type_oid), 0)
    try:
        return decoder.decode(_insert(text), 0)
    except DecodeError as exc:
        return DecodeError, str(exc)


@settings(max_examples=300, deadline=None)
@given(type_oid=st.sampled_from(PG_TEXT_TYPES), text=LONG_TEXTS)
def test_long_malformed_text_values_decode_alike_in_both_pg_decoders(type_oid, text):
    outcomes = {name: _outcome(module, type_oid, text) for name, module in _decoders().items()}
    assert len({repr(outcome) for outcome in outcomes.values()}) == 1, outcomes
