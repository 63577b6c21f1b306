"""URL scheme -> connector package: the one place in `cdc/` that names an engine.

A connector's source module exposes `run_capture(options: CaptureOptions, stop: StopSignal) -> None`.
Adding an engine = adding its package under `connectors/` and one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from cdc.errors import ConfigError
from cdc.urls import parse_url

SOURCES = {
    "postgresql": "connectors.postgres.source",
    "mysql": "connectors.mysql.source",
}


def source_module(url: str) -> ModuleType:
    """The source connector module for a database URL (by its scheme)."""
    engine = parse_url(url, what="--source").engine
    module_path = SOURCES.get(engine)
    if module_path is None:
        raise ConfigError(f"no source connector for {engine}", fix=f"use one of {', '.join(SOURCES)}")
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        if exc.name != module_path:
            raise
        raise ConfigError(f"the {engine} source connector is not built yet ({module_path})") from exc


# `cdc verify`: each engine's SQL for canonical row text and range checksums (connectors/<engine>/checksum.py).
CHECKSUM_DIALECTS = {
    "postgresql": ("connectors.postgres.checksum", "PostgresChecksumDialect"),
    "mysql": ("connectors.mysql.checksum", "MysqlChecksumDialect"),
}


def checksum_dialect(url):
    """The verify dialect object for a parsed database URL (`cdc.urls.DatabaseUrl`)."""
    module_path, class_name = CHECKSUM_DIALECTS[url.engine]
    return getattr(importlib.import_module(module_path), class_name)(url)


# `cdc status`: each engine's source position / slot view and its reader of `cdc_offsets`.
STATUS_MODULES = {
    "postgresql": "connectors.postgres.status",
    "mysql": "connectors.mysql.status",
}


def status_module(url: str) -> ModuleType:
    """The status module (source_status, target_offsets) for a database URL."""
    return importlib.import_module(STATUS_MODULES[parse_url(url).engine])
