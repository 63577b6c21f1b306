"""MySQL/MariaDB SQL dialect and connections: identifier quoting and `connect` with actionable errors."""

from __future__ import annotations

import pymysql

from cdc.errors import CdcError, SourceError
from cdc.urls import DatabaseUrl, parse_url
from connectors.mysql.tls import tls_kwargs


def quote_ident(name: str) -> str:
    """Quote an identifier with backticks (identifiers from the source are untrusted)."""
    if "\x00" in name:
        raise ValueError(f"identifier contains a NUL byte: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def qualified(database: str, table: str) -> str:
    """`` `db`.`table` ``, both parts quoted."""
    return f"{quote_ident(database)}.{quote_ident(table)}"


def connection_kwargs(url: DatabaseUrl | str) -> dict:
    """pymysql.connect keyword arguments for the URL (UTC session, utf8mb4, TLS from the URL's options)."""
    url = parse_url(url) if isinstance(url, str) else url
    return {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password or "",
        "database": url.database,
        "charset": "utf8mb4",
        "connect_timeout": 10,
        "init_command": "SET time_zone = '+00:00'",
        **tls_kwargs(url.options),
    }


def connect(url: DatabaseUrl | str, *, error: type[CdcError] = SourceError, autocommit: bool = True, **kwargs):
    """Open a pymysql connection; an unreachable server or a refused login becomes `error` with the fix.

    A URL listing several servers (`mysql://u@h1:3306,h2:3307/db`) connects to the first that answers,
    in the order listed: the primary first, then the replicas that may replace it after a failover.
    """
    url = parse_url(url) if isinstance(url, str) else url
    failures = []
    for host, port in url.servers:
        try:
            return pymysql.connect(autocommit=autocommit, **{**connection_kwargs(url), "host": host, "port": port,
                                                             **kwargs})
        except pymysql.err.OperationalError as exc:
            failures.append((host, port, exc))
    host, port, last = failures[-1]
    tried = "" if len(failures) == 1 else f" (tried {len(failures)} servers; the last, {host}:{port}, said)"
    raise error(
        f"cannot connect to MySQL/MariaDB at {url.redacted()}{tried}: {last.args[-1] if last.args else last}",
        fix="check that the server runs, the host/port/database are right and the user may log in from here",
    ) from last
