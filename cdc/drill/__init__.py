"""`cdc drill`: replicate under a ledger load, inject faults one by one, prove nothing was lost.

    session.py     one drill: sandbox, proxies, `cdc run`, the load; each fault, then the checks
    ledger.py      the write load that remembers acknowledged writes; the plain-SQL check of both sides
    repeats.py     events Kafka received more than once (a topic read by assignment)
    proxy.py       the loopback TCP proxy between cdc and a database (reset, blackhole, latency)
    cdc_run.py     the `cdc run` process the drill drives (its children, SIGKILL, restart)
    faults/        one injector module per fault
    report.py      the results: table, JSON, HTML

Like the demo, the drill names both engines (its ledger is plain SQL on each, on purpose independent of
the pipeline's code); it imports nothing from `connectors/`.
"""
