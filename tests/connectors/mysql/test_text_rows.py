"""Chunk rows read straight from the wire into JSON (connectors.mysql.raw_query + the text_rows twins):
byte for byte what the snapshot converters and orjson make of PyMySQL's rows, in both twins."""

from __future__ import annotations

import orjson
import pytest

from cdc.impl import implementations
from connectors.mysql.dialect import connect
from connectors.mysql.raw_query import select_rows_json
from connectors.mysql.snapshot import describe_table, snapshot_connection_kwargs

TWINS = implementations("connectors.mysql.text_rows")

TYPED_TABLE = (
    "CREATE TABLE typed (id BIGINT PRIMARY KEY, tiny TINYINT, small SMALLINT UNSIGNED ZEROFILL, big BIGINT UNSIGNED, "
    "neg INT, amount DECIMAL(12,3), ratio DOUBLE, f FLOAT, name VARCHAR(40), note TEXT, "
    "d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL, t TIME(2), y YEAR, flag BIT(5), raw VARBINARY(8), "
    "kind ENUM('a','b'), tags SET('x','y'), doc JSON, latin VARCHAR(10) CHARACTER SET latin1)"
)
ROWS = [
    "(1, -128, 7, 18446744073709551615, -2147483648, -123456789.125, 0.1, 1.5, 'plain', NULL, '2024-02-29', "
    "'2024-02-29 23:59:59.123456', '2024-02-29 10:00:00.5', '-838:59:59', 2024, b'10101', x'00ff10', 'a', 'x,y', "
    "'{\"k\": [1, 2.5, \"é\"]}', 'café')",
    "(2, 0, 0, 0, 0, 0, -1e300, -0, 'quote \" back \\\\ slash', 'tab\\there\\nnew', '0000-00-00', "
    "'0000-00-00 00:00:00', NULL, '00:00:00', 0000, b'0', '', 'b', '', 'null', '')",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'ünïcödé ☃ 😀', CONCAT('ctl', CHAR(1), 'x'), NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


@pytest.fixture
def typed(mysql_database: str):
    conn = connect(mysql_database, **snapshot_connection_kwargs())
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = ''")  # zero dates
        cursor.execute(TYPED_TABLE)
        cursor.execute("INSERT INTO typed VALUES " + ", ".join(ROWS))
    yield conn, describe_table(conn, mysql_database.rsplit("/", 1)[1], "typed")
    conn.close()


def expected_rows(conn, table, sql: str) -> list[tuple[None, bytes, None, bytes]]:
    """What the dict path gives: PyMySQL's rows through the snapshot converters, then orjson."""
    names = [column.name for column in table.schema.columns]
    with conn.cursor() as cursor:
        cursor.execute(sql)
        raw = cursor.fetchall()
    out = []
    for values in raw:
        row = {name: (None if value is None else convert(value))
               for name, value, convert in zip(names, values, table.converters)}
        out.append((None, orjson.dumps(row), None, orjson.dumps({"id": row["id"]})))
    return out


@pytest.mark.parametrize("impl", ["python", "cython"])
def test_rows_read_from_the_wire_are_the_converted_rows_as_orjson_writes_them(typed, impl: str) -> None:
    twin = TWINS[impl]
    if twin is None:
        pytest.skip("the compiled twin is not built")
    conn, table = typed
    names = tuple(column.name for column in table.schema.columns)
    sql = f"SELECT {', '.join(table.expressions)} FROM typed ORDER BY id"
    rows, last_key = select_rows_json(conn, sql, table.kinds, table.converters, names,
                                      tuple(orjson.dumps(name) + b":" for name in names), (0,), (b'{"id":',),
                                      text_rows=twin)
    assert rows == expected_rows(conn, table, sql)
    assert last_key == (b"3",)
    assert orjson.loads(rows[0][1])["small"] == 7 and orjson.loads(rows[1][1])["d"] is None


@pytest.mark.parametrize("impl", ["python", "cython"])
def test_many_rows_cross_block_boundaries_and_an_empty_result_has_no_last_key(typed, impl: str) -> None:
    twin = TWINS[impl]
    if twin is None:
        pytest.skip("the compiled twin is not built")
    conn, table = typed
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO typed (id, name, note) SELECT seq + 10, CONCAT('n', seq), REPEAT('x', seq % 300) "
                       "FROM seq_1_to_5000")
    names = tuple(column.name for column in table.schema.columns)
    json_names = tuple(orjson.dumps(name) + b":" for name in names)
    sql = f"SELECT {', '.join(table.expressions)} FROM typed ORDER BY id"
    rows, last_key = select_rows_json(conn, sql, table.kinds, table.converters, names, json_names, (0,),
                                      (b'{"id":',), text_rows=twin)
    assert rows == expected_rows(conn, table, sql)
    assert last_key == (b"5010",)
    empty, none = select_rows_json(conn, sql.replace("ORDER BY", "WHERE id < 0 ORDER BY"), table.kinds,
                                   table.converters, names, json_names, (0,), (b'{"id":',), text_rows=twin)
    assert (empty, none) == ([], None)


def test_a_failing_query_raises_and_the_next_query_works(typed) -> None:
    conn, table = typed
    names = tuple(column.name for column in table.schema.columns)
    with pytest.raises(Exception, match="nope"):
        select_rows_json(conn, "SELECT nope FROM typed", table.kinds, table.converters, names,
                         tuple(orjson.dumps(name) + b":" for name in names), (0,), (b'{"id":',))
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM typed")
        assert int(cursor.fetchone()[0]) == 3
