"""The apply worker: a consumer-group member that turns `<prefix>.*` records into target transactions.

    consume (up to batch_size records or linger_ms) -> prepare (decode, fold, convert) -> write (rows +
    cdc_offsets, one target transaction, on a writer thread while the next batch is prepared) ->
    commit the same offsets to Kafka (for lag monitoring only)

On assignment (start and every rebalance) each partition is sought to the next offset stored in the
target's `cdc_offsets`, so a crash anywhere loses nothing and applies nothing twice. `--workers N`
runs N of these processes in one group; Kafka shares the partitions between them.

Start-up: the worker waits until a table topic of the prefix exists, then subscribes (a pattern
subscription would see a later topic only at its next metadata refresh, 5 s, and join again); the
session timeout defaults to the lowest the broker accepts (cdc.kafka.group_join: Apache Kafka's
group.min.session.timeout.ms, 6 s by default; 3 s on tansu, which answers a JoinGroup after about half
of it). The schemas topic is read by assignment, not by joining a group; a batch's first record is
waited for alone and the broker
may hold an empty fetch only FETCH_MAX_WAIT_MS, so a record waits at most linger_ms for its batch.
`--metrics LISTEN` serves cdc_events_applied_total, cdc_apply_lag_seconds (source commit -> target
commit) and cdc_events_dead_lettered_total.
"""

from __future__ import annotations

import fnmatch
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cdc.apply.batch import BatchApplier, OverlappedApplier
from cdc.apply.dlq import POLICIES, DeadLetterPolicy, SkipTablePolicy, StopPolicy
from cdc.apply.offsets import start_offsets
from cdc.apply.schemas import SchemaCatalog
from cdc.apply.target import TargetWriter, open_writer
from cdc.errors import CdcError, ConfigError, KafkaError, TargetError
from cdc.gc_tuning import collect_less_often
from cdc.kafka import Consumer, Record, make_consumer, make_producer, read_topic
from cdc.kafka.backends import choose_backend
from cdc.kafka.group_join import fastest_session_timeout_ms, wait_for_topics
from cdc.tables import QUOTES, split_table_entry

log = logging.getLogger(__name__)

CONSISTENCY_MODES = ("batch", "transaction")
FETCH_MAX_WAIT_MS = 20
PREFETCH_KBYTES = 16 * 1024
OWN_TOPICS = frozenset({"schemas", "schema-changes", "transaction", "dlq"})  # <prefix>.<these> hold no table rows


@dataclass(slots=True, frozen=True)
class ApplyOptions:
    """Everything one apply worker needs (picklable, so `--workers N` can hand it to child processes)."""

    kafka: str
    prefix: str
    target: str
    group: str = ""
    tables: tuple[str, ...] = ()
    create_tables: bool = False
    drop_columns: str = "keep"
    on_error: str = "stop"
    consistency: str = "batch"
    workers: int = 1
    batch_size: int = 10000
    linger_ms: int = 200
    # None: the lowest the broker accepts (cdc.kafka.group_join); the group join on tansu waits about half
    # of it, and a dead worker's partitions move after it.
    session_timeout_ms: int | None = None
    max_poll_interval_ms: int = 60000
    metrics: str = ""  # HOST:PORT (or PORT) to serve /metrics and /healthz on; worker n of N uses PORT+n
    max_transaction_bytes: int = 256 * 1024 * 1024  # --consistency transaction: bound of the held events
    idle_exit_s: float | None = None  # stop after this long without records (tests, one-shot catch-up)
    consumer_options: dict[str, Any] = field(default_factory=dict)

    def group_id(self) -> str:
        return self.group or f"cdc-apply-{self.prefix}"

    def check(self) -> None:
        if self.on_error not in POLICIES:
            raise ConfigError(f"--on-error {self.on_error!r} is not one of {', '.join(POLICIES)}")
        if self.consistency not in CONSISTENCY_MODES:
            raise ConfigError(f"--consistency {self.consistency!r} is not one of {', '.join(CONSISTENCY_MODES)}")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.consistency == "transaction" and self.workers > 1:
            raise ConfigError("--consistency transaction needs --workers 1",
                              fix="a source transaction spans partitions that several workers would split")
        if not self.prefix:
            raise ConfigError("--prefix is empty", fix="give the topic prefix the capture side writes, e.g. --prefix shop")


def table_filter(patterns: tuple[str, ...]) -> Callable[[str], bool] | None:
    """A predicate on `namespace.table` for --tables (each pattern: `table`, `ns.table`, globs allowed; an
    entry with quoted parts, `public."order items"` or ``db.`order items` ``, names one table exactly)."""
    if not patterns:
        return None
    exact = set()
    for pattern in patterns:
        if any(quote in pattern for quote in QUOTES):
            namespace, table = split_table_entry(pattern)
            exact.add(f"{namespace}.{table}" if namespace else table)
    patterns = tuple(p for p in patterns if not any(quote in p for quote in QUOTES))

    def wanted(qualified: str) -> bool:
        bare = qualified.rsplit(".", 1)[-1]
        if qualified in exact or bare in exact:
            return True
        return any(fnmatch.fnmatchcase(qualified, p) or fnmatch.fnmatchcase(bare, p) for p in patterns)

    return wanted


class ApplyWorker:
    """One consumer-group member with its own target connection."""

    def __init__(self, options: ApplyOptions, stop: threading.Event | None = None) -> None:
        options.check()
        self.options = options
        self.stop = stop or threading.Event()
        self.group = options.group_id()
        self.writer: TargetWriter | None = None
        self.consumer: Consumer | None = None
        self._pending: list[Record] = []
        self.applier: Any = None
        self.batches = 0
        self.records = 0
        self.first_assigned_at: float | None = None  # time.monotonic() of the first assignment

    def _consumer_options(self) -> dict[str, Any]:
        session_timeout_ms = self.options.session_timeout_ms or fastest_session_timeout_ms(self.options.kafka)
        options = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(100, session_timeout_ms // 6),
            "max_poll_interval_ms": max(self.options.max_poll_interval_ms, session_timeout_ms),
            # How long the broker may hold a fetch that has no new data. tansu holds it that long even when
            # records arrive meanwhile (the 500 ms default added ~150 ms median, 250 ms worst, to the lag);
            # a real broker answers as soon as data arrives, so this only costs more empty fetches when idle.
            "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        }
        if choose_backend() == "confluent":
            # librdkafka prefetches up to 64 MB per consumer by default: a third of a worker's RSS during a
            # snapshot (230 -> 136 MB peak applying 200k rows), while two batches ahead keep it busy.
            options["queued.max.messages.kbytes"] = PREFETCH_KBYTES
        options.update(self.options.consumer_options)
        return options

    def _is_table_topic(self, topic: str) -> bool:
        """A topic of a captured table (`<prefix>.<ns>.<table>`), not one of the prefix's own topics."""
        head = self.options.prefix + "."
        return topic.startswith(head) and topic[len(head):] not in OWN_TOPICS

    def _read_schemas(self) -> list[Record]:
        return read_topic(self.options.kafka, f"{self.options.prefix}.schemas", timeout=60.0, missing_ok=True)

    def _assigned(self, consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
        self._drain()
        if hasattr(self.applier, "reset"):  # held transactions are read again from the stored offsets
            self.applier.reset()
        stored = self.writer.load_offsets(self.group, partitions)
        for (topic, partition), offset in start_offsets(partitions, stored).items():
            consumer.seek(topic, partition, offset)
        if self.first_assigned_at is None:
            self.first_assigned_at = time.monotonic()
        log.info("partitions assigned", extra={"partitions": len(partitions), "stored": len(stored)})

    def _revoked(self, consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
        self._drain()  # the write in flight stores its offsets before the partitions move
        revoked = set(partitions)
        self._pending = [r for r in self._pending if (r.topic, r.partition) not in revoked]
        log.info("partitions revoked", extra={"partitions": len(partitions)})

    def _collect(self) -> list[Record]:
        """Up to batch_size records, waiting at most linger_ms after the first one."""
        size = self.options.batch_size
        deadline = None
        while len(self._pending) < size and not self.stop.is_set():
            if deadline is None and not self._pending:
                # Wait for the first record alone: librdkafka's consume(n, timeout) returns only when it
                # has n records or the timeout passed, so asking for a whole batch here would hold the
                # first record up to 0.5 s, whatever linger_ms says.
                got = self.consumer.consume(max_records=1, timeout=0.5)
            else:
                wait = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
                got = self.consumer.consume(max_records=size - len(self._pending), timeout=wait)
            if got:
                self._pending.extend(got)
                if deadline is None:
                    deadline = time.monotonic() + self.options.linger_ms / 1000
            if deadline is None:
                return []
            if time.monotonic() >= deadline:
                break
        batch, self._pending = self._pending, []
        return batch

    def run(self) -> None:
        """Consume and apply until stopped (SIGTERM/SIGINT, `stop` set, or idle_exit_s without records)."""
        options = self.options
        self.writer = open_writer(options.target, create_tables=options.create_tables,
                                  drop_columns=options.drop_columns)
        policy = (DeadLetterPolicy(make_producer(options.kafka), options.prefix) if options.on_error == "dlq"
                  else SkipTablePolicy() if options.on_error == "skip-table" else StopPolicy())
        try:
            # Subscribe first: librdkafka joins the group in the background (seconds on tansu) while the
            # offsets table and the schemas are read; the assignment is served by the first consume().
            pattern = "^" + options.prefix.replace(".", "\\.") + "\\..*"
            wait_for_topics(options.kafka, self._is_table_topic, stopped=self.stop.is_set,
                            timeout=options.idle_exit_s)
            self.consumer = make_consumer(options.kafka, group_id=self.group, pattern=pattern,
                                          on_assign=self._assigned, on_revoke=self._revoked,
                                          **self._consumer_options())
            self.writer.ensure_offsets_table()
            self.writer.ensure_table_state_table()
            schemas = SchemaCatalog(refresh=self._read_schemas)
            for record in self._read_schemas():
                schemas.add_record(record)
            self._claim_targets(schemas)
            applier = BatchApplier(self.writer, schemas, group=self.group, prefix=options.prefix, policy=policy,
                                   tables=table_filter(options.tables),
                                   metrics_prefix=options.prefix if options.metrics else None)
            applier.load_parked()
            if options.consistency == "transaction":
                from cdc.apply.transactions import TransactionApplier

                applier = TransactionApplier(applier, options.prefix, options.max_transaction_bytes)
            else:
                applier = OverlappedApplier(applier)
            self.applier = applier
            log.info("apply worker started", extra={"group": self.group, "prefix": options.prefix,
                                                    "target": self.writer.url.redacted(), "pid": os.getpid()})
            self._loop(applier)
        finally:
            if isinstance(self.applier, OverlappedApplier):
                self.applier.close()
            if self.consumer is not None:
                self.consumer.close()
            policy.close()
            self.writer.close()

    def _claim_targets(self, schemas: SchemaCatalog) -> None:
        """Refuse at start two wanted source tables that the target's mapping rule folds into one table."""
        wanted = table_filter(self.options.tables)
        for schema in schemas.latest():
            if wanted is None or wanted(schema.qualified_name):
                self.writer.claim(schema)

    def _drain(self) -> None:
        """Wait for a write in flight and report its offsets to Kafka."""
        if isinstance(self.applier, OverlappedApplier):
            self._committed(self._guard(self.applier.drain))

    def _guard(self, call: Callable[[], Any]) -> Any:
        """Run a target write; a failure that is not ours becomes a TargetError (nothing of it committed)."""
        try:
            return call()
        except CdcError:
            raise
        except Exception as exc:  # connection lost, server gone
            raise TargetError(
                f"writing a batch to {self.writer.url.redacted()} failed: {type(exc).__name__}: {exc}".strip(),
                fix="check the target database; a restart resumes from the offsets stored in cdc_offsets",
            ) from exc

    def _committed(self, offsets: dict[tuple[str, int], int] | None) -> None:
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:  # the target holds the truth; Kafka's copy is for lag monitoring
            log.warning("could not commit offsets to Kafka (the target has them)", extra={"reason": str(exc)})

    def _loop(self, applier: Any) -> None:
        idle_since = time.monotonic()
        try:
            while not self.stop.is_set():
                records = self._collect()
                if not records:
                    self._drain()
                    if not self.consumer.assignment():  # still joining the group: not idle yet
                        idle_since = time.monotonic()
                    elif self.options.idle_exit_s is not None and time.monotonic() - idle_since > self.options.idle_exit_s:
                        log.info("no records for a while: stopping", extra={"idle_s": self.options.idle_exit_s})
                        return
                    continue
                idle_since = time.monotonic()
                if isinstance(applier, OverlappedApplier):
                    committed = self._guard(lambda: applier.submit(records))
                else:
                    committed = self._guard(lambda: applier.apply(records))
                self.batches += 1
                self.records += len(records)
                self._committed(committed)
        finally:
            self._drain()


def run_worker(options: ApplyOptions) -> None:
    """Run one worker in this process until SIGTERM/SIGINT (a clean stop after the current batch)."""
    stop = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    collect_less_often()
    worker = ApplyWorker(options, stop)
    server = None
    if options.metrics:
        from cdc.metrics import serve_metrics

        server = serve_metrics(options.metrics, healthy=lambda: (
            (True, "ok") if worker.consumer is not None and not stop.is_set() else (False, "starting or stopping")))
        log.info("serving metrics", extra={"listen": options.metrics})
    try:
        worker.run()
    finally:
        if server is not None:
            server.shutdown()


def _child(options: ApplyOptions, log_format: str, log_level: str) -> None:
    from cdc.logs import setup_logging

    setup_logging(log_format, log_level)
    try:
        run_worker(options)
    except CdcError as exc:
        log.error("apply worker failed: %s", exc)
        raise SystemExit(exc.exit_code) from None


def _nth_listen(listen: str, n: int) -> str:
    """Worker n's metrics address: the port of `listen` plus n ("" stays "")."""
    if not listen:
        return ""
    host, _, port = listen.rpartition(":")
    return f"{host}:{int(port) + n}" if host else str(int(port) + n)


def run_workers(options: ApplyOptions, *, log_format: str = "human", log_level: str = "info") -> int:
    """Run `options.workers` worker processes in one group; returns the first non-zero exit code (else 0)."""
    if options.workers == 1:
        run_worker(options)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child, args=(replace(options, workers=1, metrics=_nth_listen(options.metrics, n)),
                                                     log_format, log_level),
                                name=f"cdc-apply-{n}") for n in range(options.workers)]
    for child in children:
        child.start()

    def forward(signum, frame):  # noqa: ARG001
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(0.5)
            if child.exitcode not in (None, 0) and code == 0:
                code = child.exitcode
                log.error("an apply worker exited with an error: stopping the others",
                          extra={"worker": child.name, "exit_code": code})
                forward(signal.SIGTERM, None)
    return code
