"""PostgreSQL target writer: COPY + INSERT .. ON CONFLICT / DELETE .. USING, offsets, every value kind."""

from __future__ import annotations

import pytest

from tests.apply.writer_cases import *  # noqa: F401,F403  (the behaviour every writer shares)


@pytest.fixture
def engine() -> str:
    return "postgresql"


@pytest.fixture
def target_url(pg_database: str) -> str:
    return pg_database


import datetime as dt  # noqa: E402
import math  # noqa: E402
import uuid  # noqa: E402
from decimal import Decimal  # noqa: E402

from cdc.events import Column  # noqa: E402
from tests.apply.scenario import Stream, applier, rows, table  # noqa: E402

UTC = dt.timezone.utc

# (column, JSON value as the envelope carries it, value read back through psycopg)
PG_KINDS = [
    (Column("b", "boolean", "boolean"), True, True),
    (Column("i2", "smallint", "int", length=2), -32768, -32768),
    (Column("i8", "bigint", "int", length=8), 9223372036854775807, 9223372036854775807),
    (Column("dec", "numeric(12,4)", "decimal", precision=12, scale=4), "12345678.1234", Decimal("12345678.1234")),
    (Column("num", "numeric", "decimal"), "NaN", Decimal("NaN")),
    (Column("f4", "real", "float", length=4), 1.5, 1.5),
    (Column("f8", "double precision", "float", length=8), "-Infinity", -math.inf),
    (Column("vc", "character varying(20)", "string", length=20), "héllo ✓", "héllo ✓"),
    (Column("ch", "character(3)", "string", length=3), "ab ", "ab "),
    (Column("tx", "text", "string"), "line\nwith\ttabs \\ and 'quotes'", "line\nwith\ttabs \\ and 'quotes'"),
    (Column("by", "bytea", "bytes"), "AP8KDQ==", b"\x00\xff\n\r"),
    (Column("bits", "bit(4)", "bits", length=4), "0101", "0101"),
    (Column("vbits", "bit varying(8)", "bits", length=8), "101", "101"),
    (Column("d", "date", "date"), "2024-02-29", dt.date(2024, 2, 29)),
    (Column("dinf", "date", "date"), "infinity", "infinity"),
    (Column("t", "time(6) without time zone", "time", precision=6), "13:45:00.123456", dt.time(13, 45, 0, 123456)),
    (Column("ts", "timestamp(6) without time zone", "timestamp", precision=6), "2024-02-29T13:45:00.123456",
     dt.datetime(2024, 2, 29, 13, 45, 0, 123456)),
    (Column("tz", "timestamp(6) with time zone", "timestamptz", precision=6), "2024-02-29T12:45:00.123456Z",
     dt.datetime(2024, 2, 29, 12, 45, 0, 123456, tzinfo=UTC)),
    (Column("iv", "interval", "interval"), "P1Y2M3DT4H5M6.7S", "P1Y2M3DT4H5M6.7S"),
    (Column("js", "jsonb", "json"), '{"a": [1, 2.5, "x"]}', {"a": [1, 2.5, "x"]}),
    (Column("u", "uuid", "uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    (Column("ip", "inet", "inet"), "192.168.0.1/24", "192.168.0.1/24"),
    (Column("mac", "macaddr", "macaddr"), "08:00:2b:01:02:03", "08:00:2b:01:02:03"),
    (Column("xm", "xml", "xml"), "<a>1</a>", "<a>1</a>"),
    (Column("rng", "int4range", "range"), "[1,10)", "[1,10)"),
    (Column("arr", "integer[]", "array", element="int"), [1, None, 3], [1, None, 3]),
    (Column("tarr", "text[]", "array", element="string"), [["a", "b,c"], ["d\"", None]], [["a", "b,c"], ["d\"", None]]),
    (Column("barr", "bytea[]", "array", element="bytes"), ["AP8=", None], [b"\x00\xff", None]),
    (Column("en", "mood", "enum", values=("sad", "ok")), "ok", "ok"),
    (Column("ext", "hstore", "text"), '"a"=>"1"', '"a"=>"1"'),
]


def _readable(value):
    """What psycopg returns, in comparable form (text for network/range types, floats compared exactly)."""
    if hasattr(value, "exploded") or type(value).__name__ in ("IPv4Interface", "IPv6Interface", "Range", "Int4Range"):
        return str(value)
    return value


def test_every_value_kind_reaches_postgres_as_its_type(target_url):
    from connectors.postgres.dialect import connect
    from tests.conftest import pg_has_xml

    with connect(target_url) as conn:
        kinds = [kind for kind in PG_KINDS if kind[0].kind != "xml" or pg_has_xml(conn)]
    key = Column("id", "integer", "int", nullable=False, primary_key=True, length=4)
    schema = table("postgresql", "kinds", [key] + [column for column, _, _ in kinds])
    row = {"id": 1} | {column.name: value for column, value, _ in kinds}
    nulls = {"id": 2} | {column.name: None for column, _, _ in kinds}
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, row) + stream.insert(schema, nulls))
    names = ", ".join(f'"{column.name}"::text' if column.kind in ("inet", "range", "macaddr", "xml", "interval") or column.name == "dinf" else f'"{column.name}"'
                      for column, _, _ in kinds)
    got = rows(target_url, f"SELECT {names} FROM public.kinds ORDER BY id")
    for (column, _, expected), value in zip(kinds, got[0]):
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(value), column.name
        elif isinstance(expected, Decimal) and expected.is_nan():
            assert value.is_nan(), column.name
        else:
            assert _readable(value) == expected, column.name
    assert got[1] == (None,) * len(kinds)
    # the row-by-row path (used to isolate bad rows) converts the same way
    apply.writer.begin()
    apply.writer.upsert_row(apply.writer.table_for(schema), row | {"id": 3})
    apply.writer.commit()
    again = rows(target_url, f"SELECT {names} FROM public.kinds WHERE id = 3")
    assert again[0] == got[0] or all(
        a == b or (isinstance(a, Decimal) and a.is_nan() and b.is_nan()) for a, b in zip(again[0], got[0]))
