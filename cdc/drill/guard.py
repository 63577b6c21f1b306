"""Which faults a drill may inject: everything in its own sandbox; on a real config, only with --i-know and
only the faults that touch cdc's own processes."""

from __future__ import annotations

from cdc.drill.faults import CDC_PROCESSES, FAULTS
from cdc.errors import ConfigError


def parse_faults(text: str | None, default: tuple[str, ...]) -> list[str]:
    """The fault names of `--faults a,b` (default: `default`); ConfigError naming an unknown one."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()] or list(default)
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown fault(s): {', '.join(unknown)}", fix=f"choose from: {', '.join(FAULTS)}")
    return names


def refuse(faults: list[str], *, sandbox: bool, i_know: bool) -> str | None:
    """Why these faults may not run (None when they may)."""
    if sandbox:
        return None
    if not i_know:
        return ("a drill on a real config injects faults into running services; "
                "pass --i-know to allow the faults that touch only cdc's own processes")
    outside = [name for name in faults if FAULTS[name].touches != CDC_PROCESSES]
    if outside:
        allowed = [name for name, fault in FAULTS.items() if fault.touches == CDC_PROCESSES]
        return (f"{', '.join(outside)} touch(es) databases, the broker or the network; on a real config only "
                f"{', '.join(allowed)} may run (use --sandbox for the others)")
    return None
