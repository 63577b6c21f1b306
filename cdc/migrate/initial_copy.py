"""The workflow's direct initial copy (`--initial-copy direct`): `cdc copy` in a thread of the runner.

`copy_tables` copies the tables from one consistent snapshot of the source straight into the target and
leaves the forward capture's start at the snapshot's position (docs/copy.md); the runner heartbeats
while it runs and starts streaming (capture with snapshot `never`, and apply) once it is done.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from cdc.migrate.workflow import FORWARD, Workflow, bare_table
from cdc.registry import migrate_module

DIRECT, KAFKA = "direct", "kafka"
INITIAL_COPIES = (DIRECT, KAFKA)
RUNNING, DONE, FAILED = "running", "done", "failed"


def initial_copy(record: dict[str, Any]) -> str:
    """The workflow's initial copy (a record written before the option existed used the Kafka snapshot)."""
    return record.get("initial_copy", KAFKA)


def copy_pending(record: dict[str, Any]) -> bool:
    """True while a direct copy has not finished: streaming waits for it."""
    return initial_copy(record) == DIRECT and (record.get("copy") or {}).get("status") != DONE


class DirectCopy:
    """One run of `copy_tables` for a workflow, in a thread; its outcome as the record's `copy` entry."""

    def __init__(self, workflow: Workflow, *, create_tables: bool, workers: int = 4) -> None:
        self.workflow = workflow
        self.create_tables = create_tables
        self.workers = workers
        self.started = time.time()
        self.outcome: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, name=f"copy:{workflow.name}", daemon=True)

    def start(self) -> dict[str, Any]:
        """Start the copy; the record's entry for it."""
        for url in (self.workflow.source_url, self.workflow.target_url):
            # the target is closed to application writes; cdc's own sessions write through it (as the children do)
            os.environ.update(migrate_module(url.engine).child_env())
        self.thread.start()
        return {"status": RUNNING, "started_at": self.started}

    def _run(self) -> None:
        from cdc.copy.run import copy_tables

        try:
            result = copy_tables(self.workflow.source, self.workflow.target,
                                 [bare_table(t) for t in self.workflow.tables], self.workflow.prefix(FORWARD),
                                 workers=self.workers, kafka=self.workflow.kafka, create_tables=self.create_tables)
        except Exception as exc:  # noqa: BLE001 - any failure is the copy's outcome, reported by status
            self.outcome = {"status": FAILED, "started_at": self.started, "seconds": round(time.time() - self.started, 3),
                            "error": f"{type(exc).__name__}: {exc}"}
            return
        self.outcome = {"status": DONE, "started_at": self.started, "seconds": result.seconds,
                        "rows": dict(result.rows), "position": str(result.position),
                        "created": list(getattr(result, "created", []))}

    def finished(self) -> dict[str, Any] | None:
        """The outcome once the thread ended, else None."""
        return None if self.thread.is_alive() else self.outcome
