"""SIGKILL `cdc run` itself, then start it again (as systemd would): its children must not outlive it."""

from __future__ import annotations

import time

from cdc.drill.faults.base import CDC_PROCESSES, DrillTarget, Fault

ORPHAN_WAIT_SECONDS = 30.0


def inject(target: DrillTarget) -> str:
    run = target.run
    run.wait_for_children("capture", len(target.pipelines))
    pid = run.pid
    children = [p for kind in ("capture", "apply") for p in run.children(kind)]
    run.kill()
    deadline = time.monotonic() + ORPHAN_WAIT_SECONDS
    while time.monotonic() < deadline and any(_alive(child) for child in children):
        time.sleep(0.1)
    orphans = [child for child in children if _alive(child)]
    run.start()
    note = f"SIGKILL cdc run pid {pid}; started it again as pid {run.pid}"
    if orphans:
        note += f"; {len(orphans)} child(ren) outlived it by {ORPHAN_WAIT_SECONDS:.0f}s: {orphans}"
    return note


def _alive(pid: int) -> bool:
    from cdc.drill.cdc_run import cdc_command_of

    return cdc_command_of(pid) is not None


FAULT = Fault("kill-run", "SIGKILL `cdc run` (and restart it)", CDC_PROCESSES, inject)
