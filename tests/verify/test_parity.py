"""Seeded differences of every kind are found exactly; equal data is equal, across all engine pairs."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from cdc.verify import bisect as bisect_module
from cdc.verify.diff import CHANGED, EXTRA, IN_FLIGHT, MISSING
from cdc.verify.parity import verify
from cdc.verify.plan import VerifyOptions

ROWS = 1500
UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def _uuid(i: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"row{i}")


# name, PG type, MariaDB type (as the cross-engine type map writes it), value(i, engine), changed value(i, engine)
COLUMNS = [
    ("i", "integer", "INT", lambda i, e: i * 7, lambda i, e: -1),
    ("b", "boolean", "TINYINT(1)", lambda i, e: i % 2 == 0, lambda i, e: i % 2 != 0),
    ("n", "numeric(12,4)", "DECIMAL(12,2)", lambda i, e: Decimal(i) / 4, lambda i, e: Decimal(i) / 4 + Decimal("0.01")),
    ("f", "double precision", "DOUBLE", lambda i, e: i / 3, lambda i, e: i / 3 + 1e-9),
    ("r", "real", "FLOAT", lambda i, e: i + 0.5, lambda i, e: i + 1.5),
    ("s", "varchar(50)", "VARCHAR(50)", lambda i, e: f"name {i} é ✓", lambda i, e: f"name {i} e"),
    ("t", "text", "TEXT", lambda i, e: None if i % 7 == 0 else ("" if i % 5 == 0 else f"t|{i}"),
     lambda i, e: "changed"),
    ("bin", "bytea", "LONGBLOB", lambda i, e: bytes([i % 256, 0, 255]), lambda i, e: b"\x00"),
    ("d", "date", "DATE", lambda i, e: dt.date(2024, 1, 1) + dt.timedelta(days=i),
     lambda i, e: dt.date(2024, 1, 2) + dt.timedelta(days=i)),
    ("tm", "time(6)", "TIME(6)", lambda i, e: dt.time(i % 24, i % 60, i % 60, (i * 37) % 1000000),
     lambda i, e: dt.time(i % 24, i % 60, i % 60, (i * 37 + 1) % 1000000)),
    ("ts", "timestamp(6)", "DATETIME(6)", lambda i, e: dt.datetime(2024, 2, 29, 13, 45) + dt.timedelta(seconds=i, microseconds=i),
     lambda i, e: dt.datetime(2024, 2, 29, 13, 45) + dt.timedelta(seconds=i, microseconds=i + 1)),
    # Same instant: PG gets it with a +02:00 offset, MariaDB DATETIME(6) holds the UTC wall time.
    ("tz", "timestamptz", "DATETIME(6)",
     lambda i, e: (dt.datetime(2024, 3, 1, 12, 0, tzinfo=PLUS2) + dt.timedelta(minutes=i)) if e == "pg"
     else dt.datetime(2024, 3, 1, 10, 0) + dt.timedelta(minutes=i),
     lambda i, e: (dt.datetime(2024, 3, 1, 12, 0, 1, tzinfo=PLUS2) + dt.timedelta(minutes=i)) if e == "pg"
     else dt.datetime(2024, 3, 1, 10, 0, 1) + dt.timedelta(minutes=i)),
    # Same value, different key order and spacing on MariaDB.
    ("j", "jsonb", "JSON",
     lambda i, e: json.dumps({"k": i, "arr": [1, 2.5], "s": "x"}) if e == "pg"
     else '{"s":"x",  "arr":[1,2.5], "k":%d}' % i,
     lambda i, e: json.dumps({"k": i + 1, "arr": [1, 2.5], "s": "x"})),
    # MariaDB CHAR(36) in upper case: equal to PG's uuid by value.
    ("u", "uuid", "CHAR(36)", lambda i, e: str(_uuid(i)) if e == "pg" else str(_uuid(i)).upper(),
     lambda i, e: str(_uuid(i + 100000)) if e == "pg" else str(_uuid(i + 100000)).upper()),
    ("bits", "bit(8)", "BIT(8)", lambda i, e: format(i % 256, "08b") if e == "pg" else i % 256,
     lambda i, e: format((i + 1) % 256, "08b") if e == "pg" else (i + 1) % 256),
    ("arr", "integer[]", "JSON", lambda i, e: [i, i + 1] if e == "pg" else json.dumps([i, i + 1]),
     lambda i, e: [i, i + 2] if e == "pg" else json.dumps([i, i + 2])),
]


def create_typed(db, name: str = "typed", rows: int = ROWS) -> None:
    """The typed table with `rows` deterministic rows."""
    index = 1 if db.engine == "pg" else 2
    columns = ", ".join(f"{c[0]} {c[index]}" for c in COLUMNS)
    db.run(f"CREATE TABLE {name} (id bigint PRIMARY KEY, {columns})")
    insert_rows(db, name, range(1, rows + 1))


def insert_rows(db, name: str, ids) -> None:
    placeholders = ", ".join(["%s"] * (len(COLUMNS) + 1))
    cast = "::bit(8)" if db.engine == "pg" else ""
    values_sql = placeholders if not cast else ", ".join(
        ["%s"] + [("%s" + cast if c[0] == "bits" else "%s") for c in COLUMNS])
    db.run(f"INSERT INTO {name} (id, {', '.join(c[0] for c in COLUMNS)}) VALUES ({values_sql})",
           [(i, *(c[3](i, db.engine) for c in COLUMNS)) for i in ids], many=True)


def set_value(db, name: str, column: str, value, row_id: int) -> None:
    cast = "::bit(8)" if db.engine == "pg" and column == "bits" else ""
    db.run(f"UPDATE {name} SET {column} = %s{cast} WHERE id = %s", (value, row_id))


def seed_differences(db) -> set[tuple]:
    """Change the target; return the exact differences verify must report."""
    expected: set[tuple] = set()
    db.run("DELETE FROM typed WHERE id = 10")
    expected.add((MISSING, 10, ()))
    insert_rows(db, "typed", [ROWS + 500])
    expected.add((EXTRA, ROWS + 500, ()))
    for k, (name, _, _, _, changed) in enumerate(COLUMNS):
        row_id = 200 + 13 * k
        set_value(db, "typed", name, changed(row_id, db.engine), row_id)
        expected.add((CHANGED, row_id, (name,)))
    # '' in the source, NULL in the target (row 1000: 1000 % 5 == 0, 1000 % 7 != 0).
    set_value(db, "typed", "t", None, 1000)
    expected.add((CHANGED, 1000, ("t",)))
    return expected


def found(report, table: str = "typed") -> set[tuple]:
    [t] = [t for t in report.tables if t.name == table]
    assert t.error is None, t.error
    return {(d.kind, int(next(iter(d.key.values()))), tuple(sorted(c.column for c in d.columns))) for d in t.diffs}


OPTIONS = dict(threshold=40, segment_rows=300, workers=2, recheck_delay=0)


def test_equal_data_is_parity_on_every_engine_pair(pair):
    source, target = pair
    create_typed(source)
    create_typed(target)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert (table.status, table.source_rows, table.target_rows, found(report)) == ("equal", ROWS, ROWS, set())
    assert report.exit_code == 0


def test_seeded_differences_are_found_exactly_on_every_engine_pair(pair):
    source, target = pair
    create_typed(source)
    create_typed(target)
    expected = seed_differences(target)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert found(report) == expected
    assert report.exit_code == 1
    [table] = report.tables
    assert table.segments_compared > 5  # it bisected; it did not download the table


def test_float_tolerance_accepts_small_float_differences(pair):
    source, target = pair
    create_typed(source, rows=200)
    create_typed(target, rows=200)
    set_value(target, "typed", "f", 5 / 3 + 1e-9, 5)
    strict = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert found(strict) == {(CHANGED, 5, ("f",))}
    tolerant = verify(source.url, target.url, VerifyOptions(**OPTIONS, float_tolerance=1e-6))
    assert tolerant.exit_code == 0 and found(tolerant) == set()


@pytest.mark.parametrize("engine", ["pg", "my"])
def test_sql_canonical_text_and_hash_match_the_python_spec(extra_database, engine):
    """Each engine's SQL spells every value as cdc.verify.canonical does, and hashes the row the same."""
    from cdc.urls import parse_url
    from cdc.verify.canonical import canonical_value, row_hash, row_text
    from cdc.verify.checksum import TableSide
    from cdc.verify.parity import dialect_for
    from cdc.verify.plan import build_table_plan

    db = extra_database(engine)
    create_typed(db, rows=300)
    db.run("INSERT INTO typed (id) VALUES (100000)")  # all NULLs
    dialect = dialect_for(parse_url(db.url))
    conn = dialect.connect()
    shape = dialect.read_table(conn, "typed")
    plan = build_table_plan("typed", shape, shape, same_engine=False, options=VerifyOptions())
    plan.pairs = [p for p in plan.pairs if p.cls not in ("float", "json")]  # engine-specific spellings
    side = TableSide(dialect, plan, "source", None)
    exprs = [side.canonical(p) for p in plan.pairs]
    names = [dialect.quote(p.name) for p in plan.pairs]
    rows = dialect.execute(conn, f"SELECT {', '.join(exprs)}, {', '.join(names)}, {side.row_hash} FROM typed")
    assert len(rows) == 301
    n = len(plan.pairs)
    for row in rows:
        expected = [canonical_value(row[n + i], p.cls, p.source.length) for i, p in enumerate(plan.pairs)]
        assert list(row[:n]) == expected
        assert int(row[-1]) == row_hash(row_text(expected, [p.cls for p in plan.pairs]))
    conn.close()


def test_pg_row_text_of_a_table_wider_than_a_function_call_matches_the_spec(extra_database):
    """concat_ws takes at most 100 arguments: a 130-column row nests and still hashes as the spec."""
    from cdc.urls import parse_url
    from cdc.verify.canonical import row_hash, row_text
    from cdc.verify.checksum import TableSide
    from cdc.verify.parity import dialect_for
    from cdc.verify.plan import build_table_plan

    db = extra_database("pg")
    db.run("CREATE TABLE wide (id int PRIMARY KEY, " + ", ".join(f"c{i} text" for i in range(129)) + ")")
    values = [None if i % 7 == 0 else f"v|{i}" for i in range(129)]
    db.run(f"INSERT INTO wide VALUES (1, {', '.join(['%s'] * 129)})", [tuple(values)], many=True)
    dialect = dialect_for(parse_url(db.url))
    conn = dialect.connect()
    try:
        shape = dialect.read_table(conn, "wide")
        plan = build_table_plan("wide", shape, shape, same_engine=False, options=VerifyOptions())
        side = TableSide(dialect, plan, "source", None)
        [(hashed,)] = dialect.execute(conn, f"SELECT {side.row_hash} FROM wide")
    finally:
        conn.close()
    assert int(hashed) == row_hash(row_text(["1", *values], [p.cls for p in plan.pairs]))
