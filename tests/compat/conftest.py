"""Fixtures of the Debezium oracle tests: one database per test module (one JVM start per module)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest


def database_url(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def create_pg_database(server_url: str, label: str) -> str:
    from connectors.postgres.dialect import connect, quote_ident

    name = f"t_{label}_{uuid.uuid4().hex[:12]}"
    with connect(server_url) as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    return database_url(server_url, name)


def drop_pg_database(server_url: str, url: str) -> None:
    """Stop the database's sessions and walsenders, drop its replication slots, then drop it."""
    import psycopg

    from connectors.postgres.dialect import connect, quote_ident

    name = urlsplit(url).path.lstrip("/")
    with connect(server_url) as conn:
        conn.autocommit = True
        deadline = time.monotonic() + 30
        while True:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            try:
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE database = %s AND NOT active", (name,))
                left = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s",
                                    (name,)).fetchone()[0]
            except psycopg.errors.ObjectInUse:
                left = 1
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def create_mysql_database(server_url: str, label: str) -> str:
    from connectors.mysql.dialect import connect, quote_ident

    name = f"t_{label}_{uuid.uuid4().hex[:12]}"
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    finally:
        conn.close()
    return database_url(server_url, name)


def drop_mysql_database(server_url: str, url: str) -> None:
    import pymysql

    from connectors.mysql.dialect import connect, quote_ident

    name = urlsplit(url).path.lstrip("/")
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                           (name,))
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(session)}")
                except pymysql.err.OperationalError:
                    pass  # the session ended by itself
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def compat_pg_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database of this module's own."""
    url = create_pg_database(pg_url, "compat_pg")
    try:
        yield url
    finally:
        drop_pg_database(pg_url, url)


@pytest.fixture(scope="module")
def compat_mysql_url(mysql_url: str) -> Iterator[str]:
    """A MariaDB database of this module's own."""
    url = create_mysql_database(mysql_url, "compat_my")
    try:
        yield url
    finally:
        drop_mysql_database(mysql_url, url)
