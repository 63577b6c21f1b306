"""The topic names of one capture: a topic per table, and the capture's own topics."""

from __future__ import annotations

from cdc.events import TableSchema
from cdc.offsets import offsets_topic


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
        """`<prefix>.<schema>.<table>` (PG) or `<prefix>.<db>.<table>` (MySQL)."""
        return f"{self.prefix}.{table.namespace}.{table.name}"

    def schema_change_topic(self, debezium_schema_history: bool = False) -> str:
        """DDL history: `<prefix>.schema-changes`; in debezium compat, for a connector whose Debezium
        twin writes a schema history topic (`debezium_schema_history`, MySQL's): `<prefix>`."""
        return self.prefix if self._debezium and debezium_schema_history else self.schema_changes_topic
