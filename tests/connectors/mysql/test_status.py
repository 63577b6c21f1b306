"""`source_lag` for MariaDB/MySQL: binlog bytes the server wrote after a position, across files."""

from __future__ import annotations

from connectors.mysql.binlog import BinlogPosition
from connectors.mysql.dialect import connect
from connectors.mysql.status import source_lag, source_status


def test_source_lag_counts_binlog_written_after_the_position(mysql_database):
    [now] = source_status(mysql_database)
    here = BinlogPosition(now["file"], now["pos"])
    first, _ = source_lag(mysql_database, acknowledged=here)
    assert first >= 0  # the server is shared: other tests may write too
    conn = connect(mysql_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            cursor.executemany("INSERT INTO t VALUES (%s, %s)", [(i, "x" * 200) for i in range(500)])
        conn.commit()
    finally:
        conn.close()
    lag, retained = source_lag(mysql_database, acknowledged=here)
    assert lag - first > 500 * 200 and retained is None
    assert source_lag(mysql_database, acknowledged=BinlogPosition("no-such-file.000001", 4)) == (None, None)
    assert source_lag(mysql_database, acknowledged=None) == (None, None)


def test_estimate_rows_reads_innodb_statistics(mysql_database):
    from cdc.urls import parse_url
    from connectors.mysql.status import estimate_rows

    conn = connect(mysql_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE e (id int PRIMARY KEY)")
            cursor.executemany("INSERT INTO e VALUES (%s)", [(i,) for i in range(300)])
            cursor.execute("ANALYZE TABLE e")
        conn.commit()
    finally:
        conn.close()
    database = parse_url(mysql_database).database
    assert 100 <= estimate_rows(mysql_database, f"{database}.e") <= 1000  # InnoDB samples: near, not exact
    assert estimate_rows(mysql_database, f"{database}.missing") is None
