# The one interface of the text-protocol row twins: connectors/mysql/text_rows.py (pure Python, the
# specification) and cdc._ext.text_rows (ext/connectors/mysql/text_rows.pyx). `cdc.impl.twin` picks one.
from typing import Any, Callable

IMPLEMENTATION: str  # "python" or "cython"
K_OTHER: int
K_INT: int
K_TEXT: int
K_DATE: int
K_DATETIME: int
K_TIMESTAMP: int

def rows_json(data: bytes, start: int, kinds: tuple[int, ...], converters: tuple[Callable[[Any], Any], ...],
              names: tuple[str, ...], json_names: tuple[bytes, ...], key_columns: tuple[int, ...],
              key_heads: tuple[bytes, ...]) -> tuple[list[tuple[None, bytes, None, bytes | None]], int, bool,
                                                       tuple[bytes | None, ...] | None]: ...
