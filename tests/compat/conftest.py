"""Fixtures of the Debezium oracle tests: one database per test module (one JVM start per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import create_mysql_database, create_pg_database, drop_mysql_database, drop_pg_database

__all__ = ["create_mysql_database", "create_pg_database", "drop_mysql_database", "drop_pg_database"]


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
