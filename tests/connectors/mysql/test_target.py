"""MySQL/MariaDB target writer: multi-row INSERT .. ON DUPLICATE KEY UPDATE / DELETE .. IN, offsets, value kinds."""

from __future__ import annotations

import pytest

from tests.apply.writer_cases import *  # noqa: F401,F403  (the behaviour every writer shares)


@pytest.fixture
def engine() -> str:
    return "mysql"


@pytest.fixture
def target_url(mysql_database: str) -> str:
    return mysql_database


import datetime as dt  # noqa: E402
from decimal import Decimal  # noqa: E402

from cdc.events import Column  # noqa: E402
from tests.apply.scenario import Stream, applier, rows, table  # noqa: E402

# (column, JSON value as the envelope carries it, value read back through pymysql)
MYSQL_KINDS = [
    (Column("ti", "tinyint(1)", "int", length=1), 1, 1),
    (Column("tu", "tinyint unsigned", "int", length=1, unsigned=True), 255, 255),
    (Column("bu", "bigint unsigned", "int", length=8, unsigned=True), 18446744073709551615, 18446744073709551615),
    (Column("mi", "mediumint", "int", length=3), -8388608, -8388608),
    (Column("dec", "decimal(30,10)", "decimal", precision=30, scale=10), "12345678901234567890.0123456789",
     Decimal("12345678901234567890.0123456789")),
    (Column("f4", "float", "float", length=4), 1.5, 1.5),
    (Column("f8", "double", "float", length=8), 2.25, 2.25),
    (Column("vc", "varchar(20)", "string", length=20), "héllo ✓ 😀", "héllo ✓ 😀"),
    (Column("ch", "char(3)", "string", length=3), "ab", "ab"),
    (Column("tx", "longtext", "string"), "line\nwith\ttabs \\ and 'quotes'", "line\nwith\ttabs \\ and 'quotes'"),
    (Column("en", "enum('sad','ok')", "enum", values=("sad", "ok")), "ok", "ok"),
    (Column("st", "set('a','b','c')", "set", values=("a", "b", "c")), "a,c", "a,c"),
    (Column("bin", "binary(4)", "bytes", length=4), "AP8KDQ==", b"\x00\xff\n\r"),
    (Column("blb", "blob", "bytes"), "AAECAw==", b"\x00\x01\x02\x03"),
    (Column("bits", "bit(4)", "bits", length=4), "0101", b"\x05"),
    (Column("d", "date", "date"), "2024-02-29", dt.date(2024, 2, 29)),
    (Column("t", "time(6)", "time", precision=6), "13:45:00.123456", dt.timedelta(hours=13, minutes=45, microseconds=123456)),
    (Column("tneg", "time", "time", precision=0), "-838:59:59", -dt.timedelta(hours=838, minutes=59, seconds=59)),
    (Column("dtm", "datetime(6)", "timestamp", precision=6), "2024-02-29T13:45:00.123456",
     dt.datetime(2024, 2, 29, 13, 45, 0, 123456)),
    (Column("tz", "timestamp(3)", "timestamptz", precision=3), "2024-02-29T12:45:00.123Z",
     dt.datetime(2024, 2, 29, 12, 45, 0, 123000)),
    (Column("js", "json", "json"), '{"a": [1, 2.5, "x"]}', '{"a": [1, 2.5, "x"]}'),
    (Column("yr", "year", "year"), 2024, 2024),
    (Column("g", "geometry", "geometry"), "POINT(1 2)", "POINT(1 2)"),
]


def test_every_value_kind_reaches_mysql_as_its_type(target_url):
    key = Column("id", "int", "int", nullable=False, primary_key=True, length=4)
    schema = table("mysql", "kinds", [key] + [column for column, _, _ in MYSQL_KINDS])
    row = {"id": 1} | {column.name: value for column, value, _ in MYSQL_KINDS}
    nulls = {"id": 2} | {column.name: None for column, _, _ in MYSQL_KINDS}
    stream = Stream()
    apply = applier(target_url, schema)
    apply.apply(stream.insert(schema, row) + stream.insert(schema, nulls))
    names = ", ".join(f"`{column.name}`" for column, _, _ in MYSQL_KINDS)
    database = target_url.rsplit("/", 1)[1]
    got = rows(target_url, f"SELECT {names} FROM `{database}`.kinds ORDER BY id")
    for (column, _, expected), value in zip(MYSQL_KINDS, got[0]):
        assert value == expected, column.name
    assert got[1] == (None,) * len(MYSQL_KINDS)
    apply.writer.begin()
    apply.writer.upsert_row(apply.writer.table_for(schema), row | {"id": 3})
    apply.writer.commit()
    assert rows(target_url, f"SELECT {names} FROM `{database}`.kinds WHERE id = 3")[0] == got[0]
