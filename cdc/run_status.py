"""The state of a running `cdc run`, per pipeline, read from its /metrics (`cdc status --run`, `--watch`).

A pipeline is a topic prefix (the `pipeline` label, and a [[verify]] entry's name, which defaults to its
source's prefix). Rates (events/s) need two scrapes: `PipelineStatus` rows come from `summarise(previous,
current, seconds)`. Only metric values reach this view: never a URL or a password.
"""

from __future__ import annotations

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
