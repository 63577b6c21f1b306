"""SIGKILL of `cdc migrate switch` / `reverse` after each step in turn, then the same command again:
it reads the recorded progress and rolls back (before the commit) or finishes (after it). After every
crash at most one side takes the application's writes; at the end nothing acknowledged is lost."""

from __future__ import annotations

import pytest

from cdc.migrate.state import REVERSED, REVERSING, RUNNING, SWITCHED, SWITCHING
from tests.migrate.harness import app_write, ledger_seqs

STEPS = ["freeze", "position", "catch-up", "close", "counters", "prepare", "verify", "commit", "open", "hook"]
COMMITTED = {"commit", "open", "hook"}


def _writable(url: str) -> bool:
    try:
        app_write(url, "probe", 0)
    except Exception:  # noqa: BLE001 - refused: closed to the application
        return False
    return True


@pytest.mark.parametrize("workflow_world", [("postgresql", "postgresql")], ids=["pg-pg"], indirect=True)
def test_killed_cutover_is_recovered_by_running_it_again(workflow_world):
    cli, app, source, target, hook = workflow_world
    app.rate = 200.0
    app.start()
    cli.run("create", cli.name, "--tables", "ledger")
    cli.start_runner()
    cli.wait_state(RUNNING)
    for index, step in enumerate(STEPS):
        kind, during, after = ("switch", SWITCHING, SWITCHED) if index % 2 == 0 else ("reverse", REVERSING, REVERSED)
        with app.paused():
            cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "1")
        args = (kind, cli.name, "--on-switch", hook, "--max-lag", "30s", "--json")
        crashed = cli.run(*args, check=False, CDC_MIGRATE_CRASH_AFTER=f"{kind}.{step}")
        assert crashed.returncode == -9, crashed.stderr
        store = cli.store()
        try:
            migration = store.load(cli.name)
        finally:
            store.close()
        assert migration.state == during
        assert bool(migration.record["cutover"].get("committed")) == (step in COMMITTED)
        both = _writable(source) and _writable(target)
        assert not both, f"after a crash at {kind}.{step} both sides take application writes"
        result = cli.json(*args[:-1])
        assert result["state"] == after and result["recovered"] == (step in COMMITTED)
        steps = [entry["step"] for entry in result["steps"]]
        assert (f"{kind}.rollback" in steps) == (step not in COMMITTED)
        print(f"\ncrash after {kind}.{step}: {'finished' if step in COMMITTED else f'rolled back, then {kind} again'}")
    app.stop()
    cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "1")
    acked = {seq for seq, _, _ in app.acks}
    assert acked and not acked - ledger_seqs(source, "app") and not acked - ledger_seqs(target, "app")
