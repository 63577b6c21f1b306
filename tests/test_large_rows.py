"""Events over the Kafka message limit: a clear stop with table, key and size, and no restart loop under `cdc run`."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from cdc.errors import PERMANENT_EXIT_CODE, ConfigError, OversizedEventError
from cdc.kafka import check_message_limit, make_producer
from cdc.pipeline import CaptureOptions
from cdc.supervisor import Component, Supervisor
from tests.apply.scenario import execute
from tests.capture_thread import Capture

LIMIT = 100_000


def _blobs(url: str) -> None:
    """A table with a small row and a row whose bytea (300 kB) is over LIMIT."""
    from connectors.postgres.dialect import connect

    execute(url, "CREATE TABLE blobs (id int PRIMARY KEY, data bytea)")
    with connect(url) as conn:
        conn.execute("INSERT INTO blobs VALUES (1, %s), (2, %s)", (b"small", os.urandom(300_000)))


@pytest.mark.timeout(90)
def test_an_oversized_event_stops_capture_naming_table_key_and_size(pg_database, kafka_bootstrap):
    _blobs(pg_database)
    prefix = f"big{uuid.uuid4().hex[:8]}"
    capture = Capture("postgresql", CaptureOptions(source=pg_database, kafka=kafka_bootstrap, prefix=prefix,
                                                   tables=("public.blobs",), max_message_bytes=LIMIT))
    capture.thread.join(60)
    assert not capture.thread.is_alive(), "capture went on past an event over the limit"
    error = capture.error
    assert isinstance(error, OversizedEventError), repr(error)
    assert error.exit_code == PERMANENT_EXIT_CODE
    message = str(error)
    assert f"topic {prefix}.public.blobs" in message and 'key {"id":2}' in message
    size = int(message.split(" bytes")[0].rsplit(" ", 1)[1])
    assert size > 300_000 and f"limit of {LIMIT} bytes" in message


@pytest.mark.timeout(90)
def test_cdc_run_does_not_restart_a_capture_stopped_by_an_oversized_event(pg_database, kafka_bootstrap):
    _blobs(pg_database)
    component = Component("capture", ["capture", "--source", pg_database, "--kafka", kafka_bootstrap,
                                      "--prefix", f"big{uuid.uuid4().hex[:8]}", "--tables", "public.blobs",
                                      "--max-message-bytes", str(LIMIT)])
    supervisor = Supervisor([component])
    try:
        supervisor.poll()
        deadline = time.monotonic() + 60
        while component.process is not None:
            assert time.monotonic() < deadline, "capture did not stop on the oversized event"
            time.sleep(0.2)
            supervisor.poll()
        assert component.last_exit == PERMANENT_EXIT_CODE and component.failed
        component.next_start = 0.0  # even when a restart would be due
        supervisor.poll()
        assert component.process is None and component.restarts == 0
        assert supervisor.healthy() == (False, "down: capture")
    finally:
        supervisor.stop()


def test_max_message_bytes_reaches_both_kafka_clients(kafka_bootstrap):
    confluent = make_producer(kafka_bootstrap, backend="confluent", max_message_bytes=5000)
    try:
        assert confluent.max_message_bytes == 5000
        with pytest.raises(Exception, match="(?i)too large"):
            confluent.produce("size-check", b"x" * 6000, b"k")
    finally:
        confluent.close()
    python = make_producer(kafka_bootstrap, backend="kafka-python", max_message_bytes=5000)
    try:
        assert python.max_message_bytes == 5000 and python._producer.config["max_request_size"] == 5000
    finally:
        python.close()


def test_max_message_bytes_out_of_range_is_a_config_error(kafka_bootstrap):
    with pytest.raises(ConfigError, match="--max-message-bytes 10 is not between"):
        check_message_limit(kafka_bootstrap, 10)


def test_cdc_run_passes_the_configured_bounds_to_its_children(tmp_path, monkeypatch):
    from cdc.commands.run import apply_args, apply_env, capture_args, capture_env
    from tests.test_cli import _config, parse

    config = _config(tmp_path, source_extra="max_message_bytes = 500000\nmax_spool_bytes = 2097152",
                     target_extra="max_transaction_bytes = 4096")
    monkeypatch.setenv("CDC_SOURCE", capture_env(config, config.sources[0])["CDC_SOURCE"])
    monkeypatch.setenv("CDC_TARGET", apply_env(config, config.targets[0])["CDC_TARGET"])
    capture = parse("capture", capture_args(config, config.sources[0])[1:])
    assert capture["max_message_bytes"] == 500_000 and capture["max_spool_bytes"] == 2_097_152
    assert parse("apply", apply_args(config, config.targets[0])[1:])["max_transaction_bytes"] == 4096
