"""`cdc verify-schedule --config cdc.toml --name NAME`: repeat one [[verify]] entry's parity check forever.

`cdc run` starts one per [[verify]] entry as a supervised child; it can also run alone. The database URLs
come from the config file (never from the command line: they may hold passwords).
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from cdc.commands.options import metrics_option
from cdc.config import load_config
from cdc.errors import ConfigError

log = logging.getLogger("cdc.verify.schedule")


@click.command("verify-schedule")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="The cdc.toml file.")
@click.option("--name", help="The [[verify]] entry's name (default: the only one).")
@metrics_option()
@click.option("--first-after", type=float, metavar="SECONDS",
              help="Seconds before the first check (default: `every`, at most 60).")
def command(config_path: str, name: str | None, metrics: str, first_after: float | None) -> None:
    """Check parity of a [[verify]] entry every `every`, a slice at a time, keeping the last `keep` reports.

    \b
    Example:
      cdc verify-schedule --config cdc.toml --name shop --metrics 127.0.0.1:9188
    """
    from cdc.verify.schedule import ScheduledVerify

    config = load_config(config_path)
    entries = [v for v in config.verifies if name is None or v.pipeline == name]
    if len(entries) != 1:
        known = ", ".join(v.pipeline for v in config.verifies) or "none"
        raise ConfigError(f"{config_path}: {'no' if not entries else 'more than one'} [[verify]] entry "
                          f"{'named ' + repr(name) if name else ''}".rstrip(),
                          fix=f"pass --name with one of: {known}")
    schedule = ScheduledVerify(entries[0])
    server = None
    if metrics:
        from cdc.metrics import serve_metrics
        server = serve_metrics(metrics)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("checking parity of %s every %gs", entries[0].pipeline, entries[0].every_seconds,
             extra={"report_dir": str(entries[0].report_dir)})
    try:
        schedule.run(stop, first_after)
    finally:
        if server is not None:
            server.shutdown()
