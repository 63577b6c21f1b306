"""A drill on a real `cdc.toml`: the ledger table in each source, `cdc run` started by the drill, and only the
faults that touch cdc's own processes (the guard in cdc/drill/guard.py refuses the others)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from cdc.config import Config, SourceConfig, load_config
from cdc.drill import ledger
from cdc.drill.cdc_run import CdcRun
from cdc.drill.faults import FAULTS, DrillTarget, Pipeline
from cdc.drill.report import FaultResult
from cdc.errors import ConfigError


def url_text(url) -> str:
    """A `DatabaseUrl` as text (with its password: for drivers only, never for a command line or a log)."""
    auth = quote(url.user, safe="") + (f":{quote(url.password, safe='')}" if url.password is not None else "")
    return f"{url.engine}://{auth}@{url.host}:{url.port}/{url.database}"


def ledger_name(source: SourceConfig) -> str:
    """`schema.cdc_drill_ledger` as the source's table filter spells it."""
    schema = "public" if source.url.engine == "postgresql" else source.url.database
    return f"{schema}.{ledger.TABLE}"


def pipelines_of(config: Config) -> list[Pipeline]:
    """One drill pipeline per [[source]] with a [[target]] of the same prefix; ConfigError when the ledger
    table would not be captured."""
    found = []
    for source in config.sources:
        name = ledger_name(source)
        captured = (name in source.tables) if source.tables else \
            (source.include is None or re.search(source.include, name) is not None)
        for target in (t for t in config.targets if t.prefix == source.prefix):
            if not captured or (target.tables and ledger.TABLE not in target.tables and name not in target.tables):
                raise ConfigError(f"the drill writes its ledger to {name}, which [[source]]/[[target]] "
                                  f"{source.prefix!r} do not replicate",
                                  fix=f"add {name!r} to their `tables` for the drill")
            found.append(Pipeline(f"{source.prefix}->{target.url.redacted()}", url_text(source.url),
                                  url_text(target.url), source.url.engine, target.url.engine,
                                  f"{source.prefix}.{name}"))
    if not found:
        raise ConfigError("no [[source]] with a [[target]] of the same prefix in the config")
    return found


def run_config_drill(config_path: Path, options, say: Callable[[str], None]) -> tuple[list[FaultResult], dict[str, str]]:
    """Start `cdc run --config` (stop your own service first), load the ledger, inject each fault, check."""
    from cdc.drill.session import Drill

    config = load_config(config_path)
    pipelines = pipelines_of(config)
    for pipeline in pipelines:
        ledger.create_table(pipeline.source_url)
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="cdc-drill-"))
    work.mkdir(parents=True, exist_ok=True)
    run = CdcRun(config_path.absolute(), work / "cdc-run.log")
    say(f"starting cdc run --config {config_path} (log: {run.log_path}); stop your own cdc run service first")
    run.start()
    writers = {p.name: ledger.LedgerWriter(p.source_url, options.rate / len(pipelines)) for p in pipelines}
    target = DrillTarget(run, pipelines, timings=options.timings, writers=writers)
    drill = Drill(target, options, config.kafka.bootstrap, say)
    results = []
    try:
        drill.warm_up()
        for name in options.faults:
            say(f"fault {name}: {FAULTS[name].what}")
            results.append(drill.run_fault(FAULTS[name]))
    finally:
        drill.close()
        run.stop()
    say(f"the ledger table {ledger.TABLE} stays in each source (and target); drop it when done")
    return results, {}
