"""Disk full under the PostgreSQL capture's spool: a transaction too big for the spool's small filesystem.

The drill starts `cdc run` with TMPDIR on a small tmpfs (the spool's temporary files go there) and has
the source stream large transactions early (`logical_decoding_work_mem` lowered on the source database);
this fault writes one transaction that does not fit. Capture must get the transaction through anyway.
"""

from __future__ import annotations

from cdc.drill.faults.base import SERVERS, DrillTarget, Fault


def inject(target: DrillTarget) -> str:
    pipelines = [p for p in target.pipelines if p.source_server == "postgres"]
    if target.spool_dir is None or not pipelines:
        raise RuntimeError("needs a PostgreSQL source and a small spool filesystem (root, --sandbox)")
    rows = target.timings.huge_rows
    for pipeline in pipelines:
        target.writers[pipeline.name].write_huge(rows)
    return f"one transaction of {rows} rows per PostgreSQL source; spool filesystem {target.spool_dir}"


FAULT = Fault("spool-full", "disk full under the PostgreSQL capture's spool (huge transaction)", SERVERS, inject)
