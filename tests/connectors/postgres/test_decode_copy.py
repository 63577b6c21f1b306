"""`PgoutputDecoder.copy_rows`: rows of `COPY ... TO STDOUT` text decode exactly as Insert messages of the
same values do (both implementations, values read back from the sandbox PostgreSQL)."""

from __future__ import annotations

import pytest

from cdc.errors import DecodeError
from connectors.postgres.decode import copy_unescape
from connectors.postgres.dialect import connect
from connectors.postgres.schema import read_table, table_oid
from connectors.postgres.snapshot import insert_message, last_key_text, relation_message
from tests.connectors.postgres.test_decode import IMPLEMENTATIONS, load_implementation

ROWS = """INSERT INTO t VALUES
  (1, E'tab\\there\\nnew\\\\back\\r\\x01\u00e9', E'\\\\x00ff5c', ARRAY['a\\tb', 'c"d', 'e\\\\f', NULL],
   '{"k": "v\\tw"}', 1.5, 'NaN', '2024-01-01 00:00:00+00', '2024-02-29', '1 day', true, '{1,2}'),
  (2, '\\N', NULL, '{}', 'null', -0.000, 1e300, 'infinity', '-infinity', '-1 mon', false, NULL),
  (3, '', '', ARRAY[''], '[]', 'NaN', -0.0, '1999-12-31 23:59:59.123456+05', '0001-01-01 BC', '00:00:01', NULL,
   '{{1,2},{3,4}}')"""


def test_copy_rows_decode_like_insert_messages(pg_database):
    with connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, s text, b bytea, a text[], j jsonb, n numeric, f float8,"
                     " ts timestamptz, d date, i interval, bo bool, ia int[])")
        conn.execute(ROWS)
        relid = table_oid(conn, "public", "t")
        table = read_table(conn, relid)
        cursor = conn.cursor()
        cursor.execute("SELECT * FROM t ORDER BY id")
        texts = [[cursor.pgresult.get_value(r, c) for c in range(cursor.pgresult.nfields)]
                 for r in range(cursor.pgresult.ntuples)]
        with cursor.copy("COPY (SELECT * FROM t ORDER BY id) TO STDOUT") as copy:
            data = b"".join(copy)
    assert b"\\t" in data and b"\\N" in data  # escapes and NULLs really are in the COPY text
    results = []
    for name in IMPLEMENTATIONS:
        decoder = load_implementation(name).PgoutputDecoder()
        decoder.decode(relation_message(table), 0)
        expected = [decoder.decode(insert_message(relid, values), 0)[3] for values in texts]
        got = decoder.copy_rows(relid, data)
        assert got == expected and [list(map(type, r.values())) for r in got] == \
            [list(map(type, r.values())) for r in expected]
        results.append(got)
        for bad in (data[:-1], b"1\t2\n", data.replace(b"\n", b"\tx\n", 1)):
            with pytest.raises(DecodeError, match="COPY row"):
                decoder.copy_rows(relid, bad)
    assert results[0][1]["s"] == "\\N" and results[0][1]["b"] is None
    assert last_key_text(data, [0, 1]) == ["3", ""]


def test_copy_unescape():
    assert copy_unescape(b"a\\tb\\\\c\\nd\\101\\x41\\x4g\\q\\") == b"a\tb\\c\ndAA\x04gq\\"
    assert copy_unescape(b"\\b\\f\\r\\v\\0\\377") == b"\b\f\r\v\x00\xff"
