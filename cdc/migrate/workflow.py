"""What a workflow is: a name, a source and a target database, the tables, and the two pipelines' prefixes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdc.errors import ConfigError
from cdc.urls import DatabaseUrl, parse_url

FORWARD = "forward"  # source -> target: before a switch, and after a reverse
REVERSE = "reverse"  # target -> source: after a switch, keeps the old source current for a rollback
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def check_name(name: str) -> str:
    """A workflow name: lower-case letters, digits and '_' (it names topics, slots and consumer groups)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"workflow name {name!r} is not valid",
                          fix="use lower-case letters, digits and '_', starting with a letter (at most 41)")
    return name


def bare_table(name: str) -> str:
    """`public.orders` / `shop.orders` / `orders` -> `orders` (a workflow's tables live in the URL's database)."""
    return name.strip().rpartition(".")[2]


def url_without_password(url: DatabaseUrl) -> str:
    """The URL an application would be pointed at, with no password in it."""
    return f"{url.engine}://{url.user}@{url.host}:{url.port}/{url.database}"


@dataclass(slots=True, frozen=True)
class Workflow:
    """One migration: URLs as given (they may hold passwords: never stored, never logged), Kafka, tables."""

    name: str
    source: str
    target: str
    kafka: str
    tables: tuple[str, ...] = ()
    kafka_backend: str | None = None

    @property
    def source_url(self) -> DatabaseUrl:
        return parse_url(self.source, what="--source")

    @property
    def target_url(self) -> DatabaseUrl:
        return parse_url(self.target, what="--target")

    def prefix(self, direction: str) -> str:
        """The topic prefix of one direction's pipeline (its slot, publication and consumer group follow it)."""
        return self.name if direction == FORWARD else f"{self.name}_rev"

    def sides(self, direction: str) -> tuple[str, str]:
        """(the URL replication reads, the URL it writes) in one direction."""
        return (self.source, self.target) if direction == FORWARD else (self.target, self.source)

    def apply_group(self, direction: str) -> str:
        """The consumer group of a direction's apply (`cdc apply`'s default for the prefix)."""
        return f"cdc-apply-{self.prefix(direction)}"
