"""Apply: consume `<prefix>.*` change topics and write them into a target database, exactly once in effect.

    worker.py   consumer loop (batches, rebalances, seeks to the stored offsets)
    batch.py    one batch -> decode -> fold per table -> write + offsets in one target transaction
    transactions.py  --consistency transaction: each source transaction whole, in commit order
    fold.py     fold a table's events by primary key
    target.py   what every engine's writer shares (connectors/<engine>/target.py write the SQL)
    values.py   readable JSON values -> Python values, by column kind
    typemap.py  the engine-neutral part of type mapping: the widening rule (each engine maps in
                connectors/<engine>/typemap.py, docs/type-mapping.md)
    schemas.py  table schemas from `<prefix>.schemas`
    offsets.py  Kafka offsets kept in the target's `cdc_offsets`
    dlq.py      bad events: stop, or park on `<prefix>.dlq`
"""
