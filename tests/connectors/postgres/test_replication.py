"""The trap test: a replication=database connection through psycopg.pq streams pgoutput changes from a slot."""

from __future__ import annotations

import time
import uuid

from cdc.impl import twin
from connectors.postgres.dialect import connect
from connectors.postgres.offsets import lsn_to_int, lsn_to_text
from connectors.postgres.replication import KEEPALIVE, ReplicationConnection

PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder


def test_lsn_text_round_trip():
    assert lsn_to_text(lsn_to_int("16/B374D848")) == "16/B374D848"
    assert lsn_to_int("0/0") == 0


def test_streams_pgoutput_changes_and_confirms_flush(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("CREATE PUBLICATION p FOR TABLE t")
        replication = ReplicationConnection(pg_database)
        try:
            identity = replication.identify_system()
            assert identity.database == conn.info.dbname and identity.position > 0
            name = "trap_" + uuid.uuid4().hex[:12]
            slot = replication.create_slot(name, export_snapshot=True)
            assert slot.snapshot_name and slot.consistent_point >= identity.position
            conn.execute("INSERT INTO t VALUES (1, 'a')")
            conn.execute("UPDATE t SET v = 'b' WHERE id = 1")
            conn.execute("SELECT pg_logical_emit_message(false, 'cdc-heartbeat', 'x')")
            options = replication.start_replication(name, "p", slot.consistent_point)
            if replication.server_version >= 160000:
                assert options["proto_version"] == "4" and options["streaming"] == "parallel"
            elif replication.server_version >= 140000:
                assert options["proto_version"] == "2" and options["streaming"] == "on"
            if replication.server_version >= 140000:
                assert options["messages"] == "true"
            decoder = PgoutputDecoder()
            seen = []
            commits = []
            deadline = time.monotonic() + 20
            while len(commits) < 2 and time.monotonic() < deadline:
                frame = replication.read_frame(0.5)
                if frame is None or frame[0] == KEEPALIVE:
                    continue
                message = decoder.decode(frame[4], frame[1])
                seen.append(message[0])
                if message[0] == "I":
                    assert message[3] == {"id": 1, "v": "a"}
                if message[0] == "U":
                    assert message[5] == {"id": 1, "v": "b"}
                if message[0] == "C":
                    commits.append(message[3])
            assert seen[:4] == ["B", "R", "I", "C"] and "U" in seen
            replication.send_status(commits[-1], commits[-1])
            deadline = time.monotonic() + 10
            confirmed = None
            while time.monotonic() < deadline:
                confirmed = conn.execute(
                    "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone()[0]
                if lsn_to_int(confirmed) >= commits[-1]:
                    break
                replication.read_frame(0.1)
            assert lsn_to_int(confirmed) == commits[-1]
        finally:
            replication.close()
