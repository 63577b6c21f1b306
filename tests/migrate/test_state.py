"""Pure parts of `cdc migrate`: the state machine, lock owners, names, the journal page, the config entry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cdc.commands.migrate import only_counts_differ
from cdc.config import load_config
from cdc.errors import ConfigError, MigrationError
from cdc.migrate.report import render_page
from cdc.migrate.state import (CANCELLED, COMPLETED, CREATED, REVERSED, REVERSING, RUNNING, SWITCHED, SWITCHING,
                               check_transition, owner_alive)
from cdc.migrate.workflow import FORWARD, REVERSE, Workflow, bare_table, check_name, url_without_password
from cdc.urls import parse_url


@pytest.mark.parametrize("current,new", [(RUNNING, SWITCHING), (SWITCHING, SWITCHED), (SWITCHING, RUNNING),
                                         (SWITCHED, REVERSING), (REVERSING, REVERSED), (REVERSED, SWITCHING),
                                         (SWITCHED, COMPLETED), (RUNNING, CANCELLED)])
def test_allowed_transitions_pass(current, new):
    check_transition(current, new)


@pytest.mark.parametrize("current,new", [(CREATED, SWITCHING), (RUNNING, SWITCHED), (SWITCHED, CANCELLED),
                                         (COMPLETED, RUNNING), (CANCELLED, RUNNING), (REVERSED, COMPLETED)])
def test_forbidden_transitions_name_what_is_allowed(current, new):
    with pytest.raises(MigrationError, match=f"it cannot become {new}"):
        check_transition(current, new)


def test_owner_alive_only_false_for_a_dead_process_on_this_host():
    host = socket.gethostname()
    assert owner_alive(f"{host}:{os.getpid()}:switch")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not owner_alive(f"{host}:{dead.pid}:switch")
    assert owner_alive(f"another-host-{host}:{dead.pid}:switch")  # cannot tell: assume alive


@pytest.mark.parametrize("name", ["shop", "m_1", "a" * 41])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Shop", "1shop", "shop-db", "shop.db", "", "a" * 42])
def test_invalid_names_are_refused(name):
    with pytest.raises(ConfigError, match="not valid"):
        check_name(name)


def test_workflow_directions_swap_sides_and_prefixes():
    flow = Workflow("shop", "postgresql://u:secret@a:5432/s", "mysql://u:secret@b:3306/t", "k:9092", ("orders",))
    assert flow.sides(FORWARD) == (flow.source, flow.target)
    assert flow.sides(REVERSE) == (flow.target, flow.source)
    assert (flow.prefix(FORWARD), flow.prefix(REVERSE)) == ("shop", "shop_rev")
    assert flow.apply_group(REVERSE) == "cdc-apply-shop_rev"
    assert bare_table("public.orders") == "orders"


def test_primary_url_has_no_password():
    assert url_without_password(parse_url("postgresql://app:secret@db2:5432/shop")) == "postgresql://app@db2:5432/shop"


def _report(code: int, diffs=(), schema=()):
    table = SimpleNamespace(diffs=list(diffs), schema_differences=list(schema), unexamined_segments=0)
    return SimpleNamespace(exit_code=code, tables=[table])


def test_only_counts_differ_tells_rows_in_flight_from_real_differences():
    assert only_counts_differ(_report(1))
    assert not only_counts_differ(_report(0))
    assert not only_counts_differ(_report(1, diffs=["a row"]))
    assert not only_counts_differ(_report(1, schema=["a column"]))


def test_journal_page_lists_every_entry_escaped():
    status = {"name": "shop", "state": "switched", "next_steps": ["cdc migrate reverse shop"]}
    entries = [{"at": "2026-12-07T10:00:00+00:00", "step": "switch.freeze", "status": "done", "note": "<lock>",
                "sql": ["LOCK TABLE \"public\".\"orders\" IN EXCLUSIVE MODE"]},
               {"at": "2026-12-07T10:00:01+00:00", "step": "switch.done", "status": "done", "write_pause_seconds": 1.2}]
    page = render_page(status, entries)
    assert "switch.freeze" in page and "switch.done" in page and "&lt;lock&gt;" in page
    assert "IN EXCLUSIVE MODE" in page and "write_pause_seconds" in page and "cdc migrate reverse shop" in page


def test_config_migration_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("PW", "secret")
    path = tmp_path / "cdc.toml"
    path.write_text('[kafka]\nbootstrap = "k:9092"\n[[migration]]\nname = "shop"\n'
                    'source = "postgresql://u:${PW}@a:5432/s"\ntarget = "mysql://u:${PW}@b:3306/t"\ntables = ["orders"]\n')
    config = load_config(path)
    assert config.migrations[0].name == "shop" and config.migrations[0].tables == ("orders",)
    assert config.migrations[0].source == "postgresql://u:secret@a:5432/s"
    assert config.migrations[0].initial_copy == "direct"  # the default; `kafka` snapshots through Kafka
    path.write_text(path.read_text() + 'initial_copy = "dump"\n')
    with pytest.raises(ConfigError, match="initial_copy"):
        load_config(path)
    path.write_text('[kafka]\nbootstrap = "k:9092"\n[[migration]]\nname = "Shop"\n'
                    'source = "postgresql://u@a:5432/s"\ntarget = "mysql://u@b:3306/t"\n')
    with pytest.raises(ConfigError, match="not a valid workflow name"):
        load_config(path)


def test_cdc_run_runs_each_migration_runner(tmp_path):
    from cdc.commands.run import components_for

    path = tmp_path / "cdc.toml"
    path.write_text('[kafka]\nbootstrap = "k:9092"\n[[migration]]\nname = "shop"\n'
                    'source = "postgresql://u@a:5432/s"\ntarget = "mysql://u@b:3306/t"\n')
    components = components_for(load_config(path), child_metrics=False)
    assert [c.args[:3] for c in components] == [["migrate", "run", "shop"]]
