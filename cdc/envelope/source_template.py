"""`SourceTemplate`: a `source` block serialised once, with holes for the fields that change per event."""

from __future__ import annotations

from typing import Any

import orjson

_dumps = orjson.dumps


class SourceTemplate:
    """A `source` block serialised once around the fields that change from event to event.

    `variable` lists those fields in the block's field order. An entry is a field name (the event's
    value is the field's value) or `(name, prefix, suffix)`: the field is the str
    `f"{prefix}{value}{suffix}"`, so a number inside a string costs no string building per event.
    PG: `(("sequence", '["<last commit lsn>","', '"]'), "lsn")` with the values `(lsn, lsn)`; the
    timestamps, `txId` and the table stay fixed within one transaction and table. `pieces` is the
    JSON around the holes (`pieces[0] + hole 0 + pieces[1] + ... + pieces[-1]`); `kinds` has one
    byte per hole: `j` (the value's JSON) or `s` (the value's text, escaped, inside the string).
    A template does not change once built (the compiled encoder keeps the last one's pieces).
    """

    __slots__ = ("fields", "variable", "affixes", "pieces", "kinds")

    def __init__(self, source: dict[str, Any], variable: tuple[str | tuple[str, str, str], ...] = ()) -> None:
        affixes = {}
        for entry in variable:
            name, prefix, suffix = (entry, None, None) if isinstance(entry, str) else entry
            affixes[name] = None if prefix is None else (str(prefix), str(suffix))
        names = tuple(affixes)
        if [name for name in source if name in affixes] != list(names) or len(names) != len(tuple(variable)):
            raise ValueError(f"the variable fields {names!r} must be distinct fields of the source block, "
                             f"in its order ({', '.join(map(str, source))})")
        self.fields = dict(source)
        self.variable = names
        self.affixes = tuple(affixes.values())
        pieces: list[bytes] = []
        current = b"{"
        for index, (name, value) in enumerate(source.items()):
            if not isinstance(name, str):
                raise TypeError(f"source block field names must be str, not {type(name).__name__}")
            current += (b"," if index else b"") + _dumps(name) + b":"
            if name not in affixes:
                current += _dumps(value)
            elif affixes[name] is None:
                pieces.append(current)
                current = b""
            else:
                prefix, suffix = affixes[name]
                pieces.append(current + _dumps(prefix)[:-1])  # the string opened, its prefix written
                current = _dumps(suffix)[1:]
        pieces.append(current + b"}")
        self.pieces = tuple(pieces)
        self.kinds = b"".join(b"j" if affix is None else b"s" for affix in self.affixes)

    def render(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The source block as a dict, with `values` in the variable fields."""
        if len(values) != len(self.variable):
            raise ValueError(f"a source template of {len(self.variable)} fields was given {len(values)} values")
        block = dict(self.fields)
        for name, affix, value in zip(self.variable, self.affixes, values):
            block[name] = value if affix is None else f"{affix[0]}{value}{affix[1]}"
        return block
