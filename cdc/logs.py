"""Logging set-up: human-readable lines by default, one JSON object per line with `--log-format json`."""

from __future__ import annotations

import logging
import sys
import time
import unicodedata

import orjson

_RESERVED = set(vars(logging.makeLogRecord({})))
# control characters, line/paragraph separators and invisible format characters (e.g. a right-to-left override)
_ESCAPED_CATEGORIES = ("Cc", "Zl", "Zp", "Cf")


def escape_control(text: str) -> str:
    """`text` on one line: newlines and other control or invisible characters as `\\n`, `\\x1b`, `\\u202e`.

    Identifiers come from the source database and event values from Kafka: a table named "t\\nERROR ..."
    must not forge a second log line, nor an ANSI sequence recolour a terminal.
    """
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _ESCAPED_CATEGORIES
                   else ch for ch in text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class HumanFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{key}={escape_control(str(value))}" for key, value in vars(record).items()
            if key not in _RESERVED and not key.startswith("_")
        )
        message = escape_control(record.getMessage())
        line = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname.lower():7} {record.name}: {message}"
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def setup_logging(log_format: str = "human", level: str = "info") -> None:
    """Route the `cdc` and `connectors` loggers to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    for name in ("cdc", "connectors"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
