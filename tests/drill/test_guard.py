"""What a drill may inject: everything in its sandbox; on a real config only cdc's own processes, with --i-know."""

from __future__ import annotations

import pytest

from cdc.drill.faults import DEFAULT_FAULTS, FAULTS
from cdc.drill.guard import parse_faults, refuse
from cdc.errors import ConfigError


def test_every_fault_is_allowed_in_the_sandbox():
    assert refuse(list(FAULTS), sandbox=True, i_know=False) is None


def test_a_real_config_needs_i_know():
    assert "--i-know" in refuse(["kill-capture"], sandbox=False, i_know=False)


def test_a_real_config_allows_only_faults_on_cdc_processes():
    assert refuse(["kill-capture", "kill-apply", "kill-run"], sandbox=False, i_know=True) is None
    reason = refuse(["kill-capture", "source-restart-fast"], sandbox=False, i_know=True)
    assert "source-restart-fast" in reason and "kill-capture" not in reason.split(";")[0]


def test_fault_list_defaults_to_all_and_rejects_unknown_names():
    assert parse_faults(None, DEFAULT_FAULTS) == list(DEFAULT_FAULTS)
    assert parse_faults("net-reset, kill-run", DEFAULT_FAULTS) == ["net-reset", "kill-run"]
    with pytest.raises(ConfigError, match="broker-restart"):
        parse_faults("broker-restart", DEFAULT_FAULTS)
