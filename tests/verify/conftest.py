"""Fixtures for verify tests: pairs of fresh databases (PG<->PG, MariaDB<->MariaDB, PG<->MariaDB, MariaDB<->PG)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from connectors.mysql import dialect as mysql_dialect
from connectors.postgres import dialect as pg_dialect
from tests.conftest import create_mysql_database, create_pg_database, drop_mysql_database, drop_pg_database


@dataclass
class Database:
    """One test database: its engine, URL, and a way to run SQL on it."""

    engine: str  # "pg" | "my"
    url: str

    def run(self, sql: str, params: tuple | list | None = None, *, many: bool = False) -> None:
        if self.engine == "pg":
            with pg_dialect.connect(self.url) as conn, conn.cursor() as cursor:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
        else:
            conn = mysql_dialect.connect(self.url)
            try:
                with conn.cursor() as cursor:
                    if many:
                        cursor.executemany(sql, params)
                    else:
                        cursor.execute(sql, params)
            finally:
                conn.close()


@pytest.fixture
def extra_database(pg_url: str, mysql_url: str) -> Iterator:
    """A factory for more fresh databases (dropped after the test): extra_database("pg"|"my")."""
    made: list[Database] = []

    def make(engine: str) -> Database:
        create = create_pg_database if engine == "pg" else create_mysql_database
        database = Database(engine, create(pg_url if engine == "pg" else mysql_url, "verify"))
        made.append(database)
        return database

    yield make
    for database in made:
        if database.engine == "pg":
            drop_pg_database(pg_url, database.url)
        else:
            drop_mysql_database(mysql_url, database.url)


PAIRS = ["pg-pg", "my-my", "pg-my", "my-pg"]


@pytest.fixture(params=PAIRS)
def pair(request: pytest.FixtureRequest, extra_database) -> tuple[Database, Database]:
    """(source, target) fresh databases for each engine pair."""
    source_engine, target_engine = request.param.split("-")
    return extra_database(source_engine), extra_database(target_engine)
