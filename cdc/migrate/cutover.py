"""`cdc migrate switch` and `cdc migrate reverse`: move the applications' writes from one side to the other.

The steps, each journaled (time, positions, SQL, verify result):

  gates      runner alive and healthy; lag under --max-lag; a parity verification fresh enough
  freeze     writes stop on the side that is primary now (`lock`: a held table lock; `read-only`: closed;
             `revoke`: the application roles' write privileges on the tables taken, recorded first)
  drain      (`revoke`) a short table lock: writers that passed their privilege check before it have ended
  position   that side's final position
  catch-up   apply has written everything up to it
  verify     final parity check of the workflow's tables (checksums inside the databases), exit 0
  close      the old primary refuses application writes from now on (read-only, sessions ended)
  counters   sequences / AUTO_INCREMENT on the new primary moved past the old primary's
  prepare    the other direction's capture set to start at the new primary's current position
  commit     state and direction recorded in one update: the point of no return
  open       the new primary accepts application writes
  hook       `--on-switch` runs with CDC_PRIMARY_URL (no password) and CDC_MIGRATION
  runner     the runner stops the old direction and starts the new one (after the hook: not in the pause)

A crash before `commit` is rolled back by the next run of the command (the old primary reopened, the
revoked privileges granted back, the prepared capture dropped, the state as before), which then starts
the cutover again; a crash after `commit` is finished by it (open: privileges this side lost to an
earlier revoke granted back; hook, runner). The write pause is freeze -> hook returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cdc.errors import GateError, MigrationError
from cdc.migrate.catchup import CatchUpProbe
from cdc.migrate.grants import SOURCE_SIDE, TARGET_SIDE, WriteGrant, describe, from_records, merged, to_records
from cdc.migrate.state import (REVERSED, REVERSING, RUNNING, SWITCHED, SWITCHING, Migration, MigrationStore,
                               lock_owner, now_text)
from cdc.migrate.workflow import FORWARD, REVERSE, Workflow, bare_table, url_without_password
from cdc.registry import migrate_module
from cdc.urls import parse_url

FREEZE_MODES = ("lock", "read-only", "revoke")
CRASH_VARIABLE = "CDC_MIGRATE_CRASH_AFTER"  # `switch.close`: SIGKILL this process once that step is journaled
SWITCH, ROLLBACK = "switch", "reverse"


@dataclass(slots=True, frozen=True)
class CutoverOptions:
    """The operator's choices for one switch or reverse."""

    max_lag: float = 5.0
    freeze: str = "lock"
    on_switch: str | None = None
    timeout: float = 60.0
    dry_run: bool = False
    stale_after: float = 86400.0
    app_roles: tuple[str, ...] | None = None  # `revoke`: None = every role holding a write privilege on the tables


@dataclass(slots=True, frozen=True)
class Kind:
    """What a cutover moves: from which state and direction to which."""

    command: str
    before: tuple[str, ...]
    during: str
    after: str
    old_direction: str
    new_direction: str


KINDS = {
    SWITCH: Kind(SWITCH, (RUNNING, REVERSED), SWITCHING, SWITCHED, FORWARD, REVERSE),
    ROLLBACK: Kind(ROLLBACK, (SWITCHED,), REVERSING, REVERSED, REVERSE, FORWARD),
}


class Cutover:
    """One run of `switch` or `reverse` (or of its recovery), step by step."""

    def __init__(self, workflow: Workflow, store: MigrationStore, kind: str, options: CutoverOptions,
                 say: Callable[[str], None] = print) -> None:
        self.workflow = workflow
        self.store = store
        self.kind = KINDS[kind]
        self.options = options
        self.say = say
        self.owner = lock_owner(kind)
        old_primary, new_primary = workflow.sides(self.kind.old_direction)
        self.old_url, self.new_url = parse_url(old_primary), parse_url(new_primary)
        self.old_engine, self.new_engine = migrate_module(self.old_url.engine), migrate_module(self.new_url.engine)
        self.old_side, self.new_side = ((SOURCE_SIDE, TARGET_SIDE) if self.kind.old_direction == FORWARD
                                        else (TARGET_SIDE, SOURCE_SIDE))
        self.to_revoke: list[WriteGrant] = []
        self.tables = [bare_table(t) for t in workflow.tables]
        self.steps: list[dict[str, Any]] = []
        self.freeze_session = None
        self.frozen_at: float | None = None
        self.result: dict[str, Any] = {"command": kind, "dry_run": options.dry_run}

    # -- journal -------------------------------------------------------------------------------------
    def _step(self, step: str, status: str, **detail: Any) -> None:
        name = f"{self.kind.command}.{step}"
        if self.options.dry_run:
            entry = {"at": now_text(), "step": name, "status": "would run" if status == "done" else status, **detail}
        else:
            entry = self.store.journal(self.workflow.name, name, status, **detail)
        self.steps.append(entry)
        sql = detail.get("sql")
        self.say(f"  {name:<22} {entry['status']:<9} {detail.get('note', '')}".rstrip())
        for statement in sql or ():
            self.say(f"      SQL: {statement}")
        if os.environ.get(CRASH_VARIABLE) == name and status == "done":
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the crash tests (tests/migrate/)

    def _progress(self, migration: Migration, **fields: Any) -> dict[str, Any]:
        """Persist the cutover's progress in the record (what recovery reads); the new record."""
        record = dict(migration.record)
        record["cutover"] = {**record.get("cutover", {}), **fields}
        self.store.save(self.workflow.name, migration.state, migration.state, record)
        migration.record = record
        return record

    # -- entry ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Walk the cutover (or recover a crashed one first); the result with the write pause."""
        held = None if self.options.dry_run else self.store.try_lock(self.workflow.name, self.owner)
        if held:
            raise MigrationError(f"another `cdc migrate` command holds workflow {self.workflow.name!r} ({held})",
                                 fix="wait for it to finish; `cdc migrate status` shows the journal")
        try:
            migration = self.store.load(self.workflow.name)
            if migration.state == self.kind.during:
                if migration.record.get("cutover", {}).get("committed"):
                    return self._finish(migration, recovered=True)
                self._roll_back(migration, "a previous run stopped before the commit")
                migration = self.store.load(self.workflow.name)
            elif migration.state in (SWITCHING, REVERSING):
                raise MigrationError(f"a {migration.state} step did not finish",
                                     fix=f"run `cdc migrate {'switch' if migration.state == SWITCHING else 'reverse'}"
                                         f" {self.workflow.name}` again to recover it first")
            if migration.state not in self.kind.before:
                raise MigrationError(f"`cdc migrate {self.kind.command}` needs the workflow "
                                     f"{' or '.join(self.kind.before)}; it is {migration.state}",
                                     fix=f"see `cdc migrate status {self.workflow.name}` for the next step")
            self._gates(migration)
            if self.options.dry_run:
                return self._dry_run(migration)
            return self._walk(migration)
        finally:
            if self.freeze_session is not None:
                self._release()
            if not self.options.dry_run:
                self.store.unlock(self.workflow.name, self.owner)

    # -- gates ---------------------------------------------------------------------------------------
    def _gate_failed(self, gate: str, figure: str) -> None:
        self._step(f"gate.{gate}", "failed", note=figure)
        raise GateError(f"gate {gate} failed: {figure}", fix="nothing was changed; the writes stay where they are")

    def _gates(self, migration: Migration) -> None:
        beat = migration.heartbeat or {}
        if not migration.runner_alive():
            age = "never" if migration.heartbeat_at is None else f"{time.time() - migration.heartbeat_at:.1f}s ago"
            self._gate_failed("runner", f"no `cdc migrate run {self.workflow.name}` heartbeat (last: {age})")
        if beat.get("direction") != self.kind.old_direction or beat.get("epoch") != migration.record.get("epoch", 0):
            self._gate_failed("runner", f"the runner runs {beat.get('direction')} epoch {beat.get('epoch')}, "
                                        f"not {self.kind.old_direction} epoch {migration.record.get('epoch', 0)}")
        if not beat.get("healthy"):
            self._gate_failed("healthy", f"pipeline not healthy ({beat.get('why')})")
        self._step("gate.healthy", "passed", note=f"{self.kind.old_direction} pipeline running")
        verified = migration.record.get("last_verify") or {}
        since = migration.record.get("last_cutover_at", 0.0)
        age = time.time() - verified.get("at", 0.0)
        if not verified:
            self._gate_failed("verified", f"no verification yet; run `cdc migrate verify {self.workflow.name}`")
        if verified.get("status") != "parity":
            self._gate_failed("verified", f"last verification found {verified.get('status')} "
                                          f"({verified.get('summary', '')})")
        if verified.get("at", 0.0) < since:
            self._gate_failed("verified", "the last verification is older than the last switch/reverse")
        if age > self.options.stale_after:
            self._gate_failed("verified", f"last verification {age:.0f}s old > {self.options.stale_after:.0f}s")
        self._step("gate.verified", "passed", note=f"parity {age:.0f}s ago")
        if self.options.freeze == "revoke":
            self._gate_revoke()
        probe = CatchUpProbe(self.workflow, self.kind.old_direction)
        try:
            conn = self.old_engine.connect(self.old_url)
            try:
                position = self.old_engine.current_position(conn)
                self.old_engine.nudge(conn)
            finally:
                conn.close()
            caught = probe.wait(position, self.options.max_lag)
        finally:
            probe.close()
        if not caught.reached:
            self._gate_failed("lag", f"not caught up with {position} within --max-lag {self.options.max_lag:g}s "
                                     f"({caught.figure()})")
        self._step("gate.lag", "passed", note=f"caught up with {position} in {caught.seconds:.2f}s "
                                              f"(max {self.options.max_lag:g}s)")

    def _gate_revoke(self) -> None:
        """The `revoke` freeze would stop every application writer: no owner, superuser or indirect grant in the way."""
        conn = self.old_engine.connect(self.old_url)
        try:
            refusals = self.old_engine.revoke_refusals(conn, self.old_url, self.tables, self.options.app_roles)
            self.to_revoke = self.old_engine.write_grants(conn, self.old_url, self.tables, self.options.app_roles)
        finally:
            conn.close()
        if refusals:
            self._gate_failed("freeze", "; ".join(refusals))
        self._step("gate.freeze", "passed", note=f"revoke {describe(self.to_revoke)}")

    def _regrants(self, migration: Migration) -> list[WriteGrant]:
        """What an earlier `revoke` took from the new primary: given back when it opens."""
        return from_records(migration.record.get("revoked", {}).get(self.new_side))

    # -- dry run -------------------------------------------------------------------------------------
    def _dry_run(self, migration: Migration) -> dict[str, Any]:
        old, new = self.old_url, self.new_url
        if self.options.freeze == "lock":
            freeze_sql = self.old_engine.freeze_sql(self.tables)
        elif self.options.freeze == "revoke":
            freeze_sql = self.old_engine.revoke_sql(old, self.to_revoke)
        else:
            freeze_sql = self.old_engine.close_sql(old.database, old.user)
        self._step("freeze", "done", note=f"stop writes on {old.redacted()} ({self.options.freeze})", sql=freeze_sql)
        if self.options.freeze == "revoke":
            self._step("drain", "done", note="wait for the writers that passed their privilege check, then release",
                       sql=self.old_engine.freeze_sql(self.tables))
        self._step("position", "done", note="record the final position of the frozen side")
        self._step("catch-up", "done", note=f"wait up to {self.options.timeout:g}s for apply to reach it")
        self._step("verify", "done", note=f"final parity check of {', '.join(self.tables)} (exit 0 required)")
        if self.options.freeze == "lock":
            self._step("close", "done", note=f"close {old.redacted()} to application writes",
                       sql=self.old_engine.close_sql(old.database, old.user))
        self._step("counters", "done", note=f"move sequences/AUTO_INCREMENT on {new.redacted()} past the old side's",
                   sql=self.new_engine.set_counters_sql(self.tables, {t: 0 for t in self.tables}))
        self._step("prepare", "done", note=f"start the {self.kind.new_direction} capture "
                                            f"({self.workflow.prefix(self.kind.new_direction)}) at "
                                            f"{new.redacted()}'s current position, no snapshot")
        self._step("commit", "done", note=f"record state {self.kind.after}, direction {self.kind.new_direction}")
        self._step("open", "done", note=f"open {new.redacted()} to application writes",
                   sql=self.new_engine.open_sql(new.database)
                   + self.new_engine.grant_sql(new, self._regrants(migration)))
        self._step("hook", "done", note=f"run {self.options.on_switch!r} with CDC_PRIMARY_URL="
                                        f"{url_without_password(new)}" if self.options.on_switch else "no --on-switch")
        self._step("runner", "done", note=f"the runner stops {self.kind.old_direction}, starts {self.kind.new_direction}")
        self.result.update(steps=self.steps, changed=False)
        return self.result

    # -- the walk ------------------------------------------------------------------------------------
    def _walk(self, migration: Migration) -> dict[str, Any]:
        name = self.workflow.name
        started_state = migration.state
        record = dict(migration.record)
        record["cutover"] = {"kind": self.kind.command, "from_state": started_state, "freeze": self.options.freeze,
                             "closed": False, "prepared": False, "committed": False, "started_at": time.time()}
        self.store.save(name, started_state, self.kind.during, record)
        migration = self.store.load(name)
        try:
            self._freeze(migration)
            conn = self.old_engine.connect(self.old_url)
            try:
                position = self.old_engine.current_position(conn)
                self.old_engine.nudge(conn)
            finally:
                conn.close()
            self._progress(migration, final_position=position)
            self._step("position", "done", note=f"final position {position}", position=position)
            self._catch_up(position)
            # close, counters, prepare and the final verify touch different things: they run at once (a failed
            # verify is undone by the rollback, which the progress recorded first tells what to undo)
            closing = self.options.freeze == "lock"
            self._progress(migration, closed=closing or migration.record["cutover"].get("closed", False),
                           prepared=True)
            with ThreadPoolExecutor(4) as pool:
                verified = pool.submit(self._final_verify_report)
                closed = pool.submit(self._close_writes) if closing else None
                counted = pool.submit(self._sync_counters)
                prepared = pool.submit(self._prepare)
                if closed is not None:
                    self._step("close", "done", note=f"{self.old_url.redacted()} closed to application writes",
                               sql=closed.result())
                wanted, sql = counted.result()
                self._step("counters", "done", note=f"next values {wanted}", sql=sql)
                started_at, topics = prepared.result()
                self._step("prepare", "done", note=started_at, prefix=self.workflow.prefix(self.kind.new_direction),
                           topics=topics)
                self._final_verify(verified.result())
        except BaseException as exc:
            self._roll_back(self.store.load(name), f"{type(exc).__name__}: {exc}")
            raise
        record = dict(migration.record)
        record["direction"] = self.kind.new_direction
        record["epoch"] = int(record.get("epoch", 0)) + 1
        record["last_cutover_at"] = time.time()
        record["cutover"] = {**record["cutover"], "committed": True, "frozen_at_wall": time.time()}
        if record["cutover"].get("revoked"):  # kept until this side is primary again (reverse), or for good (complete)
            revoked = dict(record.get("revoked", {}))
            revoked[self.old_side] = merged(revoked.get(self.old_side), record["cutover"]["revoked"])
            record["revoked"] = revoked
        self.store.save(name, self.kind.during, self.kind.during, record)
        self._step("commit", "done", note=f"direction {self.kind.new_direction}, epoch {record['epoch']}")
        return self._finish(self.store.load(name), recovered=False)

    def _freeze(self, migration: Migration) -> None:
        if self.options.freeze == "revoke":
            return self._revoke(migration)
        if self.options.freeze == "lock":
            self.freeze_session, sql = self.old_engine.freeze(self.old_url, self.tables)
        else:
            self._progress(migration, closed=True)
            conn = self.old_engine.connect(self.old_url)
            try:
                sql = self.old_engine.close_writes(conn, self.old_url)
            finally:
                conn.close()
        self.frozen_at = time.monotonic()
        self._step("freeze", "done", note=f"{self.options.freeze} on {self.old_url.redacted()}", sql=sql)

    def _revoke(self, migration: Migration) -> None:
        """Take the application roles' write privileges (recorded first), then drain the writers already past
        their privilege check: a short table lock waits for their transactions, and is let go at once."""
        grants = self.to_revoke
        self._progress(migration, revoked=to_records(grants))
        conn = self.old_engine.connect(self.old_url)
        try:
            sql = self.old_engine.revoke_writes(conn, self.old_url, grants)
            left = self.old_engine.write_grants(conn, self.old_url, self.tables,
                                                tuple(sorted({g.account for g in grants})))
        finally:
            conn.close()
        self.frozen_at = time.monotonic()
        if left:
            self._step("freeze", "failed", note=f"still held after the REVOKE: {describe(left)}", sql=sql)
            raise MigrationError(f"the REVOKE left write privileges in place ({describe(left)}): granted by another "
                                 f"role than the table's owner?", fix="rolled back; use --freeze lock or read-only")
        self._step("freeze", "done", note=f"revoke on {self.old_url.redacted()}: {describe(grants)}", sql=sql,
                   revoked=to_records(grants))
        started = time.monotonic()
        session, drain_sql = self.old_engine.freeze(self.old_url, self.tables)
        self.old_engine.release(session)
        self._step("drain", "done", note=f"in-flight writers ended ({time.monotonic() - started:.3f}s)", sql=drain_sql)

    def _catch_up(self, position: str) -> None:
        probe = CatchUpProbe(self.workflow, self.kind.old_direction)
        try:
            caught = probe.wait(position, self.options.timeout)
        finally:
            probe.close()
        if not caught.reached:
            self._step("catch-up", "failed", note=f"not at {position} after {caught.seconds:.1f}s ({caught.figure()})",
                       partitions=caught.partitions)
            raise MigrationError(f"apply did not reach the final position {position} within "
                                 f"--timeout {self.options.timeout:g}s ({caught.figure()})",
                                 fix="rolled back: writes go on where they were; look at the runner's log")
        self._step("catch-up", "done", note=f"apply reached {position} in {caught.seconds:.2f}s (capture had "
                   f"acknowledged it after {caught.captured_seconds:.2f}s)", seconds=caught.seconds,
                   capture_seconds=caught.captured_seconds)

    def _final_verify_report(self):
        """The parity report of the frozen tables (checksums inside both databases, no re-check: nothing moves)."""
        from cdc.verify.parity import verify
        from cdc.verify.plan import VerifyOptions

        old, new = self.workflow.sides(self.kind.old_direction)
        return verify(old, new, VerifyOptions(tables=tuple(self.tables), workers=2, recheck_delay=0.0,
                                              segment_rows=1_000_000))

    def _final_verify(self, report) -> None:
        summary = summarize(report)
        if report.exit_code != 0:
            self._step("verify", "failed", note=summary["text"], verify=summary)
            raise MigrationError(f"the final verification found {report.status} ({summary['text']})",
                                 fix="rolled back: writes go on where they were; run `cdc migrate verify` for the report")
        self._step("verify", "done", note=summary["text"], verify=summary)

    def _close_writes(self) -> list[str]:
        """Close the old primary to application writes; the SQL run."""
        conn = self.old_engine.connect(self.old_url)
        try:
            return self.old_engine.close_writes(conn, self.old_url)
        finally:
            conn.close()

    def _sync_counters(self) -> tuple[dict[str, int], list[str]]:
        """Sequences / AUTO_INCREMENT of the new primary past the old one's; (next values, SQL run)."""
        old_conn = self.old_engine.connect(self.old_url)
        new_conn = self.new_engine.connect(self.new_url)
        try:
            wanted = self.old_engine.counters(old_conn, self.tables)
            return wanted, self.new_engine.set_counters(new_conn, self.tables, wanted)
        finally:
            old_conn.close()
            new_conn.close()

    def _prepare(self) -> tuple[str, list[str]]:
        """The other direction's capture set to start at the new primary's position; (what was done, topics made)."""
        started_at = self.new_engine.start_capture_here(
            self.new_url, self.workflow.kafka, self.workflow.prefix(self.kind.new_direction), self.tables)
        return started_at, self._create_topics()

    def _create_topics(self) -> list[str]:
        """The new direction's topics, made now (table topics with the old ones' partitions, and the capture's own),
        so its apply's first group assignment holds them all (a topic created later costs a rebalance)."""
        from cdc.envelope import Envelope
        from cdc.kafka import make_admin
        from cdc.kafka.base import TopicSpec
        from cdc.pipeline import ensure_topics

        old_prefix, new_prefix = (self.workflow.prefix(d) for d in (self.kind.old_direction, self.kind.new_direction))
        namespace = self.new_engine.topic_namespace(self.new_url)
        with make_admin(self.workflow.kafka, backend=self.workflow.kafka_backend) as admin:
            ensure_topics(admin, Envelope(new_prefix))
            existing = admin.list_topics()
            partitions = {t.rsplit(".", 1)[1]: n for t, n in existing.items()
                          if t.startswith(old_prefix + ".") and t.count(".") == 2}
            specs = [TopicSpec(f"{new_prefix}.{namespace}.{table}", partitions.get(table, 1), False)
                     for table in self.tables if f"{new_prefix}.{namespace}.{table}" not in existing]
            if specs:
                admin.create_topics(specs, exist_ok=True)
        return [spec.name for spec in specs]

    def _release(self) -> None:
        session, self.freeze_session = self.freeze_session, None
        try:
            self.old_engine.release(session)
        except Exception as exc:  # noqa: BLE001 - the session may be gone already; its locks went with it
            self.say(f"  (freeze session already ended: {type(exc).__name__})")

    def _roll_back(self, migration: Migration, why: str) -> None:
        """Undo a cutover that did not commit: old primary reopened, prepared capture dropped, state restored."""
        progress = migration.record.get("cutover", {})
        if self.freeze_session is not None:
            self._release()
        sql: list[str] = []
        if progress.get("closed"):
            conn = self.old_engine.connect(self.old_url)
            try:
                sql += self.old_engine.open_writes(conn, self.old_url)
            finally:
                conn.close()
        if progress.get("revoked"):
            conn = self.old_engine.connect(self.old_url)
            try:
                sql += self.old_engine.grant_writes(conn, self.old_url, from_records(progress["revoked"]))
            finally:
                conn.close()
        if progress.get("prepared"):
            sql += self.new_engine.drop_capture(self.new_url, self.workflow.kafka,
                                                self.workflow.prefix(self.kind.new_direction))
        record = dict(migration.record)
        record.pop("cutover", None)
        self.store.save(self.workflow.name, migration.state, progress.get("from_state", self.kind.before[0]), record)
        self._step("rollback", "done", note=f"{why}; {self.old_url.redacted()} takes writes again", sql=sql)

    def _finish(self, migration: Migration, *, recovered: bool) -> dict[str, Any]:
        """After the commit: open the new primary, run the hook, see the runner take the new direction."""
        name = self.workflow.name
        conn = self.new_engine.connect(self.new_url)
        regrants = self._regrants(migration)
        try:
            sql = self.new_engine.open_writes(conn, self.new_url)
            sql += self.new_engine.grant_writes(conn, self.new_url, regrants)
        finally:
            conn.close()
        self._step("open", "done", note=f"{self.new_url.redacted()} takes application writes"
                   + (f" (granted back: {describe(regrants)})" if regrants else ""), sql=sql)
        if self.freeze_session is not None:
            self._release()
        if self.options.on_switch:
            self._hook()
        pause = None if self.frozen_at is None else round(time.monotonic() - self.frozen_at, 3)
        record = dict(migration.record)
        record.pop("cutover", None)
        record["revoked"] = {side: grants for side, grants in record.get("revoked", {}).items() if side != self.new_side}
        self.store.save(name, self.kind.during, self.kind.after, record)
        self._step("done", "done", note=f"write pause {pause:.3f}s" if pause is not None else "recovered after a crash",
                   write_pause_seconds=pause, recovered=recovered)
        ran = self._wait_runner(int(record.get("epoch", 0)))
        self.result.update(state=self.kind.after, primary=url_without_password(self.new_url),
                           write_pause_seconds=pause, recovered=recovered, runner_started=ran, steps=self.steps)
        return self.result

    def _hook(self) -> None:
        env = {**os.environ, "CDC_PRIMARY_URL": url_without_password(self.new_url), "CDC_MIGRATION": self.workflow.name,
               "CDC_MIGRATION_STEP": self.kind.command}
        started = time.monotonic()
        done = subprocess.run(self.options.on_switch, shell=True, env=env, capture_output=True, text=True,
                              timeout=self.options.timeout)
        seconds = round(time.monotonic() - started, 3)
        if done.returncode != 0:
            self._step("hook", "failed", note=f"exit {done.returncode} after {seconds}s", stderr=done.stderr[-2000:])
            raise MigrationError(f"--on-switch exited {done.returncode}: the switch is committed and "
                                 f"{self.new_url.redacted()} is the primary, but applications were not repointed",
                                 fix="repoint the applications by hand (or fix the hook and run it), then go on")
        for line in done.stdout.splitlines()[-20:]:
            self.say(f"      {line}")
        self._step("hook", "done", note=f"exit 0 in {seconds}s", seconds=seconds)

    def _wait_runner(self, epoch: int) -> bool:
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            beat = self.store.load(self.workflow.name).heartbeat or {}
            if beat.get("epoch") == epoch and beat.get("direction") == self.kind.new_direction:
                self._step("runner", "done", note=f"{self.kind.new_direction} pipeline started")
                return True
            time.sleep(0.1)
        self._step("runner", "failed", note=f"no runner took epoch {epoch} within {self.options.timeout:g}s; "
                                            f"start `cdc migrate run {self.workflow.name}`: it will")
        return False


def summarize(report) -> dict[str, Any]:
    """The journal's view of a parity report: status, seconds, rows per table, a one-line text."""
    tables = {t.name: {"status": t.status, "source_rows": t.source_rows, "target_rows": t.target_rows}
              for t in report.tables}
    text = f"{report.status} on {len(report.tables)} table(s), {report.rows_checked} rows, {report.seconds:.2f}s"
    if report.error:
        text += f": {report.error}"
    return {"status": report.status, "exit_code": report.exit_code, "seconds": report.seconds,
            "tables": tables, "text": text}

