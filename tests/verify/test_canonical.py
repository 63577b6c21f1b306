"""The canonical spec in Python (no database): values equal under the type map spell the same."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from cdc.verify.canonical import (
    canonical_json, canonical_number, canonical_value, floats_equal, row_text, token,
)


def test_numbers_lose_trailing_zeros_but_keep_their_value():
    assert canonical_number(Decimal("10.50")) == canonical_number(Decimal("10.5")) == "10.5"
    assert canonical_number(Decimal("100")) == canonical_number(100) == "100"
    assert canonical_number(Decimal("0.00")) == canonical_number(Decimal("-0")) == "0"
    assert canonical_number(True) == "1" and canonical_number(False) == "0"
    assert canonical_number(Decimal("1E+3")) == "1000"
    assert canonical_number(Decimal("10.51")) != canonical_number(Decimal("10.5"))


def test_same_instant_in_two_zones_is_one_timestamp():
    utc = dt.datetime(2024, 2, 29, 12, 45, 0, 123456, tzinfo=dt.timezone.utc)
    plus2 = utc.astimezone(dt.timezone(dt.timedelta(hours=2)))
    naive_utc = utc.replace(tzinfo=None)
    assert canonical_value(utc, "timestamp") == canonical_value(plus2, "timestamp") == canonical_value(naive_utc, "timestamp")
    assert canonical_value(utc + dt.timedelta(microseconds=1), "timestamp") != canonical_value(utc, "timestamp")


def test_time_as_microseconds_from_either_driver():
    assert canonical_value(dt.time(13, 45, 0, 500000), "time") == canonical_value(
        dt.timedelta(hours=13, minutes=45, microseconds=500000), "time") == "49500500000"
    assert canonical_value(dt.timedelta(hours=-1), "time") == "-3600000000"


def test_null_and_empty_string_differ_and_separators_cannot_be_faked():
    assert row_text([None], ["text"]) != row_text([""], ["text"])
    assert row_text(["a|b", "c"], ["text", "text"]) != row_text(["a", "b|c"], ["text", "text"])
    assert row_text(["N"], ["text"]) != row_text([None], ["text"])
    assert token("é", "text") == "2:é"  # length in UTF-8 bytes, as PG octet_length and MySQL LENGTH


def test_json_text_tokens_delimit_themselves():
    """json_text tokens carry no length: valid JSON cannot fake a separator, a NULL or another split."""
    documents = [None, '"N"', '"|"', '"a|1:b"', '{"k": "x|y"}', '["|", "N|"]', "1", "12", "null", '" 1|"', "[]"]
    texts = [None, "", "N", "|", "1|", "1:b", '"']
    rows = [(d, t, e) for d in documents for t in texts for e in documents]
    spelled = {row_text(list(row), ["json_text", "text", "json_text"]) for row in rows}
    assert len(spelled) == len(rows)
    assert token('{"a": "|"}', "json_text") == '{"a": "|"}' and token(None, "json_text") == "N"


def test_json_is_compared_by_value():
    assert canonical_json('{"b": [1, 2.50], "a": {"y": 1, "x": null}}') == canonical_json(
        '{"a":{"x":null,"y":1.0},"b":[1,2.5]}')
    assert canonical_json('{"a": 1}') != canonical_json('{"a": "1"}')
    assert canonical_json({"k": [1, 2]}) == canonical_json("[1]".replace("[1]", '{"k":[1,2]}'))


def test_uuid_bytes_and_bits():
    u = uuid.uuid4()
    assert canonical_value(u, "uuid") == canonical_value(str(u).upper(), "uuid")
    assert canonical_value(b"\x00\xab", "bytes") == "00ab"
    assert canonical_value(b"\x05", "bits", 8) == canonical_value("00000101", "bits") == "00000101"


def test_float_tolerance_is_absolute_or_relative():
    assert floats_equal(1.0, 1.0 + 1e-9, 1e-6)
    assert not floats_equal(1.0, 1.1, 1e-6)
    assert floats_equal(1e12, 1e12 + 10, 1e-9)  # relative
    assert floats_equal(float("nan"), float("nan"), 0) and floats_equal(None, None, 0)
    assert not floats_equal(None, 0.0, 1)
