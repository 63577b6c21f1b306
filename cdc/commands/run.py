"""`cdc run --config cdc.toml`: the long-running job (sources -> Kafka -> targets), with /metrics and /healthz."""

from __future__ import annotations

import logging
import signal
import threading

import click

from cdc.config import Config, SourceConfig, TargetConfig, VerifyConfig, load_config
from cdc.logs import setup_logging
from cdc.metrics import serve_metrics
from cdc.sandbox.ports import HOST, pick_free_port, port_is_free
from cdc.supervisor import Component, Supervisor

log = logging.getLogger("cdc.run")


def kafka_env(config: Config) -> dict[str, str]:
    """The environment every child gets: the Kafka backend and its TLS/SASL settings (secrets included)."""
    return {"CDC_KAFKA_BACKEND": config.kafka.backend, **config.kafka.security.environment()}


def capture_env(config: Config, source: SourceConfig) -> dict[str, str]:
    """The environment of one [[source]]'s `cdc capture`: its URL (password, options) never goes on argv."""
    return {**kafka_env(config), "CDC_SOURCE": source.url.secret_text()}


def apply_env(config: Config, target: TargetConfig) -> dict[str, str]:
    """The environment of one [[target]]'s `cdc apply`: its URL (password, options) never goes on argv."""
    return {**kafka_env(config), "CDC_TARGET": target.url.secret_text()}


def capture_args(config: Config, source: SourceConfig) -> list[str]:
    """The `cdc capture` arguments of one [[source]] entry (the URL travels in `capture_env`)."""
    args = ["capture", "--kafka", config.kafka.bootstrap,
            "--prefix", source.prefix, "--snapshot", source.snapshot, "--compat", source.compat,
            "--heartbeat-interval", str(source.heartbeat_interval), "--kafka-backend", config.kafka.backend]
    if source.tables:
        args += ["--tables", ",".join(source.tables)]
    if source.include:
        args += ["--include", source.include]
    if source.keyless != "refuse":
        args += ["--keyless", source.keyless]
    for option, value in (("--slot", source.slot), ("--publication", source.publication),
                          ("--server-id", source.server_id), ("--max-message-bytes", source.max_message_bytes),
                          ("--max-spool-bytes", source.max_spool_bytes)):
        if value is not None:
            args += [option, str(value)]
    if source.failover_slot is not None:
        args.append("--failover-slot" if source.failover_slot else "--no-failover-slot")
    return args


def apply_args(config: Config, target: TargetConfig) -> list[str]:
    """The `cdc apply` arguments of one [[target]] entry (the URL travels in `apply_env`)."""
    args = ["apply", "--kafka", config.kafka.bootstrap, "--prefix", target.prefix,
            "--workers", str(target.workers), "--on-error", target.on_error, "--consistency", target.consistency,
            "--drop-columns", target.drop_columns, "--kafka-backend", config.kafka.backend]
    if target.tables:
        args += ["--tables", ",".join(target.tables)]
    if target.create_tables:
        args.append("--create-tables")
    if target.group:
        args += ["--group", target.group]
    if target.max_poll_interval_ms is not None:
        args += ["--max-poll-interval-ms", str(target.max_poll_interval_ms)]
    if target.max_transaction_bytes is not None:
        args += ["--max-transaction-bytes", str(target.max_transaction_bytes)]
    return args


def verify_args(config: Config, verify: VerifyConfig) -> list[str]:
    """The `cdc verify-schedule` arguments of one [[verify]] entry (it reads the URLs from the config file)."""
    return ["verify-schedule", "--config", str(config.path.resolve()), "--name", verify.pipeline]


def metrics_ports(count: int, taken: set[int]) -> int:
    """The first of `count` consecutive free loopback ports (apply worker n serves on the first + n)."""
    for _ in range(100):
        first = pick_free_port(taken)
        ports = range(first, first + count)
        if all(port not in taken and port_is_free(port) for port in ports):
            taken.update(ports)
            return first
    raise RuntimeError(f"found no {count} consecutive free ports for the children's /metrics")


def _with_metrics(component: Component, count: int, taken: set[int]) -> Component:
    """Give a child `--metrics` on loopback port(s) of its own; `cdc run` scrapes and merges them."""
    first = metrics_ports(count, taken)
    component.args += ["--metrics", f"{HOST}:{first}"]
    component.metrics = tuple(f"http://{HOST}:{port}/metrics" for port in range(first, first + count))
    return component


def components_for(config: Config, *, child_metrics: bool = True) -> list[Component]:
    """One supervised component per [[source]], [[target]] and [[verify]], each serving its own /metrics."""
    env = kafka_env(config)
    components = [
        (Component(f"capture:{s.prefix}:{s.url.engine}@{s.url.host}:{s.url.port}/{s.url.database}",
                   capture_args(config, s), env=capture_env(config, s)), 1)
        for s in config.sources
    ]
    components += [
        (Component(f"apply:{t.prefix}->{t.url.engine}@{t.url.host}:{t.url.port}/{t.url.database}",
                   apply_args(config, t), env=apply_env(config, t)),
         t.workers)
        for t in config.targets
    ]
    components += [(Component(f"verify:{v.pipeline}", verify_args(config, v), env=env), 1) for v in config.verifies]
    migrations = [Component(f"migrate:{m.name}", ["migrate", "run", m.name, "--config", str(config.path.resolve())],
                            env=env) for m in config.migrations]  # each runs its own children, no /metrics
    if not child_metrics:
        return [component for component, _ in components] + migrations
    taken: set[int] = set()
    return [_with_metrics(component, count, taken) for component, count in components] + migrations


def merged_registry(supervisor: Supervisor):
    """`cdc run`'s /metrics: its own families and every running child's, merged (cdc/metrics_merge.py)."""
    from prometheus_client import REGISTRY, CollectorRegistry

    from cdc.metrics_merge import MergedMetrics

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MergedMetrics(REGISTRY, supervisor.metrics_urls))
    return registry


@click.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="The cdc.toml file.")
def command(config_path: str) -> None:
    """Run every [[source]] (capture), [[target]] (apply), [[verify]] (scheduled parity checks) and
    [[migration]] (`cdc migrate run`) of a config until SIGTERM/SIGINT.

    Children are restarted with back-off when they exit; /metrics (every child's metrics merged) and
    /healthz are served on [metrics] listen (default 127.0.0.1:9187). See docs/configuration.md and
    docs/operations.md (monitoring).

    \b
    Example:
      cdc run --config cdc.toml
    """
    config = load_config(config_path)
    setup_logging(config.log_format, config.log_level)
    supervisor = Supervisor(components_for(config, child_metrics=bool(config.metrics_listen)),
                            log_format=config.log_format)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = serve_metrics(config.metrics_listen, supervisor.healthy, registry=merged_registry(supervisor)) \
        if config.metrics_listen else None
    log.info("running %d component(s)", len(supervisor.components), extra={"metrics": config.metrics_listen})
    try:
        while not stop.is_set():
            supervisor.poll()
            stop.wait(0.5)
    finally:
        supervisor.stop()
        if server is not None:
            server.shutdown()
    log.info("stopped")
