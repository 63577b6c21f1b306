"""PostgreSQL side of `cdc migrate`: freeze and close writes, positions, capture start, sequences, state DDL.

Application sessions are the sessions of roles other than the workflow's own user: closing a side
makes new transactions read-only by default (`ALTER DATABASE .. SET default_transaction_read_only`)
and ends those sessions; cdc's own children set the default back off for themselves (`child_env`).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from cdc.errors import TargetError
from cdc.migrate.grants import WriteGrant
from cdc.urls import DatabaseUrl
from connectors.postgres.dialect import connect as pg_connect
from connectors.postgres.dialect import qualified, quote_ident
from connectors.postgres.replication import ReplicationConnection
from connectors.postgres.setup import default_name, drop_slots, pending_marker, prepare_source, split_table_name
from connectors.postgres.streaming import HEARTBEAT_PREFIX

STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS cdc_migrations (name VARCHAR(100) PRIMARY KEY, state VARCHAR(20) NOT NULL,"
    " record TEXT NOT NULL, lock_owner VARCHAR(200), lock_at DOUBLE PRECISION, heartbeat TEXT,"
    " heartbeat_at DOUBLE PRECISION, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cdc_migration_journal (migration VARCHAR(100) NOT NULL, id BIGINT NOT NULL,"
    " at_text VARCHAR(40) NOT NULL, step VARCHAR(80) NOT NULL, status VARCHAR(20) NOT NULL, detail TEXT NOT NULL,"
    " PRIMARY KEY (migration, id))",
)
_OFF = "SET default_transaction_read_only = off"


def connect(url: DatabaseUrl) -> psycopg.Connection:
    """An autocommit session that may write even when the database is closed to applications."""
    conn = pg_connect(url, error=TargetError)
    conn.execute(_OFF)
    return conn


def execute(conn: psycopg.Connection, statement: str, params: tuple = ()) -> list[tuple]:
    """Run one statement; its rows (empty when it returns none)."""
    cursor = conn.execute(statement, params)
    return cursor.fetchall() if cursor.description else []


def update(conn: psycopg.Connection, statement: str, params: tuple = ()) -> int:
    """Run one UPDATE/DELETE; the rows it changed."""
    return conn.execute(statement, params).rowcount


def child_env() -> dict[str, str]:
    """Environment of cdc's own children: their sessions write even when the database is closed."""
    return {"PGOPTIONS": "-c default_transaction_read_only=off"}


def _table_list(tables: list[str]) -> str:
    return ", ".join(qualified(*split_table_name(table)) for table in tables)


def freeze_sql(tables: list[str]) -> list[str]:
    """Statements of the `lock` freeze, run in one transaction that stays open until the switch ends."""
    return ["BEGIN", "SET LOCAL lock_timeout = '10s'", f"LOCK TABLE {_table_list(tables)} IN EXCLUSIVE MODE"]


def freeze(url: DatabaseUrl, tables: list[str]) -> tuple[psycopg.Connection, list[str]]:
    """Hold EXCLUSIVE locks on the tables (reads go on, writes wait); (the holding session, SQL run)."""
    conn = connect(url)
    statements = freeze_sql(tables)
    for statement in statements:
        conn.execute(statement)
    return conn, statements


def release(conn: psycopg.Connection) -> None:
    """End the freeze transaction (its locks go) and the session."""
    try:
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def close_sql(database: str, user: str) -> list[str]:
    """Statements that close the database to application writes (sessions of other roles end)."""
    return [f"ALTER DATABASE {quote_ident(database)} SET default_transaction_read_only = on",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
            f" AND usename <> '{user}' AND pid <> pg_backend_pid()"]


def close_writes(conn: psycopg.Connection, url: DatabaseUrl) -> list[str]:
    """Close the database to application writes: read-only by default, application sessions ended."""
    conn.execute(f"ALTER DATABASE {quote_ident(url.database)} SET default_transaction_read_only = on")
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND usename <> %s"
                 " AND pid <> pg_backend_pid()", (url.database, url.user))
    return close_sql(url.database, url.user)


def open_writes(conn: psycopg.Connection, url: DatabaseUrl) -> list[str]:
    """Open the database to application writes again."""
    statement = f"ALTER DATABASE {quote_ident(url.database)} RESET default_transaction_read_only"
    conn.execute(statement)
    return [statement]


def open_sql(database: str) -> list[str]:
    """The statements `open_writes` runs (for the dry run)."""
    return [f"ALTER DATABASE {quote_ident(database)} RESET default_transaction_read_only"]


def drop_tables(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Drop the tables (`cdc migrate cancel --drop-tables` on the target); the SQL run."""
    statements = [f"DROP TABLE IF EXISTS {qualified(*split_table_name(t))}" for t in tables]
    for statement in statements:
        conn.execute(statement)
    return statements


def writes_closed(conn: psycopg.Connection, url: DatabaseUrl) -> bool:
    """True when the database makes new transactions read-only by default."""
    rows = execute(conn, "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                   " WHERE d.datname = %s AND s.setrole = 0", (url.database,))
    return bool(rows) and "default_transaction_read_only=on" in (rows[0][0] or [])


def topic_namespace(url: DatabaseUrl) -> str:
    """The middle part of a table topic captured here (`<prefix>.<namespace>.<table>`)."""
    return "public"


def current_position(conn: psycopg.Connection) -> str:
    """The WAL position now (the final position once writes are frozen)."""
    return str(execute(conn, "SELECT pg_current_wal_lsn()::text")[0][0])


def nudge(conn: psycopg.Connection) -> None:
    """A heartbeat message through the WAL now: the capture acknowledges past the position just read at once,
    instead of at its next heartbeat."""
    conn.execute("SELECT pg_logical_emit_message(false, %s, %s)", (HEARTBEAT_PREFIX, str(time.time_ns() // 1_000_000)))


def capture_reached(url: DatabaseUrl, kafka: str, prefix: str, position: str) -> bool:
    """True when the prefix's slot confirmed `position` (capture had Kafka acknowledge everything before it)
    and its snapshot is finished (a new slot confirms its start point before the snapshot's rows are sent)."""
    slot = default_name(prefix)
    with connect(url) as conn:
        rows = execute(conn, "SELECT confirmed_flush_lsn >= %s::pg_lsn AND NOT EXISTS (SELECT 1 FROM"
                       " pg_replication_slots WHERE slot_name = %s) FROM pg_replication_slots WHERE slot_name = %s",
                       (position, pending_marker(slot), slot))
    return bool(rows and rows[0][0])


def start_capture_here(url: DatabaseUrl, kafka: str, prefix: str, tables: list[str]) -> str:
    """Make the prefix's capture start at the database's current position, no snapshot: a new slot."""
    slot = default_name(prefix)
    drop_slots(url, slot)
    with connect(url) as conn:
        prepare_source(conn, slot=slot, publication=slot, tables=tables, include=None, slot_wait=0.0)
    replication = ReplicationConnection(url)
    try:
        created = replication.create_slot(slot, export_snapshot=False)
    finally:
        replication.close()
    return f"slot {slot} created at {_lsn_text(created.consistent_point)}"


def _lsn_text(lsn: Any) -> str:
    if isinstance(lsn, int):
        return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
    return str(lsn)


def drop_capture(url: DatabaseUrl, kafka: str, prefix: str) -> list[str]:
    """Drop the prefix's slot and publication."""
    slot = default_name(prefix)
    drop_slots(url, slot)
    statement = f"DROP PUBLICATION IF EXISTS {quote_ident(slot)}"
    with connect(url) as conn:
        conn.execute(statement)
    return [f"SELECT pg_drop_replication_slot('{slot}')", statement]


def counters(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    """Table (bare name) -> the next value its serial/identity sequence would give (only tables with one)."""
    out: dict[str, int] = {}
    for table in tables:
        schema, name = split_table_name(table)
        rows = execute(conn, "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                       " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
                       " AND a.attnum > 0 AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL",
                       (schema, name, qualified(schema, name)))
        for (column,) in rows:
            sequence = execute(conn, "SELECT pg_get_serial_sequence(%s, %s)", (qualified(schema, name), column))[0][0]
            last, called = execute(conn, f"SELECT last_value, is_called FROM {sequence}")[0]
            maximum = execute(conn, f"SELECT max({quote_ident(column)}) FROM {qualified(schema, name)}")[0][0] or 0
            out[name] = max(int(last) + (1 if called else 0), int(maximum) + 1)
    return out


def set_counters_sql(tables: list[str], wanted: dict[str, int]) -> list[str]:
    """The statements `set_counters` runs (for the dry run)."""
    return [f"SELECT setval(pg_get_serial_sequence('{qualified(*split_table_name(t))}', <column>), "
            f"greatest({wanted[split_table_name(t)[1]]}, <max + 1>), false)"
            for t in tables if split_table_name(t)[1] in wanted]


def set_counters(conn: psycopg.Connection, tables: list[str], wanted: dict[str, int]) -> list[str]:
    """Move each table's sequence past `wanted` (and past its own rows); the SQL run."""
    run: list[str] = []
    mine = counters(conn, tables)
    for table in tables:
        schema, name = split_table_name(table)
        if name not in wanted or name not in mine:
            continue
        target = max(wanted[name], mine[name])
        for (column,) in execute(conn, "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                                 " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
                                 " AND c.relname = %s AND a.attnum > 0"
                                 " AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL",
                                 (schema, name, qualified(schema, name))):
            statement = "SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)"
            conn.execute(statement, (qualified(schema, name), column, target))
            run.append(f"SELECT setval(pg_get_serial_sequence('{qualified(schema, name)}', '{column}'), {target}, false)")
    return run


# -- the `revoke` freeze ---------------------------------------------------------------------------------
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


def write_grants(conn: psycopg.Connection, url: DatabaseUrl, tables: list[str],
                 roles: tuple[str, ...] | None = None) -> list[WriteGrant]:
    """Write privileges granted on the tables to roles other than the workflow's user and superusers
    (only `roles` when given; PUBLIC as `PUBLIC`)."""
    out: list[WriteGrant] = []
    for table in tables:
        schema, name = split_table_name(table)
        rows = execute(conn, "SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable"
                       " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                       " CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
                       " WHERE n.nspname = %s AND c.relname = %s AND a.privilege_type = ANY(%s)"
                       " AND NOT coalesce(r.rolsuper, false) AND coalesce(r.rolname, 'PUBLIC') <> %s"
                       " ORDER BY 1, 2", (schema, name, list(WRITE_PRIVILEGES), url.user))
        held: dict[str, tuple[set[str], set[str]]] = {}
        for role, privilege, grantable in rows:
            if roles is None or role in roles:
                privileges, with_option = held.setdefault(role, (set(), set()))
                privileges.add(privilege)
                if grantable:
                    with_option.add(privilege)
        out += [WriteGrant(name, role, tuple(sorted(p)), None, tuple(sorted(g))) for role, (p, g) in held.items()]
    return out


def revoke_refusals(conn: psycopg.Connection, url: DatabaseUrl, tables: list[str],
                    roles: tuple[str, ...] | None) -> list[str]:
    """Why a REVOKE would not stop the application roles' writes on these tables (empty: it would)."""
    out: list[str] = []
    for table in tables:
        schema, name = split_table_name(table)
        owner, owner_is_superuser = execute(conn, "SELECT r.rolname, r.rolsuper FROM pg_class c JOIN pg_namespace n"
                                            " ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner"
                                            " WHERE n.nspname = %s AND c.relname = %s", (schema, name))[0]
        if owner != url.user and not owner_is_superuser and (roles is None or owner in roles):
            out.append(f"table {name} is owned by role {owner!r}, which REVOKE cannot freeze (an owner grants itself "
                       f"back); name the application roles with --app-roles (without {owner!r}) if it is not one, "
                       f"or use --freeze lock / read-only")
    for role in roles or ():
        if role == url.user:
            out.append(f"role {role!r} is the workflow's own user: its writes carry replication")
            continue
        found = execute(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))
        if not found:
            out.append(f"role {role!r} does not exist")
            continue
        if found[0][0]:
            out.append(f"role {role!r} is a superuser, which REVOKE cannot freeze; use --freeze lock / read-only")
            continue
        direct = {(g.table, p) for g in write_grants(conn, url, tables, (role,)) for p in g.privileges}
        for table in tables:
            schema, name = split_table_name(table)
            for privilege in WRITE_PRIVILEGES:
                if (name, privilege) not in direct and execute(
                        conn, "SELECT has_table_privilege(%s, %s, %s)", (role, qualified(schema, name), privilege))[0][0]:
                    out.append(f"role {role!r} holds {privilege} on {name} through another role (or PUBLIC): "
                               f"name that role in --app-roles too")
    return out


def _grantee(role: str) -> str:
    return "PUBLIC" if role == "PUBLIC" else quote_ident(role)


def revoke_sql(url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """The REVOKE statements that take the grants away."""
    return [f"REVOKE {', '.join(g.privileges)} ON {qualified(*split_table_name(g.table))} FROM {_grantee(g.role)}"
            for g in grants]


def grant_sql(url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """The GRANT statements that give the grants back as they were (WITH GRANT OPTION where they had it)."""
    out: list[str] = []
    for g in grants:
        table, grantee = qualified(*split_table_name(g.table)), _grantee(g.role)
        plain = [p for p in g.privileges if p not in g.grantable]
        if plain:
            out.append(f"GRANT {', '.join(plain)} ON {table} TO {grantee}")
        if g.grantable:
            out.append(f"GRANT {', '.join(g.grantable)} ON {table} TO {grantee} WITH GRANT OPTION")
    return out


def revoke_writes(conn: psycopg.Connection, url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """Take the grants away, in one transaction; the SQL run."""
    return _run_all(conn, revoke_sql(url, grants))


def grant_writes(conn: psycopg.Connection, url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """Give the grants back, in one transaction; the SQL run."""
    return _run_all(conn, grant_sql(url, grants))


def _run_all(conn: psycopg.Connection, statements: list[str]) -> list[str]:
    if statements:
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
    return statements
