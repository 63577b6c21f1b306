"""MySQL/MariaDB side of `cdc migrate`: freeze and close writes, positions, capture start, AUTO_INCREMENT, state DDL.

Application sessions are the sessions of users other than the workflow's own user: closing a side
sets `read_only` (the workflow's user needs READ_ONLY ADMIN, or SUPER on MySQL, to keep writing) and
ends those sessions.
"""

from __future__ import annotations

import pymysql

from cdc.errors import TargetError
from cdc.kafka import make_producer
from cdc.migrate.grants import WriteGrant
from cdc.offsets import OffsetStore
from cdc.urls import DatabaseUrl
from connectors.mysql.binlog import current_position as binlog_position
from connectors.mysql.dialect import connect as mysql_connect
from connectors.mysql.dialect import qualified, quote_ident
from connectors.mysql.offsets import file_number, position_from_value, position_value
from connectors.mysql.setup import default_server_id
from connectors.mysql.source_info import CONNECTOR

STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS cdc_migrations (name VARCHAR(100) PRIMARY KEY, state VARCHAR(20) NOT NULL,"
    " record TEXT NOT NULL, lock_owner VARCHAR(200), lock_at DOUBLE PRECISION, heartbeat TEXT,"
    " heartbeat_at DOUBLE PRECISION, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cdc_migration_journal (migration VARCHAR(100) NOT NULL, id BIGINT NOT NULL,"
    " at_text VARCHAR(40) NOT NULL, step VARCHAR(80) NOT NULL, status VARCHAR(20) NOT NULL, detail MEDIUMTEXT NOT NULL,"
    " PRIMARY KEY (migration, id))",
)


def connect(url: DatabaseUrl):
    """An autocommit session of the workflow's user."""
    return mysql_connect(url, error=TargetError)


def execute(conn, statement: str, params: tuple = ()) -> list[tuple]:
    """Run one statement; its rows (empty when it returns none)."""
    with conn.cursor() as cursor:
        cursor.execute(statement, params or None)
        return list(cursor.fetchall()) if cursor.description else []


def update(conn, statement: str, params: tuple = ()) -> int:
    """Run one UPDATE/DELETE; the rows it changed."""
    with conn.cursor() as cursor:
        return cursor.execute(statement, params or None)


def child_env() -> dict[str, str]:
    """Nothing: the workflow's user writes through read_only with its privilege."""
    return {}


def _bare(table: str) -> str:
    return table.rpartition(".")[2]


def freeze_sql(tables: list[str]) -> list[str]:
    """Statements of the `lock` freeze; the session holds the lock until the switch ends."""
    return ["SET SESSION lock_wait_timeout = 10",
            "FLUSH TABLES " + ", ".join(quote_ident(_bare(t)) for t in tables) + " WITH READ LOCK"]


def freeze(url: DatabaseUrl, tables: list[str]):
    """Hold a read lock on the tables (reads go on, writes wait); (the holding session, SQL run)."""
    conn = connect(url)
    statements = freeze_sql(tables)
    for statement in statements:
        execute(conn, statement)
    return conn, statements


def release(conn) -> None:
    """Release the freeze lock and close its session."""
    try:
        execute(conn, "UNLOCK TABLES")
    finally:
        conn.close()


def close_sql(database: str, user: str) -> list[str]:
    """Statements that close the server to application writes (sessions of other users end)."""
    return ["SET GLOBAL read_only = ON",
            f"KILL <id> for each session of information_schema.processlist with db = '{database}' and user <> '{user}'"]


def close_writes(conn, url: DatabaseUrl) -> list[str]:
    """Close to application writes: read_only on, application sessions of the database killed."""
    execute(conn, "SET SESSION lock_wait_timeout = 10")
    execute(conn, "SET GLOBAL read_only = ON")
    for (session,) in execute(conn, "SELECT id FROM information_schema.processlist WHERE db = %s AND user <> %s"
                              " AND id <> CONNECTION_ID()", (url.database, url.user)):
        try:
            execute(conn, f"KILL {int(session)}")
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1094:  # the session ended by itself
                raise
    return close_sql(url.database, url.user)


def open_writes(conn, url: DatabaseUrl) -> list[str]:
    """Open the server to application writes again."""
    execute(conn, "SET GLOBAL read_only = OFF")
    return ["SET GLOBAL read_only = OFF"]


def open_sql(database: str) -> list[str]:
    """The statements `open_writes` runs (for the dry run)."""
    return ["SET GLOBAL read_only = OFF"]


def drop_tables(conn, tables: list[str]) -> list[str]:
    """Drop the tables (`cdc migrate cancel --drop-tables` on the target); the SQL run."""
    statements = [f"DROP TABLE IF EXISTS {quote_ident(_bare(t))}" for t in tables]
    for statement in statements:
        execute(conn, statement)
    return statements


def writes_closed(conn, url: DatabaseUrl) -> bool:
    """True when the server is read_only."""
    return bool(int(execute(conn, "SELECT @@global.read_only")[0][0]))


def topic_namespace(url: DatabaseUrl) -> str:
    """The middle part of a table topic captured here (`<prefix>.<namespace>.<table>`)."""
    return url.database


def current_position(conn) -> str:
    """The binlog end now, `file:position` (the final position once writes are frozen)."""
    row = execute(conn, "SHOW MASTER STATUS")[0]
    return f"{row[0]}:{int(row[1])}"


def nudge(conn) -> None:
    """Nothing: the capture stores its position on the server's binlog heartbeat (once a second)."""


def _reached(stored: str, wanted: str) -> bool:
    file, _, position = stored.rpartition(":")
    wanted_file, _, wanted_position = wanted.rpartition(":")
    return (file_number(file), int(position)) >= (file_number(wanted_file), int(wanted_position))


def capture_reached(url: DatabaseUrl, kafka: str, prefix: str, position: str) -> bool:
    """True when the capture stored (after Kafka acknowledged everything before it) a position at or past this."""
    stored = position_from_value(OffsetStore(kafka, prefix, CONNECTOR).load(timeout=5.0))
    return stored is not None and _reached(str(stored), position)


def start_capture_here(url: DatabaseUrl, kafka: str, prefix: str, tables: list[str]) -> str:
    """Make the prefix's capture start at the binlog's current end, no snapshot: store that position."""
    position = binlog_position(url)
    store = OffsetStore(kafka, prefix, CONNECTOR)
    store.ensure_topic()
    producer = make_producer(kafka)
    try:
        topic, key, value, headers = store.record(position_value(position, default_server_id(prefix)))
        producer.produce(topic, value, key, headers=headers)
        producer.flush(10.0)
    finally:
        producer.close(10.0)
    return f"position {position} (gtid {position.gtid}) stored in {store.topic}"


def drop_capture(url: DatabaseUrl, kafka: str, prefix: str) -> list[str]:
    """Nothing to drop on the server: a binlog reader holds no slot."""
    return []


def counters(conn, tables: list[str]) -> dict[str, int]:
    """Table (bare name) -> its next AUTO_INCREMENT value (only tables with one)."""
    out: dict[str, int] = {}
    for table in tables:
        rows = execute(conn, "SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = DATABASE()"
                       " AND table_name = %s", (_bare(table),))
        if rows and rows[0][0] is not None:
            out[_bare(table)] = int(rows[0][0])
    return out


def set_counters_sql(tables: list[str], wanted: dict[str, int]) -> list[str]:
    """The statements `set_counters` runs (for the dry run)."""
    return [f"ALTER TABLE {quote_ident(_bare(t))} AUTO_INCREMENT = {wanted[_bare(t)]}" for t in tables
            if _bare(t) in wanted]


def set_counters(conn, tables: list[str], wanted: dict[str, int]) -> list[str]:
    """Move each table's AUTO_INCREMENT to `wanted` (MariaDB keeps it past its own rows anyway); the SQL run."""
    run: list[str] = []
    mine = counters(conn, tables)
    for table in tables:
        name = _bare(table)
        if name in wanted and name in mine and wanted[name] > mine[name]:
            statement = f"ALTER TABLE {quote_ident(name)} AUTO_INCREMENT = {int(wanted[name])}"
            execute(conn, statement)
            run.append(statement)
    return run


# -- the `revoke` freeze ---------------------------------------------------------------------------------
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE")
_WRITES_ANYWHERE = "(Insert_priv = 'Y' OR Update_priv = 'Y' OR Delete_priv = 'Y')"


def _named(user: str, host: str, roles: tuple[str, ...] | None) -> bool:
    """True when `--app-roles` names the account (`user` names it on every host, `user@host` on one)."""
    return roles is None or user in roles or f"{user}@{host}" in roles


def _global_writers(conn) -> set[tuple[str, str]]:
    """Accounts with a global (`*.*`) write privilege: REVOKE on a table cannot freeze them."""
    return {(str(u), str(h)) for u, h in execute(conn, f"SELECT User, Host FROM mysql.user WHERE {_WRITES_ANYWHERE}")}


def _privileges(value) -> set[str]:
    """A `Table_priv` SET value (a string or a set) -> upper-case names."""
    items = value.split(",") if isinstance(value, str) else value
    return {str(item).strip().upper() for item in items if str(item).strip()}


def write_grants(conn, url: DatabaseUrl, tables: list[str], roles: tuple[str, ...] | None = None) -> list[WriteGrant]:
    """Table-level write privileges on the tables of accounts other than the workflow's user and accounts with
    global write privileges (only the accounts `roles` names, when given)."""
    names = [_bare(t) for t in tables]
    marks = ", ".join(["%s"] * len(names))
    rows = execute(conn, "SELECT User, Host, Table_name, Table_priv FROM mysql.tables_priv"
                   f" WHERE Db = %s AND Table_name IN ({marks}) ORDER BY Table_name, User, Host",
                   (url.database, *names))
    everywhere = _global_writers(conn)
    out: list[WriteGrant] = []
    for user, host, table, privileges in rows:
        user, host = str(user), str(host)
        held = tuple(sorted(_privileges(privileges) & set(WRITE_PRIVILEGES)))
        if held and user != url.user and (user, host) not in everywhere and _named(user, host, roles):
            out.append(WriteGrant(str(table), user, held, host))
    return out


def revoke_refusals(conn, url: DatabaseUrl, tables: list[str], roles: tuple[str, ...] | None) -> list[str]:
    """Why a REVOKE on the tables would not stop the application accounts' writes (empty: it would)."""
    out: list[str] = []
    everywhere = _global_writers(conn)
    for user, host in execute(conn, f"SELECT User, Host FROM mysql.db WHERE %s LIKE Db AND {_WRITES_ANYWHERE}",
                              (url.database,)):
        user, host = str(user), str(host)
        if user != url.user and (user, host) not in everywhere and _named(user, host, roles):
            out.append(f"account '{user}'@'{host}' writes to every table of {url.database} through a database-level "
                       f"grant, which REVOKE on the tables cannot take away: grant it table by table, or use "
                       f"--freeze lock / read-only")
    for role in roles or ():
        user, _, host = role.partition("@")
        if user == url.user:
            out.append(f"account {role!r} is the workflow's own user: its writes carry replication")
        elif any(u == user and (not host or h == host) for u, h in everywhere):
            out.append(f"account {role!r} has global write privileges, which REVOKE on the tables cannot take away; "
                       f"use --freeze lock / read-only")
        elif not execute(conn, "SELECT 1 FROM mysql.user WHERE User = %s" + (" AND Host = %s" if host else ""),
                         (user, host) if host else (user,)):
            out.append(f"account {role!r} does not exist")
    return out


def _account_text(grant: WriteGrant) -> str:
    return f"'{grant.role}'@'{grant.host}'"


def revoke_sql(url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """The REVOKE statements that take the grants away (as text: account names go as parameters when run)."""
    return [f"REVOKE {', '.join(g.privileges)} ON {qualified(url.database, g.table)} FROM {_account_text(g)}"
            for g in grants]


def grant_sql(url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """The GRANT statements that give the grants back."""
    return [f"GRANT {', '.join(g.privileges)} ON {qualified(url.database, g.table)} TO {_account_text(g)}" for g in grants]


def revoke_writes(conn, url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """Take the grants away (the next statement of an open session is checked against it); the SQL run."""
    for g in grants:
        execute(conn, f"REVOKE {', '.join(g.privileges)} ON {qualified(url.database, g.table)} FROM %s@%s",
                (g.role, g.host))
    return revoke_sql(url, grants)


def grant_writes(conn, url: DatabaseUrl, grants: list[WriteGrant]) -> list[str]:
    """Give the grants back; the SQL run."""
    for g in grants:
        execute(conn, f"GRANT {', '.join(g.privileges)} ON {qualified(url.database, g.table)} TO %s@%s",
                (g.role, g.host))
    return grant_sql(url, grants)
