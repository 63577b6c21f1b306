"""`--freeze revoke`: the application role loses its write privileges on the frozen side (a permission error,
not a lock wait), gets them back when that side is primary again, and a crash between the revoke and the end
is recovered by running the command again. The application writes through it all; nothing acknowledged is
lost and the frozen side acknowledges nothing."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from cdc.migrate.state import REVERSED, REVERSING, RUNNING, SWITCHED, SWITCHING
from cdc.urls import parse_url
from tests.migrate.harness import app_write, ledger_seqs, primary_key

PAIRS = [("postgresql", "postgresql"), ("mysql", "postgresql")]
IDS = ["pg-pg", "mariadb-pg"]


def _refused_by_privilege(url: str) -> None:
    """The application's INSERT fails at once with a permission error (PG 42501, MariaDB 1142)."""
    started = time.monotonic()
    with pytest.raises(Exception) as refused:
        app_write(url, "probe", 1)
    seconds = time.monotonic() - started
    error = refused.value
    code = error.args[0] if error.args and isinstance(error.args[0], int) else getattr(error, "sqlstate", None)
    assert code in ("42501", 1142), f"not a permission error: {type(error).__name__}: {error}"
    assert seconds < 2.0, f"the refusal took {seconds:.1f}s (a lock wait?)"


def _at(result: dict, step: str) -> float:
    return next(datetime.fromisoformat(s["at"]).timestamp() for s in result["steps"] if s["step"].endswith(step))


def _crash_then_recover(cli, kind: str, step: str, hook: str) -> dict:
    """`kind` killed after `step`, then run again; the recovered run's answer."""
    args = (kind, cli.name, "--freeze", "revoke", "--on-switch", hook, "--max-lag", "30s")
    crashed = cli.run(*args, check=False, CDC_MIGRATE_CRASH_AFTER=f"{kind}.{step}")
    assert crashed.returncode == -9, crashed.stderr
    store = cli.store()
    try:
        migration = store.load(cli.name)
    finally:
        store.close()
    assert migration.state == (SWITCHING if kind == "switch" else REVERSING)
    assert migration.record["cutover"]["revoked"], "the revoke was not recorded before it ran"
    return cli.json(*args)


@pytest.mark.parametrize("workflow_world", PAIRS, ids=IDS, indirect=True)
def test_revoke_freeze_refuses_the_application_and_gives_its_writes_back(workflow_world):
    cli, app, source, target, hook = workflow_world
    app.rate = 200.0
    app.start()
    cli.run("create", cli.name, "--tables", "ledger")
    cli.start_runner()
    cli.wait_state(RUNNING)
    with app.paused():
        cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "1")
    dry = cli.run("switch", cli.name, "--dry-run", "--freeze", "revoke")
    assert "REVOKE DELETE, INSERT" in dry.stdout and "FROM" in dry.stdout and "cdc_app" in dry.stdout, dry.stdout
    # the workflow's own user cannot be frozen: the freeze gate names why, nothing changes
    refused = cli.run("switch", cli.name, "--freeze", "revoke", "--app-roles", parse_url(source).user, check=False)
    assert refused.returncode == 3 and "gate freeze failed" in refused.stderr and "own user" in refused.stderr
    wrong = cli.run("switch", cli.name, "--app-roles", "cdc_app", check=False)
    assert wrong.returncode == 2 and "--app-roles is for --freeze revoke" in wrong.stderr

    # killed between the revoke and the end: the source refuses the application meanwhile (the target is
    # still closed), and the next run grants back what it took, then switches
    switched = _crash_then_recover(cli, "switch", "drain", hook)
    assert switched["state"] == SWITCHED and not switched["recovered"]
    rollback = next(s for s in switched["steps"] if s["step"] == "switch.rollback")
    assert any(statement.startswith("GRANT ") for statement in rollback["sql"]), rollback
    _refused_by_privilege(source)
    app_write(target, "probe", 2)
    status = cli.json("status", cli.name)
    assert status["state"] == SWITCHED and status["lag_seconds"] is not None and status["lag_events"] is not None
    assert [g["role"] for g in status["revoked"]["source"]] == ["cdc_app"] and "target" not in status["revoked"]
    time.sleep(1.0)  # the application writes on the target
    assert any(side == primary_key(target) for _, side, _ in app.acks)
    with app.paused():
        cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "1")
    dry = cli.run("reverse", cli.name, "--dry-run", "--freeze", "revoke")
    assert "GRANT DELETE, INSERT" in dry.stdout, dry.stdout

    # killed after the commit: the next run finishes, and the source gets its grants back on opening
    reversed_ = _crash_then_recover(cli, "reverse", "commit", hook)
    assert reversed_["state"] == REVERSED and reversed_["recovered"]
    app_write(source, "probe", 3)
    _refused_by_privilege(target)
    assert [g["role"] for g in cli.json("status", cli.name)["revoked"]["target"]] == ["cdc_app"]
    time.sleep(1.0)
    app.stop()
    cli.run("verify", cli.name, "--wait-for-lag", "20", "--recheck-delay", "1")

    acked = {seq for seq, _, _ in app.acks}
    assert acked and not acked - ledger_seqs(source, "app") and not acked - ledger_seqs(target, "app")
    frozen_from, reopened_at = _at(switched, ".drain"), _at(reversed_, ".open")
    late = [seq for seq, side, at in app.acks if side == primary_key(source) and frozen_from < at < reopened_at]
    assert not late, f"{len(late)} write(s) acknowledged by the revoked source, e.g. {late[:3]}"
    drain = next(s["note"] for s in switched["steps"] if s["step"] == "switch.drain")
    print(f"\n{cli.name}: drain {drain}; {len(acked)} acknowledged writes, 0 lost; pauses {switched['write_pause_seconds']:.3f}s"
          f" (switch), {reversed_['write_pause_seconds']} (reverse, recovered after its commit)")


def test_pg_refuses_a_revoke_that_would_not_stop_every_application_writer(sandbox):
    from connectors.postgres import migrate as engine
    from tests.conftest import create_pg_database, drop_pg_database

    url = create_pg_database(sandbox.pg_url, "revoke")
    suffix = url.rsplit("_", 1)[-1][:8]
    owner, writers, member = f"own_{suffix}", f"writers_{suffix}", f"member_{suffix}"
    parsed = parse_url(url)
    conn = engine.connect(parsed)
    try:
        for role in (owner, writers, member):
            conn.execute(f"CREATE ROLE {role}")
        conn.execute(f"GRANT {writers} TO {member}")
        conn.execute("CREATE TABLE owned (id int PRIMARY KEY)")
        conn.execute(f"ALTER TABLE owned OWNER TO {owner}")
        conn.execute("CREATE TABLE shared (id int PRIMARY KEY)")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE ON shared TO {writers} WITH GRANT OPTION")
        # every write holder by default: the owner of `owned` is one, and REVOKE cannot freeze an owner
        refusals = engine.revoke_refusals(conn, parsed, ["owned", "shared"], None)
        assert len(refusals) == 1 and f"owned by role {owner!r}" in refusals[0]
        assert engine.revoke_refusals(conn, parsed, ["shared"], None) == []
        # named roles: the workflow's own user, and a role whose privilege comes through another role
        refusals = engine.revoke_refusals(conn, parsed, ["shared"], (parsed.user, member))
        assert "the workflow's own user" in refusals[0] and "through another role" in refusals[1]
        grants = engine.write_grants(conn, parsed, ["shared"], None)
        assert [(g.role, g.privileges, g.grantable) for g in grants] == [(writers, ("INSERT", "UPDATE"),
                                                                          ("INSERT", "UPDATE"))]
        assert engine.revoke_writes(conn, parsed, grants) == [f'REVOKE INSERT, UPDATE ON "public"."shared" FROM "{writers}"']
        assert engine.write_grants(conn, parsed, ["shared"], None) == []
        engine.grant_writes(conn, parsed, grants)
        assert engine.write_grants(conn, parsed, ["shared"], None) == grants  # with the grant option, as it was
    finally:
        conn.close()
        drop_pg_database(sandbox.pg_url, url)
        conn = engine.connect(parse_url(sandbox.pg_url))
        try:
            for role in (member, writers, owner):
                conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            conn.close()


def test_mariadb_refuses_a_revoke_that_a_database_or_global_grant_would_outlive(sandbox):
    from connectors.mysql import migrate as engine
    from tests.conftest import create_mysql_database, drop_mysql_database

    url = create_mysql_database(sandbox.mysql_url, "revoke")
    parsed = parse_url(url)
    suffix = parsed.database.rsplit("_", 1)[-1][:8]
    table_user, db_user, global_user = f"t_{suffix}", f"d_{suffix}", f"g_{suffix}"
    conn = engine.connect(parsed)
    try:
        engine.execute(conn, "CREATE TABLE shared (id int PRIMARY KEY)")
        for user in (table_user, db_user, global_user):
            engine.execute(conn, "CREATE USER %s@'%%' IDENTIFIED BY 'x'", (user,))
        engine.execute(conn, f"GRANT SELECT, INSERT, DELETE ON `{parsed.database}`.`shared` TO %s@'%%'", (table_user,))
        engine.execute(conn, f"GRANT INSERT ON `{parsed.database}`.* TO %s@'%%'", (db_user,))
        engine.execute(conn, "GRANT INSERT ON *.* TO %s@'%%'", (global_user,))
        refusals = engine.revoke_refusals(conn, parsed, ["shared"], None)
        assert len(refusals) == 1 and f"'{db_user}'@'%'" in refusals[0] and "database-level grant" in refusals[0]
        assert engine.revoke_refusals(conn, parsed, ["shared"], (table_user,)) == []
        refusals = engine.revoke_refusals(conn, parsed, ["shared"], (global_user, "nobody_here"))
        assert "global write privileges" in refusals[0] and "does not exist" in refusals[1]
        grants = engine.write_grants(conn, parsed, ["shared"], (f"{table_user}@%",))
        assert [(g.account, g.privileges) for g in grants] == [(f"{table_user}@%", ("DELETE", "INSERT"))]
        assert engine.revoke_writes(conn, parsed, grants) == [
            f"REVOKE DELETE, INSERT ON `{parsed.database}`.`shared` FROM '{table_user}'@'%'"]
        assert engine.write_grants(conn, parsed, ["shared"], None) == []
        engine.grant_writes(conn, parsed, grants)
        assert engine.write_grants(conn, parsed, ["shared"], None) == grants
    finally:
        for user in (table_user, db_user, global_user):
            engine.execute(conn, "DROP USER IF EXISTS %s@'%%'", (user,))
        conn.close()
        drop_mysql_database(sandbox.mysql_url, url)
