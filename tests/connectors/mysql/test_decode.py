"""The binlog row decoder, Cython and pure-Python twin on the same cases: values from a real MariaDB.

Every value case is written to the sandbox MariaDB, read back from its binlog and decoded by both
implementations, which must give the readable form docs/event-format.md promises, and the same one.
"""

from __future__ import annotations

import base64
import struct

import pytest

from cdc.compat import Geometry

from cdc.errors import DecodeError
from connectors.mysql import decode as twin
from connectors.mysql.binlog import ROWS_EVENTS, TABLE_MAP_EVENT
from connectors.mysql.decoder import RowDecoder
from connectors.mysql.schema import table_map_schema
from connectors.mysql.table_map import parse_table_map
from tests.connectors.mysql.mysql_binlog_capture import record_events

try:
    from cdc._ext import binlog_rows as compiled
except ImportError:  # not built: the Cython cases are skipped, the twin still runs
    compiled = None

IMPLEMENTATIONS = [
    pytest.param(twin, id="twin"),
    pytest.param(compiled, id="cython",
                 marks=pytest.mark.skipif(compiled is None, reason="cdc._ext.binlog_rows is not built")),
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


POINT_1_2 = b64(b"\x01\x01\x00\x00\x00" + struct.pack("<dd", 1.0, 2.0))

# (column type, SQL literal, readable value)
CASES = [
    ("TINYINT", "-128", -128),
    ("TINYINT UNSIGNED", "255", 255),
    ("TINYINT(1)", "1", 1),
    ("SMALLINT", "-32768", -32768),
    ("SMALLINT UNSIGNED", "65535", 65535),
    ("MEDIUMINT", "-8388608", -8388608),
    ("MEDIUMINT UNSIGNED", "16777215", 16777215),
    ("INT", "-2147483648", -2147483648),
    ("INT UNSIGNED", "4294967295", 4294967295),
    ("BIGINT", "-9223372036854775808", -9223372036854775808),
    ("BIGINT UNSIGNED", "18446744073709551615", 18446744073709551615),
    ("DECIMAL(10,2)", "10.50", "10.50"),
    ("DECIMAL(10,2)", "-0.05", "-0.05"),
    ("DECIMAL(5,0)", "-12345", "-12345"),
    ("DECIMAL(9,9)", "0.123456789", "0.123456789"),
    ("DECIMAL(20,10)", "0", "0.0000000000"),
    ("DECIMAL(18,9)", "-999999999.999999999", "-999999999.999999999"),
    ("DECIMAL(65,30)", "-12345678901234567890123456789012345.123456789012345678901234567890",
     "-12345678901234567890123456789012345.123456789012345678901234567890"),
    ("DECIMAL(65,0)", "9" * 65, "9" * 65),
    ("DECIMAL(12,4) UNSIGNED", "3.1400", "3.1400"),
    ("FLOAT", "1.1", 1.1),
    ("FLOAT", "-3.4028235e38", -3.4028235e38),
    ("DOUBLE", "2.5e300", 2.5e300),
    ("DOUBLE", "-0.1", -0.1),
    ("BIT(1)", "b'1'", "1"),
    ("BIT(10)", "b'0101010101'", "0101010101"),
    ("BIT(64)", "b'" + "1" * 64 + "'", "1" * 64),
    ("BIT(9)", "b'000000001'", "000000001"),
    ("DATE", "'2024-02-29'", "2024-02-29"),
    ("DATE", "'1000-01-01'", "1000-01-01"),
    ("DATE", "'9999-12-31'", "9999-12-31"),
    ("DATE", "'0000-00-00'", None),
    ("DATETIME", "'2024-02-29 13:45:00'", "2024-02-29T13:45:00"),
    ("DATETIME(1)", "'2024-02-29 13:45:00.5'", "2024-02-29T13:45:00.5"),
    ("DATETIME(3)", "'2024-02-29 13:45:00.123'", "2024-02-29T13:45:00.123"),
    ("DATETIME(3)", "'2024-02-29 13:45:00'", "2024-02-29T13:45:00.000"),
    ("DATETIME(6)", "'9999-12-31 23:59:59.999999'", "9999-12-31T23:59:59.999999"),
    ("DATETIME", "'0000-00-00 00:00:00'", None),
    ("TIMESTAMP(6) NULL", "'2024-02-29 12:45:00.123456'", "2024-02-29T12:45:00.123456Z"),
    ("TIMESTAMP NULL", "'1970-01-01 00:00:01'", "1970-01-01T00:00:01Z"),
    ("TIMESTAMP(2) NULL", "'2038-01-19 03:14:07.99'", "2038-01-19T03:14:07.99Z"),
    ("TIME", "'-838:59:59'", "-838:59:59"),
    ("TIME", "'838:59:59'", "838:59:59"),
    ("TIME", "'00:00:00'", "00:00:00"),
    ("TIME(6)", "'-00:00:00.000001'", "-00:00:00.000001"),
    ("TIME(2)", "'-01:02:03.45'", "-01:02:03.45"),
    ("TIME(3)", "'-00:00:01.5'", "-00:00:01.500"),
    ("TIME(4)", "'123:00:00.0001'", "123:00:00.0001"),
    ("TIME(5)", "'-12:34:56.12345'", "-12:34:56.12345"),
    ("YEAR", "2024", 2024),
    ("YEAR", "1901", 1901),
    ("YEAR", "0", 0),
    ("CHAR(5)", "'ab'", "ab"),
    ("VARCHAR(300)", "'é€😀'", "é€😀"),
    ("VARCHAR(10) CHARACTER SET latin1", "'café €'", "café €"),
    ("VARCHAR(10) CHARACTER SET utf16", "'hé😀'", "hé😀"),
    ("CHAR(3) CHARACTER SET ascii", "'abc'", "abc"),
    ("TINYTEXT", "'tiny'", "tiny"),
    ("TEXT", "'ünïcode'", "ünïcode"),
    ("MEDIUMTEXT", "REPEAT('x', 70000)", "x" * 70000),
    ("LONGTEXT", "'long'", "long"),
    ("BINARY(4)", "'ab'", b64(b"ab\x00\x00")),
    ("VARBINARY(10)", "x'00ff'", b64(b"\x00\xff")),
    ("VARBINARY(300)", "REPEAT(x'01', 300)", b64(b"\x01" * 300)),
    ("TINYBLOB", "x'01'", b64(b"\x01")),
    ("BLOB", "x'deadbeef'", b64(b"\xde\xad\xbe\xef")),
    ("MEDIUMBLOB", "''", ""),
    ("LONGBLOB", "x'00'", b64(b"\x00")),
    ("ENUM('a','b','c')", "'b'", "b"),
    ("ENUM('é','ü')", "'ü'", "ü"),
    ("SET('x','y','z')", "'x,z'", "x,z"),
    ("SET('x','y','z')", "''", ""),
    ("JSON", "'{\"a\": [1, 2.5, \"x\"]}'", '{"a": [1, 2.5, "x"]}'),
    ("GEOMETRY", "ST_GeomFromText('POINT(1 2)')", POINT_1_2),
    ("POINT", "POINT(1, 2)", POINT_1_2),
    ("GEOMETRY NULL", "ST_GeomFromText('POINT(1 2)', 4326)", Geometry(POINT_1_2, 4326)),
    ("INT", "NULL", None),
    ("VARCHAR(5)", "NULL", None),
]


@pytest.fixture(scope="module")
def case_events(mysql_url: str):
    """One table with a column per case; an insert, an update of every column, a delete."""
    from cdc.urls import parse_url

    from connectors.mysql.dialect import connect

    database = "t_binlog_rows_cases"
    admin = connect(mysql_url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    admin.close()
    url = mysql_url.rsplit("/", 1)[0] + "/" + database
    parse_url(url)
    columns = ", ".join(f"c{i} {ddl}" for i, (ddl, _, _) in enumerate(CASES))
    values = ", ".join(literal for _, literal, _ in CASES)

    def work(cursor):
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute(f"CREATE TABLE cases (id INT PRIMARY KEY, {columns})")
        cursor.execute(f"INSERT INTO cases VALUES (1, {values})")
        cursor.execute("UPDATE cases SET id = 2 WHERE id = 1")
        cursor.execute("DELETE FROM cases WHERE id = 2")

    events = record_events(url, work)
    yield events
    admin = connect(mysql_url)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
    admin.close()


def decode_all(events, implementation) -> list:
    decoder = RowDecoder(implementation=implementation)
    decoded = []
    for event in events:
        if event.type == TABLE_MAP_EVENT:
            decoder.table_map(event.body, event.where)
        elif event.type in ROWS_EVENTS:
            table, rows = decoder.rows(event.body, event.type, event.where)
            decoded.append((event.type, table.qualified_name, rows))
    return decoded


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_value_case_decodes_to_its_readable_form(case_events, implementation) -> None:
    decoded = decode_all(case_events, implementation)
    assert [kind for kind, _, _ in decoded] == [23, 24, 25]
    (_, _, [(_, inserted)]) = decoded[0]
    (_, _, [(before, after)]) = decoded[1]
    (_, _, [(deleted, _)]) = decoded[2]
    expected = {"id": 1, **{f"c{i}": value for i, (_, _, value) in enumerate(CASES)}}
    mismatches = {name: (inserted[name], expected[name], CASES[int(name[1:])][0] if name != "id" else "")
                  for name in expected if inserted[name] != expected[name] or type(inserted[name]) is not type(expected[name])}
    assert mismatches == {}
    assert before == inserted
    assert after == {**inserted, "id": 2}
    assert deleted == after


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_geometry_keeps_its_srid_for_the_debezium_form(case_events, implementation) -> None:
    (_, _, [(_, inserted)]) = decode_all(case_events, implementation)[0]
    index = next(i for i, case in enumerate(CASES) if case[0] == "GEOMETRY NULL")
    assert inserted[f"c{index}"].srid == 4326
    plain = next(i for i, case in enumerate(CASES) if case[0] == "POINT")
    assert not hasattr(inserted[f"c{plain}"], "srid")


@pytest.mark.skipif(compiled is None, reason="cdc._ext.binlog_rows is not built")
def test_cython_and_twin_give_identical_rows(case_events) -> None:
    assert decode_all(case_events, compiled) == decode_all(case_events, twin)


def test_table_map_gives_names_kinds_and_source_types(case_events) -> None:
    body = next(event.body for event in case_events if event.type == TABLE_MAP_EVENT)
    table = parse_table_map(body)
    assert table.database == "t_binlog_rows_cases" and table.table == "cases"
    assert table.primary_key == ("id",)
    columns = {column.name: column for column in table_map_schema(table).columns}

    def column(ddl: str):
        return columns[f"c{next(i for i, case in enumerate(CASES) if case[0] == ddl)}"]

    assert column("BIGINT UNSIGNED").kind == "int" and column("BIGINT UNSIGNED").unsigned
    assert column("BIGINT UNSIGNED").source_type == "BIGINT UNSIGNED"
    assert column("DECIMAL(65,30)").kind == "decimal"
    assert (column("DECIMAL(65,30)").precision, column("DECIMAL(65,30)").scale) == (65, 30)
    assert column("TIMESTAMP(6) NULL").kind == "timestamptz" and column("DATETIME(6)").kind == "timestamp"
    assert column("DATETIME(3)").source_type == "DATETIME(3)" and column("DATETIME(3)").precision == 3
    assert column("BINARY(4)").kind == "bytes" and column("BINARY(4)").source_type == "BINARY(4)"
    assert column("VARCHAR(300)").kind == "string" and column("VARCHAR(300)").source_type == "VARCHAR(300)"
    assert column("VARCHAR(300)").charset == "utf8mb4"
    assert column("VARCHAR(10) CHARACTER SET latin1").charset == "latin1"
    assert column("ENUM('a','b','c')").kind == "enum" and column("ENUM('a','b','c')").values == ("a", "b", "c")
    assert column("SET('x','y','z')").kind == "set"
    assert column("BIT(10)").kind == "bits" and column("BIT(10)").length == 10
    assert column("YEAR").kind == "year" and column("POINT").kind == "geometry"
    assert column("POINT").source_type == "POINT"
    assert column("TEXT").source_type == "TEXT" and column("BLOB").source_type == "BLOB"
    assert columns["id"].primary_key and not columns["id"].nullable


def test_rows_before_their_table_map_are_a_decode_error(case_events) -> None:
    rows_event = next(event for event in case_events if event.type in ROWS_EVENTS)
    with pytest.raises(DecodeError, match="without a TABLE_MAP"):
        RowDecoder().rows(rows_event.body, rows_event.type, rows_event.where)


def test_alter_table_keeps_decoding_with_the_new_table_map(mysql_database: str) -> None:
    def work(cursor):
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(5))")
        cursor.execute("INSERT INTO t VALUES (1, 'x')")
        cursor.execute("ALTER TABLE t ADD COLUMN b DECIMAL(6,2) DEFAULT 1.5, MODIFY a VARCHAR(500)")
        cursor.execute("INSERT INTO t VALUES (2, 'y', 2.25)")

    events = record_events(mysql_database, work)
    for implementation in (twin, compiled) if compiled else (twin,):
        rows = [rows for _, _, rows in decode_all(events, implementation)]
        assert rows == [[(None, {"id": 1, "a": "x"})], [(None, {"id": 2, "a": "y", "b": "2.25"})]]


def test_snapshot_reads_the_same_values_and_schema_as_the_binlog(case_events, mysql_url: str) -> None:
    """A row read by the snapshot and the same row decoded from the binlog are identical, schema too."""
    from connectors.mysql.dialect import connect
    from connectors.mysql.snapshot import describe_table, read_rows, snapshot_connection_kwargs

    decoded = decode_all(case_events, twin)
    (_, _, [(_, inserted)]) = decoded[0]
    table_map = parse_table_map(next(event.body for event in case_events if event.type == TABLE_MAP_EVENT))
    database = "t_binlog_rows_snapshot"
    columns = ", ".join(f"c{i} {ddl}" for i, (ddl, _, _) in enumerate(CASES))
    values = ", ".join(literal for _, literal, _ in CASES)
    conn = connect(mysql_url, **snapshot_connection_kwargs())
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
            cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
            cursor.execute(f"CREATE TABLE {database}.cases (id INT PRIMARY KEY, {columns})")
            cursor.execute(f"INSERT INTO {database}.cases VALUES (1, {values})")
        table = describe_table(conn, database, "cases")
        rows = list(read_rows(conn, table, chunk=10))
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        conn.close()
    assert len(rows) == 1
    differences = {name: (rows[0][name], inserted[name]) for name in inserted if rows[0][name] != inserted[name]}
    assert differences == {}
    binlog_columns = {c.name: c for c in table_map_schema(table_map).columns}
    schema_differences = {c.name: (c, binlog_columns[c.name]) for c in table.schema.columns
                          if c != binlog_columns[c.name]}
    assert schema_differences == {}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_mariadb_compressed_rows_events_decode_like_plain_ones(case_events, implementation) -> None:
    """log_bin_compress=ON: MariaDB zlib-compresses the row images after the bitmaps (event types 166-171)."""
    import zlib

    decoder = RowDecoder(implementation=implementation)
    for event in case_events:
        if event.type == TABLE_MAP_EVENT:
            table = decoder.table_map(event.body)
    count = len(table.columns)
    for event in (e for e in case_events if e.type in (23, 24)):
        header = 8 + 1 + ((count + 7) // 8) * (2 if event.type == 24 else 1)
        rows = event.body[header:]
        compressed = event.body[:header] + bytes([0x83]) + len(rows).to_bytes(3, "big") + zlib.compress(rows)
        compressed_type = {23: 166, 24: 167}[event.type]
        assert decoder.rows(compressed, compressed_type)[1] == decoder.rows(event.body, event.type)[1]
        with pytest.raises(DecodeError, match="inflate"):
            decoder.rows(compressed[:-3], compressed_type)
