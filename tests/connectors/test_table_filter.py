"""cdc.tables.TableFilter: one rule for both connectors, with each engine's spellings."""

from __future__ import annotations

from cdc.tables import TableFilter


def mysql_filter(tables=(), include=None, database="shop") -> TableFilter:
    """The filter as connectors/mysql/source.py builds it: bare names and the default scope are the URL's database."""
    return TableFilter(tables, include, default_namespace=database, scope=database)


def postgres_filter(tables=(), include=None) -> TableFilter:
    """The filter as connectors/postgres/source.py builds it: bare names are in `public`, no scope."""
    return TableFilter(tables, include, default_namespace="public")


def test_listed_db_table_and_bare_names_match_exactly() -> None:
    shop = mysql_filter(("shop.orders", "items"), database="shop")
    assert shop("shop", "orders") and shop("shop", "items")
    assert not shop("shop", "customers") and not shop("other", "orders") and not shop("shop", "Orders")
    assert mysql_filter(("shop.orders",), database="x")("shop", "orders")


def test_listed_schema_table_bare_names_and_pairs_for_postgres() -> None:
    listed = postgres_filter(("sales.orders", "items", ("audit", "log")))
    assert listed("sales", "orders") and listed("public", "items") and listed("audit", "log")
    assert not listed("public", "orders") and not listed("sales", "items")


def test_an_entry_splits_at_its_first_dot_and_ignores_surrounding_spaces() -> None:
    assert TableFilter((" shop.a.b ",))("shop", "a.b")


def test_include_must_match_the_whole_qualified_name() -> None:
    pattern = mysql_filter(include=r"shop\.o.*", database="x")
    assert pattern("shop", "orders") and pattern("shop", "o")
    assert not pattern("myshop", "orders") and not pattern("shop", "items")
    assert postgres_filter(include=r"public\.t[0-9]+")("public", "t12")
    assert not postgres_filter(include=r"public\.t[0-9]+")("public", "t12x")


def test_a_list_wins_over_a_pattern() -> None:
    both = postgres_filter(("public.a",), include=r"public\..*")
    assert both("public", "a") and not both("public", "b")


def test_without_list_or_pattern_mysql_takes_the_url_database_and_postgres_everything() -> None:
    assert mysql_filter(database="shop")("shop", "orders")
    assert not mysql_filter(database="shop")("other", "orders")
    assert postgres_filter()("any", "table")


def test_namespaces_names_the_databases_whose_ddl_matters() -> None:
    assert mysql_filter(("a.t", "b.u", "v"), database="c").namespaces() == {"a", "b", "c"}
    assert mysql_filter(database="shop").namespaces() == {"shop"}
    assert mysql_filter(include="x.*").namespaces() == set()
    assert postgres_filter().namespaces() == set()
