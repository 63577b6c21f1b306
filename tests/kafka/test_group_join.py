"""Joining a group quickly: the broker's lowest session timeout, and waiting for the wanted topics."""

from __future__ import annotations

import threading
import time
import uuid

from cdc.kafka import make_admin
from cdc.kafka.base import TopicSpec
from cdc.kafka.group_join import UNREPORTED_MIN_SESSION_TIMEOUT_MS, fastest_session_timeout_ms, wait_for_topics


def test_fastest_session_timeout_is_the_brokers_minimum_or_two_seconds(kafka_bootstrap):
    with make_admin(kafka_bootstrap) as admin:
        reported = admin.broker_setting("group.min.session.timeout.ms")
    assert fastest_session_timeout_ms(kafka_bootstrap) == (reported or UNREPORTED_MIN_SESSION_TIMEOUT_MS)


def test_wait_for_topics_returns_once_a_wanted_topic_exists(kafka_bootstrap):
    prefix = f"gj{uuid.uuid4().hex[:8]}"

    def create() -> None:
        with make_admin(kafka_bootstrap) as admin:
            admin.create_topics([TopicSpec(f"{prefix}.t", 1)])

    threading.Timer(0.5, create).start()
    started = time.monotonic()
    found = wait_for_topics(kafka_bootstrap, lambda name: name.startswith(prefix + "."), stopped=lambda: False,
                            timeout=10)
    assert found == [f"{prefix}.t"] and time.monotonic() - started < 3


def test_wait_for_topics_gives_up_at_its_timeout(kafka_bootstrap):
    assert wait_for_topics(kafka_bootstrap, lambda name: name == "no-such-topic-here", stopped=lambda: False,
                           timeout=0.5) == []
