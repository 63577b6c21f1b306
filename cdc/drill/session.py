"""One drill: sandbox (or a real config), proxies, `cdc run`, the ledger load; each fault in turn, then checks."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cdc.drill import ledger
from cdc.drill.cdc_run import CdcRun
from cdc.drill.faults import FAULTS, NOT_IN_SANDBOX, DrillTarget, Fault, Pipeline, Timings
from cdc.drill.proxy import TcpProxy
from cdc.drill.repeats import RepeatCounter
from cdc.drill.report import FaultResult

log = logging.getLogger("cdc.drill")
logging.getLogger("psycopg").setLevel(logging.ERROR)  # the ledger's connections break on purpose

SPOOL_TMPFS_SIZE = "1m"  # the PostgreSQL capture's spool filesystem in the sandbox (see faults/spool_full.py)
STREAM_AFTER = "64kB"  # logical_decoding_work_mem on the drill's PostgreSQL source: big transactions stream early


@dataclass(slots=True)
class DrillOptions:
    """What `cdc drill` was asked for."""

    faults: list[str]
    duration: float = 60.0
    rate: float = 1000.0
    timings: Timings = field(default_factory=Timings)
    catch_up_seconds: float = 180.0
    work_dir: Path | None = None
    pairs: tuple[str, ...] = ("postgres-to-mariadb", "mariadb-to-postgres")


def with_database(url: str, database: str, *, port: int | None = None) -> str:
    """The same server URL with another database (and port)."""
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else f"{parts.netloc.rpartition(':')[0]}:{port}"
    return urlunsplit(parts._replace(path=f"/{database}", netloc=netloc))


def sandbox_config(kafka: str, pipelines: list[tuple[Pipeline, str, str, str]]) -> str:
    """The drill's `cdc run` config: per pipeline (pipeline, source URL via proxy, target URL via proxy, prefix)."""
    lines = [f'[kafka]\nbootstrap = "{kafka}"\n']
    for pipeline, source, _, prefix in pipelines:
        schema = "public" if pipeline.source_server == "postgres" else urlsplit(source).path.lstrip("/")
        lines.append(f'[[source]]\nurl = "{source}"\nprefix = "{prefix}"\ntables = ["{schema}.{ledger.TABLE}"]\n'
                     'snapshot = "initial"\nheartbeat_interval = 5\n')
    for pipeline, _, target, prefix in pipelines:
        lines.append(f'[[target]]\nurl = "{target}"\nprefix = "{prefix}"\ncreate_tables = true\n'
                     'max_poll_interval_ms = 10000\n')
    lines.append('[metrics]\nlisten = ""\n')
    return "\n".join(lines)


def recreate_database(server_url: str, name: str) -> str:
    """Drop (slots first) and create a database on the server; its URL."""
    url = with_database(server_url, name)
    if ledger.engine_of(server_url) == "postgresql":
        import psycopg
        from psycopg import sql

        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                         (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return url
    conn = ledger.connect(server_url)
    try:
        cursor = conn.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    return url


def stream_big_transactions_early(url: str) -> None:
    """Lower logical_decoding_work_mem for the source database's walsenders (plain SQL)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET logical_decoding_work_mem = {}").format(
            sql.Identifier(urlsplit(url).path.lstrip("/")), sql.Literal(STREAM_AFTER)))


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path | None]:
    """Mount a tmpfs of `size` at path (root only); None when it cannot."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        yield None
        return
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log.warning("cannot mount a tmpfs for the spool: %s", result.stderr.strip())
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


class Drill:
    """Runs the faults one after another against a running `cdc run`, and checks after each."""

    def __init__(self, target: DrillTarget, options: DrillOptions, kafka: str, say: Callable[[str], None]) -> None:
        self.target = target
        self.options = options
        self.say = say
        self.writers = target.writers
        self.counters = {p.name: RepeatCounter(kafka, p.topic) for p in target.pipelines}
        self.counted_lost: set[tuple[str, int]] = set()
        self.repeats_seen = 0

    def warm_up(self) -> None:
        """Start the load and wait until every target has the first writes."""
        for writer in self.writers.values():
            writer.fault = "warm-up"
            writer.start()
        for pipeline in self.target.pipelines:
            if self._first_applied(pipeline, 1, self.options.catch_up_seconds) is None:
                raise RuntimeError(f"{pipeline.name}: nothing reached the target within "
                                   f"{self.options.catch_up_seconds:.0f}s; see {self.target.run.log_path}")
        self.check("warm-up")

    def run_fault(self, fault: Fault) -> FaultResult:
        """Load, inject, load, then pause the load and check."""
        for writer in self.writers.values():
            writer.fault = fault.name
            writer.resume()
        half = self.options.duration / 2
        time.sleep(half)
        error = None
        started = time.monotonic()
        try:
            note = fault.inject(self.target)
        except Exception as exc:  # noqa: BLE001  (the result says what went wrong; the drill goes on)
            note, error = "", f"injector failed: {type(exc).__name__}: {exc}"
        released = time.monotonic()
        markers = {name: writer.next_id for name, writer in self.writers.items()}
        recovery = []
        for pipeline in self.target.pipelines:
            applied = self._first_applied(pipeline, markers[pipeline.name], self.options.catch_up_seconds)
            recovery.append(None if applied is None else applied - released)
        time.sleep(max(0.0, half - (time.monotonic() - released)))
        log.debug("%s injected in %.1fs", fault.name, released - started)
        result = self.check(fault.name)
        recovery_seconds = None if None in recovery else round(max(recovery), 1)
        if recovery_seconds is None and error is None:
            error = f"no write made after the fault reached a target within {self.options.catch_up_seconds:.0f}s"
        return FaultResult(fault.name, fault.what, note, *result, recovery_seconds=recovery_seconds,
                           parity=self.parity(), error=error)

    def check(self, label: str) -> tuple[int, int, int, int]:
        """Pause the load, wait for the targets, tally: (acknowledged, lost, source_lost, repeated), lost and
        repeated counted anew since the previous check."""
        for writer in self.writers.values():
            writer.pause()
        acknowledged = lost = source_lost = 0
        for pipeline in self.target.pipelines:
            expected = self.writers[pipeline.name].snapshot()
            tally = self._wait_for_target(pipeline, expected)
            acknowledged += tally.acknowledged
            source_lost += len(tally.source_lost)
            new = {(pipeline.name, row) for row in tally.lost} - self.counted_lost
            self.counted_lost |= new
            lost += len(new)
        repeats = sum(counter.read() for counter in self.counters.values())
        repeated, self.repeats_seen = repeats - self.repeats_seen, repeats
        self.say(f"  {label}: {acknowledged} writes acknowledged, {lost} lost, {repeated} events repeated")
        return acknowledged, lost, source_lost, repeated

    def _wait_for_target(self, pipeline: Pipeline, expected: dict[int, int]) -> ledger.Tally:
        deadline = time.monotonic() + self.options.catch_up_seconds
        while True:
            source = ledger.read_versions(pipeline.source_url)
            target = ledger.read_versions(pipeline.target_url)
            tally = ledger.tally(expected, source, target)
            if (not tally.lost and source == target) or time.monotonic() > deadline:
                return tally
            time.sleep(0.5)

    def _first_applied(self, pipeline: Pipeline, marker: int, timeout: float) -> float | None:
        """When the target first holds a ledger row with id >= marker (None after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ledger.read_versions(pipeline.target_url, min_id=marker):
                return time.monotonic()
            time.sleep(0.1)
        return None

    def parity(self) -> bool:
        """`cdc verify` of every pipeline's ledger table (exit 0), with the load paused."""
        ok = True
        for pipeline in self.target.pipelines:
            with open(self.target.run.log_path.with_name("verify.log"), "ab") as out:
                # the URLs (with passwords) go through the environment, never the command line
                env = {**os.environ, "CDC_SOURCE": pipeline.source_url, "CDC_TARGET": pipeline.target_url}
                # no --wait-for-lag: the ledger check waited until the target held what the source holds
                code = subprocess.run([sys.executable, "-m", "cdc.cli", "verify", "--tables", ledger.TABLE],
                                      stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            ok = ok and code == 0
        return ok

    def close(self) -> None:
        for writer in self.writers.values():
            writer.stop()
        for counter in self.counters.values():
            counter.close()


@contextmanager
def sandbox_rig(options: DrillOptions, say: Callable[[str], None]) -> Iterator[Drill]:
    """A throwaway sandbox, proxies, `cdc run` and the ledger load, warmed up; all removed on exit."""
    from cdc import sandbox
    from cdc.sandbox.watchdog import guard

    work = options.work_dir or Path(tempfile.mkdtemp(prefix="cdc-drill-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the `postgres` user must reach its data dir when run as root
    with ExitStack() as cleanup:
        sandbox_dir = work / "sandbox"
        sandbox_dir.mkdir(exist_ok=True)
        sandbox_dir.chmod(0o755)
        watchdog = guard(sandbox_dir)
        cleanup.callback(lambda: (watchdog.terminate(), watchdog.wait(), sandbox.down(sandbox_dir, purge=True)))
        started = time.monotonic()
        endpoints = sandbox.up(sandbox_dir).state.endpoints()
        say(f"sandbox up in {sandbox_dir} ({time.monotonic() - started:.0f}s)")
        spool = cleanup.enter_context(small_tmpfs(work / "spool", SPOOL_TMPFS_SIZE))
        proxies = {name: TcpProxy(("127.0.0.1", urlsplit(url).port)) for name, url in
                   (("postgres", endpoints.pg_url), ("mariadb", endpoints.mysql_url))}
        for proxy in proxies.values():
            cleanup.callback(proxy.close)
        servers = {"postgres": endpoints.pg_url, "mariadb": endpoints.mysql_url}
        prefixes = {"postgres": "drill_pg", "mariadb": "drill_my"}
        entries = []
        for pair in options.pairs:
            source_server, target_server = pair.split("-to-")
            source = recreate_database(servers[source_server], f"drill_{prefixes[source_server][-2:]}_src")
            target = recreate_database(servers[target_server], f"drill_{prefixes[source_server][-2:]}_dst")
            ledger.create_table(source)
            if source_server == "postgres":
                stream_big_transactions_early(source)
            schema = "public" if source_server == "postgres" else urlsplit(source).path.lstrip("/")
            pipeline = Pipeline(pair, source, target, source_server, target_server,
                                f"{prefixes[source_server]}.{schema}.{ledger.TABLE}")
            entries.append((pipeline,
                            with_database(source, urlsplit(source).path.lstrip("/"), port=proxies[source_server].port),
                            with_database(target, urlsplit(target).path.lstrip("/"), port=proxies[target_server].port),
                            prefixes[source_server]))
        config = work / "cdc-drill.toml"
        config.write_text(sandbox_config(endpoints.kafka_bootstrap, entries))
        run = CdcRun(config, work / "cdc-run.log", env={"TMPDIR": str(spool)} if spool else None)
        run.start()
        cleanup.callback(run.stop)
        say(f"cdc run --config {config} (log: {run.log_path})")
        pipelines = [entry[0] for entry in entries]
        writers = {p.name: ledger.LedgerWriter(p.source_url, options.rate / len(pipelines)) for p in pipelines}
        target = DrillTarget(run, pipelines, sandbox_dir=sandbox_dir, proxies=list(proxies.values()),
                             timings=options.timings, writers=writers, spool_dir=spool)
        drill = Drill(target, options, endpoints.kafka_bootstrap, say)
        cleanup.callback(drill.close)
        drill.warm_up()
        yield drill


def run_sandbox_drill(options: DrillOptions, say: Callable[[str], None]) -> tuple[list[FaultResult], dict[str, str]]:
    """Start a throwaway sandbox, replicate through proxies under a ledger load, inject each fault, check."""
    skipped = dict(NOT_IN_SANDBOX)
    results: list[FaultResult] = []
    with sandbox_rig(options, say) as drill:
        for name in options.faults:
            fault = FAULTS[name]
            if name == "spool-full" and drill.target.spool_dir is None:
                skipped[name] = "needs root to mount a small tmpfs for the capture's spool"
                continue
            say(f"fault {name}: {fault.what}")
            results.append(drill.run_fault(fault))
    return results, skipped
