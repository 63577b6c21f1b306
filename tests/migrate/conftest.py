"""Fixtures of the migration tests: a source and a target database of each engine pair, the CLI, the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_mysql_database, create_pg_database, drop_mysql_database, drop_pg_database
from tests.migrate.harness import HOOK, Application, MigrateCli, prepare_side, primary_key, reopen_all


@pytest.fixture
def workflow_world(request, sandbox, tmp_path: Path) -> Iterator:
    """(cli, app, source URL, target URL) for the engine pair named by the test's `pair` parameter."""
    source_engine, target_engine = request.param
    made: list[tuple[str, str]] = []

    def database(engine: str, label: str) -> str:
        if engine == "postgresql":
            url = create_pg_database(sandbox.pg_url, label)
        else:
            url = create_mysql_database(sandbox.mysql_url, label)
        made.append((engine, url))
        prepare_side(url)
        return url

    source = database(source_engine, "mig_src")
    target = database(target_engine, "mig_tgt")
    # a name of its own: topics and consumer groups outlive a test on the session's broker
    name = "m_" + request.node.name.split("[")[-1].rstrip("]").replace("-", "_").lower()[:20] + "_" + uuid.uuid4().hex[:6]
    cli = MigrateCli(name, source, target, sandbox.kafka_bootstrap, tmp_path)
    primary_file = tmp_path / "primary"
    primary_file.write_text(source)
    app = Application(primary_file, {primary_key(source): source, primary_key(target): target})
    try:
        yield cli, app, source, target, HOOK.format(path=primary_file)
    finally:
        app.stop()
        cli.stop_runner()
        for engine, url in made:
            reopen_all(url)
            if engine == "postgresql":
                drop_pg_database(sandbox.pg_url, url)
            else:
                drop_mysql_database(sandbox.mysql_url, url)
