"""The spool of a streamed transaction: raw and prepared entries come back in order, through the file too."""

from __future__ import annotations

import pytest

from connectors.postgres.spool import TransactionSpool


@pytest.mark.parametrize("memory_limit", [8 * 1024 * 1024, 0])
def test_entries_come_back_in_order_without_aborted_subtransactions(monkeypatch, memory_limit):
    monkeypatch.setattr(TransactionSpool, "MEMORY_LIMIT", memory_limit)  # 0: every chunk goes to the file
    monkeypatch.setattr(TransactionSpool, "CHUNK", 1000)
    spool = TransactionSpool(77)
    hot_a, hot_b = ("orders", "template a"), ("items", "template b")
    expected = []
    for n in range(500):
        subxid = 77 if n % 5 else 78 + n % 3
        if n % 4 == 0:
            payload = b"R" + n.to_bytes(4, "big") + b"x" * (n % 37)
            spool.add(subxid, 1000 + n, payload)
            entry = payload
        else:
            hot = hot_a if n % 2 else hot_b
            key = None if n % 3 == 0 else b'{"id":%d}' % n
            parts = (f"topic-{hot[0]}", key, b'{"before":null,"after":{"id":%d}' % n, ("h",), n % 7 == 0)
            assert spool.add_prepared(subxid, 1000 + n, hot, "c" if n % 2 else "d", parts)
            entry = (hot[0], hot[1], "c" if n % 2 else "d", parts)
        expected.append((subxid, 1000 + n, entry))
    spool.aborted.add(79)
    got = []
    for lsn, payload in spool.replay():
        got.append((lsn, payload if payload[0] else spool.prepared(payload)))
    assert got == [(lsn, entry) for subxid, lsn, entry in expected if subxid != 79]
    assert spool.count == 500 and (spool.file is not None) == (memory_limit == 0)
    spool.close()


def test_a_spool_over_its_size_cap_stops_with_a_permanent_error(monkeypatch):
    from cdc.errors import PERMANENT_EXIT_CODE, ResourceLimitError

    monkeypatch.setattr(TransactionSpool, "MEMORY_LIMIT", 0)
    monkeypatch.setattr(TransactionSpool, "CHUNK", 1000)
    spool = TransactionSpool(91, max_size=50_000)
    with pytest.raises(ResourceLimitError, match="streamed transaction 91 needs more than 50000 bytes") as raised:
        for n in range(1000):
            spool.add(91, n, b"x" * 500)
    assert raised.value.exit_code == PERMANENT_EXIT_CODE
    assert spool.size <= 50_000 + 2 * TransactionSpool.CHUNK and spool.file is None  # the file is gone


def test_a_full_disk_raises_spool_full_not_a_bare_os_error(monkeypatch, tmp_path):
    """The streaming loop reconnects without streaming on SpoolFull (connectors/postgres/streaming.py)."""
    import resource

    import pytest

    from connectors.postgres.spool import SpoolFull

    monkeypatch.setattr(TransactionSpool, "MEMORY_LIMIT", 0)
    monkeypatch.setattr(TransactionSpool, "CHUNK", 1000)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    spool = TransactionSpool(78)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # Python ignores SIGXFSZ: writes fail with EFBIG
    try:
        with pytest.raises(SpoolFull, match="no room to spool"):
            for n in range(100):
                spool.add(0, n, b"x" * 500)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        spool.close()
