"""[[verify]] entries of cdc.toml: durations, defaults, names, and errors that name the key."""

from pathlib import Path

import pytest

from cdc.config import load_config, parse_duration
from cdc.errors import ConfigError

BASE = """
[kafka]
bootstrap = "k:1"

[[source]]
url = "postgresql://cdc:${TEST_SECRET}@127.0.0.1:5544/shop"
prefix = "shop"

[[verify]]
source = "postgresql://cdc:${TEST_SECRET}@127.0.0.1:5544/shop"
target = "mysql://root@127.0.0.1:3399/replica"
"""


def load(tmp_path: Path, text: str, monkeypatch):
    monkeypatch.setenv("TEST_SECRET", "s3cret")
    path = tmp_path / "cdc.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800),
                                           ("250ms", 0.25), (45, 45), ("1.5h", 5400), ("90", 90)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15 minutes", "m", "-5s", "1h30m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_verify_defaults_take_the_name_of_the_source_prefix(tmp_path, monkeypatch):
    config = load(tmp_path, BASE, monkeypatch)
    (verify,) = config.verifies
    assert verify.pipeline == "shop"
    assert verify.every_seconds == 900 and verify.keep == 20 and verify.full_every_seconds == 86400
    assert verify.report_dir == tmp_path / "verify-reports" / "shop"
    assert verify.rows_per_run == 100_000 and verify.wait_for_lag is None
    assert "s3cret" in verify.source  # the child needs it; it is never printed (tests/test_status_watch.py)


def test_verify_all_keys(tmp_path, monkeypatch):
    text = BASE + """name = "shop-parity"
tables = ["public.orders", "public.items"]
every = "30s"
wait_for_lag = "1m"
report_dir = "/tmp/reports"
keep = 3
rows_per_run = 0
full_every = "1h"
workers = 1
recheck_delay = 0.5
"""
    (verify,) = load(tmp_path, text, monkeypatch).verifies
    assert verify.pipeline == "shop-parity" and verify.tables == ("public.orders", "public.items")
    assert verify.every_seconds == 30 and verify.wait_for_lag == 60 and verify.keep == 3
    assert verify.report_dir == Path("/tmp/reports") and verify.rows_per_run is None
    assert verify.full_every_seconds == 3600 and verify.workers == 1 and verify.recheck_delay == 0.5


@pytest.mark.parametrize("line, message", [
    ('every = "soon"', r"verify\[0\]\.every: 'soon' is not a duration"),
    ('every = "0s"', r"verify\[0\]\.every: must be more than 0"),
    ("keep = 0", r"verify\[0\]\.keep: must be at least 1"),
    ('every = "2h"\nfull_every = "1h"', r"verify\[0\]\.full_every: must be at least `every`"),
    ("evry = 5", r"verify\[0\]\.evry: unknown key"),
    ('name = "a b"', r"verify\[0\]\.name: 'a b' is not a valid name"),
])
def test_verify_errors_name_the_key(tmp_path, monkeypatch, line, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, BASE + line + "\n", monkeypatch)


def test_two_verify_entries_need_different_names(tmp_path, monkeypatch):
    second = BASE.split("[[verify]]")[1]
    with pytest.raises(ConfigError, match="share the name 'shop'"):
        load(tmp_path, BASE + "[[verify]]" + second, monkeypatch)
