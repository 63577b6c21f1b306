"""The engine-neutral part of type mapping: helpers the connectors' type maps share, and the widening rule.

Each target engine maps a source column to its own column type in `connectors/<engine>/typemap.py`
(docs/type-mapping.md); the writer asks it through `TargetWriter.column_type`. What stays here knows
no engine: the fractional-second precision of a column, whether its source type is a fixed-width one,
and when an ALTER from one column type to another is a safe widening.
"""

from __future__ import annotations

import re

from cdc.events import Column


def time_precision(column: Column, default: int = 6) -> int:
    """The column's fractional-second digits, 0..6 (`default` when the source did not say)."""
    value = column.precision if column.precision is not None else default
    return max(0, min(6, value))


def has_fixed_type(column: Column, *prefixes: str) -> bool:
    """True when the source type starts with one of the prefixes (a bare name counts without "(")."""
    source = column.source_type.lower()
    return any(source.startswith(prefix) or source == prefix.rstrip("(") for prefix in prefixes)


_INT_RANK = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
_FLOAT_RANK = {"real": 4, "float": 4, "double precision": 8, "double": 8}
_SIZED = re.compile(r"^(character varying|varchar|varbinary|numeric|decimal|bit varying|bit|character|char|binary)"
                    r"\((\d+)(?:,(\d+))?\)$")


def normalise_type(type_name: str) -> str:
    """Lower case, single spaces, MySQL display widths removed (`int(11)` -> `int`)."""
    name = " ".join(type_name.lower().split())
    return re.sub(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", name)


def is_widening(current: str, wanted: str) -> bool:
    """True when `wanted` holds every value of `current` and more (same family, wider): ALTER is safe."""
    current, wanted = normalise_type(current), normalise_type(wanted)
    if current == wanted:
        return False
    if current in _INT_RANK and wanted in _INT_RANK:
        return _INT_RANK[wanted] > _INT_RANK[current]
    if current in _FLOAT_RANK and wanted in _FLOAT_RANK:
        return _FLOAT_RANK[wanted] > _FLOAT_RANK[current]
    if current in _INT_RANK and wanted.startswith(("numeric", "decimal")):
        return False
    if wanted in ("text", "longtext") and current.startswith(("character varying", "varchar", "character(", "char(")):
        return True
    old, new = _SIZED.match(current), _SIZED.match(wanted)
    if not old or not new or old.group(1) != new.group(1):
        return False
    if old.group(1) in ("numeric", "decimal"):
        old_scale, new_scale = int(old.group(3) or 0), int(new.group(3) or 0)
        old_int, new_int = int(old.group(2)) - old_scale, int(new.group(2)) - new_scale
        return new_scale >= old_scale and new_int >= old_int
    return int(new.group(2)) > int(old.group(2))
