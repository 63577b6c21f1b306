"""Doubles and JSON across engines, inside the checksum: exact bits, stored JSON texts, the streamed fallback."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct
from decimal import Decimal

import pytest

from cdc.verify.canonical import FIXED_FLOAT_RANGE, canonical_float_exact, json_equal
from cdc.verify.client_pass import merge_by_order
from cdc.verify.parity import verify
from cdc.verify.plan import ColumnShape, VerifyOptions
from connectors.mysql.checksum import MysqlChecksumDialect
from connectors.postgres.checksum import PostgresChecksumDialect
from cdc.urls import parse_url

OPTIONS = dict(threshold=40, segment_rows=400, workers=2, recheck_delay=0)
ROWS = 600
ODD = 'Odd "Name"'


# pure functions -----------------------------------------------------------------------------------
def test_float_exact_is_the_shortest_decimal_in_range_and_the_bits_outside():
    assert canonical_float_exact(1.0) == "1"
    assert canonical_float_exact(-2.5) == "-2.5"
    assert canonical_float_exact(0.0001) == "0.0001"
    assert canonical_float_exact(123456789012345.0) == "123456789012345"
    assert canonical_float_exact(0.30000000000000004) == "0.30000000000000004"
    assert canonical_float_exact(1e15) == f"b{0x430C6BF526340000}"  # both engines print an exponent here
    assert canonical_float_exact(-1e-5) == f"b{-struct.unpack('>q', struct.pack('>d', 1e-5))[0]}"
    assert canonical_float_exact(-0.0) == canonical_float_exact(0.0) == "b0"
    assert canonical_float_exact(5e-324) == "b1"
    assert canonical_float_exact(math.nan).startswith("b")


def test_json_equal_by_value_never_through_a_double():
    assert json_equal('{"b": 1, "a": [1.50, {"z": null}]}', '{"a":[1.5,{"z":null}],"b":1}')
    assert json_equal('{"a": 1.0}', '{"a": 1}')  # orjson keeps 1.0 and 1 apart; the exact check does not
    assert not json_equal('{"a": {"b": 2}}', '{"a": {"b": 3}}')
    # Equal as doubles, different as decimals: the long-number guard sends these to the exact check.
    assert not json_equal('{"a": 0.10000000000000000001}', '{"a": 0.1}')
    assert not json_equal('{"a": 12345678901234567890}', '{"a": 12345678901234567891}')


def test_merge_pairs_rows_by_key_and_skips_one_sided_rows():
    source = iter([(1, "a"), (2, "b"), (4, "d"), (4, "d2")])
    target = iter([(2, "B"), (3, "c"), (4, "d2"), (5, "e")])
    pairs = list(merge_by_order(source, target, order_of=lambda row: row[0], identity_of=lambda row: row))
    # (4, "d2") shares its order value with (4, "d"): paired by identity within the group
    assert pairs == [((4, "d2"), (4, "d2"))]
    pairs = list(merge_by_order(iter([(1, "a"), (2, "b")]), iter([(2, "B")]), lambda r: r[0], lambda r: r[0]))
    assert pairs == [((2, "b"), (2, "B"))]


# the SQL of both engines against the spec ---------------------------------------------------------
def _edge_doubles() -> list[float]:
    values = [0.1, 0.3, 0.30000000000000004, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
              2.225073858507201e-308, 1e-310, 123456.789, 1e300, 1e-300, -0.0, 0.0, 1e14, 123456789012345.0]
    for k in range(-1074, 1024, 7):
        power = 2.0 ** k
        values += [power, -power, math.nextafter(power, 0), math.nextafter(power, math.inf)]
    for edge in (*FIXED_FLOAT_RANGE, 1e-3, 1.0, 1e6, 1e14):  # the range's ends and a few decades: both sides
        values += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf), -edge]
    rng = random.Random(19)
    for _ in range(2000):
        value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(63)))[0]
        values.append(value if rng.random() < 0.5 else -value)
    for _ in range(2000):  # in range, every decade, full and short digit strings
        value = 10 ** rng.uniform(-4, 15)
        values.append(value if rng.random() < 0.5 else float(f"{value:.{rng.randint(1, 8)}g}"))
    return [v for v in values if math.isfinite(v)]


@pytest.mark.parametrize("engine", ["pg", "my"])
def test_sql_float_exact_matches_the_spec(extra_database, engine):
    db = extra_database(engine)
    values = _edge_doubles()
    db.run("CREATE TABLE f (id INT PRIMARY KEY, x DOUBLE PRECISION)")
    db.run("INSERT INTO f VALUES (%s, %s)", [(i, v) for i, v in enumerate(values)], many=True)
    dialect = (PostgresChecksumDialect if engine == "pg" else MysqlChecksumDialect)(parse_url(db.url))
    conn = dialect.connect()
    try:
        expression = dialect.canonical(ColumnShape("x", "float", "double", length=8), "float_exact")
        rows = dialect.execute(conn, f"SELECT id, {expression} FROM f ORDER BY id")
    finally:
        conn.close()
    assert [text for _, text in rows] == [canonical_float_exact(v) for v in values]


# a realistic table, both directions ---------------------------------------------------------------
# name, PG type, MariaDB type, value(i)
REALISTIC = [
    ("id", "bigint PRIMARY KEY", "BIGINT PRIMARY KEY", lambda i: i),
    ("qty", "integer", "INT", lambda i: i * 3),
    ("price", "numeric(12,2)", "DECIMAL(12,2)", lambda i: Decimal(i) / 4),
    ("ratio", "double precision", "DOUBLE", lambda i: [i / 7, 1e300 / (i + 1), 5e-324 * i, -0.0, 2.0 ** -1022][i % 5]),
    ("active", "boolean", "TINYINT(1)", lambda i: i % 2 == 0),
    ("name", "varchar(40)", "VARCHAR(40)", lambda i: f"name {i} é"),
    ("note", "text", "TEXT", lambda i: None if i % 9 == 0 else f"note|{i}"),
    ("created", "timestamptz", "DATETIME(6)", lambda i: dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
     + dt.timedelta(seconds=i, microseconds=i)),
    ("seen", "timestamp(6)", "DATETIME(6)", lambda i: dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i)),
    ("day", "date", "DATE", lambda i: dt.date(2024, 1, 1) + dt.timedelta(days=i % 300)),
    ("doc", "jsonb", "JSON", lambda i: {"id": i, "tags": ["a", "b"], "meta": {"score": i / 4, "ok": True}}),
    ("blob", "bytea", "LONGBLOB", lambda i: bytes([i % 256, 7])),
    (ODD, "text", "VARCHAR(20)", lambda i: f"odd{i}"),
]


def _quote(db, name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if db.engine == "pg" else "`" + name.replace("`", "``") + "`"


def create_realistic(db, *, json_text) -> None:
    """The 13-column table; `json_text(document)` spells the JSON as this side stores it."""
    index = 1 if db.engine == "pg" else 2
    columns = ", ".join(f"{_quote(db, c[0])} {c[index]}" for c in REALISTIC)
    db.run(f"CREATE TABLE realistic ({columns})")
    rows = []
    for i in range(1, ROWS + 1):
        row = [c[3](i) for c in REALISTIC]
        row[10] = json_text(row[10])
        if db.engine == "my":
            row[7] = row[7].replace(tzinfo=None)  # DATETIME(6) holds the UTC wall time
        rows.append(row)
    db.run(f"INSERT INTO realistic VALUES ({', '.join(['%s'] * len(REALISTIC))})", rows, many=True)


def _pg_text(document) -> str:
    return json.dumps(document)  # one spelling; PG stores jsonb and prints it in its own order


def _jsonb_order(document) -> str:
    """The text PostgreSQL's jsonb::text prints: keys by length then bytes, `: ` and `, `."""
    if isinstance(document, dict):
        items = sorted(document.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return "{" + ", ".join(f"{json.dumps(k)}: {_jsonb_order(v)}" for k, v in items) + "}"
    if isinstance(document, list):
        return "[" + ", ".join(_jsonb_order(v) for v in document) + "]"
    return json.dumps(document)


def _app_text(document) -> str:
    """An application's spelling: its own key order, no spaces (what MariaDB keeps as written)."""
    return json.dumps(document, separators=(",", ":"))


def seed_last_digits(db) -> None:
    """A double one ulp off and one nested JSON value changed, far apart."""
    db.run("UPDATE realistic SET ratio = %s WHERE id = 101", (math.nextafter(101 / 7, math.inf),))
    doc = REALISTIC[10][3](444)
    doc["meta"]["score"] = 0.5
    spelled = _jsonb_order(doc) if db.engine == "my" else json.dumps(doc)
    db.run("UPDATE realistic SET doc = %s WHERE id = 444", (spelled,))


def _table(report):
    [table] = report.tables
    assert table.error is None, table.error
    return table


@pytest.mark.parametrize("pair", ["pg-my", "my-pg"], indirect=True)
def test_realistic_table_is_checksummed_in_sql_and_finds_last_digit_and_nested_json(pair):
    source, target = pair
    for db in (source, target):
        create_realistic(db, json_text=_jsonb_order if db.engine == "my" else _pg_text)  # as apply writes it
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert (table.status, table.source_rows, table.target_rows, table.diffs) == ("equal", ROWS, ROWS, [])
    assert table.client_side_columns == []  # doubles by bits, JSON by its stored text: nothing streamed
    assert any("JSON hashed in SQL" in note for note in table.notes)

    seed_last_digits(target)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    changed = {diff.key["id"]: [c.column for c in diff.columns] for diff in table.diffs}
    assert table.status == "different" and changed == {101: ["ratio"], 444: ["doc"]}


@pytest.mark.parametrize("pair", ["my-pg"], indirect=True)
def test_json_spelled_differently_is_streamed_and_compared_by_value(pair):
    source, target = pair
    create_realistic(source, json_text=_app_text)  # MariaDB keeps the application's key order
    create_realistic(target, json_text=_pg_text)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert (table.status, table.diffs) == ("equal", [])
    assert table.client_side_columns == ["doc"]

    seed_last_digits(target)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    changed = {diff.key["id"]: [c.column for c in diff.columns] for diff in table.diffs}
    assert changed == {101: ["ratio"], 444: ["doc"]}


@pytest.mark.parametrize("pair", ["pg-my"], indirect=True)
def test_values_mariadb_cannot_hold_are_differences(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE special (id INT PRIMARY KEY, x DOUBLE PRECISION)")
    source.run("INSERT INTO special VALUES (1, 'NaN'), (2, 'Infinity'), (3, '-0'), (4, 1e308), (5, 4.9e-324)")
    target.run("INSERT INTO special VALUES (1, NULL), (2, NULL), (3, 0), (4, 1e308), (5, 4.9e-324)")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert {diff.key["id"] for diff in table.diffs} == {1, 2}  # -0.0 = 0.0; NaN and Infinity have no MariaDB value


@pytest.mark.parametrize("pair", ["my-pg"], indirect=True)
def test_streamed_json_under_a_text_key_merges_in_key_hash_order(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE docs (code VARCHAR(20) PRIMARY KEY, doc JSON)" if db.engine == "my"
               else "CREATE TABLE docs (code varchar(20) PRIMARY KEY, doc jsonb)")
    documents = {f"Code-{i}": {"z": i, "a": {"deep": [i, {"x": "é"}]}} for i in range(300)}
    source.run("INSERT INTO docs VALUES (%s, %s)", [(k, _app_text(v)) for k, v in documents.items()], many=True)
    documents["Code-123"]["a"]["deep"][1]["x"] = "e"
    target.run("INSERT INTO docs VALUES (%s, %s)", [(k, json.dumps(v)) for k, v in documents.items()], many=True)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert table.mode == "hash" and table.client_side_columns == ["doc"]
    assert [(diff.key, [c.column for c in diff.columns]) for diff in table.diffs] == [({"code": "Code-123"}, ["doc"])]


@pytest.mark.parametrize("pair", ["my-my"], indirect=True)
def test_mariadb_json_hashed_as_stored_still_equal_by_value(pair):
    source, target = pair
    create_realistic(source, json_text=_app_text)
    create_realistic(target, json_text=_jsonb_order)  # same documents, other key order and spacing
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert (table.checksum, table.status, table.diffs) == ("native", "equal", [])
    seed_last_digits(target)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert {diff.key["id"]: [c.column for c in diff.columns] for diff in table.diffs} == {101: ["ratio"], 444: ["doc"]}


@pytest.mark.parametrize("pair", ["pg-pg", "my-my"], indirect=True)
def test_same_engine_native_hash_finds_last_digit_and_nested_json(pair):
    source, target = pair
    for db in (source, target):
        create_realistic(db, json_text=_jsonb_order)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert (table.checksum, table.status, table.diffs) == ("native", "equal", [])
    seed_last_digits(target)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert {diff.key["id"]: [c.column for c in diff.columns] for diff in table.diffs} == {101: ["ratio"], 444: ["doc"]}


@pytest.mark.parametrize("pair", ["my-my"], indirect=True)
def test_mariadb_native_hash_sees_one_ulp_in_float_and_double(pair):
    """The native row text holds a DOUBLE (and a FLOAT widened to DOUBLE) as one exact argument: one ulp counts."""
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE f (id INT PRIMARY KEY, d DOUBLE, s FLOAT, n DOUBLE NOT NULL)")
        db.run("INSERT INTO f VALUES (%s, %s, %s, %s)",
               [(i, i / 7, i / 3, -i / 11) if i % 4 else (i, None, None, 0.0) for i in range(200)], many=True)
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert (table.checksum, table.status) == ("native", "equal")
    target.run("UPDATE f SET d = %s WHERE id = 50", (math.nextafter(50 / 7, 0),))
    target.run("UPDATE f SET s = s * (1 + 1e-7) WHERE id = 61")  # the next FLOAT up
    target.run("UPDATE f SET n = %s WHERE id = 73", (math.nextafter(-73 / 11, 0),))
    target.run("UPDATE f SET d = 0 WHERE id = 8")  # NULL -> 0
    table = _table(verify(source.url, target.url, VerifyOptions(**OPTIONS)))
    assert {diff.key["id"]: [c.column for c in diff.columns] for diff in table.diffs} == {
        50: ["d"], 61: ["s"], 73: ["n"], 8: ["d"]}


@pytest.mark.parametrize("engine", ["pg", "my"])
def test_json_sample_is_the_first_rows_in_key_order_on_both_engines(extra_database, engine):
    """The sample orders by the key column itself, not by its text (PG names `("id")::text` "id")."""
    from cdc.verify.bisect import ConnectionPool
    from cdc.verify.json_forms import SAMPLE_ROWS, _sample
    from cdc.verify.parity import dialect_for
    from cdc.verify.plan import build_table_plan

    db = extra_database(engine)
    db.run(f"CREATE TABLE docs (id INT PRIMARY KEY, doc {'jsonb' if engine == 'pg' else 'JSON'})")
    db.run("INSERT INTO docs VALUES (%s, %s)", [(i, json.dumps({"i": i})) for i in range(1, 1501)], many=True)
    dialect = dialect_for(parse_url(db.url))
    pool = ConnectionPool(dialect, 1)
    try:
        conn = pool.acquire()
        shape = dialect.read_table(conn, "docs")
        pool.release(conn)
        plan = build_table_plan("docs", shape, shape, same_engine=False, options=VerifyOptions())
        sample, _ = _sample(pool, plan, "source", [p for p in plan.pairs if p.name == "doc"], None)
    finally:
        pool.close()
    assert sorted(int(key[0]) for key in sample) == list(range(1, SAMPLE_ROWS + 1))
