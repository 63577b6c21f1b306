# The one interface of the sparse-delivery twins: cdc/kafka/sparse.py (pure Python, the specification)
# and cdc._ext.sparse (ext/cdc/kafka/sparse.pyx). `hold_newest` is the twin `cdc.impl.twin` picked;
# `python_hold_newest` is the module's own.
from collections.abc import Callable
from typing import Any

Record = tuple[str, bytes | None, bytes | None, Any]

IMPLEMENTATION: str  # "python" or "cython": which twin `hold_newest` is

def hold_newest(records: list[Record], start: int, held: dict[tuple[str, int], tuple[Any, ...]],
                counts: dict[str, int], produce_raw: Callable[..., Any], produce_untracked: Callable[..., Any],
                budget: int) -> tuple[int, int]: ...

# The pure-Python twin's own loop, whatever was picked:
def python_hold_newest(records: list[Record], start: int, held: dict[tuple[str, int], tuple[Any, ...]],
                       counts: dict[str, int], produce_raw: Callable[..., Any],
                       produce_untracked: Callable[..., Any], budget: int) -> tuple[int, int]: ...
