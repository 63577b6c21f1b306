"""Cross-engine type map (docs/type-mapping.md) and the widening rule used for schema changes."""

from __future__ import annotations

import pytest

from cdc.apply.typemap import is_widening, mysql_type, pg_type
from cdc.events import KINDS, Column


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_type_on_both_engines(kind):
    column = Column("c", kind, kind, element="int" if kind == "array" else None)
    assert pg_type(column, "mysql") and pg_type(column, "postgresql")
    assert mysql_type(column, "mysql") and mysql_type(column, "postgresql")


@pytest.mark.parametrize("column, pg, mysql", [
    (Column("c", "int unsigned", "int", length=4, unsigned=True), "bigint", "int unsigned"),
    (Column("c", "bigint unsigned", "int", length=8, unsigned=True), "numeric(20,0)", "bigint unsigned"),
    (Column("c", "tinyint(1)", "int", length=1), "smallint", "tinyint"),
    (Column("c", "character varying(20)", "string", length=20), "character varying(20)", "varchar(20)"),
    (Column("c", "char(3)", "string", length=3), "character(3)", "char(3)"),
    (Column("c", "text", "string"), "text", "longtext"),
    (Column("c", "text", "string", primary_key=True), "text", "varchar(768)"),
    (Column("c", "numeric(10,2)", "decimal", precision=10, scale=2), "numeric(10,2)", "decimal(10,2)"),
    (Column("c", "numeric", "decimal"), "numeric", "decimal(65,30)"),
    (Column("c", "enum('a','b')", "enum", values=("a", "b")), "text", "enum('a','b')"),
    (Column("c", "timestamp(3)", "timestamptz", precision=3), "timestamp(3) with time zone", "timestamp(3) NULL"),
    (Column("c", "integer[]", "array", element="int", length=None), "integer[]", "json"),
    (Column("c", "bit(4)", "bits", length=4), "bit(4)", "bit(4)"),
    (Column("c", "bit varying(8)", "bits", length=8), "bit varying(8)", "varchar(8)"),
])
def test_type_map_examples(column, pg, mysql):
    source = "mysql" if column.source_type.startswith(("int unsigned", "bigint unsigned", "tinyint", "enum", "timestamp")) else "postgresql"
    assert pg_type(column, source) == pg
    assert mysql_type(column, "mysql" if source == "mysql" else "postgresql") == mysql


@pytest.mark.parametrize("current, wanted, widening", [
    ("character varying(20)", "character varying(200)", True),
    ("character varying(200)", "character varying(20)", False),
    ("integer", "bigint", True),
    ("int(11)", "bigint", True),
    ("bigint", "integer", False),
    ("numeric(10,2)", "numeric(12,2)", True),
    ("numeric(10,2)", "numeric(10,3)", False),
    ("real", "double precision", True),
    ("varchar(10)", "longtext", True),
    ("text", "integer", False),
])
def test_widening_rule(current, wanted, widening):
    assert is_widening(current, wanted) is widening
