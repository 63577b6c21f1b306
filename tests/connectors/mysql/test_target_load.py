"""MariaDB target: batches of snapshot reads go through LOAD DATA LOCAL INFILE, with the INSERT path's result."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from cdc.events import Column
from tests.apply.scenario import Stream, applier, execute, rows, table

KEY = Column("id", "int", "int", nullable=False, primary_key=True, length=4)
TRICKY = [
    Column("tx", "longtext", "string"),
    Column("vc", "varchar(40)", "string", length=40),
    Column("blb", "blob", "bytes"),
    Column("js", "json", "json"),
    Column("dec", "decimal(38,10)", "decimal", precision=38, scale=10),
    Column("f8", "double", "float", length=8),
    Column("dtm", "datetime(6)", "timestamp", precision=6),
    Column("d", "date", "date"),
    Column("t", "time(6)", "time", precision=6),
    Column("bits", "bit(4)", "bits", length=4),
    Column("tz", "timestamp(3)", "timestamptz", precision=3),
    Column("bu", "bigint unsigned", "int", length=8, unsigned=True),
    Column("f4", "float", "float", length=4),
    Column("en", "enum('sad','ok')", "enum", values=("sad", "ok")),
    Column("st", "set('a','b','c')", "set", values=("a", "b", "c")),
    Column("yr", "year", "year"),
]
VALUES = [
    {"tx": "tab\there\nnew line\r\\N back\\slash 'q' \"dq\" \x00nul", "vc": "", "blb": "AAkKDVxOAP8=",
     "js": '{"a": "x\\ty\\n\\"z\\\\", "u": "\\u00e9😀"}', "dec": "-1234567890123456789012345678.0123456789",
     "f8": 0.1 + 0.2, "dtm": "2024-02-29T13:45:00.000001", "d": "0001-01-01", "t": "-838:59:59.000000",
     "bits": "1010", "tz": "2024-02-29T12:45:00.123Z", "bu": 18446744073709551615, "f4": 0.1, "en": "ok",
     "st": "a,c", "yr": 2024},
    {"tx": "\\N", "vc": "héllo ✓ 😀", "blb": "", "js": "[]", "dec": "0.0000000001", "f8": -1.7976931348623157e308,
     "dtm": "9999-12-31T23:59:59.999999", "d": "2024-02-29", "t": "00:00:00.5", "bits": "0",
     "tz": "1970-01-01T00:00:01Z", "bu": 0, "f4": -3.4028234663852886e38, "en": "sad", "st": "", "yr": 1901},
    {"tx": None, "vc": None, "blb": None, "js": None, "dec": None, "f8": None, "dtm": None, "d": None, "t": None,
     "bits": None, "tz": None, "bu": None, "f4": None, "en": None, "st": None, "yr": None},
    {"tx": "", "vc": "\t", "blb": "XA==", "js": '"\\\\"', "dec": "9999999999999999999999999999.9999999999",
     "f8": 5e-324, "dtm": "1970-01-01T00:00:00", "d": "1000-01-01", "t": "838:59:59", "bits": "1111",
     "tz": "2038-01-19T03:14:07.999Z", "bu": 1, "f4": 1.0000001, "en": "ok", "st": "b", "yr": 2155},
]


def _counting_loads(writer) -> list[int]:
    loads: list[int] = []
    load = writer._load

    def counted(tail, text):
        loaded = load(tail, text)
        loads.append(loaded[0])
        return loaded
    writer._load = counted
    return loads


def test_snapshot_reads_are_loaded_with_the_values_the_insert_path_writes(mysql_database):
    loaded, inserted = table("mysql", "loaded", [KEY, *TRICKY]), table("mysql", "inserted", [KEY, *TRICKY])
    stream = Stream()
    apply = applier(mysql_database, loaded, inserted)
    loads = _counting_loads(apply.writer)
    records = []
    for i, row in enumerate(VALUES):
        records += stream.change("r", loaded, None, {"id": i} | row)
    apply.apply(records)
    assert loads == [len(VALUES)]
    scratch = apply.writer._load_dir  # private (0700) and emptied after each load
    assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o700 and os.listdir(scratch) == []
    apply.apply([r for i, row in enumerate(VALUES) for r in stream.insert(inserted, {"id": i} | row)])
    assert loads == [len(VALUES)]
    names = ", ".join(f"`{c.name}`" for c in [KEY, *TRICKY])
    got = rows(mysql_database, f"SELECT {names} FROM loaded ORDER BY id")
    assert got == rows(mysql_database, f"SELECT {names} FROM inserted ORDER BY id")
    assert len(got) == len(VALUES) and got[2][1:] == (None,) * len(TRICKY) and got[3][1] == ""
    assert got[0][3] == b"\x00\t\n\r\\N\x00\xff" and got[3][3] == b"\\"
    apply.writer.close()
    assert not os.path.exists(scratch)


def test_reads_of_keys_already_there_are_upserted_and_the_next_batches_too(mysql_database):
    schema = table("mysql", "items", [KEY, Column("tx", "text", "string")])
    stream = Stream()
    apply = applier(mysql_database, schema)
    loads = _counting_loads(apply.writer)
    apply.apply(stream.change("r", schema, None, {"id": 1, "tx": "a"}))
    apply.apply(stream.change("r", schema, None, {"id": 1, "tx": "b"})
                + stream.change("r", schema, None, {"id": 2, "tx": "c"}))
    apply.apply(stream.change("r", schema, None, {"id": 3, "tx": "d"}))
    assert loads == [1, 1]  # the second load skipped the key already there: rolled back, upserted; the third upserted
    assert rows(mysql_database, "SELECT id, tx FROM items ORDER BY id") == [(1, "b"), (2, "c"), (3, "d")]


def test_a_row_the_load_would_skip_is_refused_as_the_insert_path_refuses_it(mysql_database):
    schema = table("mysql", "items", [KEY, Column("tx", "varchar(10)", "string", length=10)])
    # LOAD DATA LOCAL skips the row with a warning; the INSERT path reports it (error 4025)
    execute(mysql_database, "CREATE TABLE items (id int PRIMARY KEY, tx varchar(10) CHECK (tx <> 'abcdef'))")
    stream = Stream()
    apply = applier(mysql_database, schema)
    with pytest.raises(Exception, match="4025"):
        apply.apply(stream.change("r", schema, None, {"id": 1, "tx": "a"})
                    + stream.change("r", schema, None, {"id": 2, "tx": "abcdef"}))
    assert rows(mysql_database, "SELECT id, tx FROM items ORDER BY id") == []


def test_a_server_refusing_local_infile_is_logged_once_and_the_inserts_take_over(mysql_database, caplog):
    from connectors.mysql.dialect import connect
    from connectors.mysql.target import SESSION_INIT
    from cdc.errors import TargetError

    schema = table("mysql", "items", [KEY, Column("tx", "text", "string")])
    stream = Stream()
    apply = applier(mysql_database, schema)
    apply.writer.conn.close()  # a session without the LOCAL INFILE capability: the server refuses the load
    apply.writer.conn = connect(apply.writer.url, error=TargetError, autocommit=False, init_command=SESSION_INIT)
    with caplog.at_level(logging.WARNING):
        apply.apply(stream.change("r", schema, None, {"id": 1, "tx": "a"}))
        apply.apply(stream.change("r", schema, None, {"id": 2, "tx": "b"}))
    assert [r.message for r in caplog.records].count(
        "the target refuses LOAD DATA LOCAL INFILE; snapshot reads are written with INSERT statements"
        " (enable local_infile on the server for the faster initial copy)") == 1
    assert rows(mysql_database, "SELECT id, tx FROM items ORDER BY id") == [(1, "a"), (2, "b")]


def test_a_target_asking_for_another_file_gets_nothing(tmp_path):
    """PyMySQL's sender is wrapped: only the file of the running LOAD DATA goes out; any other name the
    server asks for (a hostile target fishing for this process's files) is refused with 2068 before it is
    opened, and so is every request outside a `sending` block."""
    import pymysql.connections
    import pymysql.err

    from connectors.mysql import local_infile

    assert local_infile.GUARDED and getattr(pymysql.connections._send_local_file, "guarded", False)
    sent = []
    guarded = local_infile.only_the_announced_file(lambda filename, conn: sent.append(filename))

    class Connection:  # only the attribute the sender reads
        _local_infile: object = True  # as PyMySQL leaves it after connect(local_infile=True)

    conn = local_infile.closed(Connection())
    ours = str(tmp_path / "rows.tsv")
    with pytest.raises(pymysql.err.OperationalError, match="not the one being loaded"):
        guarded(b"/etc/passwd", conn)
    with local_infile.sending(conn, ours):
        for other in (b"/etc/passwd", os.fsencode(ours) + b"x"):
            with pytest.raises(pymysql.err.OperationalError) as refused:
                guarded(other, conn)
            assert refused.value.args[0] == 2068
        guarded(os.fsencode(ours), conn)
    assert conn._local_infile is False
    assert sent == [os.fsencode(ours)]
