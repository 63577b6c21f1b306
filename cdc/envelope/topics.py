"""The topic names of one capture: a topic per table, and the capture's own topics."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cdc.errors import ConfigError
from cdc.events import TableSchema
from cdc.offsets import offsets_topic

MAX_TOPIC_CHARS = 249  # Kafka's limit on a topic name
_INVALID_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]")


def table_topic(prefix: str, namespace: str, table: str) -> str:
    """`<prefix>.<namespace>.<table>`, each character outside `[a-zA-Z0-9._-]` replaced by `_` (as Debezium does).

    The exact source names stay in the event's `source.schema`/`source.db` and `source.table`.
    """
    return _INVALID_TOPIC_CHARS.sub("_", f"{prefix}.{namespace}.{table}")


def topic_clash(first: tuple[str, str], second: tuple[str, str], topic: str) -> ConfigError:
    """The error for two source tables whose names give one topic (and one schemas key)."""
    return ConfigError(
        f"tables {_quoted(first)} and {_quoted(second)} would both be written to topic {topic!r}",
        fix="capture only one of them (--tables/--include), or rename one; topic names keep only [a-zA-Z0-9._-]",
    )


def check_distinct_topics(prefix: str, tables: Iterable[tuple[str, str]]) -> None:
    """ConfigError naming two captured tables that share a topic, or a table whose topic name is too long."""
    owners: dict[str, tuple[str, str]] = {}
    for namespace, table in tables:
        topic = table_topic(prefix, namespace, table)
        if len(topic) > MAX_TOPIC_CHARS:
            raise ConfigError(f"the topic name of table {_quoted((namespace, table))} is {len(topic)} characters,"
                              f" over Kafka's {MAX_TOPIC_CHARS}", fix="use a shorter --prefix")
        owner = owners.setdefault(topic, (namespace, table))
        if owner != (namespace, table):
            raise topic_clash(owner, (namespace, table), topic)


def _quoted(name: tuple[str, str]) -> str:
    """`"ns"."table"` (SQL-style quoting, so a dot inside a name shows)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name)


class Topics:
    """Topic names for one prefix; `Envelope` builds on it (`envelope.transaction_topic`, ...).

    The heartbeat topic follows the compat mode: `__debezium-heartbeat.<prefix>` as Debezium names
    it, else `__cdc-heartbeat.<prefix>`.
    """

    __slots__ = ()

    def _name_topics(self, prefix: str, debezium: bool) -> None:
        """Set the capture's own topic names (attributes declared by the class that uses this one)."""
        self.transaction_topic = f"{prefix}.transaction"
        self.schemas_topic = f"{prefix}.schemas"
        self.schema_changes_topic = f"{prefix}.schema-changes"
        self.heartbeat_topic = f"__debezium-heartbeat.{prefix}" if debezium else f"__cdc-heartbeat.{prefix}"
        self.offsets_topic = offsets_topic(prefix)
        self.dlq_topic = f"{prefix}.dlq"
        self.message_topic = f"{prefix}.message"

    def topic(self, table: TableSchema) -> str:
        """`<prefix>.<schema>.<table>` (PG) or `<prefix>.<db>.<table>` (MySQL), sanitised (`table_topic`).

        ConfigError when another table of this capture already has that topic (`public."a.b"` and
        `"public.a".b`): their events and schemas would mix.
        """
        name = (table.namespace, table.name)
        topic = table_topic(self.prefix, *name)
        owner = self._topic_owners.setdefault(topic, name)
        if owner != name:
            raise topic_clash(owner, name, topic)
        return topic

    def schema_change_topic(self, debezium_schema_history: bool = False) -> str:
        """DDL history: `<prefix>.schema-changes`; in debezium compat, for a connector whose Debezium
        twin writes a schema history topic (`debezium_schema_history`, MySQL's): `<prefix>`."""
        return self.prefix if self._debezium and debezium_schema_history else self.schema_changes_topic
