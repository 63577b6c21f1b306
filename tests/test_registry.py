"""The engine table (`cdc/registry.py`): every engine fills every role at its fixed module name."""

from __future__ import annotations

import pytest

from cdc import registry
from cdc.apply.target import TargetWriter
from cdc.compat import DebeziumProfile
from cdc.errors import ConfigError
from cdc.events import Column
from cdc.urls import parse_url
from cdc.verify.checksum import EngineDialect

URLS = {"postgresql": "postgresql://u@127.0.0.1:5432/db", "mysql": "mysql://u@127.0.0.1:3306/db"}


def test_every_engine_has_an_example_url():
    assert set(URLS) == set(registry.ENGINES)


@pytest.mark.parametrize("engine", sorted(registry.ENGINES))
@pytest.mark.parametrize("role", registry.ROLES)
def test_every_engine_fills_every_role_in_its_own_package(engine, role):
    module = registry.connector_module(engine, role)
    assert module.__name__ == f"{registry.ENGINES[engine]}.{role}"


@pytest.mark.parametrize("engine", sorted(registry.ENGINES))
def test_roles_expose_what_cdc_calls(engine):
    url = URLS[engine]
    assert callable(registry.source_module(url).run_capture)
    assert issubclass(registry.connector_module(engine, "target").Writer, TargetWriter)
    dialect = registry.checksum_dialect(parse_url(url))
    assert isinstance(dialect, EngineDialect) and dialect.engine == engine
    status = registry.status_module(url)
    assert callable(status.source_status) and callable(status.target_offsets)
    assert isinstance(registry.debezium_profile(engine), DebeziumProfile)
    assert registry.type_map(engine).column_type(Column("c", "integer", "int", length=4), engine)


def test_writers_ask_their_own_engine_type_map():
    column = Column("c", "text", "string")
    pg_writer = registry.connector_module("postgresql", "target").Writer
    mysql_writer = registry.connector_module("mysql", "target").Writer
    assert TargetWriter.column_type(pg_writer.__new__(pg_writer), column, "mysql") == "text"
    assert TargetWriter.column_type(mysql_writer.__new__(mysql_writer), column, "postgresql") == "longtext"


def test_an_unknown_engine_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="no type map for sqlite") as caught:
        registry.connector_module("sqlite", "typemap")
    assert "postgresql" in caught.value.fix and "mysql" in caught.value.fix


def test_an_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown connector role"):
        registry.connector_module("postgresql", "spool")


def test_only_capture_position_in_the_database_is_waited_for():
    pg = registry.checksum_dialect(parse_url(URLS["postgresql"]))
    mysql = registry.checksum_dialect(parse_url(URLS["mysql"]))
    assert pg.records_capture_position and not mysql.records_capture_position
