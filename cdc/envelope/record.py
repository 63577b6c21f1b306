"""What every envelope module speaks: the Kafka record tuple, its header names, the compat modes."""

from __future__ import annotations

# (topic, key, value, headers); a tombstone has value None. Header lists are shared: do not mutate.
Record = tuple[str, "bytes | None", "bytes | None", list[tuple[str, bytes]]]

COMPAT_MODES = ("none", "debezium")
SCHEMA_VERSION_HEADER = "cdc.schema.version"
OLDKEY_HEADER = "__debezium.oldkey"
NEWKEY_HEADER = "__debezium.newkey"
