"""PostgreSQL source failover: a failover slot survives the primary's death on a promoted standby (17+);
a lost slot stops capture with an error that names it and says how to recover."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import psycopg
import pytest

from cdc.errors import SourceError
from cdc.sandbox.postgres import promote_standby
from connectors.postgres.dialect import conninfo, connect
from connectors.postgres.setup import default_name, wants_failover_slot
from cdc.urls import parse_url
from tests.conftest import create_pg_database, database_of
from tests.connectors.postgres.pg_capture_support import (
    current_lsn,
    read_topics,
    slot_confirmed,
    start_capture,
    stop_capture,
    wait_for,
)


def test_failover_slots_by_default_from_17_and_refused_before():
    assert wants_failover_slot(None, 180001) and wants_failover_slot(None, 170000)
    assert not wants_failover_slot(None, 160004) and not wants_failover_slot(False, 180001)
    with pytest.raises(SourceError, match="needs PostgreSQL 17"):
        wants_failover_slot(True, 150010)


class Ledger(threading.Thread):
    """One row per transaction into `ledger`; `acknowledged` holds the ids whose COMMIT returned.

    Commits wait for the synchronous standby (synchronous_commit = on), so an acknowledged row is on it.
    """

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = parse_url(url)
        self.acknowledged: list[int] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        next_id, conn = 0, None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(conninfo(self.url, connect_timeout="2"), autocommit=True)
                    conn.execute("SET synchronous_commit = on")
                next_id += 1
                conn.execute("INSERT INTO ledger VALUES (%s, 'x')", (next_id,))
                self.acknowledged.append(next_id)
            except psycopg.OperationalError:
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()


def _synced_on_standby(standby_url: str, slot: str, primary_url: str) -> bool:
    """True once the standby holds a persistent synced copy of the slot. The standby's slot sync worker
    naps up to 30 s while nothing changes, and persists a copy only once the primary's slot moved past
    the standby's oldest WAL: a running-transactions record (pg_log_standby_snapshot) helps the slot move."""
    with connect(primary_url) as conn:
        conn.execute("SELECT pg_log_standby_snapshot()")
    with connect(standby_url) as conn:
        row = conn.execute("SELECT synced AND NOT temporary FROM pg_replication_slots WHERE slot_name = %s",
                           (slot,)).fetchone()
    return bool(row and row[0])


def test_capture_resumes_on_the_promoted_standby_from_the_synced_slot(failover_sandbox, tmp_path):
    primary, standby = failover_sandbox.servers["postgres"], failover_sandbox.servers["postgres-standby"]
    kafka = f"127.0.0.1:{failover_sandbox.servers['kafka'].port}"
    password = failover_sandbox.password  # the standby is a physical copy: same roles, same password
    auth = f"postgres:{password}" if password else "postgres"
    primary_url = create_pg_database(f"postgresql://{auth}@127.0.0.1:{primary.port}/postgres", "failover")
    database = database_of(primary_url)
    both = (f"postgresql://{auth}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{database}"
            "?target_session_attrs=read-write")
    standby_url = f"postgresql://{auth}@127.0.0.1:{standby.port}/{database}"
    prefix = "t" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    with connect(primary_url) as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY, v text)")
    capture = start_capture(both, kafka, prefix, "--tables", "public.ledger", "--heartbeat-interval", "1",
                            "--status-interval", "0.5", log_path=str(tmp_path / "capture.log"))
    ledger = Ledger(both)
    try:
        with connect(primary_url) as conn:
            wait_for(lambda: conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                          (slot,)).fetchone() == (True,), 60, "capture streaming from its slot")
            assert conn.execute("SELECT failover FROM pg_replication_slots WHERE slot_name = %s",
                                (slot,)).fetchone() == (True,)
        ledger.start()
        try:
            wait_for(lambda: _synced_on_standby(standby_url, slot, primary_url), 120,
                     "the slot synchronised to the standby", interval=1)
        except AssertionError:
            with connect(standby_url) as conn:
                slots = conn.execute("SELECT slot_name, synced, temporary, confirmed_flush_lsn::text, "
                                     "restart_lsn::text FROM pg_replication_slots").fetchall()
            log = open(standby.log_file, errors="replace").read()[-3000:]
            raise AssertionError(f"slot not synced; standby slots: {slots}\n{log}") from None
        wait_for(lambda: len(ledger.acknowledged) >= 300, 60, "300 acknowledged writes on the primary")
        before_failover = len(ledger.acknowledged)
        os.kill(primary.pid, signal.SIGKILL)  # the postmaster: kill -9 of the primary, under load
        time.sleep(1)
        promote_standby(standby.port, password=password)
        wait_for(lambda: len(ledger.acknowledged) >= before_failover + 300, 60, "300 writes on the new primary")
        ledger.stopping.set()
        ledger.join(30)
        with connect(standby_url) as conn:
            caught_up = current_lsn(conn)
            wait_for(lambda: (slot_confirmed(conn, slot) or 0) >= caught_up, 90,
                     "capture to acknowledge everything on the new primary")
            on_new_primary = {row[0] for row in conn.execute("SELECT id FROM ledger").fetchall()}
        assert stop_capture(capture) == 0
    finally:
        ledger.stopping.set()
        if capture.poll() is None:
            capture.kill()
            capture.wait(10)
    log = (tmp_path / "capture.log").read_text(errors="replace")
    captured = {m.event["after"]["id"] for m in read_topics(kafka, lambda t: t == f"{prefix}.public.ledger")
                if m.event and m.event["op"] in ("c", "r")}
    lost = sorted(set(ledger.acknowledged) - captured)
    assert not lost, f"{len(lost)} acknowledged writes missing from Kafka (first: {lost[:10]})\n{log[-3000:]}"
    assert set(ledger.acknowledged) <= on_new_primary
    assert captured <= on_new_primary, "Kafka has rows the new primary never had"
    assert ledger.failures > 0 and "reconnecting" in log


def test_a_lost_slot_stops_capture_naming_it_and_the_recovery(pg_database, kafka_bootstrap, tmp_path):
    """What a failover before PostgreSQL 17 looks like to capture: the slot is not on the new server."""
    prefix = "t" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    log_path = tmp_path / "capture.log"
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        capture = start_capture(pg_database, kafka_bootstrap, prefix, "--tables", "public.t", "--no-failover-slot",
                                log_path=str(log_path))
        try:
            # streaming, not still snapshotting (the slot is active then too, held by the exporting connection)
            wait_for(lambda: "replication started" in log_path.read_text(errors="replace"), 60, "capture streaming")

            def dropped() -> bool:
                conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                             "WHERE slot_name = %s AND active", (slot,))
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                except psycopg.errors.ObjectInUse:
                    return False
                return True

            wait_for(dropped, 30, "the slot dropped", interval=0.05)
            code = capture.wait(60)
        finally:
            if capture.poll() is None:
                capture.kill()
                capture.wait(10)
    log = log_path.read_text(errors="replace")
    assert code != 0, log[-2000:]
    assert f"replication slot '{slot}' does not exist" in log and "--snapshot when_needed" in log, log[-2000:]
