"""Kafka record header names: the one definition of each (capture writes them, apply and tail read them)."""

from __future__ import annotations

# The schema version of the table an event was written under (apply looks the schema up by it).
SCHEMA_VERSION = "cdc.schema.version"

# A primary-key change is a delete + create pair; each names the other half's key (as Debezium does).
OLDKEY = "__debezium.oldkey"
NEWKEY = "__debezium.newkey"

# Dead-letter records: where the failed record came from and why it failed.
DLQ_TOPIC = "cdc.dlq.topic"
DLQ_PARTITION = "cdc.dlq.partition"
DLQ_OFFSET = "cdc.dlq.offset"
DLQ_REASON = "cdc.dlq.reason"
