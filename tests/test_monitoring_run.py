"""`cdc run` with a [[verify]] entry, end to end on real servers: every metric family moves with the load,
a difference seeded on the target shows in the parity metrics and a new report within one period, and a
planted password appears neither on /metrics nor in `cdc status`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from cdc.run_status import parse_samples
from cdc.sandbox.ports import pick_free_port
from connectors.mysql.dialect import connect as mysql_connect
from connectors.postgres.dialect import connect as pg_connect

PLANTED = "Planted-Pw-7f3e9c"  # the password of a role made for the test (the sandbox checks passwords)
SEED_ROWS = 300
EVERY = 4.0


def _with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def _insert(url: str, first: int, count: int) -> None:
    with pg_connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany("INSERT INTO orders (id, status, note) VALUES (%s, %s, %s)",
                           [(i, "new", f"order {i}") for i in range(first, first + count)])


class Scraper:
    """Scrapes /metrics, keeps every body (for the password check) and reads summed samples."""

    def __init__(self, port: int, prefix: str) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.prefix = prefix
        self.bodies: list[str] = []

    def samples(self) -> dict:
        body = urllib.request.urlopen(self.url, timeout=10).read().decode()
        self.bodies.append(body)
        return parse_samples(body)

    def value(self, samples: dict, name: str, **labels) -> float | None:
        wanted = {"pipeline": self.prefix, **labels}
        found = [v for (n, ls), v in samples.items() if n == name and wanted.items() <= dict(ls).items()]
        return sum(found) if found else None

    def wait_for(self, what: str, check, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                samples = self.samples()
            except OSError:
                samples = {}
            if samples and check(samples):
                return samples
            time.sleep(0.5)
        names = sorted({n for n, _ in samples if n.startswith("cdc_")})
        raise AssertionError(f"timed out waiting for {what}; families seen: {names}")


@pytest.fixture
def running(pg_database, mysql_database, kafka_bootstrap, tmp_path):
    """`cdc run` replicating a PG `orders` table into MariaDB, with a [[verify]] every EVERY seconds."""
    role = f"mon_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg_database) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER REPLICATION PASSWORD '{PLANTED}'")
    source = _with_login(pg_database, role, PLANTED)
    with pg_connect(source) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status varchar(16) NOT NULL, note text)")
    _insert(source, 1, SEED_ROWS)
    prefix = f"mon_{uuid.uuid4().hex[:8]}"
    port = pick_free_port()
    config = tmp_path / "cdc.toml"
    os.environ["MON_TEST_PG_URL"] = source  # only through the environment, as an operator would
    config.write_text(f"""
[kafka]
bootstrap = "{kafka_bootstrap}"

[[source]]
url = "${{MON_TEST_PG_URL}}"
prefix = "{prefix}"
tables = ["public.orders"]

[[target]]
url = "{mysql_database}"
prefix = "{prefix}"
create_tables = true

[[verify]]
source = "${{MON_TEST_PG_URL}}"
target = "{mysql_database}"
tables = ["orders"]
every = "{EVERY}s"
rows_per_run = 0
recheck_delay = 1.0
keep = 5
report_dir = "reports"

[metrics]
listen = "127.0.0.1:{port}"
""")
    log = open(tmp_path / "run.log", "w")
    runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--config", str(config)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield source, mysql_database, prefix, port, tmp_path
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        log.close()
        os.environ.pop("MON_TEST_PG_URL", None)
        output = (tmp_path / "run.log").read_text()
        assert PLANTED not in output, "the planted password reached cdc run's log"


def test_metrics_move_with_the_load_and_scheduled_verify_catches_a_seeded_difference(running):
    source, target, prefix, port, directory = running
    scrape = Scraper(port, prefix)
    v = scrape.value

    # Snapshot + first stream: capture, Kafka acks, apply, snapshot progress, source lag all present.
    first = scrape.wait_for("the snapshot applied", lambda s: (v(s, "cdc_events_applied_total") or 0) >= SEED_ROWS)
    assert v(first, "cdc_snapshot_rows_done", table="public.orders") == SEED_ROWS
    assert v(first, "cdc_snapshot_rows_estimated", table="public.orders") is not None
    first = scrape.wait_for("source lag polled", lambda s: v(s, "cdc_source_retained_wal_bytes") is not None)
    _insert(source, 10_000, 50)
    first = scrape.wait_for("a streamed batch", lambda s: (v(s, "cdc_events_applied_total") or 0) >= SEED_ROWS + 50)

    # A load of 1000 rows: every family moves by about as much (values, not names).
    _insert(source, 20_000, 1000)
    moved = scrape.wait_for(
        "the load applied", lambda s: (v(s, "cdc_events_applied_total") or 0) >= SEED_ROWS + 1050
        and (v(s, "cdc_capture_acked_position") or 0) > (v(first, "cdc_capture_acked_position") or 0))
    captured = v(moved, "cdc_events_captured_total", table="public.orders") - v(first, "cdc_events_captured_total", table="public.orders")
    applied = v(moved, "cdc_events_applied_total") - v(first, "cdc_events_applied_total")
    assert captured >= 1000 and applied >= 1000, (captured, applied)
    assert v(moved, "cdc_kafka_ack_seconds_count") > v(first, "cdc_kafka_ack_seconds_count")
    assert v(moved, "cdc_apply_batch_rows_sum") - v(first, "cdc_apply_batch_rows_sum") >= 1000
    assert v(moved, "cdc_apply_batch_seconds_count") > v(first, "cdc_apply_batch_seconds_count")
    assert v(moved, "cdc_apply_lag_seconds_count") > v(first, "cdc_apply_lag_seconds_count")
    assert v(moved, "cdc_apply_last_batch_timestamp_seconds") > v(first, "cdc_apply_last_batch_timestamp_seconds")
    assert 0 <= v(moved, "cdc_capture_lag_seconds") < 60
    assert v(moved, "cdc_source_lag_bytes") is not None and v(moved, "cdc_source_retained_wal_bytes") > 0
    assert v(moved, "cdc_events_dead_lettered_total") in (None, 0)
    assert v(moved, "cdc_component_up") is None  # labelled by component, not by pipeline
    ups = [value for (name, labels), value in moved.items() if name == "cdc_component_up"]
    assert ups == [1.0, 1.0, 1.0], ups  # capture, apply, verify

    # The scheduled check sees parity, then the seeded difference within one period (plus its run time).
    # (A check that saw rows in flight counts no rows: verify drops counts it could not pair.)
    clean = scrape.wait_for("a clean scheduled check", lambda s: v(s, "cdc_verify_last_exit_code") == 0
                            and (v(s, "cdc_verify_rows_checked_total", table="orders") or 0) >= SEED_ROWS)
    assert v(clean, "cdc_verify_ranges_total", table="orders") > 0
    assert v(clean, "cdc_verify_differences_confirmed") == 0
    reports_before = set((directory / "reports").glob("parity-*.json"))
    conn = mysql_connect(target)
    try:
        with conn.cursor() as cursor:
            cursor.execute("UPDATE orders SET status = 'tampered' WHERE id = 7")
        conn.commit()
    finally:
        conn.close()
    seeded = time.monotonic()
    found = scrape.wait_for("the difference in a check", lambda s: v(s, "cdc_verify_differences", table="orders") == 1,
                            timeout=3 * EVERY + 30)
    assert time.monotonic() - seeded <= EVERY + v(found, "cdc_verify_duration_seconds") + 5
    confirmed = scrape.wait_for("the difference confirmed", lambda s: v(s, "cdc_verify_differences_confirmed") == 1,
                                timeout=3 * EVERY + 30)
    assert v(confirmed, "cdc_verify_last_exit_code") == 1
    assert v(confirmed, "cdc_verify_seconds_since_clean_check") > 0
    new = sorted(set((directory / "reports").glob("parity-*.json")) - reports_before)
    assert new, "no new report after the seeded difference"
    report = json.loads(new[-1].read_text())
    rows = report["tables"][0]["rows"]
    assert [(r["kind"], r["key"]) for r in rows] == [("changed", {"id": 7})]

    # cdc status: one shot as JSON, and the live table; neither shows the password, /metrics never did.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "COLUMNS": "220"}
    status = subprocess.run([sys.executable, "-m", "cdc.cli", "status", "--run", f"127.0.0.1:{port}", "--json"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert status.returncode == 0, status.stderr
    rows = {row["pipeline"]: row for row in json.loads(status.stdout)["pipelines"]}
    assert rows[prefix]["capture"] == "up" and rows[prefix]["apply"] == "up"
    assert rows[prefix]["last_check_result"] == "differences" and rows[prefix]["confirmed_differences"] == 1
    watch = subprocess.run(["timeout", "-s", "INT", "5", sys.executable, "-m", "cdc.cli", "status", "--run",
                            f"127.0.0.1:{port}", "--watch"], capture_output=True, text=True, timeout=60, env=env)
    assert prefix in watch.stdout, watch.stdout + watch.stderr
    for text in [status.stdout, status.stderr, watch.stdout, watch.stderr, *scrape.bodies]:
        assert PLANTED not in text
