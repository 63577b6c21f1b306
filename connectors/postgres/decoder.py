"""The pgoutput decoder in use: the Cython module `cdc._ext.pgoutput`, or its twin `decode`."""

from __future__ import annotations

from cdc.impl import choose

_module = choose("pgoutput", "connectors.postgres.decode")

PgoutputDecoder = _module.PgoutputDecoder
RelationInfo = _module.RelationInfo
IMPLEMENTATION = _module.__name__
