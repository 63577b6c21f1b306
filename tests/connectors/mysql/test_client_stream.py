"""The `mariadb` client as a row stream: whole output in blocks, empty results, errors with the server's message."""

from __future__ import annotations

import pytest

from cdc.errors import SourceError
from cdc.urls import parse_url
from connectors.mysql.client_stream import ClientSession, client_program

pytestmark = pytest.mark.skipif(client_program() is None, reason="no mariadb/mysql client on PATH")


def test_session_streams_every_line_then_the_next_query_then_reports_errors(mysql_url):
    url = parse_url(mysql_url)
    session = ClientSession(url, url.host, url.port)
    try:
        session.start_snapshot(mariadb=True)
        lines = b"".join(session.stream("SELECT CONCAT('row ', seq, REPEAT('x', 100)) FROM seq_1_to_5000"))
        assert lines.splitlines() == [f"row {n}{'x' * 100}".encode() for n in range(1, 5001)]  # > 64 KiB
        assert b"".join(session.stream("SELECT 1 FROM seq_1_to_3 WHERE seq > 3")) == b""
        assert b"".join(session.stream("SELECT 'tab\\there'")) == b"tab\there\n"  # --raw: no escaping
        with pytest.raises(SourceError, match="Unknown column"):
            b"".join(session.stream("SELECT nope FROM seq_1_to_3"))
    finally:
        session.close()
