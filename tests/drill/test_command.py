"""`cdc drill` on the command line: refusals on a real config, and the pipelines it finds there."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cdc.cli import cli
from cdc.config import load_config
from cdc.drill.real_config import pipelines_of
from cdc.errors import ConfigError

CONFIG = """
[kafka]
bootstrap = "127.0.0.1:9"
[[source]]
url = "postgresql://app:secret@127.0.0.1:5999/shop"
prefix = "shop"
tables = {tables}
[[target]]
url = "mysql://root@127.0.0.1:3999/copy"
prefix = "shop"
"""


def _config(tmp_path, tables='["public.orders", "public.cdc_drill_ledger"]'):
    path = tmp_path / "cdc.toml"
    path.write_text(CONFIG.format(tables=tables))
    return path


def test_a_real_config_is_refused_without_i_know(tmp_path):
    result = CliRunner().invoke(cli, ["drill", "--config", str(_config(tmp_path)), "--faults", "kill-capture"])
    assert isinstance(result.exception, ConfigError)
    assert "--i-know" in str(result.exception)


def test_a_real_config_refuses_faults_outside_cdc_even_with_i_know(tmp_path):
    result = CliRunner().invoke(cli, ["drill", "--config", str(_config(tmp_path)), "--i-know",
                                       "--faults", "kill-capture,target-restart"])
    assert isinstance(result.exception, ConfigError)
    assert "target-restart" in str(result.exception)


def test_config_or_sandbox_is_required():
    result = CliRunner().invoke(cli, ["drill"])
    assert isinstance(result.exception, ConfigError)
    assert "--sandbox" in str(result.exception)


def test_pipelines_pair_sources_and_targets_by_prefix_and_need_the_ledger_captured(tmp_path):
    pipelines = pipelines_of(load_config(_config(tmp_path)))
    assert [(p.source_server, p.target_server, p.topic) for p in pipelines] == [
        ("postgresql", "mysql", "shop.public.cdc_drill_ledger")]
    assert "secret" not in pipelines[0].name
    with pytest.raises(ConfigError, match="public.cdc_drill_ledger"):
        pipelines_of(load_config(_config(tmp_path, tables='["public.orders"]')))
