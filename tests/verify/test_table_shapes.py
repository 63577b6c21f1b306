"""Keys that are not integers, composite keys, keyless tables, and tables that differ in shape."""

from __future__ import annotations

import pytest

from cdc.verify.diff import CHANGED, EXTRA, MISSING
from cdc.verify.parity import verify
from cdc.verify.plan import VerifyOptions

OPTIONS = dict(threshold=20, segment_rows=100, workers=2, recheck_delay=0)


def kinds(report, table: str) -> set[tuple]:
    [t] = [t for t in report.tables if t.name == table]
    assert t.error is None, t.error
    return {(d.kind, tuple(d.key.values()), tuple(sorted(c.column for c in d.columns)), d.count) for d in t.diffs}


def make_text_key(db, collate_ci: bool) -> None:
    # Mixed case and accents: PG "C"/en_US and MariaDB utf8mb4_general_ci order these differently.
    text = "VARCHAR(40) COLLATE utf8mb4_general_ci" if collate_ci else "VARCHAR(40)"
    db.run(f"CREATE TABLE words (w {text} PRIMARY KEY, n INT)")
    words = [(f"{prefix}{i}", i) for i in range(300) for prefix in (("a", "B", "é") if i % 3 == 0 else ("Z",))]
    db.run("INSERT INTO words VALUES (%s, %s)", words, many=True)


def test_text_keys_use_collation_free_hash_buckets(pair):
    source, target = pair
    make_text_key(source, source.engine == "my")
    make_text_key(target, target.engine == "my")
    target.run("DELETE FROM words WHERE w = 'é3'")
    target.run("INSERT INTO words VALUES ('zz-new', 1)")
    target.run("UPDATE words SET n = -1 WHERE w = 'B30'")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert table.mode == "hash"
    assert table.checksum == ("native" if source.engine == target.engine else "canonical")
    assert kinds(report, "words") == {(MISSING, ("é3",), (), 1), (EXTRA, ("zz-new",), (), 1),
                                      (CHANGED, ("B30",), ("n",), 1)}


def test_composite_key_with_text_first_column(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE order_lines (order_ref VARCHAR(20), line INT, qty INT, PRIMARY KEY (order_ref, line))")
        db.run("INSERT INTO order_lines VALUES (%s, %s, %s)",
               [(f"o{i}", line, i * line) for i in range(200) for line in (1, 2)], many=True)
    target.run("UPDATE order_lines SET qty = 0 WHERE order_ref = 'o7' AND line = 2")
    target.run("DELETE FROM order_lines WHERE order_ref = 'o8' AND line = 1")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert kinds(report, "order_lines") == {(CHANGED, ("o7", 2), ("qty",), 1), (MISSING, ("o8", 1), (), 1)}


def test_hash_buckets_bisect_when_a_bucket_is_too_big(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE tags (tag VARCHAR(20) PRIMARY KEY)")
        db.run("INSERT INTO tags VALUES (%s)", [(f"t{i}",) for i in range(100)], many=True)
    target.run("INSERT INTO tags VALUES (%s)", [(f"new{i}",) for i in range(400)], many=True)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert {k for k in kinds(report, "tags")} == {(EXTRA, (f"new{i}",), (), 1) for i in range(400)}
    assert report.tables[0].segments_compared > 5


def test_table_without_key_is_compared_as_a_multiset(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE events (what VARCHAR(20), amount DECIMAL(10,2))")
        db.run("INSERT INTO events VALUES (%s, %s)", [("a", 1), ("a", 1), ("b", 2.5), ("c", None)], many=True)
    target.run("INSERT INTO events VALUES ('a', 1.00)")  # a third copy of ('a', 1)
    target.run("DELETE FROM events WHERE what = 'b'")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert table.mode == "multiset" and any("multiset" in note for note in table.notes)
    assert {(d.kind, d.key["what"], d.count) for d in table.diffs} == {(EXTRA, "a", 1), (MISSING, "b", 1)}


def test_unique_key_is_used_when_there_is_no_primary_key(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE users (email VARCHAR(50) NOT NULL UNIQUE, name VARCHAR(20))")
        db.run("INSERT INTO users VALUES (%s, %s)", [(f"u{i}@x", f"n{i}") for i in range(50)], many=True)
    target.run("UPDATE users SET name = 'changed' WHERE email = 'u3@x'")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert report.tables[0].key == ["email"]
    assert kinds(report, "users") == {(CHANGED, ("u3@x",), ("name",), 1)}


def test_column_sets_that_differ_are_reported_and_the_rest_compared(pair):
    source, target = pair
    source.run("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10), old_col INT)")
    target.run("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10), new_col INT)")
    for db in (source, target):
        db.run("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert table.status == "different" and report.exit_code == 1
    assert table.schema_differences == ["column 'old_col' only in source", "column 'new_col' only in target"]
    assert table.diffs == []
    excluded = verify(source.url, target.url, VerifyOptions(**OPTIONS, exclude_columns=("old_col", "new_col")))
    assert excluded.exit_code == 0


def test_missing_table_is_a_difference_and_an_unknown_table_cannot_be_checked(pair):
    source, target = pair
    source.run("CREATE TABLE only_here (id INT PRIMARY KEY)")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert [(t.name, t.status) for t in report.tables] == [("only_here", "missing_in_target")]
    assert report.exit_code == 1
    unknown = verify(source.url, target.url, VerifyOptions(**OPTIONS, tables=("nowhere",)))
    assert unknown.exit_code == 2 and "neither" in unknown.tables[0].error


def test_where_and_columns_restrict_the_comparison(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE acc (id INT PRIMARY KEY, region VARCHAR(5), balance INT, note VARCHAR(10))")
        db.run("INSERT INTO acc VALUES (%s, %s, %s, %s)",
               [(i, "eu" if i % 2 else "us", i, "x") for i in range(100)], many=True)
    target.run("UPDATE acc SET balance = -1 WHERE id = 4")   # region us
    target.run("UPDATE acc SET note = 'y' WHERE id = 5")     # region eu
    eu = verify(source.url, target.url, VerifyOptions(**OPTIONS, where="region = 'eu'"))
    assert kinds(eu, "acc") == {(CHANGED, (5,), ("note",), 1)}
    balance_only = verify(source.url, target.url, VerifyOptions(**OPTIONS, columns=("balance",)))
    assert kinds(balance_only, "acc") == {(CHANGED, (4,), ("balance",), 1)}


def test_rows_that_converge_on_recheck_are_in_flight(pair, monkeypatch):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE live (id INT PRIMARY KEY, v INT)")
        db.run("INSERT INTO live VALUES (%s, %s)", [(i, i) for i in range(100)], many=True)
    target.run("UPDATE live SET v = -1 WHERE id IN (3, 4)")
    target.run("DELETE FROM live WHERE id = 50")

    def replication_catches_up(seconds: float) -> None:
        target.run("UPDATE live SET v = 3 WHERE id = 3")
        target.run("INSERT INTO live VALUES (50, 50)")

    monkeypatch.setattr("cdc.verify.parity.wait", replication_catches_up)
    report = verify(source.url, target.url, VerifyOptions(**{**OPTIONS, "recheck_delay": 0.01}))
    statuses = {(d.kind, d.key["id"], d.status) for d in report.tables[0].diffs}
    assert statuses == {(CHANGED, 3, "in_flight"), (CHANGED, 4, "different"), (MISSING, 50, "in_flight")}
    assert report.exit_code == 1
    assert report.tables[0].counts() == {"missing": 0, "extra": 0, "changed": 1, "in_flight": 2}


def test_engine_specific_types_on_the_same_engine(extra_database):
    """PG interval/enum/jsonb/numeric without scale/uuid key; MariaDB ENUM/SET/JSON/YEAR/unsigned."""
    pg_a, pg_b = extra_database("pg"), extra_database("pg")
    for db in (pg_a, pg_b):
        db.run("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        db.run("CREATE TABLE misc (id uuid PRIMARY KEY, iv interval, m mood, j jsonb, n numeric, x xml, "
               "tags text[], ip inet)")
    rows = [(f"00000000-0000-0000-0000-{i:012d}", f"{i} days 02:00:00", "ok", '{"a": 1, "b": [1, 2]}',
             "10.50", "<a>1</a>", ["x", "y"], "10.0.0.1") for i in range(60)]
    pg_a.run("INSERT INTO misc VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows, many=True)
    # Same values spelled differently: numeric scale, JSON spacing/key order.
    pg_b.run("INSERT INTO misc VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
             [(r[0], r[1], r[2], '{"b":[1,2],  "a":1}', "10.5", *r[5:]) for r in rows], many=True)
    assert verify(pg_a.url, pg_b.url, VerifyOptions(**OPTIONS)).exit_code == 0
    pg_b.run("UPDATE misc SET iv = '1 day', m = 'sad', tags = '{x}' WHERE id = '00000000-0000-0000-0000-000000000005'")
    report = verify(pg_a.url, pg_b.url, VerifyOptions(**OPTIONS))
    assert kinds(report, "misc") == {(CHANGED, ("00000000-0000-0000-0000-000000000005",), ("iv", "m", "tags"), 1)}

    my_a, my_b = extra_database("my"), extra_database("my")
    for db in (my_a, my_b):
        db.run("CREATE TABLE misc (id INT UNSIGNED PRIMARY KEY, e ENUM('a','b'), s SET('x','y','z'), j JSON, "
               "y YEAR, big BIGINT UNSIGNED, l VARCHAR(10) CHARACTER SET latin1)")
    my_a.run("INSERT INTO misc VALUES (%s, %s, %s, %s, %s, %s, %s)",
             [(i, "a", "x,z", '{"a": 1, "b": [1, 2]}', 2024, 2**64 - 1 - i, "café") for i in range(60)], many=True)
    my_b.run("INSERT INTO misc VALUES (%s, %s, %s, %s, %s, %s, %s)",
             [(i, "a", "x,z", '{"b":[1,2],"a":1}', 2024, 2**64 - 1 - i, "café") for i in range(60)], many=True)
    assert verify(my_a.url, my_b.url, VerifyOptions(**OPTIONS)).exit_code == 0
    my_b.run("UPDATE misc SET s = 'y', big = 1, l = 'cafe' WHERE id = 7")
    report = verify(my_a.url, my_b.url, VerifyOptions(**OPTIONS))
    assert kinds(report, "misc") == {(CHANGED, (7,), ("big", "l", "s"), 1)}


def test_a_where_clause_the_database_rejects_cannot_be_checked(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE t1 (id INT PRIMARY KEY)")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS, where="no_such_column = 1"))
    [table] = report.tables
    assert table.status == "error" and "no_such_column" in table.error
    assert report.exit_code == 2


def test_uuid_key_matches_char36_in_either_case(extra_database):
    import uuid as uuid_module

    source, target = extra_database("pg"), extra_database("my")
    source.run("CREATE TABLE docs (id uuid PRIMARY KEY, title text)")
    target.run("CREATE TABLE docs (id CHAR(36) PRIMARY KEY, title TEXT)")
    ids = [uuid_module.uuid5(uuid_module.NAMESPACE_URL, str(i)) for i in range(200)]
    source.run("INSERT INTO docs VALUES (%s, %s)", [(str(u), f"t{i}") for i, u in enumerate(ids)], many=True)
    target.run("INSERT INTO docs VALUES (%s, %s)", [(str(u).upper(), f"t{i}") for i, u in enumerate(ids)], many=True)
    assert verify(source.url, target.url, VerifyOptions(**OPTIONS)).exit_code == 0
    target.run("UPDATE docs SET title = 'x' WHERE id = %s", (str(ids[9]).upper(),))
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert kinds(report, "docs") == {(CHANGED, (str(ids[9]),), ("title",), 1)}


def test_listing_stops_at_max_diffs_but_the_table_stays_different(pair):
    source, target = pair
    for db in (source, target):
        db.run("CREATE TABLE big (id INT PRIMARY KEY, v INT)")
    source.run("INSERT INTO big VALUES (%s, %s)", [(i, i) for i in range(2000)], many=True)
    report = verify(source.url, target.url, VerifyOptions(**{**OPTIONS, "max_diffs": 50}))
    [table] = report.tables
    assert table.status == "different" and report.exit_code == 1
    assert 50 <= len(table.diffs) < 2000 and table.unexamined_segments > 0
    assert (table.source_rows, table.target_rows) == (2000, 0)


def test_a_table_apply_parked_is_named_in_the_report(extra_database):
    source, target = extra_database("pg"), extra_database("my")
    for db in (source, target):
        db.run("CREATE TABLE orders (id INT PRIMARY KEY, n INT)")
        db.run("CREATE TABLE audit (id INT PRIMARY KEY, n INT)")
    target.run("CREATE TABLE cdc_table_state (group_id VARCHAR(255), table_name VARCHAR(255), source_position TEXT,"
               " parked TEXT, PRIMARY KEY (group_id, table_name))")
    target.run("INSERT INTO cdc_table_state VALUES ('g', 'public.orders', NULL, 'value too long')")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    notes = {t.name: t.notes for t in report.tables}
    assert sorted(notes) == ["audit", "orders"]  # apply's own table is not compared
    assert any("parked by apply (--on-error skip-table)" in n and "value too long" in n for n in notes["orders"])
    assert not any("parked" in n for n in notes["audit"])
