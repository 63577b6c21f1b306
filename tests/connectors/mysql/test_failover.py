"""MariaDB source failover: capture follows its GTID onto the promoted replica, and refuses a new primary
that lacks transactions it already read."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pymysql
import pytest

from cdc.sandbox.mariadb import promote_replica, wait_caught_up
from cdc.urls import parse_url
from connectors.mysql.binlog import BinlogReader, TransactionsLost
from connectors.mysql.offsets import BinlogPosition, missing_gtids
from tests.conftest import create_mysql_database, database_of
from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id
from tests.connectors.postgres.pg_capture_support import read_topics, start_capture, stop_capture, wait_for


def test_missing_gtids_compares_per_domain_and_server():
    assert missing_gtids("0-1-100", "0-1-100,0-2-150") == []
    assert missing_gtids("0-2-120", "0-1-100,0-2-150") == []
    assert missing_gtids("0-1-101", "0-1-100,0-2-150") == ["0-1-101"]
    assert missing_gtids("0-1-5,1-1-7", "0-1-9") == ["1-1-7"]
    assert missing_gtids(None, "") == []


class Ledger(threading.Thread):
    """One row per autocommit INSERT; `acknowledged` holds the ids whose commit returned (semi-synchronous:
    the replica has them). After the primary dies it waits for `promoted`, then writes to the replica."""

    def __init__(self, primary_port: int, replica_port: int, database: str, password: str = "") -> None:
        super().__init__(daemon=True)
        self.password = password
        self.ports = [primary_port, replica_port]
        self.database = database
        self.acknowledged: list[int] = []
        self.promoted = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        next_id, conn = 0, None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    port = self.ports[1] if self.promoted.is_set() else self.ports[0]
                    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password=self.password,
                                           database=self.database, autocommit=True, connect_timeout=2)
                next_id += 1
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO ledger VALUES (%s, 'x')", (next_id,))
                self.acknowledged.append(next_id)
            except pymysql.err.MySQLError:
                conn = None
                self.promoted.wait(0.2)
        if conn is not None:
            conn.close()


def _ids(kafka: str, topic: str) -> set[int]:
    return {m.event["after"]["id"] for m in read_topics(kafka, lambda t: t == topic) if m.event and m.event["op"] in "cr"}


def test_capture_continues_on_the_promoted_replica_from_its_gtid(failover_sandbox, tmp_path):
    primary, replica = failover_sandbox.servers["mariadb"], failover_sandbox.servers["mariadb-replica"]
    kafka = f"127.0.0.1:{failover_sandbox.servers['kafka'].port}"
    password = failover_sandbox.password or ""  # the replica's root has the sandbox's password too
    auth = f"root:{password}" if password else "root"
    database = database_of(create_mysql_database(f"mysql://{auth}@127.0.0.1:{primary.port}/cdc", "failover"))
    both = f"mysql://{auth}@127.0.0.1:{primary.port},127.0.0.1:{replica.port}/{database}"
    conn = pymysql.connect(host="127.0.0.1", port=primary.port, user="root", password=password, database=database,
                           autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE ledger (id int PRIMARY KEY, v varchar(10))")
    conn.close()
    wait_caught_up(primary.port, replica.port, password=password)
    prefix = "t" + uuid.uuid4().hex[:10]
    topic = f"{prefix}.{database}.ledger"
    capture = start_capture(both, kafka, prefix, "--tables", f"{database}.ledger", "--heartbeat-interval", "1",
                            "--server-id", str(fresh_server_id()), log_path=str(tmp_path / "capture.log"))
    ledger = Ledger(primary.port, replica.port, database, password)
    try:
        ledger.start()
        log_path = tmp_path / "capture.log"
        wait_for(lambda: "snapshot done" in log_path.read_text(errors="replace"), 60, "capture streaming")
        streaming_from = len(ledger.acknowledged)
        wait_for(lambda: len(ledger.acknowledged) >= streaming_from + 500, 60, "500 writes on the primary")
        before_failover = len(ledger.acknowledged)
        os.kill(primary.pid, signal.SIGKILL)  # kill -9 of the primary, under load
        time.sleep(1)
        promote_replica(replica.port, password=password)
        ledger.promoted.set()
        wait_for(lambda: len(ledger.acknowledged) >= before_failover + 300, 60, "300 writes on the new primary")
        ledger.stopping.set()
        ledger.join(30)
        acknowledged = set(ledger.acknowledged)
        wait_for(lambda: acknowledged <= _ids(kafka, topic), 90, "every acknowledged write in Kafka", interval=1)
        assert stop_capture(capture) == 0
    finally:
        ledger.stopping.set()
        if capture.poll() is None:
            capture.kill()
            capture.wait(10)
    conn = pymysql.connect(host="127.0.0.1", port=replica.port, user="root", password=password, database=database)
    with conn.cursor() as cursor:
        cursor.execute("SELECT id FROM ledger")
        on_new_primary = {row[0] for row in cursor.fetchall()}
    conn.close()
    captured = _ids(kafka, topic)
    assert acknowledged <= on_new_primary
    assert captured <= on_new_primary, "Kafka has rows the new primary never had"
    log = (tmp_path / "capture.log").read_text(errors="replace")
    assert "reconnecting" in log, log[-2000:]


def test_a_server_without_the_stored_gtid_is_refused(mysql_database):
    """A new primary that lacks a transaction capture read: stop, naming the GTID (a lost-transaction failover)."""
    url = parse_url(mysql_database)
    conn = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password or "")
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@gtid_binlog_pos, @@server_id")
        position, server_id = cursor.fetchone()
    conn.close()
    domain, _, sequence = (position or "0-1-0").split("-")
    ahead = f"{domain}-{server_id}-{int(sequence) + 1000}"
    reader = BinlogReader(mysql_database, fresh_server_id(), BinlogPosition("mariadb-bin.000001", 4, ahead))
    with pytest.raises(TransactionsLost, match=f"does not have GTID {ahead}.*lost transactions.*new snapshot is needed"):
        next(reader.events())
    reader.close()
