"""sysbench `oltp_read_write` (the MySQL world's load generator) on a MariaDB source, replicated into
PostgreSQL, with the capture and apply each SIGKILLed once in the middle of the load; `cdc verify
--wait-for-lag` must then find parity.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id
from tests.workloads.chain import CdcProcess, kill_each_during, mysql_client_args, need, verify

TABLES = 2
TABLE_SIZE = 10_000
LOAD_SECONDS = 15
# Transactions per second sysbench is held to (see RATE in test_pgbench.py).
RATE = 100


def _sysbench(source: str, command: str, *args: str) -> subprocess.Popen:
    options, env = mysql_client_args(source)
    return subprocess.Popen([need("sysbench"), "oltp_read_write", *options, f"--tables={TABLES}",
                             f"--table-size={TABLE_SIZE}", *args, command], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sysbench_oltp_read_write_replicates_to_parity_through_a_capture_and_an_apply_kill(
        mysql_database, pg_database, kafka_bootstrap, tmp_path):
    prepare = _sysbench(mysql_database, "prepare")
    out, _ = prepare.communicate(timeout=120)
    assert prepare.returncode == 0, out
    database = mysql_database.rsplit("/", 1)[1]
    tables = [f"sbtest{n}" for n in range(1, TABLES + 1)]
    prefix = "sb" + uuid.uuid4().hex[:8]
    capture = CdcProcess("capture", [
        "capture", "--source", mysql_database, "--kafka", kafka_bootstrap, "--prefix", prefix,
        "--tables", ",".join(f"{database}.{t}" for t in tables), "--server-id", str(fresh_server_id()),
        "--status-interval", "0.5"], tmp_path)
    apply = CdcProcess("apply", ["apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", pg_database,
                                 "--create-tables", "--linger-ms", "50"], tmp_path)
    try:
        capture.start().wait_for_log("snapshot done", 120)
        apply.start().wait_for_log("apply worker started", 60)
        load = _sysbench(mysql_database, "run", "--threads=4", f"--time={LOAD_SECONDS}", f"--rate={RATE}")
        kill_each_during(load, LOAD_SECONDS, capture, apply, capture_ready="capture starting")
        code, report = verify(mysql_database, pg_database, tables, tmp_path)
        assert code == 0, f"{report[-6000:]}\n--- capture\n{capture.text()[-3000:]}\n--- apply\n{apply.text()[-3000:]}"
    finally:
        assert apply.stop() == 0, apply.text()[-4000:]
        assert capture.stop() == 0, capture.text()[-4000:]
