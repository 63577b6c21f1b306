"""A workflow's recorded state: the `cdc_migrations` row and the `cdc_migration_journal` in the target database.

The row holds the state, the record (JSON: direction, epoch, last verification, the cutover in
progress), the lock of the control command that runs a step (`lock_owner`: host:pid:command) and the
runner's heartbeat. Every step appends a journal entry: time, step, status and a JSON detail
(positions, SQL run, verify result). Only the state machine below moves the state.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from cdc.errors import MigrationError
from cdc.registry import migrate_module
from cdc.urls import DatabaseUrl

CREATED, COPYING, RUNNING = "created", "copying", "running"
SWITCHING, SWITCHED, REVERSING, REVERSED = "switching", "switched", "reversing", "reversed"
COMPLETED, CANCELLED = "completed", "cancelled"
STATES = (CREATED, COPYING, RUNNING, SWITCHING, SWITCHED, REVERSING, REVERSED, COMPLETED, CANCELLED)
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({COPYING, CANCELLED}),
    COPYING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SWITCHING, CANCELLED}),
    SWITCHING: frozenset({SWITCHED, RUNNING, REVERSED}),  # done, or rolled back to where it started
    SWITCHED: frozenset({REVERSING, COMPLETED}),
    REVERSING: frozenset({REVERSED, SWITCHED}),
    REVERSED: frozenset({SWITCHING, CANCELLED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}
RUNNER_STALE_SECONDS = 5.0


def check_transition(current: str, new: str) -> None:
    """Raise MigrationError unless the state machine allows `current` -> `new`."""
    if new not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "nothing (final state)"
        raise MigrationError(f"the workflow is {current}; it cannot become {new} (from {current}: {allowed})")


def now_text() -> str:
    """UTC now, ISO 8601 with milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def lock_owner(command: str) -> str:
    """`host:pid:command` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{command}"


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its process is gone (a crashed command)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid_text}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


@dataclass(slots=True)
class Migration:
    """One row of cdc_migrations."""

    name: str
    state: str
    record: dict[str, Any]
    lock_owner: str | None
    heartbeat: dict[str, Any] | None
    heartbeat_at: float | None

    def runner_alive(self) -> bool:
        """True when a runner heartbeat is recent."""
        return (self.heartbeat_at is not None and time.time() - self.heartbeat_at < RUNNER_STALE_SECONDS
                and (self.heartbeat or {}).get("why") != "runner stopped")


class MigrationStore:
    """Reads and writes a workflow's row and journal in the target database (tables created on first use)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.engine = migrate_module(url.engine)
        self.conn = self.engine.connect(url)
        for statement in self.engine.STATE_DDL:
            self.engine.execute(self.conn, statement)

    def close(self) -> None:
        self.conn.close()

    def _run(self, statement: str, params: tuple = ()) -> list[tuple]:
        return self.engine.execute(self.conn, statement, params)

    def _count(self, statement: str, params: tuple) -> int:
        """Rows an UPDATE changed."""
        return self.engine.update(self.conn, statement, params)

    def create(self, name: str, record: dict[str, Any]) -> None:
        """Record a new workflow (MigrationError when the name is taken)."""
        if self._run("SELECT 1 FROM cdc_migrations WHERE name = %s", (name,)):
            raise MigrationError(f"a workflow named {name!r} exists already",
                             fix=f"pick another name, or `cdc migrate status {name}`")
        self._run("INSERT INTO cdc_migrations (name, state, record, updated_at) VALUES (%s, %s, %s, %s)",
                  (name, CREATED, json.dumps(record), time.time()))

    def load(self, name: str) -> Migration:
        """The workflow's row (MigrationError when there is none)."""
        rows = self._run("SELECT name, state, record, lock_owner, heartbeat, heartbeat_at FROM cdc_migrations"
                         " WHERE name = %s", (name,))
        if not rows:
            raise MigrationError(f"no workflow named {name!r} in {self.url.redacted()}",
                             fix=f"create it: cdc migrate create {name} --source .. --target .. --kafka ..")
        row = rows[0]
        return Migration(row[0], row[1], json.loads(row[2]), row[3], json.loads(row[4]) if row[4] else None,
                         float(row[5]) if row[5] is not None else None)

    def save(self, name: str, expect: str, state: str, record: dict[str, Any]) -> None:
        """Write the state and record, only if the state is still `expect` (the state machine decides)."""
        if state != expect:
            check_transition(expect, state)
        changed = self._count("UPDATE cdc_migrations SET state = %s, record = %s, updated_at = %s"
                              " WHERE name = %s AND state = %s", (state, json.dumps(record), time.time(), name, expect))
        if changed != 1:
            raise MigrationError(f"workflow {name!r} changed state under this command (expected {expect})",
                             fix=f"look at `cdc migrate status {name}` and run the command again")

    def heartbeat(self, name: str, beat: dict[str, Any]) -> None:
        """The runner's heartbeat: what it runs now."""
        self._run("UPDATE cdc_migrations SET heartbeat = %s, heartbeat_at = %s WHERE name = %s",
                  (json.dumps(beat), time.time(), name))

    def try_lock(self, name: str, owner: str) -> str | None:
        """Take the workflow's command lock; None when taken, else the live owner that holds it.

        A lock whose owner crashed (same host, process gone) is taken over: re-running the command
        is how a crash is recovered.
        """
        current = self.load(name).lock_owner
        if current and current != owner and owner_alive(current):
            return current
        if current is None:
            changed = self._count("UPDATE cdc_migrations SET lock_owner = %s, lock_at = %s"
                                  " WHERE name = %s AND lock_owner IS NULL", (owner, time.time(), name))
        else:
            changed = self._count("UPDATE cdc_migrations SET lock_owner = %s, lock_at = %s"
                                  " WHERE name = %s AND lock_owner = %s", (owner, time.time(), name, current))
        return None if changed == 1 else (self.load(name).lock_owner or "another command")

    def unlock(self, name: str, owner: str) -> None:
        self._run("UPDATE cdc_migrations SET lock_owner = NULL, lock_at = NULL WHERE name = %s AND lock_owner = %s",
                  (name, owner))

    def journal(self, name: str, step: str, status: str, **detail: Any) -> dict[str, Any]:
        """Append one journal entry; returns it."""
        entry = {"at": now_text(), "step": step, "status": status, **detail}
        self._run("INSERT INTO cdc_migration_journal (migration, id, at_text, step, status, detail)"
                  " VALUES (%s, %s, %s, %s, %s, %s)",
                  (name, time.time_ns(), entry["at"], step, status, json.dumps(detail, default=str)))
        return entry

    def entries(self, name: str) -> list[dict[str, Any]]:
        """The journal, oldest first."""
        rows = self._run("SELECT at_text, step, status, detail FROM cdc_migration_journal WHERE migration = %s"
                         " ORDER BY id", (name,))
        return [{"at": at, "step": step, "status": status, **json.loads(detail)} for at, step, status, detail in rows]


def require(migration: Migration, *states: str, command: str) -> None:
    """MigrationError naming what to do when the workflow is not in one of `states`."""
    if migration.state not in states:
        raise MigrationError(f"`cdc migrate {command}` needs the workflow {' or '.join(states)}; it is {migration.state}",
                         fix=f"see `cdc migrate status {migration.name}` for the next step")

