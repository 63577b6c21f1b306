"""Write pause of `cdc migrate switch` and `reverse`: freeze -> hook returned, with an application writing.

A `ledger` table of --rows rows is migrated (PG->PG by default, --pair pg-mariadb / mariadb-pg), the
runner copies it, then for each rate in --rates an application (tests/migrate/harness.py) writes that
many acknowledged rows a second to whichever database the `--on-switch` hook names as primary, and
the workflow is switched and reversed --runs times (a verification, writes paused, before each). The
pause each command reports is collected; the median of each (command, rate) is printed. At the end
every acknowledged write must be in both databases (0 lost).

    .venv/bin/python benchmarks/bench_switch.py [--rows 1000000] [--rates 500,2000] [--runs 5] [--pair pg-pg]
                                                [--freeze lock|read-only|revoke]

Starts a sandbox under --dir (default /tmp/cdc-bench-switch) unless CDC_PG_URL, CDC_MYSQL_URL and
CDC_KAFKA_BOOTSTRAP are all set. Writes benchmarks/results/switch-<UTC time>.json. Target: a median
under 2 s at 500 writes/s with 0 lost writes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdc.migrate.state import RUNNING  # noqa: E402
from tests.conftest import create_mysql_database, create_pg_database  # noqa: E402
from tests.migrate.harness import (HOOK, Application, MigrateCli, ledger_seqs, prepare_side,  # noqa: E402
                                   primary_key, seed)

PAIRS = {"pg-pg": ("pg", "pg"), "pg-mariadb": ("pg", "mysql"), "mariadb-pg": ("mysql", "pg")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rates", default="500,2000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pair", choices=sorted(PAIRS), default="pg-pg")
    parser.add_argument("--freeze", choices=("lock", "read-only", "revoke"), default="lock")
    parser.add_argument("--dir", default="/tmp/cdc-bench-switch")
    args = parser.parse_args()
    own_sandbox = not all(os.environ.get(v) for v in ("CDC_PG_URL", "CDC_MYSQL_URL", "CDC_KAFKA_BOOTSTRAP"))
    if own_sandbox:
        from cdc import sandbox

        Path(args.dir).mkdir(parents=True, exist_ok=True)
        Path(args.dir).chmod(0o755)
        endpoints = sandbox.up(Path(args.dir)).state.endpoints()
        servers = {"pg": endpoints.pg_url, "mysql": endpoints.mysql_url}
        kafka = endpoints.kafka_bootstrap
    else:
        servers = {"pg": os.environ["CDC_PG_URL"], "mysql": os.environ["CDC_MYSQL_URL"]}
        kafka = os.environ["CDC_KAFKA_BOOTSTRAP"]
    make = {"pg": create_pg_database, "mysql": create_mysql_database}
    source_engine, target_engine = PAIRS[args.pair]
    source = make[source_engine](servers[source_engine], "bench_switch_src")
    target = make[target_engine](servers[target_engine], "bench_switch_tgt")
    for url in (source, target):
        prepare_side(url)
    seed(source, args.rows)
    work = Path(tempfile.mkdtemp(prefix="bench-switch-"))
    primary_file = work / "primary"
    primary_file.write_text(source)
    hook = HOOK.format(path=primary_file)
    # a name per run: a workflow's topics outlive it on the broker, and `create` refuses a name that has some
    cli = MigrateCli(f"bench_switch_{uuid.uuid4().hex[:6]}", source, target, kafka, work)
    results: dict[str, list[float]] = {}
    loads: list[float] = []  # the 1-minute load average at each cutover (the machine is shared)
    apps: list[Application] = []
    try:
        cli.run("create", cli.name, "--tables", "ledger")
        started = time.monotonic()
        cli.start_runner()
        cli.wait_state(RUNNING, timeout=3600)
        print(f"copied {args.rows} rows in {time.monotonic() - started:.1f}s")
        for rate in (float(r) for r in args.rates.split(",")):
            app = Application(primary_file, {primary_key(source): source, primary_key(target): target},
                              writer=f"app{int(rate)}", rate=rate)
            apps.append(app)
            app.start()
            for _ in range(args.runs):
                for kind in ("switch", "reverse"):
                    with app.paused():
                        cli.run("verify", cli.name, "--wait-for-lag", "600", "--recheck-delay", "2", timeout=1200)
                    time.sleep(2.0)
                    result = json.loads(cli.run(kind, cli.name, "--on-switch", hook, "--max-lag", "60s", "--timeout",
                                                "120s", "--freeze", args.freeze, "--json", timeout=600).stdout)
                    results.setdefault(f"{kind}@{int(rate)}", []).append(result["write_pause_seconds"])
                    loads.append(os.getloadavg()[0])
                    print(f"{kind} at {int(rate)} writes/s: pause {result['write_pause_seconds']:.3f}s "
                          f"(load average {loads[-1]:.1f})")
            app.stop()
        lost = 0
        cli.run("verify", cli.name, "--wait-for-lag", "600", timeout=1200)
        for app in apps:
            acked = {seq for seq, _, _ in app.acks}
            lost += len(acked - ledger_seqs(source, app.writer)) + len(acked - ledger_seqs(target, app.writer))
    finally:
        for app in apps:
            app.stop()
        cli.stop_runner()
        if own_sandbox:
            from cdc import sandbox

            sandbox.down(Path(args.dir), purge=True)
    summary = {key: {"median": round(statistics.median(values), 3), "runs": values} for key, values in results.items()}
    load = {"min": min(loads, default=None), "max": max(loads, default=None)}
    print(json.dumps({"pair": args.pair, "rows": args.rows, "freeze": args.freeze, "lost": lost, "pauses": summary,
                      "load_average": load}, indent=2))
    out = ROOT / "benchmarks" / "results" / f"switch-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"pair": args.pair, "rows": args.rows, "runs": args.runs, "freeze": args.freeze,
                               "lost": lost, "pauses": summary, "load_average": load, "machine": platform.platform(),
                               "cpus": os.cpu_count()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
