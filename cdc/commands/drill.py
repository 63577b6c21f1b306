"""`cdc drill`: inject faults while replicating under a ledger load; report writes lost, repeats, recovery, parity."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from cdc.errors import ConfigError


@click.command("drill")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="Drill the pipelines of this cdc.toml (only cdc's own processes, and only with --i-know).")
@click.option("--sandbox", is_flag=True, help="Start a throwaway sandbox of its own, drill it, remove it at the end.")
@click.option("--faults", "faults_text", metavar="LIST", help="Comma-separated faults (default: all); see below.")
@click.option("--duration", type=click.FloatRange(2), default=60.0, show_default=True,
              help="Seconds of load around each fault (half before, half after).")
@click.option("--rate", type=click.FloatRange(1), default=1000.0, show_default=True,
              help="Ledger writes per second, shared by the sources.")
@click.option("--stall-seconds", type=click.FloatRange(0), default=30.0, show_default=True,
              help="How long broker-stall keeps the broker stopped.")
@click.option("--blackhole-seconds", type=click.FloatRange(0), default=10.0, show_default=True,
              help="How long net-blackhole moves no byte.")
@click.option("--lock-seconds", type=click.FloatRange(0), default=15.0, show_default=True,
              help="How long target-locked holds the table lock.")
@click.option("--huge-rows", type=click.IntRange(1), default=40_000, show_default=True,
              help="Rows of spool-full's one transaction.")
@click.option("--pairs", default="postgres-to-mariadb,mariadb-to-postgres", show_default=True,
              help="Sandbox pipelines to drill.")
@click.option("--catch-up", type=click.FloatRange(1), default=180.0, show_default=True,
              help="Seconds to wait for a target to catch up before counting what is missing as lost.")
@click.option("--work-dir", type=click.Path(file_okay=False), help="Where the sandbox, config and logs go.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results here (a JSON list).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the results as an HTML page.")
@click.option("--i-know", is_flag=True, help="Allow a drill on a real config (cdc's own processes only).")
def command(config_path, sandbox, faults_text, duration, rate, stall_seconds, blackhole_seconds, lock_seconds,
            huge_rows, pairs, catch_up, work_dir, json_path, html_path, i_know) -> None:
    """Replicate under a write load whose acknowledged writes are recorded, inject each fault in turn, wait
    for recovery and check: writes lost (must be 0), events repeated, seconds to recover (first write
    made after the fault applied), parity (`cdc verify`). Exit 0 only when every fault lost nothing and
    ended in parity.

    \b
    Faults: kill-capture, kill-apply, kill-run, broker-stall, source-restart-fast,
    source-restart-immediate, target-restart, net-reset, net-blackhole, net-latency, target-locked,
    spool-full. A broker restart is not a sandbox fault (its broker keeps data in memory only).

    \b
    Example:
      cdc drill --sandbox --faults kill-capture,net-reset --duration 20 --json drill.json
    """
    from cdc.drill import report
    from cdc.drill.faults import DEFAULT_FAULTS, Timings
    from cdc.drill.guard import parse_faults, refuse
    from cdc.drill.session import DrillOptions, run_sandbox_drill

    if bool(config_path) == bool(sandbox):
        raise ConfigError("cdc drill needs exactly one of --config FILE and --sandbox")
    faults = parse_faults(faults_text, DEFAULT_FAULTS)
    refusal = refuse(faults, sandbox=sandbox, i_know=i_know)
    if refusal:
        raise ConfigError(f"refusing to drill: {refusal}")
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    timings = Timings(stall_seconds=stall_seconds, blackhole_seconds=blackhole_seconds, lock_seconds=lock_seconds,
                      huge_rows=huge_rows)
    options = DrillOptions(faults, duration=duration, rate=rate, timings=timings, catch_up_seconds=catch_up,
                           work_dir=Path(work_dir).absolute() if work_dir else None,
                           pairs=tuple(p.strip() for p in pairs.split(",") if p.strip()))
    if sandbox:
        results, skipped = run_sandbox_drill(options, console.print)
    else:
        from cdc.drill.real_config import run_config_drill

        results, skipped = run_config_drill(Path(config_path), options, console.print)
    report.show(console, results, skipped)
    if json_path:
        report.write_json(Path(json_path), results, skipped)
    if html_path:
        report.write_html(Path(html_path), results, skipped)
    ok = report.passed(results)
    console.print("[green]every fault: nothing lost, parity[/green]" if ok else "[red]drill failed[/red]")
    sys.exit(0 if ok else 1)
