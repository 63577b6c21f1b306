"""Compressed binlog events inflate within a cap: a zlib bomb or a lying size header is a DecodeError."""

from __future__ import annotations

import struct
import zlib

import pytest

from cdc.errors import DecodeError
from connectors.mysql.binlog import inflate, query_parts
from connectors.mysql.decoder import decompress_rows_body


def test_inflate_stops_at_its_limit():
    bomb = zlib.compress(b"\0" * 10_000_000, 9)  # ~10 kB that inflates to 10 MB
    assert len(bomb) < 20_000
    with pytest.raises(DecodeError, match="inflates to more than 1000 bytes"):
        inflate(bomb, 1000, "test event")
    assert inflate(zlib.compress(b"abc"), 3, "test event") == b"abc"
    with pytest.raises(DecodeError, match="truncated"):
        inflate(zlib.compress(b"abc" * 100)[:-6], 1000, "test event")


def test_compressed_query_event_over_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr("connectors.mysql.binlog.MAX_INFLATED_BYTES", 1000)
    sql = b"SELECT '" + b"x" * 5000 + b"'"
    header = struct.pack("<IIBHH", 9, 0, 4, 0, 0) + b"shop\x00"
    body = header + bytes([0x82]) + len(sql).to_bytes(2, "big") + zlib.compress(sql)
    with pytest.raises(DecodeError, match="compressed query event inflates to more than 1000 bytes"):
        query_parts(body, compressed=True)


def test_compressed_rows_event_inflates_only_to_its_declared_size():
    from connectors.mysql.binlog import MARIADB_ROWS_COMPRESSED_V1

    head = b"\x01\x00\x00\x00\x00\x00\x00\x00" + bytes([1]) + b"\x01"  # table id + flags, 1 column, bitmap
    rows = b"\0" * 100_000
    body = head + bytes([0x83]) + (10).to_bytes(3, "big") + zlib.compress(rows)  # claims 10 bytes
    with pytest.raises(DecodeError, match="inflates to more than 10 bytes"):
        decompress_rows_body(body, MARIADB_ROWS_COMPRESSED_V1[0])
    huge = head + bytes([0x84]) + (2**31).to_bytes(4, "big") + zlib.compress(rows)
    with pytest.raises(DecodeError, match="claims 2147483648 bytes"):
        decompress_rows_body(huge, MARIADB_ROWS_COMPRESSED_V1[0])
