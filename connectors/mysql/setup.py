"""Checks that a MySQL/MariaDB server can be captured, each failure naming the setting and the fix.

`check_source(conn, ...)` runs them all before a capture starts: binlog on, ROW format, FULL row image,
FULL row metadata (column names, signedness, charsets in every TABLE_MAP), the privileges the capture
uses, and no other replica with our server id (`default_server_id` when none is given). It returns
what the rest of the connector needs to know about the server (`ServerInfo`).
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field

import pymysql

from cdc.errors import SourceError
from cdc.tables import TableFilter
from connectors.mysql.dialect import qualified

DEFAULT_SERVER_ID_BASE = 5400  # default server ids start here, away from the small ids servers usually have
RESTART_HINT = "set it in the server's configuration ([mysqld] section) and restart the server"


@dataclass(slots=True, frozen=True)
class ServerInfo:
    """What the capture needs to know about the source server."""

    version: str
    mariadb: bool
    server_id: int
    binlog_checksum: str
    compressed_binlog: bool
    collations: dict[int, str] = field(default_factory=dict)


def _variables(cursor, names: tuple[str, ...]) -> dict[str, str]:
    cursor.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ",".join(["%s"] * len(names)) + ")", names)
    return {str(name).lower(): str(value) for name, value in cursor.fetchall()}


def check_binlog_settings(variables: dict[str, str], mariadb: bool) -> None:
    """SourceError naming the first binlog setting that stops row-level capture, with its fix."""
    if variables.get("log_bin", "OFF").upper() not in ("ON", "1"):
        raise SourceError("log_bin is OFF: the server writes no binlog",
                          fix="start the server with log_bin (e.g. --log-bin=mysql-bin) and server_id set; " + RESTART_HINT)
    binlog_format = variables.get("binlog_format", "").upper()
    if binlog_format != "ROW":
        raise SourceError(f"binlog_format is '{binlog_format}'; row changes need binlog_format=ROW",
                          fix="SET GLOBAL binlog_format = 'ROW' (existing sessions keep the old value) and " + RESTART_HINT)
    row_image = variables.get("binlog_row_image", "").upper()
    if row_image != "FULL":
        raise SourceError(f"binlog_row_image is '{row_image}'; before/after images need binlog_row_image=FULL",
                          fix="SET GLOBAL binlog_row_image = 'FULL' and " + RESTART_HINT)
    metadata = variables.get("binlog_row_metadata")
    if metadata is None:
        needed = "MariaDB 10.5" if mariadb else "MySQL 8.0.14"
        raise SourceError(f"the server has no binlog_row_metadata setting (column names and charsets are not in "
                          f"the binlog); {needed} or newer is needed", fix="upgrade the server")
    if metadata.upper() != "FULL":
        raise SourceError(f"binlog_row_metadata is '{metadata}'; decoding needs column names, signedness and "
                          "charsets in the binlog (binlog_row_metadata=FULL)",
                          fix="SET GLOBAL binlog_row_metadata = 'FULL' and " + RESTART_HINT)


_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO ", re.IGNORECASE)


def parse_grants(lines: list[str]) -> dict[str, set[str]]:
    """SHOW GRANTS lines -> {target ("*.*", "`db`.*", "`db`.`t`"): {privilege, ...}} (upper case)."""
    grants: dict[str, set[str]] = {}
    for line in lines:
        match = _GRANT.match(line.strip())
        if match is None:
            continue
        privileges = {p.strip().upper() for p in re.sub(r"\([^)]*\)", "", match.group("privileges")).split(",")}
        target = match.group("target").replace("`", "").lower()
        grants.setdefault(target, set()).update(privileges)
    return grants


_ROLE_GRANT = re.compile(r"^GRANT (?P<roles>(?:(?!\bON\b).)+?) TO ", re.IGNORECASE)
_QUOTED_ROLE = re.compile(r"`((?:[^`]|``)+)`(?:@`((?:[^`]|``)*)`)?|'([^']+)'(?:@'([^']*)')?|([^\s,`'@]+)")


def parse_roles(text: str) -> list[str]:
    """Role names in `r1`, 'r2'@'%', r3 (a GRANT ... TO line's left side, or CURRENT_ROLE()'s answer) as
    SHOW GRANTS FOR accepts them."""
    roles = []
    for match in _QUOTED_ROLE.finditer(text or ""):
        name = match.group(1) or match.group(3) or match.group(5)
        host = match.group(2) if match.group(1) else match.group(4)
        if not name or name.upper() == "NONE":
            continue
        name = name.replace("``", "`")
        roles.append(f"`{name.replace('`', '``')}`" + (f"@`{host}`" if host is not None else ""))
    return roles


def granted_roles(lines: list[str]) -> list[str]:
    """The roles a SHOW GRANTS answer grants (`GRANT role TO user` lines, which have no ON clause)."""
    roles = []
    for line in lines:
        match = _ROLE_GRANT.match(line.strip())
        if match is not None:
            roles += parse_roles(match.group("roles"))
    return roles


def grants_with_roles(cursor, lines: list[str], active: list[str]) -> dict[str, set[str]]:
    """The privileges of the account and of its active roles (and of the roles those are granted), merged."""
    grants = parse_grants(lines)
    seen: set[str] = set()
    todo = list(active)
    while todo:
        role = todo.pop()
        if role in seen or len(seen) > 50:
            continue
        seen.add(role)
        cursor.execute(f"SHOW GRANTS FOR {role}")
        role_lines = [row[0] for row in cursor.fetchall()]
        for target, privileges in parse_grants(role_lines).items():
            grants.setdefault(target, set()).update(privileges)
        todo += granted_roles(role_lines)
    return grants


def check_privileges(grants: dict[str, set[str]], user: str, database: str) -> None:
    """SourceError naming the missing privilege and the GRANT that adds it."""
    global_privileges = grants.get("*.*", set())
    everything = "ALL PRIVILEGES" in global_privileges or "ALL" in global_privileges

    def has_global(*names: str) -> bool:
        return everything or any(name in global_privileges for name in names)

    if not has_global("REPLICATION SLAVE", "REPLICATION REPLICA"):
        raise SourceError(f"user {user} lacks the REPLICATION SLAVE privilege needed to read the binlog",
                          fix=f"GRANT REPLICATION SLAVE ON *.* TO {user}")
    if not has_global("REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"):
        raise SourceError(f"user {user} lacks REPLICATION CLIENT (MariaDB: BINLOG MONITOR), needed for the binlog "
                          "position", fix=f"GRANT REPLICATION CLIENT ON *.* TO {user} (MariaDB 10.5+: GRANT BINLOG "
                                          f"MONITOR ON *.* TO {user})")
    database_privileges = grants.get(f"{database.lower()}.*", set())
    if not (has_global("SELECT") or database_privileges & {"SELECT", "ALL PRIVILEGES", "ALL"}
            or any(target.startswith(f"{database.lower()}.") and privileges & {"SELECT", "ALL PRIVILEGES", "ALL"}
                   for target, privileges in grants.items())):
        raise SourceError(f"user {user} may not SELECT from database {database} (snapshots and schemas need it)",
                          fix=f"GRANT SELECT ON `{database}`.* TO {user}")


def check_source(conn, *, database: str, server_id: int | None = None) -> ServerInfo:
    """Run every check on an open pymysql connection; ServerInfo on success, SourceError on the first failure."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@server_id, CURRENT_USER()")
        version, own_server_id, user = cursor.fetchone()
        mariadb = "mariadb" in str(version).lower()
        variables = _variables(cursor, ("log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
                                        "binlog_checksum", "log_bin_compress"))
        check_binlog_settings(variables, mariadb)
        cursor.execute("SHOW GRANTS FOR CURRENT_USER()")
        lines = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT CURRENT_ROLE()")  # the default role (SET DEFAULT ROLE) is active at login
        grants = grants_with_roles(cursor, lines, parse_roles(cursor.fetchone()[0] or ""))
        account = "'{}'@'{}'".format(*str(user).split("@", 1)) if "@" in str(user) else str(user)
        check_privileges(grants, account, database)
        if server_id is not None:
            if server_id == int(own_server_id):
                raise SourceError(f"server id {server_id} is the source server's own server_id",
                                  fix="pick another --server-id for the capture")
            check_server_id_free(cursor, server_id)
        cursor.execute("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")
        collations = {int(collation): str(charset) for collation, charset in cursor.fetchall()}
    return ServerInfo(
        version=str(version),
        mariadb=mariadb,
        server_id=int(own_server_id),
        binlog_checksum=variables.get("binlog_checksum", "NONE"),
        compressed_binlog=variables.get("log_bin_compress", "OFF").upper() in ("ON", "1"),
        collations=collations,
    )


def check_server_id_free(cursor, server_id: int, wait: float = 5.0) -> None:
    """SourceError when a replica with `server_id` stays registered with the source for `wait` seconds.

    A capture that just stopped (or crashed) stays listed until the server notices its connection is
    gone, which takes a heartbeat or two: only a registration that outlives `wait` is another replica.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("SHOW SLAVE HOSTS")
        except pymysql.err.MySQLError:
            return  # no privilege to list replicas: the binlog reader still reports a duplicate at once
        holder = next((row for row in cursor.fetchall() if row and int(row[0]) == server_id), None)
        if holder is None:
            return
        if time.monotonic() > deadline:
            raise SourceError(f"another replica ({holder[1] or 'unnamed host'}) is connected with server_id {server_id}",
                              fix="give this capture a server id no other replica uses (--server-id N)")
        time.sleep(0.5)


def default_server_id(prefix: str) -> int:
    """A stable server id per prefix (from DEFAULT_SERVER_ID_BASE on)."""
    return DEFAULT_SERVER_ID_BASE + zlib.crc32(prefix.encode()) % 1_000_000


def resolve_tables(conn, table_filter: TableFilter) -> list[tuple[str, str]]:
    """The captured base tables as (db, table); SourceError naming a `--tables` entry that matches none."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
                       " AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
                       " ORDER BY 1, 2")
        existing = [(str(db), str(name)) for db, name in cursor.fetchall()]
    missing = table_filter.missing(existing)
    if missing:
        names = ", ".join(qualified(db, name) for db, name in missing)
        raise SourceError(f"--tables names {names}, which does not exist as a base table",
                          fix="create it, or fix the entry: quote names as MySQL does, e.g. shop.`order items`")
    return [(db, name) for db, name in existing if table_filter(db, name)]
