"""Shared pytest fixtures: one sandbox (PostgreSQL, MariaDB, Kafka) per test run, fresh databases per test.

Servers start lazily, on the first test that asks for `sandbox` (or a fixture built on it), so a run of
pure unit tests starts nothing. With CDC_PG_URL, CDC_MYSQL_URL and CDC_KAFKA_BOOTSTRAP all set, the
fixtures use those servers instead of starting their own.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Tests mirror the tree (tests/connectors/..., tests/cdc/...) without __init__.py files; pytest puts tests/
# first on sys.path, where those folders would shadow the real `connectors` and `cdc` packages.
ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from cdc.sandbox import Endpoints  # noqa: E402

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
        result = sandbox_servers.up(directory)
        print(f"\ncdc sandbox up in {directory} ({time.monotonic() - started:.1f}s)")
        yield result.state.endpoints()
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
def mysql_url(sandbox: Endpoints) -> str:
    """URL of the sandbox MariaDB's `cdc` database (user `root`)."""
    return sandbox.mysql_url


@pytest.fixture(scope="session")
def kafka_bootstrap(sandbox: Endpoints) -> str:
    """`host:port` of the sandbox Kafka broker."""
    return sandbox.kafka_bootstrap


def unique_database_name(request: pytest.FixtureRequest) -> str:
    """A fresh database name that says which test made it (`t_<test>_<random>`, at most 63 chars)."""
    test = "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())
    return f"t_{test[:40]}_{uuid.uuid4().hex[:12]}"


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def pg_database(pg_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test; yields its URL, drops it (and its replication slots) after."""
    from connectors.postgres.dialect import connect, quote_ident

    name = unique_database_name(request)
    with connect(pg_url) as conn:
        conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    try:
        yield with_database(pg_url, name)
    finally:
        with connect(pg_url) as conn:
            _drop_pg_database(conn, name)


def _drop_pg_database(conn, name: str) -> None:
    """Stop the database's walsenders and sessions, drop its slots, then drop it."""
    import psycopg

    from connectors.postgres.dialect import quote_ident

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
            left = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (name,)).fetchone()[0]
        except psycopg.errors.ObjectInUse:
            left = 1  # a walsender re-took the slot between the two statements
        if not left:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"replication slots on {name} stay active; cannot drop the test database")
        time.sleep(0.1)
    conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


@pytest.fixture
def mysql_database(mysql_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh MariaDB database for one test; yields its URL, drops it after (killing its sessions first)."""
    import pymysql

    from connectors.mysql.dialect import connect, quote_ident

    name = unique_database_name(request)
    conn = connect(mysql_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
    finally:
        conn.close()
    try:
        yield with_database(mysql_url, name)
    finally:
        conn = connect(mysql_url)
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
