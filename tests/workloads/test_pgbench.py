"""pgbench (PostgreSQL's own load generator) on a PostgreSQL source, replicated into MariaDB and into
PostgreSQL, with the capture and apply each SIGKILLed once in the middle of the load; `cdc verify
--wait-for-lag` must then find parity on all four tables, `pgbench_history` (no primary key) included.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.workloads.chain import CdcProcess, kill_each_during, need, pg_client_args, verify

TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
# The full-size run is `CDC_PGBENCH_SCALE=5 CDC_PGBENCH_SECONDS=40 CDC_PGBENCH_RATE=0`.
SCALE = int(os.environ.get("CDC_PGBENCH_SCALE", "1"))
LOAD_SECONDS = int(os.environ.get("CDC_PGBENCH_SECONDS", "15"))
# Transactions per second pgbench is held to (0: unthrottled): the full speed would only measure how long
# apply takes to catch up on these 2 shared cores (benchmarks/bench_source_cost.py measures the source).
RATE = int(os.environ.get("CDC_PGBENCH_RATE", "250"))


def _pgbench(source: str, *args: str, **popen) -> subprocess.Popen:
    options, env = pg_client_args(source)
    return subprocess.Popen([need("pgbench"), *options, *args, source.rsplit("/", 1)[1]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


@pytest.fixture
def pg_target(pg_url: str, request: pytest.FixtureRequest):
    url = create_pg_database(pg_url, "target")
    try:
        yield url
    finally:
        drop_pg_database(pg_url, url)


@pytest.mark.slow
@pytest.mark.parametrize("target_engine", ["mariadb", "postgresql"])
def test_pgbench_with_history_replicates_to_parity_through_a_capture_and_an_apply_kill(
        target_engine, pg_database, kafka_bootstrap, request, tmp_path):
    target = request.getfixturevalue("mysql_database" if target_engine == "mariadb" else "pg_target")
    setup = _pgbench(pg_database, "-i", "-s", str(SCALE), "-q")
    out, _ = setup.communicate(timeout=120)
    assert setup.returncode == 0, out
    prefix = "pgb" + uuid.uuid4().hex[:8]
    capture_args = ["capture", "--source", pg_database, "--kafka", kafka_bootstrap, "--prefix", prefix,
                    "--tables", ",".join(f"public.{t}" for t in TABLES), "--status-interval", "0.5"]
    if target_engine == "mariadb":
        capture_args += ["--keyless", "insert-only"]  # pgbench only ever inserts into its history
    else:
        from connectors.postgres.dialect import connect

        with connect(pg_database) as conn:
            conn.execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    capture = CdcProcess("capture", capture_args, tmp_path)
    apply = CdcProcess("apply", ["apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", target,
                                 "--create-tables", "--linger-ms", "50"], tmp_path)
    try:
        capture.start().wait_for_log("replication started", 120)
        apply.start().wait_for_log("apply worker started", 60)
        load = _pgbench(pg_database, "-T", str(LOAD_SECONDS), "-c", "4", *(["-R", str(RATE)] if RATE else []), "-n")
        kill_each_during(load, LOAD_SECONDS, capture, apply, capture_ready="replication started")
        code, report = verify(pg_database, target, TABLES, tmp_path)
        assert code == 0, f"{report[-6000:]}\n--- capture\n{capture.text()[-3000:]}\n--- apply\n{apply.text()[-3000:]}"
        assert "multiset" in report  # pgbench_history, keyless, compared as a multiset of whole rows
        if target_engine == "mariadb":
            assert "captured insert-only" in capture.text()
    finally:
        assert apply.stop() == 0, apply.text()[-4000:]
        assert capture.stop() == 0, capture.text()[-4000:]
