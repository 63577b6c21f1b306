"""Restart the sandbox's source or target database servers: fast (clean) or immediate (crash) shutdown."""

from __future__ import annotations

import signal

from cdc.drill.faults.base import SERVERS, DrillTarget, Fault

# how each sandbox server is stopped: clean ("fast") or crashed ("immediate": PostgreSQL's SIGQUIT, kill -9 for MariaDB)
STOP_SIGNALS = {
    "fast": {"postgres": signal.SIGINT, "mariadb": signal.SIGTERM},
    "immediate": {"postgres": signal.SIGQUIT, "mariadb": signal.SIGKILL},
}


def restart(target: DrillTarget, servers: list[str], mode: str) -> str:
    """Restart each named sandbox server with that mode's stop signal."""
    from cdc import sandbox

    assert target.sandbox_dir is not None
    for name in servers:
        sandbox.restart(target.sandbox_dir, name, sig=STOP_SIGNALS[mode][name])
    return f"{mode} restart of {', '.join(servers)}"


def _sources(target: DrillTarget) -> list[str]:
    return sorted({pipeline.source_server for pipeline in target.pipelines})


def _targets(target: DrillTarget) -> list[str]:
    return sorted({pipeline.target_server for pipeline in target.pipelines})


SOURCE_FAST = Fault("source-restart-fast", "restart the source databases (clean shutdown)", SERVERS,
                    lambda target: restart(target, _sources(target), "fast"))
SOURCE_IMMEDIATE = Fault("source-restart-immediate", "restart the source databases (immediate / kill -9)", SERVERS,
                         lambda target: restart(target, _sources(target), "immediate"))
TARGET_FAST = Fault("target-restart", "restart the target databases (clean shutdown)", SERVERS,
                    lambda target: restart(target, _targets(target), "fast"))
