"""Engine name -> connector package: the one place in `cdc/` (besides the demo) that names an engine.

Each connector package under `connectors/` fills the same roles, each in a module of a fixed name:

    source.py    run_capture(options: CaptureOptions, stop: StopSignal) -> None   (`cdc capture`)
    target.py    Writer(url, **options): a `cdc.apply.target.TargetWriter`          (`cdc apply`)
    checksum.py  ChecksumDialect(url): a `cdc.verify.checksum.EngineDialect`        (`cdc verify`)
    status.py    source_status, target_offsets                                       (`cdc status`)
    typemap.py   column_type(column, source_engine) -> this engine's column type     (apply, create tables)
    debezium.py  DEBEZIUM: a `cdc.compat.DebeziumProfile`, what Debezium's connector does differently
    source_info.py  event_position(value) -> the source position of a change event, comparable   (apply)

Adding an engine = adding its package under `connectors/` and one line in ENGINES.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

from cdc.errors import ConfigError
from cdc.urls import DatabaseUrl, parse_url

ENGINES = {
    "postgresql": "connectors.postgres",
    "mysql": "connectors.mysql",
}

ROLES = ("source", "target", "checksum", "status", "typemap", "debezium", "source_info")

# What a role is called in messages ("no <what> for sqlite").
_ROLE_NAMES = {"source": "source connector", "target": "target writer", "checksum": "verify dialect",
               "status": "status module", "typemap": "type map", "debezium": "Debezium profile",
               "source_info": "source block reader"}


@functools.cache
def connector_module(engine: str, role: str) -> ModuleType:
    """The module filling `role` (one of ROLES) for `engine`; ConfigError for an unknown engine."""
    if role not in ROLES:
        raise ValueError(f"unknown connector role {role!r} (one of {', '.join(ROLES)})")
    package = ENGINES.get(engine)
    what = _ROLE_NAMES[role]
    if package is None:
        raise ConfigError(f"no {what} for {engine}", fix=f"use one of {', '.join(ENGINES)}")
    module_path = f"{package}.{role}"
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        if exc.name != module_path:
            raise
        raise ConfigError(f"the {engine} {what} is not built yet ({module_path})") from exc


def source_module(url: str) -> ModuleType:
    """The source connector module for a database URL (by its scheme)."""
    return connector_module(parse_url(url, what="--source").engine, "source")


def open_writer(url: str, **options: Any):
    """The target writer (`cdc.apply.target.TargetWriter`) for a database URL (by its scheme), connected."""
    parsed = parse_url(url, what="--target")
    return connector_module(parsed.engine, "target").Writer(parsed, **options)


def checksum_dialect(url: DatabaseUrl):
    """The verify dialect object (`cdc.verify.checksum.EngineDialect`) for a parsed database URL."""
    return connector_module(url.engine, "checksum").ChecksumDialect(url)


def status_module(url: str) -> ModuleType:
    """The status module (source_status, target_offsets) for a database URL."""
    return connector_module(parse_url(url).engine, "status")


def type_map(engine: str) -> ModuleType:
    """The type map (`column_type(column, source_engine)`) of a target engine."""
    return connector_module(engine, "typemap")


def debezium_profile(engine: str):
    """What Debezium's connector for `engine` writes differently (`cdc.compat.DebeziumProfile`)."""
    return connector_module(engine, "debezium").DEBEZIUM


def event_position_reader(engine: str):
    """`event_position(value)` of the source connector for `engine`: a change event's position, a tuple
    that orders events of one source (None for snapshot reads)."""
    return connector_module(engine, "source_info").event_position
