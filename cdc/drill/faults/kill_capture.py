"""SIGKILL every capture process of the drill's `cdc run` (its supervisor restarts them)."""

from __future__ import annotations

import os
import signal

from cdc.drill.faults.base import CDC_PROCESSES, DrillTarget, Fault


def inject(target: DrillTarget) -> str:
    pids = target.run.wait_for_children("capture", len(target.pipelines))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return f"SIGKILL capture pid(s) {', '.join(map(str, pids))}"


FAULT = Fault("kill-capture", "SIGKILL the capture processes", CDC_PROCESSES, inject)
