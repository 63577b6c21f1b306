"""The drill's faults, one small injector module each; `FAULTS` by name, `DEFAULT_FAULTS` in drill order.

    kill_capture, kill_apply, kill_run    SIGKILL of cdc's own processes (allowed on a real config)
    broker_stall                          SIGSTOP / SIGCONT of the Kafka broker
    database_restart                      source restart (fast, immediate), target restart
    network                               through the drill's TCP proxy: reset, blackhole, latency
    target_locked                         the target table locked against writes for a while
    spool_full                            disk full under the PostgreSQL capture's spool
"""

from __future__ import annotations

from cdc.drill.faults import broker_stall, database_restart, kill_apply, kill_capture, kill_run, network, spool_full, target_locked
from cdc.drill.faults.base import CDC_PROCESSES, SERVERS, DrillTarget, Fault, Pipeline, Timings

FAULTS: dict[str, Fault] = {fault.name: fault for fault in (
    kill_capture.FAULT, kill_apply.FAULT, kill_run.FAULT, broker_stall.FAULT,
    database_restart.SOURCE_FAST, database_restart.SOURCE_IMMEDIATE, database_restart.TARGET_FAST,
    network.RESET, network.BLACKHOLE, network.LATENCY, target_locked.FAULT, spool_full.FAULT,
)}
DEFAULT_FAULTS = tuple(FAULTS)

# Faults the sandbox cannot stage, and why (printed with the drill's results).
NOT_IN_SANDBOX = {
    "broker-restart": "the sandbox broker keeps data in memory only (a restart loses every topic); "
                      "capture stops with an error when a broker loses acknowledged records",
}

__all__ = ["CDC_PROCESSES", "DEFAULT_FAULTS", "FAULTS", "NOT_IN_SANDBOX", "SERVERS", "DrillTarget", "Fault",
           "Pipeline", "Timings"]
