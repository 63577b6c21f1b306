"""The workflow's direct initial copy: a copy that fails is reported by `status` with its reason, and the
workflow does not stream (the successful path runs in test_roundtrip.py; `kafka` in test_gates.py)."""

from __future__ import annotations

import time

import pytest

from cdc.migrate.state import COPYING
from cdc.urls import parse_url


@pytest.mark.parametrize("workflow_world", [("postgresql", "postgresql")], ids=["pg-pg"], indirect=True)
def test_failed_direct_copy_is_reported_and_does_not_stream(workflow_world):
    from connectors.postgres.dialect import connect

    cli, app, source, target, hook = workflow_world
    with connect(target) as conn:  # the copy needs empty target tables
        conn.execute("INSERT INTO ledger (writer, seq) VALUES ('stale', 1)")
    cli.run("create", cli.name, "--tables", "ledger")
    cli.start_runner()
    deadline = time.monotonic() + 60
    while not (failed := [e for e in cli.journal() if e["step"] == "copy" and e["status"] == "failed"]):
        assert time.monotonic() < deadline and cli.runner.poll() is None, "no failed copy journaled"
        time.sleep(0.3)
    status = cli.json("status", cli.name)
    assert status["state"] == COPYING and status["initial_copy"] == "direct"
    assert status["copy"]["status"] == "failed" and "ledger" in status["copy"]["error"], status["copy"]
    assert not status["runner"]["healthy"] and "initial copy failed" in status["runner"]["why"]
    assert status["next_steps"][0].startswith(f"cdc migrate cancel {cli.name} --drop-tables")
    assert not [e for e in cli.journal() if e["step"] == "runner.start"], "streaming started after a failed copy"
    with connect(source) as conn:  # no slot left behind for a capture to stream from
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                             (parse_url(source).database,)).fetchall()
    assert slots == []
    cli.run("cancel", cli.name, "--drop-tables")
