"""Which source tables a capture takes: one `TableFilter` for every connector."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cdc.errors import ConfigError

QUOTES = ('"', "`")  # PostgreSQL quotes names with "...", MySQL/MariaDB with `...`; a doubled quote is one


def split_table_entry(entry: str, default_namespace: str | None = None) -> tuple[str, str]:
    """One `--tables` entry -> (namespace, table); ConfigError when it is not a name.

    `ns.table`, or a bare `table` in `default_namespace`. Each part is either plain (taken as written,
    no case folding) or quoted the way its engine quotes it, `"order items$ü x"` or
    `` `order items$ü x` ``, where a doubled quote stands for one and dots are part of the name. An
    entry without quotes splits at its first dot (`shop.a.b` is table `a.b` of `shop`).
    """
    text = entry.strip()
    if not any(q in text for q in QUOTES) and text.count(".") > 1:
        namespace, _, table = text.partition(".")
        if namespace and table:
            return namespace, table
    parts = _split_parts(text, entry)
    if len(parts) == 1:
        return default_namespace or "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ConfigError(f"table name {entry!r} has {len(parts)} dot-separated parts; expected table or namespace.table",
                      fix='quote a name that holds a dot: "schema"."a.b" (PostgreSQL) or `db`.`a.b` (MySQL)')


def _split_parts(text: str, entry: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while True:
        if i < len(text) and text[i] in QUOTES:
            quote = text[i]
            name, i = _quoted_part(text, i + 1, quote, entry)
        else:
            end = text.find(".", i)
            end = len(text) if end < 0 else end
            name, i = text[i:end].strip(), end
            if any(q in name for q in QUOTES):
                raise ConfigError(f"table name {entry!r} has a quote inside an unquoted part",
                                  fix="quote the whole part and double the quotes inside it")
        if not name:
            raise ConfigError(f"table name {entry!r} has an empty part")
        parts.append(name)
        if i >= len(text):
            return parts
        if text[i] != ".":
            raise ConfigError(f"table name {entry!r}: expected a dot after the quoted part {name!r}")
        i += 1


def _quoted_part(text: str, i: int, quote: str, entry: str) -> tuple[str, int]:
    """The name of a quoted part starting after its opening quote, and the index after its closing quote."""
    out = []
    while i < len(text):
        if text[i] == quote:
            if text[i + 1:i + 2] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise ConfigError(f"table name {entry!r} has an unclosed {quote}")


class TableFilter:
    """A predicate on `(namespace, table)`; the namespace is PostgreSQL's schema or MySQL's database.

    One rule, in this order:

    1. `tables` given: exactly the listed tables. An entry is `namespace.table` (PostgreSQL's
       `schema.table`, MySQL's `db.table`; parts may be quoted, see `split_table_entry`), a bare
       `table` in `default_namespace` (PostgreSQL: `public`; MySQL: the URL's database), or a
       `(namespace, table)` pair. Names are compared exactly (no globs, no case folding).
    2. else `include` given: the tables whose `namespace.table` the regular expression matches whole
       (`re.fullmatch`, so `shop\\.o.*` takes `shop.orders`, not `myshop.orders`).
    3. else: every table of `scope` (MySQL: the URL's database), or every table when `scope` is None
       (PostgreSQL: the publication decides).
    """

    def __init__(self, tables: Iterable[str | tuple[str, str]] = (), include: str | None = None, *,
                 default_namespace: str | None = None, scope: str | None = None) -> None:
        self.tables = {self._qualify(entry, default_namespace) for entry in tables}
        self.pattern = re.compile(include) if include else None
        self.scope = scope
        self._cache: dict[tuple[str, str], bool] = {}

    @staticmethod
    def _qualify(entry: str | tuple[str, str], default_namespace: str | None) -> tuple[str, str]:
        if not isinstance(entry, str):
            namespace, table = entry
            return namespace, table
        return split_table_entry(entry, default_namespace)

    def missing(self, existing: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The listed tables that are not among `existing` (namespace, table) pairs."""
        found = set(existing)
        return sorted(name for name in self.tables if name not in found)

    def __call__(self, namespace: str, table: str) -> bool:
        key = (namespace, table)
        found = self._cache.get(key)
        if found is None:
            if self.tables:
                found = key in self.tables
            elif self.pattern is not None:
                found = bool(self.pattern.fullmatch(f"{namespace}.{table}"))
            else:
                found = self.scope is None or namespace == self.scope
            self._cache[key] = found
        return found

    def namespaces(self) -> set[str]:
        """The namespaces known by name to hold selected tables: the listed tables', else `scope`;
        empty when a pattern (or no scope) selects them."""
        if self.tables:
            return {namespace for namespace, _ in self.tables}
        if self.pattern is None and self.scope is not None:
            return {self.scope}
        return set()
