"""One exception hierarchy. Every message names the cause and, where there is one, the fix."""

from __future__ import annotations


class CdcError(Exception):
    """Base of every error this project raises on purpose; the CLI prints it without a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; {fix}" if fix else message)


class ConfigError(CdcError):
    """A configuration file, option or URL is missing or invalid."""


class SandboxError(CdcError):
    """The local sandbox servers could not be started, found or stopped."""


class SourceError(CdcError):
    """A source database refused, lacks a setting or privilege, or broke the stream."""


class TargetError(CdcError):
    """A target database refused a write or lacks what apply needs."""


class KafkaError(CdcError):
    """The Kafka broker is unreachable or refused a request."""


# A child exiting with this code failed on something a restart cannot fix (an event too large for
# Kafka at the same source position): `cdc run` does not restart it (cdc/supervisor.py).
PERMANENT_EXIT_CODE = 65  # EX_DATAERR


class ResourceLimitError(CdcError):
    """A configured bound on memory or disk was reached (docs/security.md); raise it or change the mode."""

    exit_code = PERMANENT_EXIT_CODE


class OversizedEventError(KafkaError):
    """An event is larger than the Kafka message limit (`--max-message-bytes`); capture stops for good."""

    exit_code = PERMANENT_EXIT_CODE


class DecodeError(CdcError):
    """A replication frame is truncated or corrupted; `position` says where in the stream it was."""

    def __init__(self, message: str, *, position: object = None, fix: str | None = None) -> None:
        self.position = position
        where = f" at {position}" if position is not None else ""
        super().__init__(f"{message}{where}", fix=fix)


class UnsupportedError(CdcError):
    """A type, table shape or server version that this project does not handle."""


class VerifyError(CdcError):
    """A parity check could not run (exit code 2)."""
