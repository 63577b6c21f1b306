"""Pre-flight checks and set-up for capturing a PostgreSQL database: each problem says how to fix it.

Checks: server version (PG >= 10), `wal_level = logical`, the REPLICATION attribute, SELECT on the
captured tables, listed tables that do not exist, a slot that another process is reading. Set-up:
the publication (FOR TABLE list, or FOR ALL TABLES when no list) when it is missing; the names of
the slot and publication, and the marker slot that says a snapshot did not finish. The slot itself
is created on the replication connection (it exports the snapshot), see `connectors.postgres.source`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import psycopg

from cdc.errors import ConfigError, SourceError, UnsupportedError
from cdc.urls import DatabaseUrl
from connectors.postgres.dialect import connect, qualified, quote_ident
from connectors.postgres.schema import PUBLISHED_GENERATED_VERSION

log = logging.getLogger(__name__)

OLDEST_SUPPORTED_VERSION = 100000  # PostgreSQL 10: the first release with pgoutput and publications
FAILOVER_SLOTS_VERSION = 170000  # failover slots: CREATE_REPLICATION_SLOT ... (FAILOVER true)


@dataclass(slots=True, frozen=True)
class SlotState:
    """A replication slot as pg_replication_slots shows it."""

    name: str
    plugin: str | None
    database: str | None
    active_pid: int | None
    confirmed_flush: str | None
    failover: bool = False  # a failover slot (PostgreSQL 17+), synchronised to standbys that ask for it


def check_server_version(version_num: int) -> None:
    """UnsupportedError for servers older than PostgreSQL 10."""
    if version_num < OLDEST_SUPPORTED_VERSION:
        major = version_num // 10000 if version_num >= 100000 else f"{version_num // 10000}.{version_num // 100 % 100}"
        raise UnsupportedError(
            f"PostgreSQL {major} is too old: capture needs PostgreSQL 10 or newer (pgoutput, publications)",
            fix="upgrade the source server to PostgreSQL 10 or later",
        )


def check_wal_level(value: str) -> None:
    """SourceError unless the server's wal_level is 'logical'."""
    if value != "logical":
        raise SourceError(f"wal_level is {value!r}", fix="set wal_level=logical and restart")


def check_replication_role(conn: psycopg.Connection) -> None:
    """SourceError unless the current user may open replication connections."""
    user, can_replicate = conn.execute(
        "SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not can_replicate:
        raise SourceError(
            f"user {user!r} lacks the REPLICATION attribute",
            fix=f"run ALTER ROLE {quote_ident(user)} REPLICATION (as a superuser)",
        )


def resolve_tables(conn: psycopg.Connection, tables: list[str] | None, include: str | None) -> list[tuple[str, str]]:
    """The captured tables as (schema, table): the listed ones (all must exist), or those matching `include`.

    Returns [] when neither is given (every table, through a FOR ALL TABLES publication).
    """
    if tables:
        found = []
        for name in tables:
            schema, table = split_table_name(name)
            row = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                (schema, table),
            ).fetchone()
            if row is None:
                raise SourceError(
                    f"table {schema}.{table} does not exist in database {conn.info.dbname!r}",
                    fix="create it, or remove it from --tables",
                )
            found.append((row[0], row[1]))
        return found
    if include:
        try:
            pattern = re.compile(include)
        except re.error as exc:
            raise ConfigError(f"--include {include!r} is not a valid regular expression ({exc})") from exc
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%' "
            "ORDER BY 1, 2"
        ).fetchall()
        return [(s, t) for s, t in rows if pattern.fullmatch(f"{s}.{t}")]
    return []


def split_table_name(name: str) -> tuple[str, str]:
    """`schema.table` -> (schema, table); a bare name is in `public`."""
    schema, dot, table = name.strip().partition(".")
    if not dot:
        return "public", schema
    if not schema or not table:
        raise ConfigError(f"table name {name!r} is not of the form schema.table")
    return schema, table


def check_select_privilege(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> None:
    """SourceError naming the tables the user may not read."""
    denied = [
        f"{s}.{t}" for s, t in tables
        if not conn.execute("SELECT has_table_privilege(%s, 'SELECT')", (qualified(s, t),)).fetchone()[0]
    ]
    if denied:
        user = conn.info.user
        grants = "; ".join(f"GRANT SELECT ON {qualified(*split_table_name(name))} TO {quote_ident(user)}" for name in denied)
        raise SourceError(f"user {user!r} lacks SELECT on {', '.join(denied)}", fix=f"run {grants}")


def warn_missing_replica_identity(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> None:
    """Log tables whose UPDATE/DELETE the server will refuse once published (no key, identity DEFAULT)."""
    for schema, table in tables:
        row = conn.execute(
            "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchone()
        if row and row[0] == "d" and not row[1]:
            log.warning(
                "table has no primary key and REPLICA IDENTITY DEFAULT: the server refuses its UPDATE/DELETE "
                "while it is published; set ALTER TABLE ... REPLICA IDENTITY FULL",
                extra={"table": f"{schema}.{table}"},
            )


def slot_state(conn: psycopg.Connection, slot: str) -> SlotState | None:
    """The slot, or None when it does not exist."""
    failover = "failover" if conn.info.server_version >= FAILOVER_SLOTS_VERSION else "false"
    row = conn.execute(
        f"SELECT slot_name, plugin, database, active_pid, confirmed_flush_lsn::text, {failover} "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return SlotState(*row) if row else None


def wants_failover_slot(requested: bool | None, server_version: int) -> bool:
    """Whether capture's slot is a failover slot: as asked (`--failover-slot`), by default on PostgreSQL 17+.

    SourceError when asked for on an older server, which has no failover slots.
    """
    if requested is None:
        return server_version >= FAILOVER_SLOTS_VERSION
    if requested and server_version < FAILOVER_SLOTS_VERSION:
        raise SourceError(
            f"--failover-slot needs PostgreSQL 17 or later (the source is {server_version // 10000}): older servers "
            "do not copy logical slots to standbys, so a failover loses the slot",
            fix="run without --failover-slot (after a failover, restart capture with --snapshot when_needed; "
                "see docs/operations.md, Failover)",
        )
    return requested


def check_slot(conn: psycopg.Connection, slot: str, *, wait: float = 0.0) -> SlotState | None:
    """The existing slot (None if missing); SourceError if it is active elsewhere or belongs to another db/plugin.

    `wait`: seconds to wait for an active slot to be released (a crashed predecessor's walsender
    notices the dead connection within moments).
    """
    state = slot_state(conn, slot)
    deadline = time.monotonic() + wait
    while state is not None and state.active_pid is not None and time.monotonic() < deadline:
        time.sleep(0.2)
        state = slot_state(conn, slot)
    if state is None:
        return None
    if state.active_pid is not None:
        raise SourceError(
            f"replication slot {slot!r} is active (in use by server process {state.active_pid})",
            fix="stop the other consumer of this slot (SELECT pg_terminate_backend(active_pid) "
                "FROM pg_replication_slots WHERE slot_name = ...), or use another --slot",
        )
    if state.plugin != "pgoutput":
        raise SourceError(f"replication slot {slot!r} uses plugin {state.plugin!r}, not pgoutput",
                          fix="drop it (SELECT pg_drop_replication_slot(...)) or use another --slot")
    if state.database != conn.info.dbname:
        raise SourceError(f"replication slot {slot!r} belongs to database {state.database!r}",
                          fix=f"use another --slot for database {conn.info.dbname!r}")
    return state


def ensure_publication(conn: psycopg.Connection, publication: str, tables: list[tuple[str, str]]) -> None:
    """Create the publication when missing (FOR TABLE list, or FOR ALL TABLES); add listed tables it lacks.

    On PostgreSQL 18+ it publishes stored generated columns (`publish_generated_columns = stored`), so
    events carry them as they carry any column; an existing publication is switched to that.
    """
    row = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (publication,)).fetchone()
    publishes_generated = conn.info.server_version >= PUBLISHED_GENERATED_VERSION
    if row is None:
        target = "FOR ALL TABLES" if not tables else "FOR TABLE " + ", ".join(qualified(s, t) for s, t in tables)
        if publishes_generated:
            target += " WITH (publish_generated_columns = stored)"
        try:
            conn.execute(f"CREATE PUBLICATION {quote_ident(publication)} {target}")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SourceError(
                f"cannot create publication {publication!r}: {str(exc).strip()}",
                fix=f"create it as a superuser or table owner: CREATE PUBLICATION {quote_ident(publication)} {target}",
            ) from exc
        log.info("created publication", extra={"publication": publication, "tables": len(tables) or "all"})
        return
    if publishes_generated and conn.execute("SELECT pubgencols <> 's' FROM pg_publication WHERE pubname = %s",
                                            (publication,)).fetchone()[0]:
        conn.execute(f"ALTER PUBLICATION {quote_ident(publication)} SET (publish_generated_columns = stored)")
        log.info("publication now publishes stored generated columns", extra={"publication": publication})
    if row[0] or not tables:
        return
    published = set(conn.execute(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (publication,)
    ).fetchall())
    missing = [(s, t) for s, t in tables if (s, t) not in published]
    if missing:
        conn.execute(f"ALTER PUBLICATION {quote_ident(publication)} ADD TABLE "
                     + ", ".join(qualified(s, t) for s, t in missing))
        log.info("added tables to publication", extra={"publication": publication, "tables": len(missing)})


def prepare_source(conn: psycopg.Connection, *, slot: str, publication: str, tables: list[str] | None,
                   include: str | None, slot_wait: float = 15.0) -> tuple[list[tuple[str, str]], SlotState | None]:
    """Run every check and create the publication; returns (captured tables, existing slot or None)."""
    check_server_version(conn.info.server_version)
    check_wal_level(conn.execute("SHOW wal_level").fetchone()[0])
    check_replication_role(conn)
    captured = resolve_tables(conn, tables, include)
    if include and not captured and not tables:
        log.warning("--include matches no table yet; tables created later are captured when they match",
                    extra={"include": include})
    check_select_privilege(conn, captured)
    warn_missing_replica_identity(conn, captured)
    state = check_slot(conn, slot, wait=slot_wait)
    ensure_publication(conn, publication, captured if (tables or include) else [])
    return captured, state


def default_name(prefix: str) -> str:
    """Slot and publication name for a prefix: `cdc_<prefix>` in the characters slot names allow."""
    return "cdc_" + re.sub(r"[^a-z0-9_]", "_", prefix.lower())


def pending_marker(slot: str) -> str:
    """Name of the physical slot that marks "snapshot of `slot` not finished" (a durable, WAL-free flag)."""
    return f"{slot[:46]}_snapshot_pending"


def create_marker(url: DatabaseUrl, marker: str) -> None:
    """Create the pending-snapshot marker slot `marker` (nothing when it exists)."""
    with connect(url) as conn:
        if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (marker,)).fetchone() is None:
            conn.execute("SELECT pg_create_physical_replication_slot(%s, false)", (marker,))


def snapshot_unfinished(url: DatabaseUrl, slot: str) -> bool:
    """True when the snapshot that began with `slot` never finished (its marker slot is still there)."""
    with connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (pending_marker(slot),)).fetchone() is not None


def drop_slots(url: DatabaseUrl, *slots: str) -> None:
    """Drop the named slots that exist."""
    with connect(url) as conn:
        for slot in slots:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                         (slot,))
