"""The engine-neutral part of type mapping: the widening rule used for schema changes and the shared helpers.

Each engine's type map is tested beside it: tests/connectors/<engine>/test_typemap.py.
"""

from __future__ import annotations

import pytest

from cdc.apply.typemap import has_fixed_type, is_widening, time_precision
from cdc.events import Column


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


@pytest.mark.parametrize("precision, expected", [(None, 6), (0, 0), (3, 3), (9, 6), (-1, 0)])
def test_time_precision_is_between_0_and_6(precision, expected):
    assert time_precision(Column("c", "time", "time", precision=precision)) == expected


@pytest.mark.parametrize("source_type, fixed", [("char(3)", True), ("CHAR", True), ("character varying(3)", False)])
def test_fixed_type_prefixes(source_type, fixed):
    assert has_fixed_type(Column("c", source_type, "string"), "char(", "character(") is fixed
