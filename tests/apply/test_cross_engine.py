"""Cross-engine apply: PG-captured events into MariaDB and MySQL-captured events into PostgreSQL, with
tables created from the type map (docs/type-mapping.md) and values converted by the source kind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from cdc.events import Column
from tests.apply.scenario import Stream, applier, rows, table

KEY = Column("id", "integer", "int", nullable=False, primary_key=True, length=4)

# (column, event value, value read back from the MariaDB target)
PG_INTO_MYSQL = [
    (Column("b", "boolean", "boolean"), True, 1),
    (Column("dec", "numeric(12,4)", "decimal", precision=12, scale=4), "-1.5000", Decimal("-1.5000")),
    (Column("by", "bytea", "bytes"), "AP8=", b"\x00\xff"),
    (Column("bits", "bit(4)", "bits", length=4), "0101", b"\x05"),
    (Column("vbits", "bit varying(8)", "bits", length=8), "101", "101"),
    (Column("tz", "timestamp(6) with time zone", "timestamptz", precision=6), "2024-02-29T12:45:00.123456Z",
     dt.datetime(2024, 2, 29, 12, 45, 0, 123456)),
    (Column("iv", "interval", "interval"), "P1Y2M", "P1Y2M"),
    (Column("u", "uuid", "uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    (Column("arr", "integer[]", "array", element="int"), [1, None, 3], "[1,null,3]"),
    (Column("js", "jsonb", "json"), '{"a":1}', '{"a":1}'),
    (Column("tx", "text", "string"), "ünïcode ✓", "ünïcode ✓"),
]

# (column, event value, value read back from the PostgreSQL target)
MYSQL_INTO_PG = [
    (Column("tu", "tinyint unsigned", "int", length=1, unsigned=True), 255, 255),
    (Column("bu", "bigint unsigned", "int", length=8, unsigned=True), 18446744073709551615, Decimal("18446744073709551615")),
    (Column("en", "enum('a','b')", "enum", values=("a", "b")), "b", "b"),
    (Column("st", "set('a','b')", "set", values=("a", "b")), "a,b", "a,b"),
    (Column("bits", "bit(3)", "bits", length=3), "101", "101"),
    (Column("blb", "blob", "bytes"), "AAEC", b"\x00\x01\x02"),
    (Column("dtm", "datetime(3)", "timestamp", precision=3), "2024-02-29T13:45:00.123", dt.datetime(2024, 2, 29, 13, 45, 0, 123000)),
    (Column("ts", "timestamp(0)", "timestamptz", precision=0), "2024-02-29T12:45:00Z",
     dt.datetime(2024, 2, 29, 12, 45, tzinfo=dt.timezone.utc)),
    (Column("yr", "year", "year"), 2024, 2024),
    (Column("js", "json", "json"), '{"a": [1, 2]}', {"a": [1, 2]}),
    (Column("t", "time", "time", precision=0), "23:59:59", dt.time(23, 59, 59)),
]


def test_postgres_events_into_mariadb(mysql_database):
    schema = table("postgresql", "cross", [KEY] + [c for c, _, _ in PG_INTO_MYSQL])
    apply = applier(mysql_database, schema)
    apply.apply(Stream().insert(schema, {"id": 1} | {c.name: v for c, v, _ in PG_INTO_MYSQL}))
    database = mysql_database.rsplit("/", 1)[1]
    got = rows(mysql_database, f"SELECT {', '.join(f'`{c.name}`' for c, _, _ in PG_INTO_MYSQL)} FROM `{database}`.`cross`")
    assert dict(zip([c.name for c, _, _ in PG_INTO_MYSQL], got[0])) == {c.name: e for c, _, e in PG_INTO_MYSQL}


def test_mysql_events_into_postgres(pg_database):
    schema = table("mysql", "cross", [KEY] + [c for c, _, _ in MYSQL_INTO_PG])
    apply = applier(pg_database, schema)
    apply.apply(Stream().insert(schema, {"id": 1} | {c.name: v for c, v, _ in MYSQL_INTO_PG}))
    got = rows(pg_database, f"SELECT {', '.join(c.name for c, _, _ in MYSQL_INTO_PG)} FROM public.cross")
    assert dict(zip([c.name for c, _, _ in MYSQL_INTO_PG], got[0])) == {c.name: e for c, _, e in MYSQL_INTO_PG}
