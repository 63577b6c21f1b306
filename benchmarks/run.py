"""One benchmark command: a sandbox of its own, every scenario with its peers, medians of several runs, tables and charts.

    python benchmarks/run.py --quick                  # small sizes, 3 runs each, under 10 minutes on 2 cores
    python benchmarks/run.py                          # full sizes (1M rows), 3 runs each
    python benchmarks/run.py --only decode,lag --runs 5
    python benchmarks/run.py --only kafka-copy --add-to benchmarks/results/<file>.json   # re-run one part
    python benchmarks/run.py --publish benchmarks/results/<file>.json   # README + docs/benchmarks.md + charts

Starts `cdc sandbox up --dir DIR` (PostgreSQL, MariaDB, the tansu broker; stopped and purged at the end)
and runs each scenario of benchmarks/suite/scenarios.py `--runs` times: each run calls the scenario's
scripts in benchmarks/ (which measure this project and its peers in the same run) and reads the JSON
they write. Each figure is the median of the runs, with min and max. A peer that cannot run is listed
with its reason; a scenario that fails is reported with its error and the others still run. Writes
benchmarks/results/<UTC time>.json and .md and the charts docs/img/bench-<scenario>.png; `--publish`
puts a results file into the `<!-- bench:start -->` blocks of README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.suite import charts, machine  # noqa: E402 - after the path that makes them importable
from benchmarks.suite.figures import Note, distinct_notes, summarise  # noqa: E402
from benchmarks.suite.publish import MarkersMissing, publish  # noqa: E402
from benchmarks.suite.scenarios import Invocation, Scenario, by_name  # noqa: E402
from benchmarks.suite.tables import results_markdown  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "img"
QUICK_TIMEOUT_S = 300
FULL_TIMEOUT_S = 3600


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: ours, this checkout first on the path, and the sandbox's URLs."""
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def sandbox_up(directory: Path) -> dict[str, str]:
    """Start the sandbox in `directory`; the CDC_* variables that point at it."""
    cli = [sys.executable, "-m", "cdc.cli", "sandbox"]
    started = subprocess.run([*cli, "up", "--dir", str(directory)], env=child_env(), capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"`cdc sandbox up --dir {directory}` failed:\n{started.stderr.strip() or started.stdout.strip()}")
    out = subprocess.run([*cli, "env", "--dir", str(directory)], check=True, env=child_env(), capture_output=True,
                         text=True)
    variables = {}
    for line in out.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line[len("export "):].split("=", 1)
            variables[name] = shlex.split(value)[0] if value else ""
    return variables


def sandbox_down(directory: Path) -> None:
    """Stop the sandbox and remove its files."""
    subprocess.run([sys.executable, "-m", "cdc.cli", "sandbox", "down", "--purge", "--dir", str(directory)],
                   env=child_env(), capture_output=True)


def run_script(invocation: Invocation, env: dict[str, str], timeout: float) -> tuple[dict | None, str | None, str]:
    """Run one script; (its results JSON, None, file) or (None, its error, "")."""
    before = set(RESULTS.glob(f"{invocation.prefix}*.json"))
    command = [sys.executable, str(ROOT / "benchmarks" / invocation.script), *invocation.args]
    # a session of its own, so that a timeout stops the script and every process it started
    process = subprocess.Popen(command, env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        return None, f"timed out after {timeout:.0f} s: {output.strip()[-1000:]}", ""
    new = sorted(set(RESULTS.glob(f"{invocation.prefix}*.json")) - before)
    if process.returncode != 0 or not new:
        return None, f"exit {process.returncode}: {output.strip()[-1500:]}", ""
    return json.loads(new[-1].read_text()), None, str(new[-1].relative_to(ROOT))


Outcome = tuple[Invocation, dict | None, str | None, str]  # invocation, results JSON, error, results file


def run_invocations(scenario: Scenario, quick: bool, env: dict[str, str]) -> list[Outcome]:
    """One run of a scenario: each of its scripts, one after the other."""
    timeout = QUICK_TIMEOUT_S if quick else FULL_TIMEOUT_S
    return [(invocation, *run_script(invocation, env, timeout)) for invocation in scenario.invocations(quick)]


def reused_outcomes(scenario: Scenario, quick: bool, earlier: dict[str, list[list[Outcome]]],
                    runs: int) -> list[list[Outcome]] | None:
    """With --quick, the runs of the scenarios named in `quick_from`, read with this scenario's readers."""
    if not (quick and scenario.quick_from) or not all(name in earlier for name in scenario.quick_from):
        return None
    readers = {invocation.script: invocation for invocation in scenario.invocations(quick)}
    return [[(readers[outcome[0].script], *outcome[1:])
             for name in scenario.quick_from for outcome in earlier[name][number]
             if outcome[0].script in readers]
            for number in range(runs)]


def run_scenario(scenario: Scenario, quick: bool, runs: int, env: dict[str, str],
                 earlier: dict[str, list[list[Outcome]]]) -> dict:
    """Every run of one scenario: figures summarised over the runs, notes, and each run's files or error.

    Each run's outcomes are added to `earlier` under the scenario's name, for scenarios that reuse them.
    """
    entry = {"name": scenario.name, "title": scenario.title, "chart_metric": scenario.chart_metric,
             "ours": list(scenario.ours), "headline_metrics": list(scenario.headline_metrics or (scenario.chart_metric,)),
             "headline_cases": list(scenario.headline_cases)}
    missing = [script for script in scenario.needs if not (ROOT / "benchmarks" / script).exists()]
    if missing:
        return {**entry, "status": "skipped", "reason": f"benchmarks/{missing[0]} is not in this checkout"}
    reused = reused_outcomes(scenario, quick, earlier, runs)
    if reused is not None:
        entry["read_from"] = list(scenario.quick_from)
    figures, notes, outcomes, kept = [], [], [], []
    for number in range(1, runs + 1):
        started = time.monotonic()
        results = reused[number - 1] if reused is not None else run_invocations(scenario, quick, env)
        kept.append(results)
        run_figures, run_notes, payloads, files, errors = [], [], [], [], []
        for invocation, data, error, file in results:
            if error:
                errors.append(f"{invocation.script}: {error}")
                continue
            files.append(file)
            payloads.append(data)
            try:
                found, why = invocation.read(data)
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                errors.append(f"{invocation.script}: its results file {file} has an unexpected shape ({exc!r})")
                continue
            run_figures += found
            run_notes += why
        if scenario.conclude and payloads:
            run_figures += scenario.conclude(payloads)
        figures.append(run_figures)
        notes.append(run_notes)
        outcome = {"seconds": round(time.monotonic() - started, 1), "files": files,
                   "load_average_after": machine.load_average()}
        if errors:
            outcome["error"] = "; ".join(errors)
        outcomes.append(outcome)
        print(f"  {scenario.name} run {number}/{runs}: {outcome['seconds']} s"
              + (f", FAILED: {outcome['error'][:300]}" if errors else ""), flush=True)
    earlier[scenario.name] = kept
    summaries = summarise(figures)
    status = "ok" if all("error" not in o for o in outcomes) else ("partial" if summaries else "failed")
    return {**entry, "status": status, "summaries": [s.as_json() for s in summaries],
            "notes": [_note_json(n) for n in distinct_notes(notes)], "runs": outcomes}


def _note_json(note: Note) -> dict:
    return {"case": note.case, "tool": note.tool, "reason": " ".join(note.reason.split())[:500]}


def draw_charts(payload: dict) -> None:
    """The charts of a results file, or a line saying why there are none (matplotlib is in the `bench` extra)."""
    try:
        charts.draw(payload, IMAGES)
    except ImportError as exc:
        print(f"charts not drawn: {exc} (install it with: .venv/bin/pip install -e '.[bench]'); "
              f"draw them later with --publish", flush=True)


def write_results(payload: dict) -> Path:
    """benchmarks/results/<time>.json and .md; the JSON's path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / payload["at"].replace(":", "").replace("+0000", "Z")
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    stem.with_suffix(".md").write_text(results_markdown(payload) + "\n")
    return stem.with_suffix(".json")


def checkout_commit() -> str:
    """The commit this checkout is at (short hash), `+changes` when files differ from it; "?" outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+changes" if dirty else "")


def added_to(earlier: dict, later: dict) -> dict:
    """One results file from an earlier run and a later run of other (or the same) scenarios: the later run's
    scenarios replace or join the earlier ones, and `parts` says when, at which commit and under what load
    each part ran (a full run is long; a part can be re-run after a change without redoing the rest)."""
    def parts_of(payload: dict) -> list[dict]:
        return payload.get("parts") or [{"at": payload["at"], "commit": payload.get("commit", "?"),
                                         "wall_seconds": payload.get("wall_seconds"),
                                         "load_average_before": payload["machine"].get("load_average_before"),
                                         "load_average_after": payload["machine"].get("load_average_after"),
                                         "scenarios": list(payload["scenarios"])}]
    if earlier.get("mode") != later["mode"] or earlier.get("runs") != later["runs"]:
        raise ValueError(f"the earlier file ran {earlier.get('mode')} sizes x {earlier.get('runs')} runs, "
                         f"this run {later['mode']} x {later['runs']}: add only like to like")
    return {**later, "scenarios": {**earlier["scenarios"], **later["scenarios"]},
            "wall_seconds": round((earlier.get("wall_seconds") or 0) + (later.get("wall_seconds") or 0), 1),
            "parts": parts_of(earlier) + parts_of(later)}


def measure(args: argparse.Namespace) -> Path:
    """Bring the sandbox up, run the scenarios, write the results and charts; the results file."""
    scenarios = by_name(args.only)
    added_to_file = json.loads(Path(args.add_to).read_text()) if args.add_to else None
    started = time.monotonic()
    at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    load_before = machine.load_average()
    directory = Path(args.dir)
    print(f"sandbox in {directory} ...", flush=True)
    env = sandbox_up(directory)
    results, earlier = {}, {}
    try:
        described = machine.describe(env)
        for scenario in scenarios:
            print(f"{scenario.name}: {scenario.title}", flush=True)
            results[scenario.name] = run_scenario(scenario, args.quick, args.runs, env, earlier)
    finally:
        sandbox_down(directory)
    payload = {"at": at, "mode": "quick" if args.quick else "full", "runs": args.runs, "commit": checkout_commit(),
               "wall_seconds": round(time.monotonic() - started, 1),
               "machine": {**described, "load_average_before": load_before,
                           "load_average_after": machine.load_average()},
               "scenarios": results}
    if added_to_file is not None:
        payload = added_to(added_to_file, payload)
    path = write_results(payload)
    draw_charts(payload)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (under 10 minutes on 2 cores)")
    parser.add_argument("--only", help="comma-separated scenarios: decode, pg-kafka, mysql-kafka, snapshot, "
                                       "kafka-copy, copy, apply, verify, lag, rss")
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario; figures are their median")
    parser.add_argument("--dir", default="/tmp/cdc-bench-run", help="sandbox directory (purged at the end)")
    parser.add_argument("--add-to", metavar="RESULTS_JSON",
                        help="write a results file holding this earlier file's scenarios and this run's (which "
                             "replace those of the same name); each part keeps its time, commit and load")
    parser.add_argument("--publish", metavar="RESULTS_JSON",
                        help="put this results file into README.md and docs/benchmarks.md (and redraw its charts)")
    args = parser.parse_args()
    if args.publish:
        source = Path(args.publish)
        payload = json.loads(source.read_text())
        draw_charts(payload)
        shown = str(source.resolve().relative_to(ROOT)) if source.resolve().is_relative_to(ROOT) else source.name
        try:
            changed = publish(payload, shown, ROOT)
        except MarkersMissing as exc:
            sys.exit(f"README.md or docs/benchmarks.md: {exc}")
        for path in changed:
            print(f"updated {path.relative_to(ROOT)}")
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        by_name(args.only)
        if args.add_to:
            earlier = json.loads(Path(args.add_to).read_text())
            added_to(earlier, {"mode": "quick" if args.quick else "full", "runs": args.runs, "scenarios": {},
                               "at": "", "machine": {}})
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    path = measure(args)
    print(f"wrote {path.relative_to(ROOT)} and {path.with_suffix('.md').relative_to(ROOT)}, charts in "
          f"{IMAGES.relative_to(ROOT)}; publish with: python benchmarks/run.py --publish {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
