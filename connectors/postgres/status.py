"""`cdc status` for PostgreSQL: replication slots (retained WAL, lag) and stored apply offsets."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from cdc.errors import CdcError
from connectors.postgres.dialect import connect
from connectors.postgres.setup import default_name, insert_only_name


def source_status(url: str) -> list[dict[str, Any]]:
    """One row per pgoutput slot of the URL's database: activity, confirmed LSN, lag and retained WAL bytes."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT slot_name, active, active_pid, confirmed_flush_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE plugin = 'pgoutput' AND database = current_database()"
            " ORDER BY slot_name"
        ).fetchall()
        insert_only = dict(conn.execute(
            "SELECT pubname, string_agg(schemaname || '.' || tablename, ', ' ORDER BY schemaname, tablename)"
            " FROM pg_publication_tables WHERE pubname LIKE '%%\\_insert\\_only' GROUP BY pubname").fetchall())
    return [
        {"slot": name, "active": active, "pid": pid, "confirmed_flush_lsn": lsn, "lag_bytes": lag, "retained_wal_bytes": retained,
         "insert_only_tables": insert_only.get(insert_only_name(name))}
        for name, active, pid, lsn, lag, retained in rows
    ]


def source_lag(url: str, *, prefix: str = "", slot: str | None = None, acknowledged: Any = None) -> tuple[int | None, int | None]:
    """(current WAL LSN minus the slot's confirmed LSN, WAL the slot retains) in bytes; Nones without the slot.

    The slot is `slot`, else the prefix's default (`cdc_<prefix>`, as capture names it).
    """
    slot = slot or default_name(prefix)
    with connect(url) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def estimate_rows(url: str, table: str) -> int | None:
    """The planner's row count of `schema.table` (a count when never analyzed); None when it is not there."""
    schema, _, name = table.rpartition(".")
    with connect(url) as conn:
        row = conn.execute("SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname = %s AND c.relname = %s", (schema or "public", name)).fetchone()
        if row is None:
            return None
        if row[0] >= 0:
            return int(row[0])
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema or "public"), sql.Identifier(name))
        return int(conn.execute(query).fetchone()[0])


def target_offsets(url: str) -> list[tuple[str, str, int, int]]:
    """(group, topic, partition, next_offset) rows of `cdc_offsets`; empty when apply never ran there."""
    with connect(url, error=CdcError) as conn:
        try:
            return [tuple(row) for row in conn.execute(
                "SELECT group_id, topic, partition, next_offset FROM cdc_offsets ORDER BY 1, 2, 3").fetchall()]
        except psycopg.errors.UndefinedTable:
            return []


def target_table_states(url: str) -> list[dict[str, Any]]:
    """Rows of `cdc_table_state`: per (group, table) the last applied source position (keyless tables) and
    the reason a table is parked (--on-error skip-table); empty when apply never wrote one."""
    with connect(url, error=CdcError) as conn:
        try:
            rows = conn.execute(
                "SELECT group_id, table_name, source_position, parked FROM cdc_table_state ORDER BY 1, 2").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return [{"group": g, "table": t, "keyless_position": p, "parked": r} for g, t, p, r in rows]
