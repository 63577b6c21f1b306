"""One /metrics for `cdc run`: scrape each child's endpoint at collect time and merge the families.

Each supervised child (capture, apply, scheduled verify) serves its own registry on a loopback port that
`cdc run` picked; `MergedMetrics` is the collector of `cdc run`'s /metrics, so one scrape of
`cdc run` returns its own families plus every child's, each family once (HELP/TYPE), samples side by
side (children differ by their `pipeline` label). A child that is down or slow (over `timeout`) is left
out of that scrape: its counters disappear until it is back, which Prometheus reads as a reset.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)


def scrape(url: str, timeout: float) -> str | None:
    """The Prometheus text of one endpoint, or None when it does not answer in time."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a loopback URL we built
            return response.read().decode()
    except OSError as exc:
        log.debug("scrape of %s failed: %s", url, exc)
        return None


def merge_families(families: Iterable[Metric]) -> list[Metric]:
    """Merge families of the same name (first HELP/TYPE wins), dropping `_created` samples."""
    merged: dict[str, Metric] = {}
    for family in families:
        if family.name.endswith("_created"):
            continue  # prometheus_client's creation times of counters/histograms: noise in a merged view
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        if family.name not in merged:
            merged[family.name] = Metric(family.name, family.documentation, family.type)
        merged[family.name].samples.extend(samples)
    return list(merged.values())


def parse_families(texts: Iterable[str]) -> Iterator[Metric]:
    """The families of several Prometheus texts, in order."""
    for text in texts:
        yield from text_string_to_metric_families(text)


class MergedMetrics:
    """A prometheus_client collector: `local`'s families plus those of the endpoints `endpoints()` names now.

    Register it alone in a fresh CollectorRegistry: `local` (the process's default registry) is read
    through it, so a family defined both here and in a child is written once.
    """

    def __init__(self, local, endpoints: Callable[[], list[str]], timeout: float = 2.0) -> None:
        self.local = local
        self.endpoints = endpoints
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="metrics-scrape")

    def collect(self) -> Iterator[Metric]:
        urls = self.endpoints()
        texts = [text for text in self.pool.map(lambda url: scrape(url, self.timeout), urls) if text]
        yield from merge_families([*self.local.collect(), *parse_families(texts)])

    def describe(self) -> list[Metric]:
        return []  # families are known only at scrape time; an empty describe keeps registration lazy
