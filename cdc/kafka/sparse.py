"""The sparse-delivery hot loop: hold the newest record of each partition, produce the one it replaces.

`CapturePipeline` (sparse delivery reports, see cdc/pipeline/capture.py) keeps the newest record of every
(topic, partition) back; the record it replaces goes to librdkafka with no delivery report. This runs
for every record a capture produces, so it has a compiled twin, `cdc._ext.sparse`, with the same name
and the same behaviour; `hold_newest` is the one `cdc.impl.twin` picks (`python_hold_newest` is this
module's own).

`produce_raw` is called positionally with librdkafka's own argument order, `(topic, value, key,
partition, on_delivery, callback, timestamp, headers)`: confluent-kafka parses keyword arguments by
building a string per keyword per call, which cost more than the rest of the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdc.impl import twin
from cdc.kafka.partitioner import partition_for

Record = tuple[str, bytes | None, bytes | None, Any]  # (topic, key, value, headers)


def hold_newest(records: list[Record], start: int, held: dict[tuple[str, int], tuple], counts: dict[str, int],
                produce_raw: Callable[..., Any], produce_untracked: Callable[..., Any],
                budget: int) -> tuple[int, int]:
    """Walk `records` from `start`: each becomes the held `(value, key, headers)` of its (topic,
    partition) and the record it replaces is produced without a delivery report (`produce_raw`; on any
    error, such as a full queue, `produce_untracked(topic, value, key, partition, headers)` retries or
    raises). Stops before a record whose topic has no partition count in `counts`, or once `budget`
    records were produced. Returns (index of the next record, records produced)."""
    index = start
    end = len(records)
    produced = 0
    while index < end and produced < budget:
        topic, key, value, headers = records[index]
        count = counts.get(topic)
        if count is None:
            break
        partition = 0 if key is None or count == 1 else partition_for(key, count)
        slot = (topic, partition)
        previous = held.get(slot)
        held[slot] = (value, key, headers or None)
        index += 1
        if previous is not None:
            try:
                produce_raw(topic, previous[0], previous[1], partition, None, None, 0, previous[2])
            except Exception:  # noqa: BLE001 - queue full or refused: the wrapper waits or raises
                produce_untracked(topic, previous[0], previous[1], partition, previous[2])
            produced += 1
    return index, produced


IMPLEMENTATION = "python"
python_hold_newest = hold_newest
_selected = twin(__name__)
hold_newest = _selected.hold_newest  # noqa: F811 - the twin cdc.impl picked
IMPLEMENTATION = _selected.IMPLEMENTATION  # which one `hold_newest` is
