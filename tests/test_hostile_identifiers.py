"""Hostile identifiers end to end, both directions: capture -> Kafka -> apply -> `cdc verify` exit 0.

Schema/database, table and column names hold quotes, backticks, spaces, dots, unicode, reserved words
and `x"; DROP TABLE y; --`. The `--tables` entry quotes them the way the source engine quotes names,
and a `y` table on the target must survive.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from cdc.apply.worker import ApplyOptions, ApplyWorker
from cdc.commands.verify import command as verify_command
from cdc.envelope.topics import table_topic
from cdc.kafka import make_admin
from cdc.pipeline import CaptureOptions
from cdc.tables import split_table_entry
from tests.apply.kafka_stream import FAST_GROUP
from tests.apply.scenario import execute, rows
from tests.capture_thread import Capture
from tests.conftest import drop_mysql_database, with_database

TABLE = 'order items$ü x"; DROP TABLE y; --'
COLUMNS = ("select", 'col "q" `b`.ü', 'x"; DROP TABLE y; --')


def _pg_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _my_quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _statements(quote, qualified: str, key_type: str) -> list[str]:
    c0, c1, c2 = (quote(c) for c in COLUMNS)
    return [
        f"CREATE TABLE {qualified} (id {key_type} PRIMARY KEY, {c0} varchar(40), {c1} text, {c2} int)",
        f"INSERT INTO {qualified} (id, {c0}, {c1}, {c2}) VALUES (1, 'a', 'ü''\"`', 1), (2, 'b', NULL, 2), (3, 'c', 'x', 3)",
    ]


def _changes(quote, qualified: str) -> list[str]:
    c0, c1, c2 = (quote(c) for c in COLUMNS)
    return [
        f"INSERT INTO {qualified} (id, {c0}, {c1}, {c2}) VALUES (4, 'd; DROP TABLE y; --', 'é', 4)",
        f"UPDATE {qualified} SET {c1} = 'changed \"`''' WHERE id = 1",
        f"DELETE FROM {qualified} WHERE id = 2",
    ]


def _wait_for_records(kafka: str, topic: str, want: int, capture: Capture) -> None:
    """Until `topic` holds `want` records (the capture thread must stay alive meanwhile)."""
    deadline = time.monotonic() + 60
    with make_admin(kafka) as admin:
        while True:
            assert capture.thread.is_alive(), capture.error
            if topic in admin.list_topics() and sum(admin.end_offsets(topic).values()) >= want:
                return
            assert time.monotonic() < deadline, f"{topic} never reached {want} records"
            time.sleep(0.2)


def _replicate(engine: str, source: str, table_entry: str, changes: list[str], target: str, kafka: str,
               extra: dict) -> None:
    prefix = f"hn{uuid.uuid4().hex[:8]}"
    capture = Capture(engine, CaptureOptions(source=source, kafka=kafka, prefix=prefix, tables=(table_entry,),
                                             snapshot="initial", heartbeat_interval=1.0, extra=extra))
    topic = table_topic(prefix, *split_table_entry(table_entry))
    try:
        _wait_for_records(kafka, topic, 3, capture)  # the snapshot
        for statement in changes:
            execute(source, statement)
        _wait_for_records(kafka, topic, 7, capture)  # + insert, update, delete and its tombstone
    finally:
        capture.stop()
    ApplyWorker(ApplyOptions(kafka=kafka, prefix=prefix, target=target, create_tables=True, batch_size=100,
                             linger_ms=20, idle_exit_s=2.0, **FAST_GROUP)).run()


def _verify(source: str, target: str) -> None:
    result = CliRunner().invoke(verify_command, ["--recheck-delay", "0", "--source", source, "--target", target],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PARITY" in result.output


@pytest.mark.timeout(120)
def test_pg_to_mariadb_with_hostile_names(pg_database, mysql_database, kafka_bootstrap):
    schema = 'sch "ü`.x select'
    qualified = f"{_pg_quote(schema)}.{_pg_quote(TABLE)}"
    execute(pg_database, f"CREATE SCHEMA {_pg_quote(schema)}")
    for statement in _statements(_pg_quote, qualified, "int"):
        execute(pg_database, statement)
    execute(mysql_database, "CREATE TABLE y (id int PRIMARY KEY)")
    _replicate("postgresql", pg_database, qualified, _changes(_pg_quote, qualified), mysql_database, kafka_bootstrap,
               {})
    assert rows(mysql_database, f"SELECT id FROM {_my_quote(TABLE)} ORDER BY id") == [(1,), (3,), (4,)]
    assert rows(mysql_database, "SELECT count(*) FROM y") == [(0,)]
    _verify(f"{pg_database}?schema={quote(schema, safe='')}", mysql_database)


@pytest.mark.timeout(120)
def test_mariadb_to_pg_with_hostile_names(mysql_url, pg_database, kafka_bootstrap):
    from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id

    database = f'db "ü`.x {uuid.uuid4().hex[:6]}'
    execute(mysql_url, f"CREATE DATABASE {_my_quote(database)} CHARACTER SET utf8mb4")
    source = with_database(mysql_url, quote(database, safe=""))
    try:
        qualified = f"{_my_quote(database)}.{_my_quote(TABLE)}"
        for statement in _statements(_my_quote, qualified, "int"):
            execute(source, statement)
        execute(pg_database, "CREATE TABLE y (id int PRIMARY KEY)")
        _replicate("mysql", source, qualified, _changes(_my_quote, qualified), pg_database, kafka_bootstrap,
                   {"server_id": fresh_server_id()})
        assert rows(pg_database, f"SELECT id FROM public.{_pg_quote(TABLE)} ORDER BY id") == [(1,), (3,), (4,)]
        assert rows(pg_database, "SELECT count(*) FROM y") == [(0,)]
        _verify(source, pg_database)
    finally:
        drop_mysql_database(mysql_url, source)
