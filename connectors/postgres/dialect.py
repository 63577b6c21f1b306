"""PostgreSQL SQL dialect and connections: identifier quoting and `connect` with actionable errors."""

from __future__ import annotations

import os

import psycopg

from cdc.errors import CdcError, SourceError
from cdc.urls import DatabaseUrl, parse_url

# Sessions see dates, times and intervals in the forms the envelope expects.
SESSION_OPTIONS = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3"


def quote_ident(name: str) -> str:
    """Quote an identifier for PostgreSQL (identifiers from the source are untrusted)."""
    if "\x00" in name:
        raise ValueError(f"identifier contains a NUL byte: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(namespace: str, table: str) -> str:
    """`"schema"."table"`, both parts quoted."""
    return f"{quote_ident(namespace)}.{quote_ident(table)}"


def conninfo(url: DatabaseUrl | str, **extra: str) -> str:
    """A libpq conninfo string for the URL, with the session options above and any extra keywords."""
    url = parse_url(url) if isinstance(url, str) else url
    params = {
        "host": ",".join(host for host, _ in url.servers),  # libpq tries them in turn
        "port": ",".join(str(port) for _, port in url.servers),
        "user": url.user,
        "dbname": url.database,
        # PGOPTIONS is kept, as libpq would (`cdc migrate` children write through a read-only default)
        "options": f"{SESSION_OPTIONS} {os.environ.get('PGOPTIONS', '')}".strip(),
        "application_name": "cdc",
        "connect_timeout": "10",
        **url.options,
        **extra,
    }
    if url.password is not None:
        params["password"] = url.password
    return psycopg.conninfo.make_conninfo(**params)


def connect(
    url: DatabaseUrl | str, *, error: type[CdcError] = SourceError, autocommit: bool = True, **kwargs
) -> psycopg.Connection:
    """Open a psycopg connection; an unreachable server or a refused login becomes `error` with the fix."""
    url = parse_url(url) if isinstance(url, str) else url
    try:
        return psycopg.connect(conninfo(url), autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise error(
            f"cannot connect to PostgreSQL at {url.redacted()}: {str(exc).strip()}",
            fix="check that the server runs, the host/port/database are right and pg_hba.conf allows this user",
        ) from exc
