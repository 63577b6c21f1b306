"""The state of a running `cdc run`, per pipeline, read from its /metrics (`cdc status --run`, `--watch`).

A pipeline is a topic prefix (the `pipeline` label, and a [[verify]] entry's name, which defaults to its
source's prefix). Rates (events/s) need two scrapes: `PipelineStatus` rows come from `summarise(previous,
current, seconds)`. Only metric values reach this view: never a URL or a password.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass

from prometheus_client.parser import text_string_to_metric_families

RESULTS = {0: "parity", 1: "differences", 2: "could not check"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(slots=True)
class PipelineStatus:
    """One row of `cdc status --watch`."""

    pipeline: str
    capture: str | None = None          # "up" / "down" / None (no capture in this run)
    apply: str | None = None
    position: str | None = None         # PG LSN (0/16B3748) or a MySQL binlog offset
    lag_seconds: float | None = None
    lag_bytes: float | None = None
    retained_wal_bytes: float | None = None
    captured_per_second: float | None = None
    applied_per_second: float | None = None
    captured_total: float = 0.0
    applied_total: float = 0.0
    last_check_seconds_ago: float | None = None
    last_check_result: str | None = None
    confirmed_differences: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def scrape_samples(url: str, timeout: float = 5.0) -> Samples:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the operator's own endpoint
        return parse_samples(response.read().decode())


def parse_samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _by_pipeline(samples: Samples, name: str) -> dict[str, float]:
    """Sum of a family's samples per `pipeline` label."""
    out: dict[str, float] = defaultdict(float)
    for (sample, labels), value in samples.items():
        if sample == name:
            pipeline = dict(labels).get("pipeline")
            if pipeline is not None:
                out[pipeline] += value
    return out


def _components(samples: Samples) -> dict[tuple[str, str], str]:
    """(kind, pipeline) -> "up"/"down" from cdc_component_up{component="capture:<prefix>:..."}."""
    out: dict[tuple[str, str], str] = {}
    for (sample, labels), value in samples.items():
        if sample != "cdc_component_up":
            continue
        component = dict(labels).get("component", "")
        kind, _, rest = component.partition(":")
        pipeline = rest.split(":")[0] if kind == "capture" else rest.split("->")[0]
        if kind == "verify":
            continue
        state = "up" if value >= 1 else "down"
        if out.get((kind, pipeline)) != "down":  # one down worker makes the pair down
            out[(kind, pipeline)] = state
    return out


def lsn_text(value: float) -> str:
    """A PG LSN as PostgreSQL writes it: 0/16B3748."""
    number = int(value)
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"


def summarise(current: Samples, previous: Samples | None = None, seconds: float = 0.0,
              now: float | None = None) -> list[PipelineStatus]:
    """Per-pipeline rows; rates are the counters' growth since `previous`, `seconds` earlier."""
    now = time.time() if now is None else now
    rows: dict[str, PipelineStatus] = {}

    def row(name: str) -> PipelineStatus:
        return rows.setdefault(name, PipelineStatus(name))

    for (kind, pipeline), state in _components(current).items():
        if kind in ("capture", "apply"):
            setattr(row(pipeline), kind, state)
    engines = {dict(labels).get("component", "").split(":")[1]: dict(labels).get("component", "")
               for (sample, labels) in current if sample == "cdc_component_up"
               and dict(labels).get("component", "").startswith("capture:")}
    for pipeline, value in _by_pipeline(current, "cdc_capture_acked_position").items():
        component = engines.get(pipeline, "")
        row(pipeline).position = lsn_text(value) if ":postgresql@" in component else str(int(value))
    for attribute, family in (("lag_seconds", "cdc_capture_lag_seconds"), ("lag_bytes", "cdc_source_lag_bytes"),
                              ("retained_wal_bytes", "cdc_source_retained_wal_bytes"),
                              ("confirmed_differences", "cdc_verify_differences_confirmed")):
        for pipeline, value in _by_pipeline(current, family).items():
            setattr(row(pipeline), attribute, value)
    for attribute, family in (("captured", "cdc_events_captured_total"), ("applied", "cdc_events_applied_total")):
        before = _by_pipeline(previous, family) if previous is not None else {}
        for pipeline, value in _by_pipeline(current, family).items():
            setattr(row(pipeline), f"{attribute}_total", value)
            if previous is not None and seconds > 0:
                setattr(row(pipeline), f"{attribute}_per_second",
                        round(max(0.0, value - before.get(pipeline, 0.0)) / seconds, 1))
    for pipeline, value in _by_pipeline(current, "cdc_verify_last_check_timestamp_seconds").items():
        if value > 0:
            row(pipeline).last_check_seconds_ago = round(max(0.0, now - value), 1)
    for pipeline, value in _by_pipeline(current, "cdc_verify_last_exit_code").items():
        if row(pipeline).last_check_seconds_ago is not None:
            row(pipeline).last_check_result = RESULTS.get(int(value), str(int(value)))
    return [rows[name] for name in sorted(rows)]


def metrics_url(run: str) -> str:
    """`HOST:PORT` (or a bare PORT, or a full http URL) of `cdc run` -> its /metrics URL."""
    if run.startswith(("http://", "https://")):
        return run if run.rstrip("/").endswith("/metrics") else run.rstrip("/") + "/metrics"
    host, _, port = run.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{port}/metrics"


def read_run(run: str, seconds: float = 1.0) -> list[PipelineStatus]:
    """Rows of a running `cdc run`: two scrapes `seconds` apart (for the rates)."""
    url = metrics_url(run)
    first = scrape_samples(url)
    time.sleep(seconds)
    return summarise(scrape_samples(url), first, seconds)


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if unit == "B":
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    return f"{value:,.{digits}f}{unit}"


def render_table(rows: list[PipelineStatus], source: str):
    """A rich Table of the rows (`cdc status --watch`)."""
    from rich.table import Table

    table = Table(title=f"cdc run at {source}  ({time.strftime('%H:%M:%S')})", title_justify="left")
    for column in ("pipeline", "capture", "apply", "position", "lag", "lag bytes", "retained WAL", "captured/s",
                   "applied/s", "last parity check", "result"):
        table.add_column(column, justify="right" if column not in ("pipeline", "result") else "left",
                         no_wrap=column == "pipeline")
    styles = {"up": "green", "down": "bold red", "parity": "green", "differences": "bold red",
              "could not check": "yellow"}
    for row in rows:
        def styled(text: str | None) -> str:
            return f"[{styles[text]}]{text}[/]" if text in styles else (text or "-")

        result = row.last_check_result
        if result == "differences" and row.confirmed_differences:
            result_text = f"[bold red]differences ({row.confirmed_differences:.0f} confirmed)[/]"
        else:
            result_text = styled(result)
        table.add_row(row.pipeline, styled(row.capture), styled(row.apply), row.position or "-",
                      _number(row.lag_seconds, " s", 2), _number(row.lag_bytes, "B"), _number(row.retained_wal_bytes, "B"),
                      _number(row.captured_per_second), _number(row.applied_per_second),
                      "-" if row.last_check_seconds_ago is None else f"{row.last_check_seconds_ago:.0f} s ago",
                      result_text)
    return table


def watch(run: str, console, interval: float = 2.0, stop: threading.Event | None = None) -> None:
    """Redraw the table every `interval` seconds until `stop` (or Ctrl-C)."""
    from rich.live import Live

    stop = stop or threading.Event()
    url = metrics_url(run)
    previous, at = None, time.monotonic()
    with Live(console=console, auto_refresh=False) as live:
        while True:
            try:
                current, now = scrape_samples(url), time.monotonic()
                live.update(render_table(summarise(current, previous, now - at), run), refresh=True)
                previous, at = current, now
            except OSError as exc:
                live.update(f"[yellow]cannot read {url}: {exc}[/yellow]", refresh=True)
            if stop.wait(interval):
                return
