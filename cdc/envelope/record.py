"""What every envelope module speaks: the Kafka record tuple, its header names, the compat modes."""

from __future__ import annotations

from cdc.kafka import headers

# (topic, key, value, headers); a tombstone has value None. Header lists are shared: do not mutate.
Record = tuple[str, "bytes | None", "bytes | None", list[tuple[str, bytes]]]

COMPAT_MODES = ("none", "debezium")
SCHEMA_VERSION_HEADER = headers.SCHEMA_VERSION
OLDKEY_HEADER = headers.OLDKEY
NEWKEY_HEADER = headers.NEWKEY
