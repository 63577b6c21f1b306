# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled sparse-delivery hot loop (`cdc._ext.sparse`): the fast twin of cdc/kafka/sparse.py.

Same name, same behaviour: each record becomes the held record of its (topic, partition) and the one
it replaces is produced without a delivery report, librdkafka's positional argument order (see the
twin's docstring). The partition is Kafka's murmur2, computed here without a Python call.
"""

include "murmur2_core.pxi"

IMPLEMENTATION = "cython"  # which twin this is (cdc.impl.twin picks one)


def hold_newest(list records, Py_ssize_t start, dict held, dict counts, object produce_raw,
                object produce_untracked, Py_ssize_t budget):
    """Walk `records` from `start`, hold the newest record per (topic, partition), produce the one it
    replaces; stop before a topic missing from `counts` or after `budget` produced. Returns (next index,
    produced)."""
    cdef Py_ssize_t index = start
    cdef Py_ssize_t end = len(records)
    cdef Py_ssize_t produced = 0
    cdef Py_ssize_t count
    cdef Py_ssize_t partition
    cdef tuple record
    cdef tuple previous
    cdef object topic, key, headers, found, slot
    while index < end and produced < budget:
        record = <tuple?>records[index]
        if len(record) != 4:
            raise ValueError(f"a record is (topic, key, value, headers), not {len(record)} items")
        topic = record[0]
        found = counts.get(topic)
        if found is None:
            break
        count = found
        key = record[1]
        if key is None or count == 1:
            partition = 0
        else:
            partition = <Py_ssize_t>(_hash(key) & 0x7FFFFFFF) % count
        slot = (topic, partition)
        found = held.get(slot)
        headers = record[3]
        held[slot] = (record[2], key, headers if headers else None)
        index += 1
        if found is not None:
            previous = <tuple>found
            try:
                produce_raw(topic, previous[0], previous[1], partition, None, None, 0, previous[2])
            except Exception:
                produce_untracked(topic, previous[0], previous[1], partition, previous[2])
            produced += 1
    return index, produced
