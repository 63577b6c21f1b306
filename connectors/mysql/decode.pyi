# The one interface of the binlog row decoder twins: connectors/mysql/decode.py (pure Python, the
# specification) and cdc._ext.binlog_rows (ext/connectors/mysql/decode.pyx). `cdc.impl.twin` picks one
# (connectors.mysql.decoder.RowDecoder keeps the TABLE_MAPs around it).
from typing import Any

IMPLEMENTATION: str  # "python" or "cython"

class RowPlan:
    columns: tuple[tuple[Any, ...], ...]
    count: int

def check_plan(columns: tuple[tuple[Any, ...], ...]) -> None: ...
def compile_plan(columns: tuple[tuple[Any, ...], ...]) -> RowPlan: ...
def decode_rows(plan: RowPlan, body: bytes, event_type: int, position: object = None) -> list[tuple[Any, ...]]: ...
def rows_json(plan: RowPlan, body: bytes, event_type: int, key_names: tuple[str, ...], key_heads: tuple[bytes, ...],
              position: object = None) -> list[tuple[Any, ...]]: ...

# The pure-Python twin only:
def json_text(data: bytes) -> str: ...
