"""Source column -> MySQL/MariaDB column type (connectors/mysql/typemap.py, docs/type-mapping.md)."""

from __future__ import annotations

import pytest

from cdc.events import KINDS, Column
from connectors.mysql.typemap import MYSQL_KEY_CHARS, column_type


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source_engine", ["postgresql", "mysql"])
def test_every_kind_has_a_type_from_either_source(kind, source_engine):
    column = Column("c", kind, kind, element="int" if kind == "array" else None)
    assert column_type(column, source_engine)


@pytest.mark.parametrize("column, source_engine, expected", [
    (Column("c", "int unsigned", "int", length=4, unsigned=True), "mysql", "int unsigned"),
    (Column("c", "bigint unsigned", "int", length=8, unsigned=True), "mysql", "bigint unsigned"),
    (Column("c", "tinyint(1)", "int", length=1), "mysql", "tinyint"),
    (Column("c", "character varying(20)", "string", length=20), "postgresql", "varchar(20)"),
    (Column("c", "char(3)", "string", length=3), "postgresql", "char(3)"),
    (Column("c", "text", "string"), "postgresql", "longtext"),
    (Column("c", "text", "string", primary_key=True), "postgresql", f"varchar({MYSQL_KEY_CHARS})"),
    (Column("c", "numeric(10,2)", "decimal", precision=10, scale=2), "postgresql", "decimal(10,2)"),
    (Column("c", "numeric", "decimal"), "postgresql", "decimal(65,30)"),
    (Column("c", "numeric(70,2)", "decimal", precision=70, scale=2), "postgresql", "decimal(65,30)"),
    (Column("c", "enum('a','b')", "enum", values=("a", "b")), "mysql", "enum('a','b')"),
    (Column("c", "timestamp(3)", "timestamptz", precision=3), "mysql", "timestamp(3) NULL"),
    (Column("c", "integer[]", "array", element="int", length=None), "postgresql", "json"),
    (Column("c", "bit(4)", "bits", length=4), "postgresql", "bit(4)"),
    (Column("c", "bit varying(8)", "bits", length=8), "postgresql", "varchar(8)"),
])
def test_type_map_examples(column, source_engine, expected):
    assert column_type(column, source_engine) == expected


def test_instants_from_another_engine_go_to_datetime_beyond_timestamps_range():
    column = Column("c", "timestamp with time zone", "timestamptz", precision=6)
    assert column_type(column, "mysql") == "timestamp(6) NULL"
    assert column_type(column, "postgresql") == "datetime(6)"


def test_enum_members_are_quoted():
    column = Column("c", "enum", "enum", values=("it's", "back\\slash"))
    assert column_type(column, "mysql") == "enum('it''s','back\\\\slash')"
