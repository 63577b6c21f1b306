"""SIGKILL one apply worker of each target (the supervisor restarts it; the group rebalances)."""

from __future__ import annotations

import os
import signal

from cdc.drill.faults.base import CDC_PROCESSES, DrillTarget, Fault


def inject(target: DrillTarget) -> str:
    pids = target.run.wait_for_children("apply", len(target.pipelines))
    for pid in pids[:len(target.pipelines)]:
        os.kill(pid, signal.SIGKILL)
    return f"SIGKILL apply pid(s) {', '.join(map(str, pids[:len(target.pipelines)]))}"


FAULT = Fault("kill-apply", "SIGKILL an apply worker per target", CDC_PROCESSES, inject)
