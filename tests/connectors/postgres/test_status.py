"""`source_lag` for PostgreSQL: WAL written after the slot's confirmed LSN, and WAL the slot retains."""

from __future__ import annotations

import uuid

from connectors.postgres.dialect import connect
from connectors.postgres.status import source_lag


def test_source_lag_grows_with_wal_written_after_the_slot(pg_database):
    slot = f"t_lag_{uuid.uuid4().hex[:10]}"
    with connect(pg_database) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    try:
        before, retained_before = source_lag(pg_database, slot=slot)
        with connect(pg_database) as conn:
            # the lag counts WAL written out; with the sandbox's synchronous_commit = off, PostgreSQL 18 may
            # still hold these commits in its WAL buffers when the lag is read
            conn.execute("SET synchronous_commit = on")
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g")
        after, retained_after = source_lag(pg_database, slot=slot)
        assert after - before > 2000 * 200 and retained_after >= after
        assert source_lag(pg_database, slot="no_such_slot") == (None, None)
    finally:
        with connect(pg_database) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def test_estimate_rows_counts_a_table_never_analyzed_and_reads_the_planner_after(pg_database):
    from connectors.postgres.status import estimate_rows

    with connect(pg_database) as conn:
        conn.execute('CREATE TABLE "Odd Name" (id int PRIMARY KEY)')
        conn.execute('INSERT INTO "Odd Name" SELECT generate_series(1, 500)')
    assert estimate_rows(pg_database, "public.Odd Name") == 500
    with connect(pg_database) as conn:
        conn.execute('ANALYZE "Odd Name"')
    assert estimate_rows(pg_database, "public.Odd Name") == 500
    assert estimate_rows(pg_database, "public.missing") is None
