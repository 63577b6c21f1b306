"""Bootstrap addresses and the one error every backend raises when the broker cannot be reached."""

from __future__ import annotations

from collections.abc import Sequence

from cdc.errors import ConfigError, KafkaError
from cdc.kafka.base import BOOTSTRAP_FIX


def bootstrap_servers(bootstrap: str | Sequence[str]) -> str:
    """`host:port[,host:port...]` from a string or a list; ConfigError when empty."""
    servers = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
    parts = [part.strip() for server in servers for part in server.split(",") if part.strip()]
    parts = [part.removeprefix("tcp://").removeprefix("PLAINTEXT://") for part in parts]
    if not parts:
        raise ConfigError("no Kafka bootstrap address given", fix=BOOTSTRAP_FIX)
    return ",".join(parts)


def unreachable(bootstrap: str, detail: str | None = None) -> KafkaError:
    """The KafkaError for a broker that does not answer."""
    reason = f" ({detail})" if detail else ""
    return KafkaError(f"cannot reach Kafka at {bootstrap}{reason}", fix=BOOTSTRAP_FIX)
