"""The target refuses writes for a while: a session holds an exclusive lock on the ledger table."""

from __future__ import annotations

import threading
import time

from cdc.drill import ledger
from cdc.drill.faults.base import SERVERS, DrillTarget, Fault


def hold_lock(url: str, seconds: float) -> None:
    """Lock the ledger table in the target against writes for `seconds` (plain SQL)."""
    conn = ledger.connect(url)
    try:
        cursor = conn.cursor()
        if ledger.engine_of(url) == "postgresql":
            cursor.execute(f"LOCK TABLE {ledger.TABLE} IN EXCLUSIVE MODE")
            time.sleep(seconds)
            conn.commit()
        else:
            cursor.execute(f"LOCK TABLES {ledger.TABLE} WRITE")
            time.sleep(seconds)
            cursor.execute("UNLOCK TABLES")
    finally:
        conn.close()


def inject(target: DrillTarget) -> str:
    seconds = target.timings.lock_seconds
    threads = [threading.Thread(target=hold_lock, args=(pipeline.target_url, seconds)) for pipeline in target.pipelines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return f"ledger table locked on {len(threads)} target(s) for {seconds:.0f}s"


FAULT = Fault("target-locked", "the target refuses writes (table locked) for a while", SERVERS, inject)
