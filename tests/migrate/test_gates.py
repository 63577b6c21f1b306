"""Gates, the command lock and the dry run of `cdc migrate switch`, against real servers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cdc.migrate.state import RUNNING, lock_owner
from tests.migrate.harness import app_write, ledger_seqs, seed


@pytest.mark.parametrize("workflow_world", [("postgresql", "postgresql")], ids=["pg-pg"], indirect=True)
def test_gates_lock_and_dry_run(workflow_world):
    cli, app, source, target, hook = workflow_world
    seed(source, 50_000)
    cli.run("create", cli.name, "--tables", "ledger", "--initial-copy", "kafka")  # the capture's snapshot path
    refused = cli.run("switch", cli.name, check=False)
    assert refused.returncode == 2 and "needs the workflow running or reversed; it is created" in refused.stderr
    cli.start_runner()
    cli.wait_state(RUNNING)
    # `running` means the snapshot is applied: every seeded row is in the target already
    assert len(ledger_seqs(target, "seed")) == 50_000
    # no verification yet: the verified gate fails and says what to run
    failed = cli.run("switch", cli.name, check=False)
    assert failed.returncode == 3 and "gate verified failed: no verification yet" in failed.stderr
    cli.run("verify", cli.name, "--wait-for-lag", "20")
    # an impossible lag bound under writes: the lag gate names its figure
    app.start()
    failed = cli.run("switch", cli.name, "--max-lag", "0s", check=False)
    app.stop()
    assert failed.returncode == 3 and "gate lag failed: not caught up with" in failed.stderr
    # a second command while one holds the workflow is refused (a live owner holds the lock)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    store = cli.store()
    try:
        owner = lock_owner("switch").rsplit(":", 2)[0] + f":{holder.pid}:switch"
        assert store.try_lock(cli.name, owner) is None
        refused = cli.run("switch", cli.name, check=False)
        assert refused.returncode != 0 and f"holds workflow {cli.name!r}" in refused.stderr
        holder.kill()
        holder.wait()
        # the holder died: the lock is taken over by the next command (how a crash is recovered)
        dry = cli.run("switch", cli.name, "--dry-run", "--on-switch", hook)
    finally:
        if holder.poll() is None:
            holder.kill()
        store.close()
    assert "LOCK TABLE" in dry.stdout and "would run" in dry.stdout and "CDC_PRIMARY_URL=" in dry.stdout
    # the dry run changed nothing: state, journal, and the source still takes the application's writes
    store = cli.store()
    try:
        assert store.load(cli.name).state == RUNNING
        assert not [e for e in store.entries(cli.name) if e["step"].startswith("switch.freeze")]
    finally:
        store.close()
    app_write(source, "probe", 1)
    with pytest.raises(Exception):
        app_write(target, "probe", 1)  # the target takes no application writes before a switch
    # a second workflow of that name would apply the first one's events: refused
    again = cli.run("create", cli.name, "--tables", "ledger", check=False)
    assert again.returncode == 2 and "Kafka already has topics of a workflow named" in again.stderr
    # no runner: the runner gate names itself and what it saw
    cli.stop_runner()
    failed = cli.run("switch", cli.name, check=False)
    assert failed.returncode == 3 and "gate runner failed: no `cdc migrate run" in failed.stderr
