"""Which source tables a capture takes: one `TableFilter` for every connector."""

from __future__ import annotations

import re
from collections.abc import Iterable


class TableFilter:
    """A predicate on `(namespace, table)`; the namespace is PostgreSQL's schema or MySQL's database.

    One rule, in this order:

    1. `tables` given: exactly the listed tables. An entry is `namespace.table` (split at the first
       dot: PostgreSQL's `schema.table`, MySQL's `db.table`), a bare `table` in `default_namespace`
       (PostgreSQL: `public`; MySQL: the URL's database), or a `(namespace, table)` pair. Names are
       compared exactly (no globs, no case folding).
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
        namespace, dot, table = entry.strip().partition(".")
        if dot:
            return namespace, table
        return default_namespace or "", namespace

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
