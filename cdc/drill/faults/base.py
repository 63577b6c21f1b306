"""What a fault is, and what it acts on (the drill's `cdc run`, sandbox, proxies and pipelines)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cdc.drill.cdc_run import CdcRun
from cdc.drill.proxy import TcpProxy

CDC_PROCESSES = "cdc"  # touches only cdc's own processes: allowed on a real config with --i-know
SERVERS = "servers"  # touches databases, the broker or the network: sandbox only


@dataclass(slots=True, frozen=True)
class Pipeline:
    """One replicated direction of the drill: source and target (direct URLs), sandbox server names, topic."""

    name: str
    source_url: str
    target_url: str
    source_server: str
    target_server: str
    topic: str


@dataclass(slots=True)
class Timings:
    """How long the timed faults last (short in tests)."""

    stall_seconds: float = 30.0
    blackhole_seconds: float = 10.0
    latency_seconds: float = 0.2
    latency_for: float = 15.0
    lock_seconds: float = 15.0
    huge_rows: int = 40_000


@dataclass(slots=True)
class DrillTarget:
    """Everything a fault may act on."""

    run: CdcRun
    pipelines: list[Pipeline]
    sandbox_dir: Path | None = None
    proxies: list[TcpProxy] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    writers: dict = field(default_factory=dict)  # pipeline name -> LedgerWriter
    spool_dir: Path | None = None


@dataclass(slots=True, frozen=True)
class Fault:
    """One fault: its name, what it does, what it touches, and the injector (returns a note on what it did)."""

    name: str
    what: str
    touches: str
    inject: Callable[[DrillTarget], str]
