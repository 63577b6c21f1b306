"""Fixtures for verify tests: pairs of fresh databases (PG<->PG, MariaDB<->MariaDB, PG<->MariaDB, MariaDB<->PG)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

import cdc.verify.parity
import cdc.verify.report

from connectors.mysql import dialect as mysql_dialect
from connectors.postgres import dialect as pg_dialect
from tests.conftest import create_mysql_database, create_pg_database, drop_mysql_database, drop_pg_database

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "verify-report.schema.json").read_text())
REPORT_VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
TYPED_VALUE = {name: Draft202012Validator(rule) for name, rule in SCHEMA["$defs"]["typed_values"]["properties"].items()}


def check_report(data: dict) -> dict:
    """Fail unless `data` validates against docs/verify-report.schema.json and every value follows its column's type."""
    REPORT_VALIDATOR.validate(data)
    assert orjson.loads(orjson.dumps(data)) == data  # pure JSON types: nothing left to a fallback spelling
    for table in data["tables"]:
        types = table["value_types"]
        for row in table["rows"]:
            assert list(row["key"]) == (table["key"] or list(types)), row  # key order (keyless: column order)
            values = [*row["key"].items()]
            values += [(c["column"], v) for c in row.get("columns", []) for v in (c["source"], c["target"])]
            for column, value in values:
                if value is not None:
                    TYPED_VALUE[types[column]].validate(value)
    return data


@pytest.fixture(autouse=True)
def reports_follow_the_published_schema(monkeypatch, request):
    """Every report a verify test builds (CLI, `report_dict`, or `verify` called directly) is checked."""
    built = cdc.verify.report.report_dict

    def checked_report_dict(report):
        return check_report(built(report))

    monkeypatch.setattr(cdc.verify.report, "report_dict", checked_report_dict)
    module_verify = getattr(request.module, "verify", None)
    if module_verify is cdc.verify.parity.verify:
        def checked_verify(*args, **kwargs):
            report = module_verify(*args, **kwargs)
            checked_report_dict(report)
            return report

        monkeypatch.setattr(request.module, "verify", checked_verify)


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
