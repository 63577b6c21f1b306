"""Joining a consumer group quickly: the session timeout the broker allows, and topics to exist first.

A pattern subscription sees a topic created after `subscribe` only at the next metadata refresh (5 s),
then joins again; so a consumer that starts alongside the capture waits for the topics it wants before
it subscribes (polled every 0.25 s). tansu answers a JoinGroup after about half the session timeout
(6 s -> 3 s, 3 s -> 1.5 s) and reports no broker configuration; Apache Kafka refuses a session timeout
under its `group.min.session.timeout.ms` (6 s by default) and reports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from cdc.kafka.backends import backend_module

log = logging.getLogger("cdc.kafka")

# For brokers that report no group.min.session.timeout.ms (tansu): a 1.5 s join, and a dead member's
# partitions move after 3 s (2 s would join 0.5 s sooner; 3 s leaves heartbeats a margin on a busy machine).
UNREPORTED_MIN_SESSION_TIMEOUT_MS = 3000
POLL_INTERVAL_S = 0.25


def fastest_session_timeout_ms(bootstrap: str | Sequence[str], *, backend: str | None = None) -> int:
    """The smallest session timeout the broker accepts: its group.min.session.timeout.ms, else 3000."""
    with backend_module(backend).make_admin(bootstrap) as admin:
        reported = admin.broker_setting("group.min.session.timeout.ms")
    return reported if reported is not None else UNREPORTED_MIN_SESSION_TIMEOUT_MS


def wait_for_topics(bootstrap: str | Sequence[str], wanted: Callable[[str], bool], *, stopped: Callable[[], bool],
                    timeout: float | None = None, backend: str | None = None) -> list[str]:
    """The existing topics `wanted` accepts, once there is at least one ([] when stopped or timed out)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    logged = False
    with backend_module(backend).make_admin(bootstrap) as admin:
        while not stopped():
            found = sorted(name for name in admin.list_topics() if wanted(name))
            if found:
                return found
            if deadline is not None and time.monotonic() >= deadline:
                return []
            if not logged:
                log.info("waiting for the first topic to subscribe to")
                logged = True
            time.sleep(POLL_INTERVAL_S)
    return []
