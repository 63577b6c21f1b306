"""The whole workflow against real servers with an application writing ~500 acknowledged rows a second:
create, run, verify, switch, write on the new side, reverse, write, switch again, complete.
The application pauses while `cdc migrate verify` runs (a verification of tables that stand still) and
writes through every cutover. At the end: 0 acknowledged writes lost in either database, no write acknowledged by a closed side,
parity; the write pause of every switch is printed."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from cdc.migrate.state import RUNNING
from tests.migrate.harness import app_write, ledger_seqs, primary_key

PAIRS = [("postgresql", "postgresql"), ("postgresql", "mysql"), ("mysql", "postgresql")]
IDS = ["pg-pg", "pg-mariadb", "mariadb-pg"]


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _cutover(cli, app, kind: str, hook: str, old: str) -> tuple[float, float, float]:
    """One switch/reverse while the app writes; the old side refuses the app; (pause, closed at, opened at)."""
    before = time.time()
    result = cli.json(kind, cli.name, "--on-switch", hook, "--max-lag", "30s")
    after = time.time()
    pause = result["write_pause_seconds"]
    seen = app.longest_gap(before, after + 1.0)
    steps = result["steps"]
    frozen = next(s["at"] for s in steps if s["step"].endswith(".freeze"))
    print("  " + ", ".join(f"{s['step'].split('.', 1)[1]} {_seconds(frozen, s['at']):+.2f}" for s in steps))
    print("  " + next(s["note"] for s in steps if s["step"].endswith(".catch-up")))
    print(f"\n{cli.name} {kind}: write pause {pause:.3f}s (freeze -> hook returned); the app saw a {seen:.3f}s gap")
    assert result["runner_started"]
    with pytest.raises(Exception):
        app_write(old, "probe", 1)
    at = {s["step"].split(".", 1)[1]: datetime.fromisoformat(s["at"]).timestamp() for s in steps}
    return pause, at["close"], at["open"]


@pytest.mark.parametrize("workflow_world", PAIRS, ids=IDS, indirect=True)
def test_switch_reverse_switch_complete_loses_no_acknowledged_write(workflow_world):
    cli, app, source, target, hook = workflow_world
    app.start()
    cli.run("create", cli.name, "--tables", "ledger")  # the default initial copy: direct, while the app writes
    cli.start_runner()
    cli.wait_state(RUNNING)
    copied = next(e for e in cli.journal() if e["step"] == "copy" and e["status"] == "done")
    assert copied["seconds"] > 0 and copied["rows"]["ledger"] > 0 and copied["position"]
    print(f"\ndirect initial copy: {copied['note']}")
    with app.paused():  # verify compares tables that stand still (writes go on through every cutover)
        cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "2")
    closed: list[list] = []  # [side, closed at, reopened at or None]: no acknowledgement from a side in between
    pauses = []
    for kind, old in (("switch", source), ("reverse", target), ("switch", source)):
        new = target if old == source else source
        pause, closed_at, opened_at = _cutover(cli, app, kind, hook, old)
        pauses.append(pause)
        for interval in closed:
            if interval[0] == primary_key(new) and interval[2] is None:
                interval[2] = opened_at
        closed.append([primary_key(old), closed_at, None])
        time.sleep(1.5)  # the application writes on the new primary (its sequence moved past the old one's)
        assert sum(1 for _, side, at in app.acks if side == primary_key(new) and at > opened_at) > 100, app.errors
        with app.paused():
            cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "2")
    app.stop()
    cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "2")
    cli.run("complete", cli.name)
    acked = {seq for seq, _, _ in app.acks}
    assert len(acked) > 1000
    missing_source = acked - ledger_seqs(source, "app")
    missing_target = acked - ledger_seqs(target, "app")
    assert not missing_source and not missing_target, (len(missing_source), len(missing_target))
    late = [(seq, side) for seq, side, at in app.acks for key, start, end in closed
            if side == key and start < at and (end is None or at < end)]
    assert not late, f"{len(late)} write(s) acknowledged by a closed side, e.g. {late[:3]}"
    steps = [entry["step"] for entry in cli.journal()]
    assert steps.count("switch.done") == 2 and steps.count("reverse.done") == 1 and "complete" in steps
    print(f"{cli.name}: {len(acked)} acknowledged writes, 0 lost; pauses {', '.join(f'{p:.3f}s' for p in pauses)}")
