"""Each fault of `cdc drill`, injected into one running drill rig (its own sandbox, PostgreSQL -> MariaDB
through the proxies, `cdc run`, the ledger load): after each, nothing acknowledged is lost, the target
recovers, and verify finds parity. A recovery path removed (supervisor restart, PG reconnect, spool
fallback, children dying with `cdc run`...) shows up here as lost writes, no recovery or no parity."""

from __future__ import annotations

import time

import pytest

from cdc.drill.faults import FAULTS, Timings
from cdc.drill.session import DrillOptions, sandbox_rig

pytestmark = pytest.mark.slow

TEST_TIMINGS = Timings(stall_seconds=3, blackhole_seconds=3, latency_seconds=0.1, latency_for=3, lock_seconds=3,
                       huge_rows=40_000)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    options = DrillOptions(list(FAULTS), duration=1, rate=200, timings=TEST_TIMINGS, catch_up_seconds=90,
                           work_dir=tmp_path_factory.mktemp("drill"), pairs=("postgres-to-mariadb",))
    started = time.monotonic()
    with sandbox_rig(options, print) as drill:
        print(f"rig up in {time.monotonic() - started:.0f}s")
        yield drill


@pytest.mark.parametrize("name", [name for name in FAULTS if name != "spool-full"])
def test_fault_loses_nothing_and_recovers(rig, name):
    result = rig.run_fault(FAULTS[name])
    print(result)
    assert result.error is None
    assert result.lost == 0
    assert result.recovery_seconds is not None
    assert result.parity
    if name == "kill-run":
        assert "outlived" not in result.note  # the children died with it (PDEATHSIG)


def test_spool_full_huge_transaction_gets_through(rig):
    if rig.target.spool_dir is None:
        pytest.skip("needs root to mount a small tmpfs under the capture's spool")
    result = rig.run_fault(FAULTS["spool-full"])
    print(result)
    assert result.error is None and result.lost == 0 and result.parity
    assert "spool full; reconnecting without streaming" in rig.target.run.log_path.read_text()
