"""Source column -> PostgreSQL column type (connectors/postgres/typemap.py, docs/type-mapping.md)."""

from __future__ import annotations

import pytest

from cdc.events import KINDS, Column
from connectors.postgres.typemap import column_type


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source_engine", ["postgresql", "mysql"])
def test_every_kind_has_a_type_from_either_source(kind, source_engine):
    column = Column("c", kind, kind, element="int" if kind == "array" else None)
    assert column_type(column, source_engine)


@pytest.mark.parametrize("column, source_engine, expected", [
    (Column("c", "int unsigned", "int", length=4, unsigned=True), "mysql", "bigint"),
    (Column("c", "bigint unsigned", "int", length=8, unsigned=True), "mysql", "numeric(20,0)"),
    (Column("c", "tinyint(1)", "int", length=1), "mysql", "smallint"),
    (Column("c", "character varying(20)", "string", length=20), "postgresql", "character varying(20)"),
    (Column("c", "char(3)", "string", length=3), "postgresql", "character(3)"),
    (Column("c", "text", "string"), "postgresql", "text"),
    (Column("c", "text", "string", primary_key=True), "postgresql", "text"),
    (Column("c", "numeric(10,2)", "decimal", precision=10, scale=2), "postgresql", "numeric(10,2)"),
    (Column("c", "numeric", "decimal"), "postgresql", "numeric"),
    (Column("c", "enum('a','b')", "enum", values=("a", "b")), "mysql", "text"),
    (Column("c", "timestamp(3)", "timestamptz", precision=3), "mysql", "timestamp(3) with time zone"),
    (Column("c", "integer[]", "array", element="int", length=None), "postgresql", "integer[]"),
    (Column("c", "bit(4)", "bits", length=4), "postgresql", "bit(4)"),
    (Column("c", "bit varying(8)", "bits", length=8), "postgresql", "bit varying(8)"),
])
def test_type_map_examples(column, source_engine, expected):
    assert column_type(column, source_engine) == expected


@pytest.mark.parametrize("source_engine, expected", [("postgresql", "json"), ("mysql", "jsonb")])
def test_json_stays_json_only_from_a_postgresql_source(source_engine, expected):
    assert column_type(Column("c", "json", "json"), source_engine) == expected


@pytest.mark.parametrize("source_engine, expected", [("postgresql", "int4range"), ("mysql", "text")])
def test_range_types_are_kept_only_from_a_postgresql_source(source_engine, expected):
    assert column_type(Column("c", "int4range", "range"), source_engine) == expected


def test_time_precision_is_capped_at_microseconds():
    assert column_type(Column("c", "datetime(9)", "timestamp", precision=9), "mysql") == \
        "timestamp(6) without time zone"
