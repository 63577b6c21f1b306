"""`cdc migrate`: one named workflow from a source to a target database, switched over and back with a journal.

Every subcommand takes `--config cdc.toml` (a [[migration]] entry named NAME) or all of `--source URL
--target URL --kafka B`, and `--json`. The workflow's state lives in the target database; see
docs/migration.md (the runbook).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cdc.commands.options import kafka_backend_option, split_names
from cdc.config import load_config, parse_duration
from cdc.errors import ConfigError, MigrationError
from cdc.migrate.workflow import Workflow, bare_table, check_name


def _duration(ctx: click.Context, param: click.Parameter, value: Any) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 5s, 2m)") from None


def workflow_options(command: Callable) -> Callable:
    """--config | --source/--target/--kafka, --kafka-backend and --json, shared by every subcommand."""
    for option in reversed([
        click.argument("name"),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="A cdc.toml with a [[migration]] entry named NAME (and [kafka])."),
        click.option("--source", "source_url", envvar="CDC_SOURCE", metavar="URL", help="Source database URL [env CDC_SOURCE]."),
        click.option("--target", "target_url", envvar="CDC_TARGET", metavar="URL",
                     help="Target database URL; the workflow's state lives there [env CDC_TARGET]."),
        click.option("--kafka", "kafka", envvar=["CDC_KAFKA", "CDC_KAFKA_BOOTSTRAP"], metavar="HOST:PORT",
                     help="Kafka bootstrap servers [env CDC_KAFKA or CDC_KAFKA_BOOTSTRAP]."),
        kafka_backend_option(),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON answer on stdout."),
    ]):
        command = option(command)
    return command


def _resolve(name: str, config_path: str | None, source: str | None, target: str | None, kafka: str | None,
             backend: str | None) -> tuple[Workflow, dict[str, Any]]:
    """The workflow (tables not yet known) and what the config says about it."""
    check_name(name)
    extra: dict[str, Any] = {}
    if config_path:
        config = load_config(config_path)
        entry = next((m for m in config.migrations if m.name == name), None)
        if entry is None:
            raise ConfigError(f"{config_path}: no [[migration]] named {name!r}",
                              fix=f"add one, or name one of: {', '.join(m.name for m in config.migrations) or 'none'}")
        source, target, kafka = entry.source, entry.target, config.kafka.bootstrap
        backend = backend or config.kafka.backend
        extra = {"tables": entry.tables, "create_tables": entry.create_tables, "initial_copy": entry.initial_copy}
    missing = [flag for flag, value in (("--source", source), ("--target", target), ("--kafka", kafka)) if not value]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}", fix="give --config cdc.toml, or all of --source, --target, --kafka")
    return Workflow(name, source, target, kafka, (), backend), extra


def _open(name: str, config_path, source, target, kafka, backend):
    """(workflow with its recorded tables, store, migration row)."""
    from cdc.migrate.state import MigrationStore

    workflow, _ = _resolve(name, config_path, source, target, kafka, backend)
    store = MigrationStore(workflow.target_url)
    migration = store.load(name)
    workflow = Workflow(name, workflow.source, workflow.target, workflow.kafka, tuple(migration.record["tables"]),
                        workflow.kafka_backend)
    return workflow, store, migration


def _answer(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, default=str, indent=2))
    else:
        for line in lines:
            click.echo(line)


@click.group(name="migrate")
def command() -> None:
    """Migrate applications from a source database to a target, with a way back (MoveTables-style).

    \b
    create -> run -> (copying -> running) -> verify -> switch -> [verify -> reverse -> ...] -> complete
    State and journal live in the target database (cdc_migrations, cdc_migration_journal).
    See docs/migration.md.

    \b
    Example:
      export CDC_SOURCE=postgresql://cdc:$PW@db1/shop CDC_TARGET=mysql://cdc:$PW@db2/shop CDC_KAFKA=k1:9092
      cdc migrate create shop --tables orders,customers && cdc migrate run shop &
      cdc migrate verify shop && cdc migrate switch shop --on-switch ./repoint-apps.sh
    """


@command.command("create")
@workflow_options
@click.option("--tables", "tables", multiple=True, metavar="LIST", help="Tables to migrate (comma-separated/repeated).")
@click.option("--create-tables", is_flag=True, help="Create missing target tables from the source's schemas.")
@click.option("--initial-copy", type=click.Choice(["direct", "kafka"]), default=None,
              help="How the target gets the rows first: `direct` (default; `cdc copy` from one consistent snapshot "
                   "straight into the target, then streaming from the snapshot's position) or `kafka` (the "
                   "capture's snapshot through Kafka and apply).")
def create(name, config_path, source_url, target_url, kafka, kafka_backend, as_json, tables, create_tables,
           initial_copy) -> None:
    """Record a new workflow NAME (state `created`); then start `cdc migrate run NAME`."""
    from cdc.migrate.state import CREATED, MigrationStore
    from cdc.registry import migrate_module

    workflow, extra = _resolve(name, config_path, source_url, target_url, kafka, kafka_backend)
    names = [bare_table(t) for t in (split_names(tables) or extra.get("tables", ()))]
    if not names:
        raise ConfigError("no tables given", fix="name the tables to migrate: --tables orders,customers")
    stale = _topics_of(workflow)
    if stale:
        raise ConfigError(f"Kafka already has topics of a workflow named {name!r} ({', '.join(stale[:3])}"
                          f"{', ...' if len(stale) > 3 else ''}); their events would be applied to the new target",
                          fix=f"pick another name, or delete them (`cdc migrate cancel {name} --drop-topics` of the old one)")
    store = MigrationStore(workflow.target_url)
    try:
        record = {"source": workflow.source_url.redacted(), "target": workflow.target_url.redacted(), "tables": names,
                  "create_tables": bool(create_tables or extra.get("create_tables")),
                  "initial_copy": initial_copy or extra.get("initial_copy") or "direct", "direction": "forward",
                  "epoch": 0, "created_at": time.time()}
        store.create(name, record)
        store.journal(name, "create", "done", note=f"{len(names)} table(s): {', '.join(names)}; initial copy "
                      f"{record['initial_copy']}",
                      source=record["source"], target=record["target"])
        engine = migrate_module(workflow.target_url.engine)
        conn = engine.connect(workflow.target_url)
        try:  # like a replica, the target takes no application writes until a switch opens it
            sql = engine.close_writes(conn, workflow.target_url)
        finally:
            conn.close()
        store.journal(name, "close-target", "done", note=f"{record['target']} closed to application writes", sql=sql)
    finally:
        store.close()
    _answer(as_json, {"name": name, "state": CREATED, "next_steps": [f"cdc migrate run {name}"]},
            [f"workflow {name} created ({len(names)} table(s)); next: cdc migrate run {name}"])


@command.command("run")
@workflow_options
def run(name, config_path, source_url, target_url, kafka, kafka_backend, as_json) -> None:
    """Run the workflow's pipeline (forward, or reverse after a switch) until stopped or the workflow ends."""
    from cdc.migrate.runner import MigrationRunner

    workflow, store, _ = _open(name, config_path, source_url, target_url, kafka, kafka_backend)
    ctx = click.get_current_context()
    log_format = (ctx.find_root().params or {}).get("log_format", "human")
    try:
        MigrationRunner(workflow, store, log_format=log_format).run()
    finally:
        store.close()


@command.command("status")
@workflow_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the whole journal as a page here.")
@click.option("--stale-after", default="24h", callback=_duration, show_default=True,
              help="A verification older than this is stale.")
def status(name, config_path, source_url, target_url, kafka, kafka_backend, as_json, html_path, stale_after) -> None:
    """The state, lag, last verification and the next command to run."""
    from cdc.migrate.report import write_page
    from cdc.migrate.status import describe, status_lines

    workflow, store, migration = _open(name, config_path, source_url, target_url, kafka, kafka_backend)
    try:
        data = describe(workflow, migration, stale_after=stale_after)
        if html_path:
            write_page(html_path, data, store.entries(name))
            data["html"] = html_path
    finally:
        store.close()
    _answer(as_json, data, status_lines(data) + ([f"page      {html_path}"] if html_path else []))


@command.command("verify")
@workflow_options
@click.option("--wait-for-lag", default="60s", callback=_duration, show_default=True,
              help="Let replication catch up first (as `cdc verify --wait-for-lag`).")
@click.option("--recheck-delay", default="5s", callback=_duration, show_default=True,
              help="Rows that differ are fetched again after this long; those that converge were in flight.")
@click.option("--report-dir", type=click.Path(file_okay=False), default="migrate-reports", show_default=True,
              help="Where the JSON and HTML reports go (NAME/verify-<time>.*).")
def verify_command(name, config_path, source_url, target_url, kafka, kafka_backend, as_json, wait_for_lag,
                   recheck_delay, report_dir) -> None:
    """Check parity of the workflow's tables and record the result (a switch needs a fresh parity).

    It first waits (up to --wait-for-lag) until replication has reached the current position of the
    side being read, then compares checksums inside both databases (`cdc verify`'s engine).
    """
    import sys

    from cdc.migrate.catchup import CatchUpProbe, current_position
    from cdc.migrate.cutover import summarize
    from cdc.migrate.state import now_text
    from cdc.verify.parity import verify
    from cdc.verify.plan import VerifyOptions
    from cdc.verify.report import report_dict, write_html, write_json

    workflow, store, migration = _open(name, config_path, source_url, target_url, kafka, kafka_backend)
    try:
        direction = migration.record.get("direction", "forward")
        reading, writing = workflow.sides(direction)
        probe = CatchUpProbe(workflow, direction)
        try:
            caught = probe.wait(current_position(reading), wait_for_lag)
        finally:
            probe.close()
        options = VerifyOptions(tables=tuple(workflow.tables), workers=2, recheck_delay=recheck_delay)
        report = verify(reading, writing, options)
        for _ in range(2):  # row counts that differ while no row does: rows in flight under writes; look again
            if not only_counts_differ(report):
                break
            report = verify(reading, writing, options)
        report.lag = {"max_seconds": wait_for_lag, "caught_up": caught.reached, "waited_seconds": caught.seconds,
                      "steps": [f"replication reached the source's position in {caught.seconds:.2f}s" if caught.reached
                                else f"not caught up after {caught.seconds:.1f}s ({caught.figure()})"]}
        folder = Path(report_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"verify-{time.strftime('%Y%m%dT%H%M%S')}"
        data = report_dict(report)
        write_json(data, f"{stem}.json")
        write_html(data, f"{stem}.html")
        summary = summarize(report)
        migration = store.load(name)
        record = dict(migration.record)
        record["last_verify"] = {"at": time.time(), "at_text": now_text(), "status": report.status,
                                 "summary": summary["text"], "report": f"{stem}.html"}
        store.save(name, migration.state, migration.state, record)
        store.journal(name, "verify", "done" if report.exit_code == 0 else "failed", note=summary["text"],
                      verify=summary, report=f"{stem}.html")
    finally:
        store.close()
    _answer(as_json, {"name": name, "status": report.status, "summary": summary, "report": f"{stem}.html"},
            [f"verify {name}: {summary['text']}", f"report {stem}.html"])
    sys.exit(report.exit_code)


def only_counts_differ(report) -> bool:
    """True when a report differs only by row counts, with no differing row or column listed (in flight)."""
    return report.exit_code == 1 and all(
        not t.diffs and not t.schema_differences and not t.unexamined_segments for t in report.tables)


def cutover_options(command: Callable) -> Callable:
    """The options switch and reverse share."""
    for option in reversed([
        click.option("--dry-run", is_flag=True, help="Print every step with its SQL; change nothing."),
        click.option("--max-lag", default="5s", callback=_duration, show_default=True,
                     help="Gate: replication must catch up with the current position within this long."),
        click.option("--freeze", type=click.Choice(["lock", "read-only", "revoke"]), default="lock", show_default=True,
                     help="How writes stop: a held table lock (writers wait), read-only (the database refuses writes), "
                          "or revoke (the application roles lose INSERT/UPDATE/DELETE on the tables)."),
        click.option("--app-roles", metavar="LIST",
                     help="--freeze revoke: the application roles/accounts (comma-separated; MariaDB: user or "
                          "user@host). Default: every one holding a write privilege on the tables, except the "
                          "workflow's user and superusers."),
        click.option("--on-switch", metavar="CMD",
                     help="Command that repoints applications; gets CDC_PRIMARY_URL (no password), CDC_MIGRATION."),
        click.option("--timeout", default="60s", callback=_duration, show_default=True,
                     help="Longest wait for apply to reach the final position (and for the hook)."),
        click.option("--stale-after", default="24h", callback=_duration, show_default=True,
                     help="Gate: the last parity verification must be younger than this."),
    ]):
        command = option(command)
    return command


def _cutover(kind: str, name, config_path, source_url, target_url, kafka, kafka_backend, as_json, dry_run, max_lag,
             freeze, app_roles, on_switch, timeout, stale_after) -> None:
    from cdc.migrate.cutover import Cutover, CutoverOptions
    from cdc.migrate.grants import parse_roles

    if app_roles is not None and freeze != "revoke":
        raise ConfigError("--app-roles is for --freeze revoke", fix="add --freeze revoke, or drop --app-roles")
    workflow, store, _ = _open(name, config_path, source_url, target_url, kafka, kafka_backend)
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    options = CutoverOptions(max_lag=max_lag, freeze=freeze, on_switch=on_switch, timeout=timeout, dry_run=dry_run,
                             stale_after=stale_after, app_roles=parse_roles(app_roles))
    say(f"{kind} {name}{' (dry run: nothing changes)' if dry_run else ''}")
    try:
        result = Cutover(workflow, store, kind, options, say=say).run()
    finally:
        store.close()
    pause = result.get("write_pause_seconds")
    lines = [] if dry_run else [f"{kind} done: primary is now {result['primary']}"
                                + (f"; write pause {pause:.3f}s (freeze -> hook returned)" if pause is not None else "")]
    _answer(as_json, result, lines)


@command.command("switch")
@workflow_options
@cutover_options
def switch(**kwargs) -> None:
    """Switch writes to the target: gates, freeze, catch up, final verify, reverse replication, --on-switch."""
    _cutover("switch", **kwargs)


@command.command("reverse")
@workflow_options
@cutover_options
def reverse(**kwargs) -> None:
    """Roll back a switch: the same gates and steps towards the source, then forward replication again."""
    _cutover("reverse", **kwargs)


def _end(name, config_path, source_url, target_url, kafka, kafka_backend, *, allowed: tuple[str, ...], final: str,
         direction: str) -> tuple[Workflow, Any, list[str]]:
    """Move to a final state, wait for the runner to stop, drop the direction's capture; (workflow, store, SQL)."""
    from cdc.migrate.state import lock_owner, require

    workflow, store, migration = _open(name, config_path, source_url, target_url, kafka, kafka_backend)
    owner = lock_owner(final)
    held = store.try_lock(name, owner)
    if held:
        store.close()
        raise MigrationError(f"another `cdc migrate` command holds workflow {name!r} ({held})", fix="wait for it")
    try:
        require(migration, *allowed, command="complete" if final == "completed" else "cancel")
        store.save(name, migration.state, final, migration.record)
        deadline = time.monotonic() + 60
        while store.load(name).runner_alive() and (store.load(name).heartbeat or {}).get("direction") != "none":
            if time.monotonic() > deadline:
                raise MigrationError("the runner did not stop its pipeline within 60s", fix="stop `cdc migrate run`")
            time.sleep(0.2)
        from cdc.registry import migrate_module

        reading = workflow.sides(direction)[0]
        url = workflow.source_url if reading == workflow.source else workflow.target_url
        sql = migrate_module(url.engine).drop_capture(url, workflow.kafka, workflow.prefix(direction))
    finally:
        store.unlock(name, owner)
    return workflow, store, sql


def _topics_of(workflow: Workflow) -> list[str]:
    """The Kafka topics either direction of a workflow of this name would use."""
    from cdc.kafka import make_admin

    with make_admin(workflow.kafka, backend=workflow.kafka_backend) as admin:
        topics = admin.list_topics()
    return sorted(t for d in ("forward", "reverse") for t in topics if _of_prefix(t, workflow.prefix(d)))


def _of_prefix(topic: str, prefix: str) -> bool:
    """A pipeline's topic: `<prefix>.*`, or cdc's own `__cdc-offsets.<prefix>` / `__cdc-heartbeat.<prefix>`."""
    return topic.startswith(prefix + ".") or topic.endswith("." + prefix)


def _drop_topics(workflow: Workflow, prefix: str) -> list[str]:
    from cdc.kafka import make_admin

    with make_admin(workflow.kafka, backend=workflow.kafka_backend) as admin:
        names = [t for t in admin.list_topics() if _of_prefix(t, prefix)]
        if names:
            admin.delete_topics(names)
    return names


@command.command("complete")
@workflow_options
@click.option("--drop-topics", is_flag=True, help="Also delete the Kafka topics of both directions.")
def complete(name, config_path, source_url, target_url, kafka, kafka_backend, as_json, drop_topics) -> None:
    """After a switch: stop reverse replication, drop its slot/publication; the old source stays closed."""
    workflow, store, sql = _end(name, config_path, source_url, target_url, kafka, kafka_backend,
                                allowed=("switched",), final="completed", direction="reverse")
    try:
        topics = _drop_topics(workflow, workflow.prefix("reverse")) + _drop_topics(workflow, workflow.prefix("forward")) \
            if drop_topics else []
        reopen = _reopen_sql(workflow, store.load(name).record)
        store.journal(name, "complete", "done", note="reverse replication stopped and dropped; the old source stays "
                      "closed to application writes", sql=sql, topics_dropped=topics, reopen_sql=reopen)
    finally:
        store.close()
    _answer(as_json, {"name": name, "state": "completed", "next_steps": [], "reopen_sql": reopen},
            [f"workflow {name} completed; the old source stays closed to application writes until you reopen it"]
            + ([f"  the revoked privileges, should you reopen it: {statement}" for statement in reopen]))


def _reopen_sql(workflow: Workflow, record: dict[str, Any]) -> list[str]:
    """The GRANTs that would give the old source's application roles back what a `--freeze revoke` took."""
    from cdc.migrate.grants import from_records
    from cdc.registry import migrate_module

    url = workflow.source_url
    return migrate_module(url.engine).grant_sql(url, from_records(record.get("revoked", {}).get("source")))


@command.command("cancel")
@workflow_options
@click.option("--drop-tables", is_flag=True, help="Also drop the workflow's tables in the target.")
@click.option("--drop-topics", is_flag=True, help="Also delete the Kafka topics of both directions.")
def cancel(name, config_path, source_url, target_url, kafka, kafka_backend, as_json, drop_tables, drop_topics) -> None:
    """Before a switch (or after a reverse): stop forward replication, drop its slot/publication."""
    from cdc.registry import migrate_module

    workflow, store, sql = _end(name, config_path, source_url, target_url, kafka, kafka_backend,
                                allowed=("created", "copying", "running", "reversed"), final="cancelled",
                                direction="forward")
    try:
        if drop_tables:
            engine = migrate_module(workflow.target_url.engine)
            conn = engine.connect(workflow.target_url)
            try:
                sql += engine.drop_tables(conn, list(workflow.tables))
            finally:
                conn.close()
        topics = _drop_topics(workflow, workflow.prefix("forward")) + _drop_topics(workflow, workflow.prefix("reverse")) \
            if drop_topics else []
        store.journal(name, "cancel", "done", note="forward replication stopped and dropped", sql=sql,
                      topics_dropped=topics)
    finally:
        store.close()
    _answer(as_json, {"name": name, "state": "cancelled", "next_steps": []}, [f"workflow {name} cancelled"])
