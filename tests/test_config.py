"""Config loading: env expansion, validation errors that name the file and the key."""

from pathlib import Path

import pytest

from cdc.config import expand_env, load_config
from cdc.errors import ConfigError

GOOD = """
[kafka]
bootstrap = "${TEST_KAFKA}"

[[source]]
url = "postgresql://cdc:${TEST_SECRET}@127.0.0.1:5544/shop"
prefix = "shop"
tables = ["public.orders", "public.items"]
snapshot = "when_needed"

[[target]]
url = "mysql://root@127.0.0.1:3399/replica"
prefix = "shop"
create_tables = true
workers = 2
on_error = "dlq"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdc.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_env_values(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "127.0.0.1:9999")
    monkeypatch.setenv("TEST_SECRET", "s3cret")
    config = load_config(write(tmp_path, GOOD))
    assert config.kafka.bootstrap == "127.0.0.1:9999"
    source = config.sources[0]
    assert source.url.password == "s3cret" and source.url.port == 5544
    assert source.tables == ("public.orders", "public.items")
    assert "s3cret" not in source.url.redacted()
    target = config.targets[0]
    assert target.url.engine == "mysql" and target.workers == 2 and target.on_error == "dlq"


def test_missing_env_var_names_variable_file_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_KAFKA", raising=False)
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "TEST_KAFKA" in str(err.value) and "kafka.bootstrap" in str(err.value) and str(path) in str(err.value)


def test_bad_choice_names_key_and_allowed_values(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    with pytest.raises(ConfigError, match=r"source\[0\]\.snapshot: is 'sometimes'; allowed: initial, never"):
        load_config(write(tmp_path, GOOD.replace('"when_needed"', '"sometimes"')))


def test_unknown_key_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    with pytest.raises(ConfigError, match=r"target\[0\]\.wokers: unknown key"):
        load_config(write(tmp_path, GOOD.replace("workers = 2", "wokers = 2")))


def test_wrong_type_and_bad_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    with pytest.raises(ConfigError, match=r"target\[0\]\.workers: must be int, got str"):
        load_config(write(tmp_path, GOOD.replace("workers = 2", 'workers = "2"')))
    with pytest.raises(ConfigError, match=r"source\[0\]\.url has scheme 'oracle'"):
        load_config(write(tmp_path, GOOD.replace("postgresql://cdc", "oracle://cdc")))


def test_missing_file_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[kafka\n"))


def test_expand_env_default_value(monkeypatch):
    monkeypatch.delenv("NOPE_VAR", raising=False)
    assert expand_env("a-${NOPE_VAR:-fallback}-b") == "a-fallback-b"


def test_heartbeat_key_is_spelt_like_its_flag_and_the_old_key_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    assert load_config(write(tmp_path, GOOD)).sources[0].heartbeat_interval == 10.0
    new = GOOD.replace('snapshot = "when_needed"', 'snapshot = "when_needed"\nheartbeat_interval = 3')
    assert load_config(write(tmp_path, new)).sources[0].heartbeat_interval == 3.0
    old = GOOD.replace('snapshot = "when_needed"', 'snapshot = "when_needed"\nheartbeat_seconds = 4.5')
    assert load_config(write(tmp_path, old)).sources[0].heartbeat_interval == 4.5
    both = new.replace("heartbeat_interval = 3", "heartbeat_interval = 3\nheartbeat_seconds = 4")
    with pytest.raises(ConfigError, match=r"source\[0\]\.heartbeat_seconds: is the old spelling of heartbeat_interval"):
        load_config(write(tmp_path, both))


@pytest.mark.parametrize(("setting", "policy"), [("true", "drop"), ("false", "keep"), ('"drop"', "drop"),
                                                 ('"keep"', "keep")])
def test_drop_columns_takes_the_flag_values_and_the_old_booleans(tmp_path, monkeypatch, setting, policy):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    text = GOOD.replace('on_error = "dlq"', f'on_error = "dlq"\ndrop_columns = {setting}')
    assert load_config(write(tmp_path, text)).targets[0].drop_columns == policy


def test_drop_columns_rejects_other_words(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KAFKA", "k:1")
    monkeypatch.setenv("TEST_SECRET", "x")
    text = GOOD.replace('on_error = "dlq"', 'on_error = "dlq"\ndrop_columns = "yes"')
    with pytest.raises(ConfigError, match=r"target\[0\]\.drop_columns: is 'yes'; allowed: keep, drop"):
        load_config(write(tmp_path, text))
