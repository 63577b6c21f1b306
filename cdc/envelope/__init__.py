"""Turn `Change` records into Kafka records: topic, key bytes, value bytes (orjson), headers.

The value is Debezium's envelope as its JSON converter writes it with schemas disabled, fields in
Debezium 3.6's order: `before, after, source, transaction, op, ts_ms, ts_us, ts_ns`. Row values reach
us already in the readable forms of docs/event-format.md; with `compat="debezium"` they are converted
per column kind by `cdc.compat` to Debezium's own forms. The key is the JSON object of the primary-key
columns, or None for a table without one. See docs/event-format.md.

Two ways in, same bytes:

- `records(change)`: one `Change` with its `source` and `transaction` dicts (every source calls this);
- `row_records(table, op, before, after, source, source_values, transaction=None)`: the hot path
  of a streaming source, no `Change` and no dicts per event. `source` is a `SourceTemplate` (from
  `source_template(block, variable)`, built once per table, or per transaction and table): the
  block pre-serialised except its `variable` fields, whose values come in `source_values`;
  `transaction` is `(id, total_order, data_collection_order)` or None. Same records, same bytes as
  `records()` of the equivalent `Change`.

The bytes are assembled by `encode_key`, `encode_change_value`, `encode_row_value` and
`RowEncoder` (which holds both paths): the compiled `cdc._ext.envelope` (ext/cdc/envelope/encoders.pyx)
or, with `CDC_PURE_PYTHON=1`, the readable twins of encoders.py, which are the specification.

One module per job: `topics` (topic names), `control` (BEGIN/END, schemas, DDL, heartbeat records),
`source_template` (`SourceTemplate`), `table_plan` (per-table keys and headers), `encoders` (the twin
of the compiled encoders), `builder` (`Envelope`), `record` (the record tuple and header names).
"""

from cdc.envelope.builder import Envelope
from cdc.envelope.encoders import (
    encode_change_value,
    encode_json,
    encode_key,
    encode_row_head,
    encode_row_value,
    finish_row_value,
)
from cdc.envelope.record import COMPAT_MODES, NEWKEY_HEADER, OLDKEY_HEADER, SCHEMA_VERSION_HEADER, Record
from cdc.envelope.source_template import SourceTemplate
from cdc.envelope.table_plan import _key_changed, _key_columns, _key_heads

__all__ = [
    "Envelope", "SourceTemplate", "Record", "COMPAT_MODES", "SCHEMA_VERSION_HEADER", "OLDKEY_HEADER", "NEWKEY_HEADER",
    "encode_change_value", "encode_json", "encode_key", "encode_row_head", "encode_row_value", "finish_row_value",
    "_key_changed", "_key_columns", "_key_heads",
]
