"""Capture from PostgreSQL 16+/18 features: protocol v4 negotiated, stored generated columns published.

These skip on older servers; scripts/test.sh runs them in its PostgreSQL 18 pass (CDC_PG_VERSION=18).
"""

from __future__ import annotations

import uuid

import pytest

from connectors.postgres.dialect import connect
from connectors.postgres.setup import default_name
from tests.connectors.postgres.pg_capture_support import read_topics, start_capture, stop_capture, wait_for


def _need(pg_major: int, major: int) -> None:
    if pg_major < major:
        pytest.skip(f"needs PostgreSQL {major}+: run with CDC_PG_VERSION=18")


def test_stored_generated_columns_are_captured_in_snapshot_and_stream(pg_database, pg_major, kafka_bootstrap,
                                                                      tmp_path):
    _need(pg_major, 18)
    prefix = "t" + uuid.uuid4().hex[:10]
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE lines (id int PRIMARY KEY, qty int, price int, "
                     "total int GENERATED ALWAYS AS (qty * price) STORED)")
        conn.execute("INSERT INTO lines (id, qty, price) VALUES (1, 2, 3)")
        process = start_capture(pg_database, kafka_bootstrap, prefix, "--tables", "public.lines",
                                log_path=str(tmp_path / "capture.log"))
        try:
            wait_for(lambda: conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                          (default_name(prefix),)).fetchone() == (True,), 60, "the slot streamed")
            conn.execute("INSERT INTO lines (id, qty, price) VALUES (2, 4, 5)")
            conn.execute("UPDATE lines SET qty = 10 WHERE id = 1")
            topic = f"{prefix}.public.lines"

            def three_events() -> list[dict] | None:
                events = [m.event for m in read_topics(kafka_bootstrap, lambda t: t == topic, idle=0.5) if m.event]
                return events if len(events) >= 3 else None

            events = wait_for(three_events, 60, "three events")
            published = conn.execute("SELECT pubgencols FROM pg_publication WHERE pubname = %s",
                                     (default_name(prefix),)).fetchone()[0]
        finally:
            assert stop_capture(process) == 0
    assert published == "s"
    assert [(e["op"], e["after"]["id"], e["after"]["total"]) for e in events] == [("r", 1, 6), ("c", 2, 20),
                                                                                 ("u", 1, 30)]


def test_protocol_v4_is_negotiated_on_16_and_later(pg_database, pg_major):
    _need(pg_major, 16)
    from connectors.postgres.replication import ReplicationConnection

    replication = ReplicationConnection(pg_database)
    try:
        options = replication.plugin_options("p", messages=True, streaming=True, binary=False)
    finally:
        replication.close()
    assert (options["proto_version"], options["streaming"]) == ("4", "parallel")


def test_an_existing_slot_becomes_a_failover_slot_on_17_and_later(pg_database, pg_major, kafka_bootstrap, tmp_path):
    _need(pg_major, 17)
    prefix = "t" + uuid.uuid4().hex[:10]
    slot = default_name(prefix)
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")

        def failover_of_active_slot():
            return conn.execute("SELECT failover FROM pg_replication_slots WHERE slot_name = %s AND active",
                                (slot,)).fetchone()

        for options, expected in ((["--no-failover-slot"], False), ([], True)):
            process = start_capture(pg_database, kafka_bootstrap, prefix, "--tables", "public.t", *options,
                                    log_path=str(tmp_path / "capture.log"))
            try:
                assert wait_for(failover_of_active_slot, 60, "capture streaming") == (expected,)
            finally:
                assert stop_capture(process) == 0
