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
from cdc.tables import split_table_entry
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
                    f"table {qualified(schema, table)} (from --tables {name!r}) does not exist in database"
                    f" {conn.info.dbname!r}",
                    fix='create it, or fix the entry: quote names as PostgreSQL does, e.g. public."order items"',
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
    """`schema.table` -> (schema, table), parts quoted as PostgreSQL quotes them; a bare name is in `public`."""
    return split_table_entry(name, "public")


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


KEYLESS_POLICIES = ("refuse", "insert-only")


@dataclass(slots=True, frozen=True)
class Identity:
    """A table's replica identity (`d` default, `n` nothing, `f` full, `i` index) and whether it has a primary key."""

    schema: str
    table: str
    replica_identity: str
    has_primary_key: bool

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def updates_refused(self) -> bool:
        """True when the server would refuse this table's UPDATE/DELETE in a publication that publishes them."""
        return self.replica_identity == "n" or (self.replica_identity == "d" and not self.has_primary_key)


def table_identities(conn: psycopg.Connection, tables: list[tuple[str, str]] | None) -> list[Identity]:
    """Replica identity of the listed tables, or (None) of every table of the database outside the system schemas."""
    query = ("SELECT n.nspname, c.relname, c.relreplident,"
             " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)"
             " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
             " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'")
    rows = conn.execute(query + " ORDER BY 1, 2").fetchall()
    wanted = set(tables) if tables is not None else None
    return [Identity(*row) for row in rows if wanted is None or (row[0], row[1]) in wanted]


def check_replica_identities(identities: list[Identity], keyless: str) -> list[Identity]:
    """SourceError for a table whose UPDATE/DELETE the server would refuse once published; returns the keyless
    tables to publish insert-only (`--keyless insert-only`).

    Publishing such a table for updates makes the source refuse the application's UPDATE and DELETE on it,
    so capture never does: a keyless table needs REPLICA IDENTITY FULL, insert-only capture, or leaving out;
    a keyed table with REPLICA IDENTITY NOTHING needs its identity back.
    """
    if keyless not in KEYLESS_POLICIES:
        raise ConfigError(f"--keyless {keyless!r} is not one of {', '.join(KEYLESS_POLICIES)}")
    refused = [i for i in identities if i.updates_refused]
    keyed = [i for i in refused if i.has_primary_key]
    if keyed:
        names = ", ".join(i.name for i in keyed)
        raise SourceError(
            f"table(s) {names} have REPLICA IDENTITY NOTHING: the server would refuse their UPDATE and DELETE "
            "once they are published",
            fix="; ".join(f"ALTER TABLE {qualified(i.schema, i.table)} REPLICA IDENTITY DEFAULT" for i in keyed)
                + ", or leave them out of --tables/--include")
    keyless_tables = [i for i in refused if not i.has_primary_key]
    if keyless_tables and keyless == "refuse":
        names = ", ".join(i.name for i in keyless_tables)
        raise SourceError(
            f"table(s) {names} have no primary key and REPLICA IDENTITY "
            f"{'NOTHING' if keyless_tables[0].replica_identity == 'n' else 'DEFAULT'}: publishing them for updates "
            "would make the server refuse their UPDATE and DELETE",
            fix="; ".join(f"ALTER TABLE {qualified(i.schema, i.table)} REPLICA IDENTITY FULL" for i in keyless_tables)
                + " (then updates and deletes are captured too), or leave them out of --tables/--include, "
                  "or capture their inserts only with --keyless insert-only")
    return keyless_tables


def insert_only_name(publication: str) -> str:
    """The publication of the tables captured insert-only (`--keyless insert-only`)."""
    return f"{publication[:50]}_insert_only"


def ensure_insert_only_publication(conn: psycopg.Connection, publication: str, tables: list[Identity]) -> None:
    """The insert-only publication (`publish = 'insert, truncate'`: neither needs a replica identity) holds
    exactly `tables`; they leave the main publication when it had them. Dropped when there are none."""
    name = insert_only_name(publication)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is not None
    if not tables:
        if exists:
            conn.execute(f"DROP PUBLICATION {quote_ident(name)}")
        return
    listed = ", ".join(qualified(i.schema, i.table) for i in tables)
    if not exists:
        conn.execute(f"CREATE PUBLICATION {quote_ident(name)} FOR TABLE {listed} WITH (publish = 'insert, truncate')")
    else:
        conn.execute(f"ALTER PUBLICATION {quote_ident(name)} SET TABLE {listed}")
        conn.execute(f"ALTER PUBLICATION {quote_ident(name)} SET (publish = 'insert, truncate')")
    in_main = set(conn.execute("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                               (publication,)).fetchall())
    leaving = [i for i in tables if (i.schema, i.table) in in_main]
    if leaving:
        conn.execute(f"ALTER PUBLICATION {quote_ident(publication)} DROP TABLE "
                     + ", ".join(qualified(i.schema, i.table) for i in leaving))
    log.warning("tables without a primary key are captured insert-only (their UPDATE/DELETE are not captured)",
                extra={"tables": ", ".join(i.name for i in tables), "publication": name})


def published(conn: psycopg.Connection, publication: str) -> tuple[str, ...]:
    """The publications the stream reads: the main one, and the insert-only one when it exists."""
    name = insert_only_name(publication)
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is None:
        return (publication,)
    return publication, name


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


def check_may_publish_all_tables(conn: psycopg.Connection, publication: str) -> None:
    """Capturing every table needs a FOR ALL TABLES publication, which only a superuser may create: say so
    before trying, rather than let a capture without a table list quietly depend on a superuser."""
    user, superuser = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not superuser:
        raise SourceError(
            f"no table list was given, so every table would be captured through a FOR ALL TABLES publication, "
            f"which only a superuser may create (user {user!r} is not one)",
            fix=f"pass --tables schema.table,... (or --include REGEX), or have a superuser run "
                f"CREATE PUBLICATION {quote_ident(publication)} FOR ALL TABLES first",
        )


def ensure_publication(conn: psycopg.Connection, publication: str, tables: list[tuple[str, str]],
                       *, all_tables: bool | None = None) -> None:
    """Create the publication when missing (FOR TABLE list, or FOR ALL TABLES); add listed tables it lacks.

    `all_tables` (default: when no table is listed) False with no tables creates an empty publication.
    On PostgreSQL 18+ it publishes stored generated columns (`publish_generated_columns = stored`), so
    events carry them as they carry any column; an existing publication is switched to that.
    """
    all_tables = not tables if all_tables is None else all_tables
    row = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (publication,)).fetchone()
    publishes_generated = conn.info.server_version >= PUBLISHED_GENERATED_VERSION
    if row is None:
        target = ("FOR ALL TABLES" if all_tables else
                  "FOR TABLE " + ", ".join(qualified(s, t) for s, t in tables) if tables else "")
        if publishes_generated:
            target += " WITH (publish_generated_columns = stored)"
        if all_tables:
            check_may_publish_all_tables(conn, publication)
        try:
            conn.execute(f"CREATE PUBLICATION {quote_ident(publication)} {target}")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SourceError(
                f"cannot create publication {publication!r}: {str(exc).strip()}",
                fix=f"create it as a superuser or table owner: CREATE PUBLICATION {quote_ident(publication)} {target}",
            ) from exc
        log.info("created publication", extra={"publication": publication, "tables": "all" if all_tables else len(tables)})
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
                   include: str | None, slot_wait: float = 15.0,
                   keyless: str = "refuse") -> tuple[list[tuple[str, str]], SlotState | None]:
    """Run every check and create the publication(s); returns (captured tables, existing slot or None).

    `keyless`: `refuse` (a table whose updates the server would refuse once published stops the start) or
    `insert-only` (keyless ones go to a second publication that publishes inserts and truncates only).
    """
    check_server_version(conn.info.server_version)
    check_wal_level(conn.execute("SHOW wal_level").fetchone()[0])
    check_replication_role(conn)
    captured = resolve_tables(conn, tables, include)
    if include and not captured and not tables:
        log.warning("--include matches no table yet; tables created later are captured when they match",
                    extra={"include": include})
    check_select_privilege(conn, captured)
    listed = bool(tables or include)
    insert_only = check_replica_identities(table_identities(conn, captured if listed else None), keyless)
    if insert_only and not listed:
        raise ConfigError("--keyless insert-only needs --tables or --include",
                          fix="list the captured tables: a FOR ALL TABLES publication publishes every table's updates")
    state = check_slot(conn, slot, wait=slot_wait)
    skipped = {(i.schema, i.table) for i in insert_only}
    ensure_publication(conn, publication, [t for t in captured if t not in skipped] if listed else [],
                       all_tables=not listed)
    ensure_insert_only_publication(conn, publication, insert_only)
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
