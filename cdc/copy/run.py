"""The direct initial copy: every table from one consistent snapshot of the source into the target.

The source's connector opens a snapshot whose position is where the capture of `prefix` will start
(PostgreSQL: the slot's exported snapshot and consistent point; MariaDB: the GTID/binlog position of
consistent snapshots opened together, stored as the capture's position), so copy + streaming neither
lose nor repeat a change. Keyed tables are cut into key ranges (cdc/copy/ranges.py), so one big table
is copied by several connections at once; each range is one target transaction. PostgreSQL to
PostgreSQL passes the binary COPY stream through; other pairs go through an interchange text (or
Python values) and the target's bulk path (connectors/<engine>/bulk.py). Missing target tables can be
created first, their keys built after the load (cdc/copy/tables.py).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cdc.copy.ranges import integer_ranges, sample_fraction, sampled_ranges
from cdc.copy.tables import build_keys, create_tables as create_target_tables, drop_tables, missing_tables
from cdc.errors import ConfigError
from cdc.registry import bulk_module
from cdc.urls import parse_url

log = logging.getLogger(__name__)

RANGE_ROWS = 250_000  # a key range of about this many rows per job
QUEUE_BATCHES = 8     # batches in flight between a sequential reader and the writers


@dataclass(slots=True)
class CopyJob:
    """One key range [lo, hi) of one table, over its primary key columns (None: open-ended)."""

    table: str
    columns: list[str]
    json_columns: list[str]
    key: tuple[str, ...] = ()
    lo: tuple | None = None
    hi: tuple | None = None


@dataclass(slots=True)
class CopyResult:
    """What was copied, and where the capture starts."""

    position: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ranges: dict[str, int] = field(default_factory=dict)  # key ranges (jobs) per table
    created: list[str] = field(default_factory=list)  # target tables this copy created
    skipped_indexes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # table -> (index, why)


def plan_jobs(source, conn, tables: list[str], workers: int) -> list[CopyJob]:
    """Jobs for the tables: keyed tables cut into ranges of about RANGE_ROWS rows (at least `workers`)
    when the source reads in parallel; an integer key by arithmetic, any other by sampled boundaries."""
    jobs = []
    for table in tables:
        columns, json_columns, key, integer_key = source.describe(conn, table)
        if not key or not source.parallel:
            jobs.append(CopyJob(table, columns, json_columns))
            continue
        if integer_key:
            low, high = source.bounds(conn, table, key[0])
            if low is None:
                continue
            ranges = integer_ranges(int(low), int(high), max(workers, math.ceil((int(high) - int(low)) / RANGE_ROWS)))
        else:
            estimate = source.estimate_rows(conn, table)
            parts = max(workers, math.ceil(estimate / RANGE_ROWS))
            sample = source.sample_keys(conn, table, key, sample_fraction(estimate, parts))
            ranges = sampled_ranges(sample, parts)
        jobs.extend(CopyJob(table, columns, json_columns, key, lo, hi) for lo, hi in ranges)
    return jobs


def copy_tables(source_url: str, target_url: str, tables: list[str], prefix: str, *, workers: int = 4,
                kafka: str | None = None, create_tables: bool = False) -> CopyResult:
    """Copy `tables` into empty target tables and leave the capture of `prefix` ready to stream.

    create_tables: create missing target tables from the source's schema (cdc/copy/tables.py); their
    keys and indexes are built after the rows are in. Tables that exist must be empty either way.
    """
    if not tables:
        raise ConfigError("no tables to copy", fix="name them with --tables")
    source_db, target_db = parse_url(source_url, what="--source"), parse_url(target_url, what="--target")
    source = bulk_module(source_db).BulkSource(source_db)
    target = bulk_module(target_db).BulkTarget(target_db)
    workers = max(1, workers)
    started = time.monotonic()
    check = target.connect()
    try:
        missing = missing_tables(target, check, tables) if create_tables else []
        for table in tables:
            if table not in missing:
                target.check_empty(check, table)
    finally:
        check.close()
    position = source.start(prefix, tables, kafka, workers=workers)
    result = CopyResult(position)
    ok = False
    try:
        reader = source.open_reader()
        try:
            plans = create_target_tables(source, reader, target, target_url, missing, result.created)
            jobs = plan_jobs(source, reader, tables, workers)
        finally:
            source.close_reader(reader)
        for job in jobs:
            result.ranges[job.table] = result.ranges.get(job.table, 0) + 1
        log.info("copy starting", extra={"position": position, "tables": len(tables), "jobs": len(jobs)})
        counts = _run_parallel(source, target, jobs, workers) if source.parallel else \
            _run_sequential(source, target, jobs, workers)
        for job, count in counts:
            result.rows[job.table] = result.rows.get(job.table, 0) + count
        build_keys(target, plans, workers)
        result.skipped_indexes = {plan.table: plan.skipped for plan in plans if plan.skipped}
        ok = True
    finally:
        if not ok and result.created:
            drop_tables(target, result.created)
        source.finish(ok, kafka, prefix)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _passthrough(source, target) -> bool:
    return hasattr(source, "copy_out") and hasattr(target, "copy_in") and source.engine == target.engine


def _run_parallel(source, target, jobs: list[CopyJob], workers: int) -> list[tuple[CopyJob, int]]:
    """Each job on its own reader (same snapshot) and writer connection, `workers` at a time."""
    def run(job: CopyJob) -> tuple[CopyJob, int]:
        reader, writer = source.open_reader(), target.connect()
        try:
            if _passthrough(source, target):
                return job, target.copy_in(writer, job.table, job.columns,
                                           source.copy_out(reader, job.table, job.columns, job.key, job.lo, job.hi))
            if hasattr(source, "copy_out_text") and hasattr(target, "load_text"):
                binary, blocks = source.copy_out_text(reader, job.table, job.columns, job.key, job.lo, job.hi)
                return job, target.load_text(writer, job.table, job.columns, binary, blocks)
            return job, target.write(writer, job.table, job.columns,
                                     source.read(reader, job.table, job.columns, job.json_columns, job.key,
                                                 job.lo, job.hi))
        finally:
            source.close_reader(reader)
            writer.close()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy") as pool:
        return list(pool.map(run, jobs))


def _run_sequential(source, target, jobs: list[CopyJob], workers: int) -> list[tuple[CopyJob, int]]:
    """One reader (the only connection in the snapshot): its interchange text straight into the target's
    bulk loader when both sides speak it, else rows fed to up to `workers` writers through a queue."""
    reader = source.open_reader()
    if hasattr(source, "copy_out_text") and hasattr(target, "load_text"):
        writer = target.connect()
        try:
            done = []
            for job in jobs:
                binary, blocks = source.copy_out_text(reader, job.table, job.columns, job.key, job.lo, job.hi)
                done.append((job, target.load_text(writer, job.table, job.columns, binary, blocks)))
            return done
        finally:
            writer.close()
    done: list[tuple[CopyJob, int]] = []
    errors: list[BaseException] = []
    batches: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
    end = object()

    def write() -> None:
        writer = target.connect()
        try:
            while True:
                item = batches.get()
                if item is end:
                    return
                job, batch = item
                done.append((job, target.write(writer, job.table, job.columns, [batch])))
        except BaseException as exc:  # noqa: BLE001 - raised again by the reading thread
            errors.append(exc)
            while batches.get() is not end:  # keep draining so the reader never blocks
                pass
        finally:
            writer.close()

    threads = [threading.Thread(target=write, name=f"copy-writer-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for job in jobs:
            for batch in source.read(reader, job.table, job.columns, job.json_columns, job.key, job.lo, job.hi):
                if errors:
                    break
                batches.put((job, batch))
    finally:
        for _ in threads:
            batches.put(end)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return done
