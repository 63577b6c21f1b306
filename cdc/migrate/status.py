"""`cdc migrate status NAME`: state, direction, runner, lag, last verification and the next command to run."""

from __future__ import annotations

import time
from typing import Any

from cdc.migrate.catchup import CatchUpProbe, current_position
from cdc.migrate.initial_copy import DONE, FAILED, copy_pending, initial_copy
from cdc.migrate.state import (CANCELLED, COMPLETED, COPYING, CREATED, REVERSED, REVERSING, RUNNING, SWITCHED,
                               SWITCHING, Migration)
from cdc.migrate.workflow import FORWARD, Workflow

NEXT_STEPS = {
    CREATED: ["cdc migrate run {name}"],
    COPYING: ["cdc migrate status {name}  (the snapshot is being copied; wait for state running)"],
    RUNNING: ["cdc migrate verify {name}", "cdc migrate switch {name} --dry-run", "cdc migrate switch {name}",
              "cdc migrate cancel {name}"],
    SWITCHING: ["cdc migrate switch {name}  (a switch did not finish: running it again recovers it)"],
    SWITCHED: ["cdc migrate verify {name}", "cdc migrate reverse {name}  (roll back)", "cdc migrate complete {name}"],
    REVERSING: ["cdc migrate reverse {name}  (a reverse did not finish: running it again recovers it)"],
    REVERSED: ["cdc migrate verify {name}", "cdc migrate switch {name}", "cdc migrate cancel {name}"],
    COMPLETED: [],
    CANCELLED: [],
}


LAG_WAIT_SECONDS = 5.0


def measure_lag(workflow: Workflow, direction: str) -> tuple[int | None, float | None]:
    """(events Kafka holds that the direction's apply has not written, seconds replication took to reach the
    primary's position read now, None beyond LAG_WAIT_SECONDS): the figures the switch's lag gate checks."""
    try:
        probe = CatchUpProbe(workflow, direction)
    except Exception:  # noqa: BLE001 - status shows what it can; a dead broker is said elsewhere
        return None, None
    try:
        events = sum(probe.behind().values())
        caught = probe.wait(current_position(workflow.sides(direction)[0]), LAG_WAIT_SECONDS)
        return events, caught.seconds if caught.reached else None
    except Exception:  # noqa: BLE001
        return None, None
    finally:
        probe.close()


def describe(workflow: Workflow, migration: Migration, *, stale_after: float = 86400.0,
             with_lag: bool = True) -> dict[str, Any]:
    """The status as a dict (`--json` prints it; `state` and `next_steps` always there)."""
    record = migration.record
    direction = record.get("direction", FORWARD)
    beat = migration.heartbeat or {}
    verified = record.get("last_verify") or {}
    age = time.time() - verified["at"] if verified else None
    out: dict[str, Any] = {
        "name": migration.name,
        "state": migration.state,
        "direction": direction if migration.state not in (COMPLETED, CANCELLED) else None,
        "source": record.get("source"),
        "target": record.get("target"),
        "primary": record.get("target") if direction != FORWARD else record.get("source"),
        "tables": record.get("tables"),
        "runner": {"alive": migration.runner_alive(), "direction": beat.get("direction"),
                   "healthy": beat.get("healthy"), "why": beat.get("why"),
                   "seconds_since_heartbeat": None if migration.heartbeat_at is None
                   else round(time.time() - migration.heartbeat_at, 1)},
        "lock": migration.lock_owner,
        "last_verify": None if not verified else {
            "at": verified.get("at_text"), "status": verified.get("status"), "summary": verified.get("summary"),
            "report": verified.get("report"), "age_seconds": round(age or 0.0, 1),
            "stale": bool(age is not None and age > stale_after),
        },
        "next_steps": [step.format(name=migration.name) for step in NEXT_STEPS.get(migration.state, [])],
    }
    if with_lag and migration.state not in (COMPLETED, CANCELLED, CREATED) and not copy_pending(record):
        out["lag_events"], out["lag_seconds"] = measure_lag(workflow, direction)
    out["initial_copy"] = initial_copy(record)
    if record.get("copy"):
        out["copy"] = record["copy"]
        if migration.state == COPYING and record["copy"].get("status") == FAILED:
            out["next_steps"] = [f"cdc migrate cancel {migration.name} --drop-tables  (the initial copy failed: fix "
                                 f"the cause, then create the workflow again)"]
    if migration.state in (SWITCHING, REVERSING):
        out["cutover"] = record.get("cutover")
    if any(record.get("revoked", {}).values()):  # `--freeze revoke`: what each closed side's roles lost
        out["revoked"] = {side: grants for side, grants in record["revoked"].items() if grants}
    return out


def status_lines(status: dict[str, Any]) -> list[str]:
    """The terminal view of `describe`."""
    runner = status["runner"]
    verify = status["last_verify"]
    lines = [f"workflow  {status['name']}: {status['state']}" + (f", {status['direction']}" if status["direction"] else ""),
             f"source    {status['source']}", f"target    {status['target']}", f"primary   {status['primary']}",
             f"runner    {'alive' if runner['alive'] else 'NOT RUNNING'}"
             + (f", {runner['direction']}, {'healthy' if runner['healthy'] else runner['why']}" if runner["alive"] else "")]
    copy = status.get("copy")
    if copy:
        if copy.get("status") == DONE:
            lines.append(f"copy      {status['initial_copy']}: {sum(copy['rows'].values())} rows in {copy['seconds']:.2f}s")
        elif copy.get("status") == FAILED:
            lines.append(f"copy      {status['initial_copy']}: FAILED after {copy.get('seconds', 0):.1f}s: {copy['error']}")
        else:
            lines.append(f"copy      {status['initial_copy']}: running for {time.time() - copy['started_at']:.0f}s")
    if "lag_events" in status:
        seconds = status.get("lag_seconds")
        lines.append(f"lag       {status['lag_events'] if status['lag_events'] is not None else '?'} event(s) not applied; "
                     + (f"caught up with the primary's position in {seconds:.2f}s" if seconds is not None
                        else f"not caught up with the primary's position within {LAG_WAIT_SECONDS:g}s"))
    if verify:
        stale = " (STALE)" if verify["stale"] else ""
        lines.append(f"verified  {verify['status']} at {verify['at']}{stale}: {verify['summary']}")
    else:
        lines.append("verified  never")
    for side, grants in status.get("revoked", {}).items():
        lines.append(f"revoked   on the {side}: " + "; ".join(
            f"{', '.join(g['privileges'])} on {g['table']} from {g['role']}" + (f"@{g['host']}" if g.get("host") else "")
            for g in grants))
    if status.get("lock"):
        lines.append(f"lock      held by {status['lock']}")
    lines.append("next      " + ("\n          ".join(status["next_steps"]) or "nothing: the workflow has ended"))
    return lines
