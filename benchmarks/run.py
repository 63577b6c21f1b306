"""One benchmark command: bring up a sandbox, run the benchmarks with their peers, write one results file.

    .venv/bin/python benchmarks/run.py --quick      # 200k-row verify, 200k-row copy
    .venv/bin/python benchmarks/run.py              # 1M-row verify and copy

Runs benchmarks/bench_verify_realistic.py (cdc verify vs reladiff on the 13-column table, every
engine pair) and benchmarks/bench_copy.py (cdc copy vs pgcopydb, pg_dump | psql, mariadb-dump |
mariadb) against a sandbox of its own (`cdc sandbox up --dir DIR`, stopped and purged at the end),
then writes benchmarks/results/<date>.json (each benchmark's results and the machine) and
benchmarks/results/<date>.md (one table per benchmark). A benchmark that fails is reported with
its error; the others still run. Figures are single runs (not medians of three): the other
scenarios of issue 19 (decode, capture, apply, lag, RSS through a 1M-row transaction) have their own
scripts in benchmarks/ and are not run from here yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def sandbox_env(directory: Path) -> dict[str, str]:
    """Start the sandbox in `directory`; the CDC_* variables that point at it."""
    cli = [sys.executable, "-m", "cdc.cli", "sandbox"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([*cli, "up", "--dir", str(directory)], check=True, env=env, capture_output=True)
    out = subprocess.run([*cli, "env", "--dir", str(directory)], check=True, env=env, capture_output=True, text=True)
    variables = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line[len("export "):].split("=", 1)
            variables[name] = shlex.split(value)[0] if value else ""
    return variables


def run_benchmark(script: str, args: list[str], env: dict[str, str], prefix: str) -> dict:
    """Run one benchmark script; its newest results file (matching `prefix`), or its error."""
    before = set(RESULTS.glob(f"{prefix}*.json")) if RESULTS.exists() else set()
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    seconds = round(time.monotonic() - started, 1)
    new = sorted(set(RESULTS.glob(f"{prefix}*.json")) - before)
    if result.returncode != 0 or not new:
        return {"script": script, "seconds": seconds, "error": (result.stderr or result.stdout).strip()[-1500:]}
    return {"script": script, "seconds": seconds, "file": str(new[-1].relative_to(ROOT)),
            "results": json.loads(new[-1].read_text())}


def verify_table(data: dict) -> list[str]:
    lines = ["| rows | case | cdc verify | rows/s | peak RSS | found | reladiff | speed-up |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in data["results"]:
        ours, peer = entry["cdc_verify"], entry.get("reladiff") or {}
        peer_text = f"{peer['seconds']} s" if peer.get("seconds") else (peer.get("error", "not run")[:60] or "-")
        if peer and peer.get("complete") is False:
            peer_text += " (incomplete)"
        lines.append(f"| {entry['rows']:,} | {entry['case']} | {ours['seconds']} s | {ours['rows_per_s']:,} | "
                     f"{ours['peak_rss_mb']} MB | {ours['differences']}/{entry['seeded_differences']} | {peer_text} | "
                     f"{entry.get('speedup_vs_reladiff', '-')} |")
    return lines


def copy_table(data: dict) -> list[str]:
    lines = [f"| case ({data['rows']:,} rows) | tool | seconds | rows/s |", "|---|---|---|---|"]
    for case, tools in data["results"].items():
        for tool, out in tools.items():
            tool = tool.replace("|", "\\|")
            if "error" in out:
                lines.append(f"| {case} | {tool} | {out['error'][:80]} | |")
            else:
                lines.append(f"| {case} | {tool} | {out['seconds']} | {out['rows_per_s']:,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200k rows instead of 1M")
    parser.add_argument("--dir", default="/tmp/cdc-bench-sandbox", help="sandbox directory (purged at the end)")
    args = parser.parse_args()
    rows = 200_000 if args.quick else 1_000_000
    directory = Path(args.dir)
    env = sandbox_env(directory)
    cli = [sys.executable, "-m", "cdc.cli", "sandbox"]
    runs = []
    try:
        runs.append(("verify", run_benchmark("bench_verify_realistic.py", ["--rows", str(rows)], env,
                                             "verify-realistic-")))
        runs.append(("copy", run_benchmark("bench_copy.py", ["--rows", str(rows)], env, "copy-")))
    finally:
        subprocess.run([*cli, "down", "--purge", "--dir", str(directory)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True)
    now = dt.datetime.now(dt.timezone.utc)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]}
    payload = {"at": now.isoformat(timespec="seconds"), "rows": rows, "machine": machine,
               "benchmarks": {name: run for name, run in runs}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{now:%Y-%m-%dT%H%M}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    markdown = [f"# Benchmarks {now:%Y-%m-%d %H:%M} UTC", "",
                f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}; "
                f"load average at the end {machine['load_avg_at_end']}.", ""]
    for name, run in runs:
        markdown += [f"## {name}", ""]
        if "error" in run:
            markdown += [f"failed: `{run['error'][-300:]}`", ""]
            continue
        markdown += (verify_table if name == "verify" else copy_table)(run["results"]) + [""]
    stem.with_suffix(".md").write_text("\n".join(markdown))
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
