"""The native row hash (MariaDB -> MariaDB with identical column types), and BIT_XOR only where rows are unique."""

from __future__ import annotations

import itertools

import pytest

from cdc.urls import parse_url
from cdc.verify import parity as parity_module
from cdc.verify.bisect import TableBisector
from cdc.verify.checksum import checksum_aggregate
from cdc.verify.diff import CHANGED, EXTRA, MISSING
from cdc.verify.parity import dialect_for, verify
from cdc.verify.plan import TablePlan, VerifyOptions
from connectors.mysql.checksum import MysqlChecksumDialect
from connectors.postgres.checksum import PostgresChecksumDialect

OPTIONS = dict(threshold=20, segment_rows=100, workers=2, recheck_delay=0)
# Values that a careless row text could confuse: NULL, '', the NULL token, the separator, a fake length prefix.
TEXTS = [None, "", "N", "|", "0|", "1|x", "x|", "é"]
BLOBS = [None, b"", b"N", b"|", b"\x00", b"0|"]


@pytest.fixture
def bisectors(monkeypatch) -> list[TableBisector]:
    """The table bisectors `verify` makes, to read which row hash and aggregate each one used."""
    made: list[TableBisector] = []

    class Recording(TableBisector):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(parity_module, "TableBisector", Recording)
    return made


def create_texts(db, rows: int = 400) -> None:
    """A keyed table whose string, text and blob columns cycle through NULL, '' and separator-like values."""
    db.run("CREATE TABLE texts (id INT PRIMARY KEY, s VARCHAR(20), t TEXT, b BLOB, vb VARBINARY(8) NOT NULL, n INT)")
    db.run("INSERT INTO texts VALUES (%s, %s, %s, %s, %s, %s)",
           [(i, TEXTS[i % 8], TEXTS[i // 8 % 8], BLOBS[i % 6], b"v%d" % (i % 3), None if i % 5 else i)
            for i in range(rows)], many=True)


def found(report) -> set[tuple]:
    [table] = report.tables
    assert table.error is None, table.error
    return {(d.kind, tuple(d.key.values()), tuple(sorted(c.column for c in d.columns)), d.count) for d in table.diffs}


def aggregates(bisector: TableBisector) -> tuple[bool, str, str]:
    return bisector.native, bisector.source.aggregate, bisector.target.aggregate


def test_tricky_text_values_hash_distinctly(extra_database):
    """NULL, '' and values that look like separators or length prefixes never give the same row text."""
    db = extra_database("my")
    db.run("CREATE TABLE pairs (id INT PRIMARY KEY, s VARCHAR(20), t TEXT, b BLOB)")
    combos = list(itertools.product(TEXTS, TEXTS, BLOBS))
    db.run("INSERT INTO pairs VALUES (%s, %s, %s, %s)", [(i, *combo) for i, combo in enumerate(combos)], many=True)
    dialect = dialect_for(parse_url(db.url))
    conn = dialect.connect()
    try:
        columns = [column for column in dialect.read_table(conn, "pairs").columns if column.name != "id"]
        row_hash = dialect.native_row_hash(conn, columns, "pairs")
        hashes = [row[0] for row in dialect.execute(conn, f"SELECT {row_hash} FROM pairs")]
    finally:
        conn.close()
    assert len(hashes) == len(combos) and len(set(hashes)) == len(combos)


def test_equal_tables_with_nulls_and_empty_strings_are_equal_on_the_native_path(extra_database, bisectors):
    source, target = extra_database("my"), extra_database("my")
    create_texts(source)
    create_texts(target)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert (table.status, table.checksum, table.source_rows, table.target_rows) == ("equal", "native", 400, 400)
    assert [aggregates(b) for b in bisectors] == [(True, "BIT_XOR", "BIT_XOR")]


def test_seeded_differences_are_found_exactly_with_the_xor_aggregate(extra_database, bisectors):
    source, target = extra_database("my"), extra_database("my")
    create_texts(source)
    create_texts(target)
    target.run("UPDATE texts SET s = NULL WHERE id = 9")          # '' -> NULL
    target.run("UPDATE texts SET t = '' WHERE id = 3")            # NULL -> ''
    target.run("UPDATE texts SET b = NULL WHERE id = 13")         # b'' -> NULL
    target.run("UPDATE texts SET s = 'N|' WHERE id = 2")          # 'N' -> 'N|'
    target.run("DELETE FROM texts WHERE id = 77")
    target.run("INSERT INTO texts VALUES (1000, NULL, '', NULL, 'v', NULL)")
    # Swap the t values of rows 100 and 300 (different t, same everything else): each row changes.
    target.run("UPDATE texts SET t = CASE id WHEN 100 THEN %s ELSE %s END WHERE id IN (100, 300)",
               (TEXTS[300 // 8 % 8], TEXTS[100 // 8 % 8]))
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert found(report) == {
        (CHANGED, (9,), ("s",), 1), (CHANGED, (3,), ("t",), 1), (CHANGED, (13,), ("b",), 1),
        (CHANGED, (2,), ("s",), 1), (MISSING, (77,), (), 1), (EXTRA, (1000,), (), 1),
        (CHANGED, (100,), ("t",), 1), (CHANGED, (300,), ("t",), 1),
    }
    assert report.tables[0].segments_compared > 5  # it bisected; it did not download the table
    assert [aggregates(b) for b in bisectors] == [(True, "BIT_XOR", "BIT_XOR")]


def test_keyless_table_keeps_sum_and_finds_duplicates_xor_would_cancel(extra_database, bisectors):
    """{a, b, b} vs {a, c, c}: same count and same XOR (b^b = c^c = 0), different sums."""
    source, target = extra_database("my"), extra_database("my")
    for db in (source, target):
        db.run("CREATE TABLE log (what VARCHAR(20), payload BLOB)")
    source.run("INSERT INTO log VALUES ('a', 'x'), ('b', NULL), ('b', NULL)")
    target.run("INSERT INTO log VALUES ('a', 'x'), ('c', ''), ('c', '')")
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    [table] = report.tables
    assert (table.mode, table.checksum) == ("multiset", "native")
    assert {(d.kind, d.key["what"], d.count) for d in table.diffs} == {(MISSING, "b", 2), (EXTRA, "c", 2)}
    assert [aggregates(b) for b in bisectors] == [(True, "SUM", "SUM")]


class _Postgres14(PostgresChecksumDialect):
    unique_rows_aggregate = "BIT_XOR"  # what `connect` sets on PostgreSQL 14 and later


@pytest.mark.parametrize("mode, dialects, expected", [
    ("range", (MysqlChecksumDialect, MysqlChecksumDialect), "BIT_XOR"),
    ("hash", (MysqlChecksumDialect, MysqlChecksumDialect), "BIT_XOR"),
    ("multiset", (MysqlChecksumDialect, MysqlChecksumDialect), "SUM"),
    ("range", (PostgresChecksumDialect, PostgresChecksumDialect), "SUM"),
    ("range", (_Postgres14, _Postgres14), "BIT_XOR"),
    ("range", (_Postgres14, MysqlChecksumDialect), "BIT_XOR"),
    ("multiset", (_Postgres14, MysqlChecksumDialect), "SUM"),
    ("range", (PostgresChecksumDialect, MysqlChecksumDialect), "SUM"),
])
def test_xor_only_for_unique_rows_on_engines_that_have_it(mode, dialects, expected):
    plan = TablePlan("t", "t", "t", key=() if mode == "multiset" else ("id",), mode=mode, pairs=[])
    assert checksum_aggregate(plan, *dialects) == expected


def test_different_character_sets_take_the_canonical_path(extra_database, bisectors):
    """utf8mb4 and latin1 store 'é' as different bytes: the native hash would differ, the canonical text not."""
    source, target = extra_database("my"), extra_database("my")
    source.run("CREATE TABLE names (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4)")
    target.run("CREATE TABLE names (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET latin1)")
    for db in (source, target):
        db.run("INSERT INTO names VALUES (%s, %s)", [(i, f"é{i}") for i in range(50)], many=True)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert report.exit_code == 0
    [bisector] = bisectors
    assert not bisector.native
    [table] = report.tables
    assert table.differing_segments == 0


def test_keyed_table_across_engines_uses_xor_and_finds_a_swap(extra_database, bisectors):
    """PG 14+ -> MariaDB hashes canonically on both sides and aggregates with XOR (the table has a key):
    two rows that swap a value between them, and a changed row, are still found."""
    source, target = extra_database("pg"), extra_database("my")
    source.run("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score DOUBLE PRECISION)")
    target.run("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score DOUBLE)")
    rows = [(i, f"n{i}", i / 7) for i in range(300)]
    source.run("INSERT INTO t VALUES (%s, %s, %s)", rows, many=True)
    rows[10], rows[11] = (10, "n11", 10 / 7), (11, "n10", 11 / 7)  # the names swapped between two rows
    rows[200] = (200, "n200", 200 / 7 + 2**-40)
    target.run("INSERT INTO t VALUES (%s, %s, %s)", rows, many=True)
    report = verify(source.url, target.url, VerifyOptions(**OPTIONS))
    assert found(report) == {(CHANGED, (10,), ("name",), 1), (CHANGED, (11,), ("name",), 1),
                             (CHANGED, (200,), ("score",), 1)}
    [bisector] = bisectors
    assert not bisector.native
    assert aggregates(bisector)[1:] == ("BIT_XOR", "BIT_XOR")  # the sandbox's PostgreSQL is 14 or later
