"""`cdc status` for MySQL/MariaDB: the server's binlog position and stored apply offsets."""

from __future__ import annotations

from typing import Any

import pymysql

from cdc.errors import CdcError
from cdc.urls import parse_url
from connectors.mysql.dialect import connect


def source_status(url: str) -> list[dict[str, Any]]:
    """The server's current binlog file/position and GTID state (what a caught-up capture has reached)."""
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW MASTER STATUS")
            row = cursor.fetchone()
            cursor.execute("SELECT @@global.gtid_binlog_pos")
            gtid = cursor.fetchone()[0] if cursor.rowcount else None
    except pymysql.err.MySQLError as exc:
        raise CdcError(f"cannot read the binlog position: {exc.args[-1]}",
                       fix="the user needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR)") from exc
    finally:
        conn.close()
    if row is None:
        return [{"binlog": "off"}]
    return [{"file": row[0], "pos": row[1], "gtid": gtid}]


def source_lag(url: str, *, prefix: str = "", slot: str | None = None, acknowledged: Any = None) -> tuple[int | None, int | None]:
    """(bytes of binlog the server wrote after `acknowledged` (file + position), None): MySQL has no slot."""
    file, position = getattr(acknowledged, "file", None), getattr(acknowledged, "position", None)
    if file is None or position is None:
        return None, None
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW BINARY LOGS")
            logs = [(row[0], int(row[1])) for row in cursor.fetchall()]
    finally:
        conn.close()
    names = [name for name, _ in logs]
    if file not in names:
        return None, None  # purged (capture will say so) or a different server
    at = names.index(file)
    return logs[at][1] - position + sum(size for _, size in logs[at + 1:]), None


def estimate_rows(url: str, table: str) -> int | None:
    """InnoDB's row estimate of `db.table` (information_schema.TABLES); None when it is not there."""
    database, _, name = table.rpartition(".")
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                           (database or parse_url(url).database, name))
            row = cursor.fetchone()
    finally:
        conn.close()
    return None if row is None else int(row[0] or 0)


def target_offsets(url: str) -> list[tuple[str, str, int, int]]:
    """(group, topic, partition, next_offset) rows of `cdc_offsets`; empty when apply never ran there."""
    conn = connect(url, error=CdcError)
    try:
        with conn.cursor() as cursor:
            try:
                cursor.execute("SELECT group_id, topic, `partition`, next_offset FROM cdc_offsets ORDER BY 1, 2, 3")
            except pymysql.err.ProgrammingError:
                return []
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def target_table_states(url: str) -> list[dict[str, Any]]:
    """Rows of `cdc_table_state`: per (group, table) the last applied source position (keyless tables) and
    the reason a table is parked (--on-error skip-table); empty when apply never wrote one."""
    conn = connect(url, error=CdcError)
    try:
        with conn.cursor() as cursor:
            try:
                cursor.execute("SELECT group_id, table_name, source_position, parked FROM cdc_table_state ORDER BY 1, 2")
            except pymysql.err.ProgrammingError:
                return []
            return [{"group": g, "table": t, "keyless_position": p, "parked": r} for g, t, p, r in cursor.fetchall()]
    finally:
        conn.close()
