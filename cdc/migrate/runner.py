"""`cdc migrate run NAME`: the long-running process of one workflow.

It runs the pipeline the recorded state asks for (`record["direction"]`: forward = capture from the
source + apply to the target; reverse = the same from the target to the source) as `cdc capture` /
`cdc apply` children under `cdc.supervisor.Supervisor`, exactly as `cdc run` does. With the direct initial
copy (the default) the forward pipeline starts only once `cdc copy` (cdc/migrate/initial_copy.py) has
copied the tables, its capture with snapshot `never` from the copy's position. Control commands
change the record and bump `record["epoch"]`; the runner then stops the old children, starts the new
ones and reports the epoch it runs in its heartbeat, which is how a command knows its step was
carried out. Only one direction ever runs, so changes cannot loop.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from cdc.commands.run import apply_args, apply_env, capture_args, capture_env
from cdc.config import Config, KafkaConfig, SourceConfig, TargetConfig
from cdc.migrate.catchup import CatchUpProbe, current_position
from cdc.migrate.initial_copy import DONE, FAILED, KAFKA, RUNNING as COPY_RUNNING, DirectCopy, copy_pending, initial_copy
from cdc.migrate.state import CANCELLED, COMPLETED, COPYING, CREATED, RUNNING, Migration, MigrationStore
from cdc.migrate.workflow import FORWARD, Workflow, bare_table
from cdc.registry import migrate_module
from cdc.supervisor import Component, Supervisor
from cdc.urls import parse_url

log = logging.getLogger("cdc.migrate")

HEARTBEAT_SECONDS = 0.25  # also how fast a control command's epoch change is picked up
COPY_CHECK_SECONDS = 0.5
NONE = "none"  # no pipeline: completed or cancelled


def components_for(workflow: Workflow, direction: str, *, create_tables: bool,
                   snapshot_through_kafka: bool = True) -> list[Component]:
    """The capture and apply children of one direction (the arguments `cdc run` would give them); the forward
    capture snapshots through Kafka only when the workflow's initial copy is `kafka` (else `cdc copy` did it)."""
    if direction == NONE:
        return []
    reading, writing = workflow.sides(direction)
    prefix = workflow.prefix(direction)
    config = Config(Path("."), KafkaConfig(workflow.kafka, workflow.kafka_backend or "confluent"))
    tables = tuple(bare_table(t) for t in workflow.tables)
    source = SourceConfig(url=parse_url(reading), prefix=prefix, tables=tables,
                          snapshot="initial" if direction == FORWARD and snapshot_through_kafka else "never",
                          heartbeat_interval=1.0)
    target = TargetConfig(url=parse_url(writing), prefix=prefix, tables=tables,
                          create_tables=create_tables and direction == FORWARD and snapshot_through_kafka)
    env = {"CDC_KAFKA_BACKEND": config.kafka.backend}
    for url in (workflow.source_url, workflow.target_url):
        env.update(migrate_module(url.engine).child_env())
    # acknowledgements every 0.2 s: a switch waits for capture to acknowledge the final position
    return [Component(f"capture:{prefix}", capture_args(config, source) + ["--status-interval", "0.2"],
                      env={**env, **capture_env(config, source)}),
            Component(f"apply:{prefix}", apply_args(config, target) + ["--linger-ms", "20"],
                      env={**env, **apply_env(config, target)})]


class MigrationRunner:
    """Keeps the recorded direction's children running, heartbeats, and follows epoch changes."""

    def __init__(self, workflow: Workflow, store: MigrationStore, *, log_format: str = "human") -> None:
        self.workflow = workflow
        self.store = store
        self.log_format = log_format
        self.supervisor: Supervisor | None = None
        self.epoch: int | None = None
        self.direction = NONE
        self.stop = threading.Event()
        self.copy_probe: CatchUpProbe | None = None
        self.next_copy_check = 0.0
        self.copy_position: str | None = None
        self.direct_copy: DirectCopy | None = None

    def _switch_to(self, direction: str, epoch: int, record: dict) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self.store.journal(self.workflow.name, "runner.stop", "done", direction=self.direction, epoch=self.epoch)
        self.supervisor = Supervisor(components_for(self.workflow, direction, create_tables=bool(record.get("create_tables")),
                                                    snapshot_through_kafka=initial_copy(record) == KAFKA),
                                     log_format=self.log_format)
        self.supervisor.poll()
        self.direction, self.epoch = direction, epoch
        self.store.journal(self.workflow.name, "runner.start", "done", direction=direction, epoch=epoch,
                           children=[c.name for c in self.supervisor.components])
        log.info("running the %s pipeline (epoch %d)", direction, epoch)

    def _copy_done(self) -> bool:
        """True once the forward pipeline has caught up with the source (the snapshot is applied)."""
        if time.monotonic() < self.next_copy_check:
            return False
        self.next_copy_check = time.monotonic() + COPY_CHECK_SECONDS
        if self.copy_probe is None:
            self.copy_probe = CatchUpProbe(self.workflow, FORWARD)
        if self.copy_position is None:  # the source's position once the pipeline runs: copied when reached
            self.copy_position = current_position(self.workflow.source)
        return self.copy_probe.wait(self.copy_position, 0.0).reached

    def _copy_step(self, migration: Migration) -> None:
        """The direct copy: start it, or record its outcome (journaled with rows and seconds); heartbeat meanwhile."""
        name, record = self.workflow.name, migration.record
        recorded = record.get("copy") or {}
        outcome = None
        if self.direct_copy is None and not recorded:
            self.direct_copy = DirectCopy(self.workflow, create_tables=bool(record.get("create_tables")))
            record = {**record, "copy": self.direct_copy.start()}
            self.store.save(name, migration.state, COPYING, record)
            self.store.journal(name, "copy", "started", note="direct: one consistent snapshot of the source straight "
                               "into the target", prefix=self.workflow.prefix(FORWARD))
        elif self.direct_copy is None and recorded.get("status") == COPY_RUNNING:
            outcome = {**recorded, "status": FAILED, "error": "interrupted: the runner stopped during the copy"}
        elif self.direct_copy is not None:
            outcome = self.direct_copy.finished()
        if outcome is not None:
            self.direct_copy = None
            record = {**record, "copy": outcome}
            self.store.save(name, migration.state, migration.state, record)
            detail = {key: value for key, value in outcome.items() if key != "status"}
            if outcome["status"] == DONE:
                rows = sum(outcome["rows"].values())
                self.store.journal(name, "copy", "done", note=f"{rows} rows in {outcome['seconds']:.2f}s; streaming "
                                   f"starts at {outcome['position']}", **detail)
            else:
                self.store.journal(name, "copy", "failed", note=outcome["error"], **detail)
                log.error("the initial copy failed: %s; the workflow does not stream (see `cdc migrate status`)",
                          outcome["error"])
        failed = (record.get("copy") or {}).get("status") == FAILED
        self.store.heartbeat(name, {"direction": "copy", "epoch": self.epoch, "healthy": not failed,
                                    "why": f"initial copy failed: {record['copy']['error']}" if failed else None,
                                    "at": time.time()})

    def step(self) -> bool:
        """One pass: follow the record, start what is due, heartbeat; False when the workflow has ended."""
        migration = self.store.load(self.workflow.name)
        record = migration.record
        if migration.state in (CREATED, COPYING) and copy_pending(record):
            self._copy_step(migration)
            return True
        if migration.state in (COMPLETED, CANCELLED):
            direction = NONE
        else:
            direction = record.get("direction", FORWARD)
        epoch = int(record.get("epoch", 0))
        if epoch != self.epoch or direction != self.direction:
            self._switch_to(direction, epoch, record)
        assert self.supervisor is not None
        self.supervisor.poll()
        healthy, why = self.supervisor.healthy()
        self.store.heartbeat(self.workflow.name, {"direction": self.direction, "epoch": self.epoch,
                                                  "healthy": healthy, "why": why, "at": time.time()})
        if migration.state == CREATED:
            self.store.save(self.workflow.name, CREATED, COPYING, record)
            self.store.journal(self.workflow.name, "copy", "started", prefix=self.workflow.prefix(FORWARD))
        elif migration.state == COPYING and healthy and self._copy_done():
            self.store.save(self.workflow.name, COPYING, RUNNING, record)
            if initial_copy(record) == KAFKA:
                self.store.journal(self.workflow.name, "copy", "done", note="snapshot applied; streaming")
            else:
                self.store.journal(self.workflow.name, "catch-up", "done", note="forward replication caught up with "
                                   "the source after the initial copy; streaming")
        return direction != NONE

    def run(self) -> None:
        """Until SIGTERM/SIGINT, or the workflow is completed or cancelled."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop.set())
        try:
            while not self.stop.is_set():
                if not self.step():
                    log.info("workflow %s has ended; the runner exits", self.workflow.name)
                    break
                self.stop.wait(HEARTBEAT_SECONDS if self.direction != NONE else 0.2)
        finally:
            if self.supervisor is not None:
                self.supervisor.stop()
            if self.copy_probe is not None:
                self.copy_probe.close()
            self.store.heartbeat(self.workflow.name, {"direction": NONE, "epoch": self.epoch, "healthy": False,
                                                      "why": "runner stopped", "at": time.time()})
