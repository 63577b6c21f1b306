"""The recursion: checksum segments on both sides, descend into the ones that differ, diff rows at the bottom.

As in data-diff's `hashdiff_tables.py`, only checksums travel until a segment is small; then its
rows are fetched from both sides and diffed exactly. Queries of the two sides run concurrently, and
the segments of one level run on `workers` connections per side.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cdc.verify.checksum import Checksum, TableSide, checksum_aggregate, read_grid
from cdc.verify.client_pass import stream_pairs
from cdc.verify.diff import IN_FLIGHT, RowComparer, RowDiff, CHANGED
from cdc.verify.json_forms import choose_json_forms
from cdc.verify.plan import Segment, TablePlan, VerifyOptions

FANOUT = 16          # children per differing segment (at least; range segments may split wider)
MAX_FANOUT = 64      # range mode: a differing segment splits into up to this many children at once
LEVEL0_SPLIT = 64    # range mode: a first-level segment is checksummed in up to this many sub-ranges
MAX_LEVEL0 = 200_000 # range mode: at most this many level-0 checksums per side (memory bound)
MAX_DEPTH = 12       # a hash bucket that still holds more than `threshold` rows here is fetched anyway
FETCH_BATCH = 256    # segments fetched per query


class ConnectionPool:
    """Up to `size` connections to one database, handed to one thread at a time."""

    def __init__(self, dialect, size: int) -> None:
        self.dialect = dialect
        self.size = size
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._opened = 0
        self._all: list = []
        self._lock = threading.Lock()

    def acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._opened < self.size:
                self._opened += 1
                conn = None
                try:
                    conn = self.dialect.connect()
                finally:
                    if conn is None:
                        self._opened -= 1
                self._all.append(conn)
                return conn
        return self._idle.get()

    def release(self, conn) -> None:
        self._idle.put(conn)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self.acquire()
        try:
            return self.dialect.execute(conn, sql, params)
        finally:
            self.release(conn)

    def close(self) -> None:
        for conn in self._all:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not hide the real error
                pass


class Session:
    """Both databases' pools, each with threads of its own, so the two sides run their queries side by side.

    One thread pool per side: a side that finishes its share of a level early is never left waiting
    behind the other side's queued queries (with one shared pool, threads blocked on the slower side's
    connections held up the faster side's queue, and its connections sat idle).
    """

    def __init__(self, source_dialect, target_dialect, workers: int) -> None:
        self.workers = max(1, workers)
        self.source = ConnectionPool(source_dialect, self.workers)
        self.target = ConnectionPool(target_dialect, self.workers)
        self._source_threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="verify-source")
        self._target_threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="verify-target")

    def both(self, source_sql: str, target_sql: str) -> tuple[list[tuple], list[tuple]]:
        """Run one query on each side, concurrently."""
        future = self._target_threads.submit(self.target.query, target_sql)
        source_rows = self.source.query(source_sql)
        return source_rows, future.result()

    def many(self, jobs: list[tuple[str, str]]) -> list[tuple[list[tuple], list[tuple]]]:
        """Run (source sql, target sql) pairs on up to `workers` connections per side."""
        futures = [(self._source_threads.submit(self.source.query, s), self._target_threads.submit(self.target.query, t))
                   for s, t in jobs]
        return [(fs.result(), ft.result()) for fs, ft in futures]

    def close(self) -> None:
        self._source_threads.shutdown(wait=True)
        self._target_threads.shutdown(wait=True)
        self.source.close()
        self.target.close()


@dataclass(slots=True)
class BisectResult:
    """What the recursion found for one table."""

    source_rows: int = 0
    target_rows: int = 0
    segments_compared: int = 0
    differing_segments: int = 0
    unexamined_segments: int = 0
    diffs: list[RowDiff] = field(default_factory=list)
    slice: tuple[int, int] | None = None  # (index, parts) when only one slice was checked
    slice_text: str | None = None  # which rows that slice holds, for the report's notes
    level0_modulus: int = 0


class TableBisector:
    """Runs the checksum recursion and the row diffs for one table."""

    def __init__(self, session: Session, plan: TablePlan, options: VerifyOptions,
                 progress: Callable[[str], None] | None = None) -> None:
        self.session = session
        plan = choose_json_forms(session, plan, options.where)
        self.plan = plan
        self.options = options
        native = self._native_hashes() if plan.native else (None, None)
        self.native = native[0] is not None
        aggregate = checksum_aggregate(plan, session.source.dialect, session.target.dialect)
        self.source = TableSide(session.source.dialect, plan, "source", options.where, native=native[0],
                                aggregate=aggregate)
        self.target = TableSide(session.target.dialect, plan, "target", options.where, native=native[1],
                                aggregate=aggregate)
        self.comparer = RowComparer(plan, options.float_tolerance)
        self.result = BisectResult()
        self.progress = progress or (lambda message: None)

    def _native_hashes(self) -> tuple:
        """((row hash, key hash) SQL per side) when both sides offer an engine-native hash, else Nones."""
        out = []
        for pool, side in ((self.session.source, "source"), (self.session.target, "target")):
            rows = [pair.source if side == "source" else pair.target for pair in self.plan.sql_pairs]
            keys = [pair.source if side == "source" else pair.target for pair in self.plan.key_pairs]
            table = self.plan.source_table if side == "source" else self.plan.target_table
            conn = pool.acquire()
            try:
                row_hash = pool.dialect.native_row_hash(conn, rows, table)
                key_hash = pool.dialect.native_row_hash(conn, keys, table) if keys else row_hash
            finally:
                pool.release(conn)
            if row_hash is None or key_hash is None:
                return None, None
            out.append((row_hash, key_hash))
        return tuple(out)

    # top level ---------------------------------------------------------------------------------
    def run(self) -> BisectResult:
        if self.options.slicing is not None:
            self._restrict_to_slice(self.options.slicing)
        if self.plan.mode == "range":
            pending = self._range_level0()
        else:
            pending = self._hash_level0()
        self._descend(pending)
        if self.plan.client_pairs and self.plan.mode != "multiset":
            self._client_pass()
        return self.result

    def _compare(self, grid: dict[int, tuple[Checksum | None, Checksum | None]], make) -> list[tuple[Segment, int]]:
        differing = []
        for number, (a, b) in grid.items():
            self.result.segments_compared += 1
            if a != b:
                rows = max(a.count if a else 0, b.count if b else 0)
                differing.append((make(number), rows))
        self.result.differing_segments += len(differing)
        return differing

    @staticmethod
    def _merge(source: dict[int, Checksum], target: dict[int, Checksum]) -> dict[int, tuple]:
        return {n: (source.get(n), target.get(n)) for n in set(source) | set(target)}

    def _restrict_to_slice(self, slicing) -> None:
        """Narrow both sides to this run's slice: a key range (range mode) or a key-hash class."""
        parts = slicing.parts_for(max(self._estimate("source"), self._estimate("target")))
        index = slicing.index_for(self.plan.name, parts)
        self.result.slice = (index, parts)
        if parts == 1:
            return
        if self.plan.mode == "range":
            (src_bounds,), (tgt_bounds,) = self.session.both(self.source.bounds_sql(), self.target.bounds_sql())
            lows = [int(v) for v in (src_bounds[0], tgt_bounds[0]) if v is not None]
            highs = [int(v) for v in (src_bounds[1], tgt_bounds[1]) if v is not None]
            if not lows:
                return
            lo, hi = min(lows), max(highs) + 1
            width = max(1, math.ceil((hi - lo) / parts))
            # The first and last slices are open-ended: rows inserted beyond the bounds since are in them.
            start = lo + index * width if index else None
            end = lo + (index + 1) * width if index < parts - 1 else None
            for side in (self.source, self.target):
                lit = side.dialect.int_literal
                conditions = ([f"{side.key_column} >= {lit(start)}"] if start is not None else []) + (
                    [f"{side.key_column} < {lit(end)}"] if end is not None else [])
                self._narrow(side, " AND ".join(conditions) or "1 = 1")
            shown = f"[{'' if start is None else start}, {'' if end is None else end})"
            self.result.slice_text = f"slice {index + 1} of {parts}: {self.plan.key[0]} in {shown}"
        else:
            for side in (self.source, self.target):
                self._narrow(side, side.segment_condition(Segment(modulus=parts, residue=index)))
            self.result.slice_text = f"slice {index + 1} of {parts}: key-hash class {index} mod {parts}"

    @staticmethod
    def _narrow(side: TableSide, condition: str) -> None:
        side.where = f"({side.where}) AND ({condition})" if side.where else condition

    # range mode --------------------------------------------------------------------------------
    def _range_level0(self) -> list[tuple[Segment, int]]:
        (src_bounds,), (tgt_bounds,) = self.session.both(self.source.bounds_sql(), self.target.bounds_sql())
        lows = [int(v) for v in (src_bounds[0], tgt_bounds[0]) if v is not None]
        highs = [int(v) for v in (src_bounds[1], tgt_bounds[1]) if v is not None]
        if not lows:
            return []
        lo, hi = min(lows), max(highs) + 1
        estimate = max(self._estimate("source"), self._estimate("target"), 1)
        width = max(1, math.ceil((hi - lo) * self.options.segment_rows / estimate))
        # Each first-level segment is checksummed in sub-ranges of about threshold/2 rows by the same
        # GROUP BY scan (more groups cost nothing measurable), so a differing sub-range is fetched
        # directly instead of scanning its whole segment again one bisection level down.
        split = min(LEVEL0_SPLIT, max(1, math.ceil(self.options.segment_rows / max(1, self.options.threshold // 2))))
        width = max(1, math.ceil(width / split), math.ceil((hi - lo) / MAX_LEVEL0))
        segments = math.ceil((hi - lo) / width)
        chunks = min(segments, self.session.workers * 4)
        per_chunk = math.ceil(segments / chunks)
        jobs = []
        for first in range(0, segments, per_chunk):
            chunk_lo = lo + first * width
            chunk_hi = min(lo + (first + per_chunk) * width, hi)
            jobs.append((self.source.range_grid_sql(chunk_lo, chunk_hi, lo, width),
                         self.target.range_grid_sql(chunk_lo, chunk_hi, lo, width)))
        self.progress(f"{len(jobs)} chunks of {width}-wide key ranges")
        source: dict[int, Checksum] = {}
        target: dict[int, Checksum] = {}
        for source_rows, target_rows in self.session.many(jobs):
            source.update(read_grid(source_rows))
            target.update(read_grid(target_rows))
        self._count(source, target)

        def make(number: int) -> Segment:
            return Segment(lo=lo + number * width, hi=min(lo + (number + 1) * width, hi), depth=0)

        return self._compare(self._merge(source, target), make)

    def _range_children(self, parents: list[tuple[Segment, int]]) -> list[tuple[Segment, int]]:
        jobs, layouts = [], []
        for parent, rows in parents:
            # Enough children that each holds about threshold/2 rows: one level, then the fetch.
            fanout = min(MAX_FANOUT, max(FANOUT, math.ceil(rows / max(1, self.options.threshold // 2))))
            width = max(1, math.ceil((parent.hi - parent.lo) / fanout))
            jobs.append((self.source.range_grid_sql(parent.lo, parent.hi, parent.lo, width),
                         self.target.range_grid_sql(parent.lo, parent.hi, parent.lo, width)))
            layouts.append((parent, width))
        differing = []
        for (parent, width), (source_rows, target_rows) in zip(layouts, self.session.many(jobs)):
            def make(number: int, parent=parent, width=width) -> Segment:
                return Segment(lo=parent.lo + number * width, hi=min(parent.lo + (number + 1) * width, parent.hi),
                               depth=parent.depth + 1)
            differing += self._compare(self._merge(read_grid(source_rows), read_grid(target_rows)), make)
        return differing

    # hash modes --------------------------------------------------------------------------------
    def _hash_level0(self) -> list[tuple[Segment, int]]:
        (src_count,), (tgt_count,) = self.session.both(self.source.count_sql(), self.target.count_sql())
        rows = max(int(src_count[0]), int(tgt_count[0]))
        modulus = max(1, math.ceil(rows / max(1, self.options.threshold // 2)))
        self.result.level0_modulus = modulus
        self.progress(f"{modulus} key-hash buckets")
        source_rows, target_rows = self.session.both(self.source.hash_grid_sql([], modulus),
                                                     self.target.hash_grid_sql([], modulus))
        source, target = read_grid(source_rows), read_grid(target_rows)
        self._count(source, target)
        return self._compare(self._merge(source, target),
                             lambda number: Segment(modulus=modulus, residue=number, depth=0))

    def _hash_children(self, parents: list[Segment]) -> list[tuple[Segment, int]]:
        differing = []
        by_modulus: dict[int, list[Segment]] = {}
        for parent in parents:
            by_modulus.setdefault(parent.modulus, []).append(parent)
        for modulus, group in by_modulus.items():
            child_modulus = modulus * FANOUT
            depth = group[0].depth + 1
            for start in range(0, len(group), FETCH_BATCH):
                batch = group[start:start + FETCH_BATCH]
                source_rows, target_rows = self.session.both(self.source.hash_grid_sql(batch, child_modulus),
                                                             self.target.hash_grid_sql(batch, child_modulus))
                differing += self._compare(
                    self._merge(read_grid(source_rows), read_grid(target_rows)),
                    lambda number: Segment(modulus=child_modulus, residue=number, depth=depth))
        return differing

    # descent and fetch -------------------------------------------------------------------------
    def _descend(self, pending: list[tuple[Segment, int]]) -> None:
        while pending:
            small, big = [], []
            for segment, rows in pending:
                splittable = (segment.hi - segment.lo > 1) if not segment.modulus else segment.depth < MAX_DEPTH
                if rows > self.options.threshold and splittable:
                    big.append((segment, rows))
                else:
                    small.append(segment)
            self._fetch(small)
            if not big:
                return
            self.progress(f"bisecting {len(big)} differing segments")
            if big[0][0].modulus:
                pending = self._hash_children([segment for segment, _ in big])
            else:
                pending = self._range_children(big)

    def _fetch(self, segments: list[Segment]) -> None:
        """Download both sides' rows of the segments and diff them (stopping after `max_diffs`)."""
        for start in range(0, len(segments), FETCH_BATCH if segments and segments[0].modulus else self.session.workers):
            if len(self.result.diffs) >= self.options.max_diffs:
                self.result.unexamined_segments += len(segments) - start
                return
            if segments[start].modulus:
                batch = segments[start:start + FETCH_BATCH]
                source_rows, target_rows = self.session.both(self.source.fetch_sql(batch), self.target.fetch_sql(batch))
                found = self.comparer.diff(source_rows, target_rows, None)
                for diff in found:
                    diff.segment = self._bucket_of(diff.key_hash, batch[0])
                self.result.diffs += found
            else:
                batch = segments[start:start + self.session.workers]
                jobs = [(self.source.fetch_sql([s]), self.target.fetch_sql([s])) for s in batch]
                for segment, (source_rows, target_rows) in zip(batch, self.session.many(jobs)):
                    self.result.diffs += self.comparer.diff(source_rows, target_rows, segment)

    @staticmethod
    def _bucket_of(row_key_hash, like: Segment) -> Segment:
        """The hash bucket (of `like`'s modulus) a fetched row belongs to, for the re-check."""
        return Segment(modulus=like.modulus, residue=int(row_key_hash) % like.modulus, depth=like.depth)

    def _count(self, source: dict[int, Checksum], target: dict[int, Checksum]) -> None:
        self.result.source_rows = sum(c.count for c in source.values())
        self.result.target_rows = sum(c.count for c in target.values())

    def _estimate(self, side: str) -> int:
        pool = self.session.source if side == "source" else self.session.target
        table = self.plan.source_table if side == "source" else self.plan.target_table
        conn = pool.acquire()
        try:
            estimate = pool.dialect.estimate_rows(conn, table)
        finally:
            pool.release(conn)
        if estimate <= 0 or self.options.where:
            rows = pool.query((self.source if side == "source" else self.target).count_sql())
            estimate = int(rows[0][0])
        return estimate

    # client-side columns -----------------------------------------------------------------------
    def _client_pass(self) -> None:
        """Compare the client-side columns of every row present on both sides."""
        self.progress(f"client-side pass over {len(self.plan.client_pairs)} column(s)")
        n_key, n_client = len(self.plan.key), len(self.plan.client_pairs)
        if self.plan.mode == "range":
            first_raw_key = n_key + n_client

            def order_of(row: tuple) -> int:
                return int(row[first_raw_key])
        else:
            def order_of(row: tuple) -> int:
                return int(row[-1])

        def identity_of(row: tuple) -> tuple:
            return tuple(row[:n_key])

        known = {d.identity for d in self.result.diffs}
        pairs = list(zip(self.plan.client_pairs, range(n_key, n_key + n_client)))
        client_equal = self.comparer.client_equal
        for mine, row in stream_pairs(self.session, self.source.stream_sql(), self.target.stream_sql(),
                                      order_of, identity_of):
            if all(mine[i] == row[i] for _, i in pairs):
                continue  # equal as read: the usual case, no conversion
            key = identity_of(mine)
            if key in known:
                continue
            columns = [self.comparer.column_diff(pair, mine[i], row[i]) for pair, i in pairs
                       if not client_equal(pair, mine[i], row[i])]
            if columns:
                if len(self.result.diffs) >= self.options.max_diffs:
                    self.result.unexamined_segments += 1
                    continue
                if self.plan.mode == "hash":
                    segment = self._bucket_of(row[-1], Segment(modulus=self.result.level0_modulus))
                else:
                    segment = Segment(lo=int(key[0]), hi=int(key[0]) + 1)
                raw_key = dict(zip(self.plan.key, mine[n_key + n_client:-1]))
                self.result.diffs.append(RowDiff(CHANGED, self.comparer.key_json(raw_key, "source"), columns,
                                                 identity=key, segment=segment))

    # re-check ----------------------------------------------------------------------------------
    def recheck(self) -> int:
        """Fetch the differing rows' segments again; rows that now agree are marked in flight."""
        segments = list({d.segment for d in self.result.diffs if d.segment is not None})
        if not segments:
            return 0
        still: set[tuple] = set()
        for start in range(0, len(segments), FETCH_BATCH):
            batch = segments[start:start + FETCH_BATCH]
            source_rows, target_rows = self.session.both(self.source.fetch_sql(batch), self.target.fetch_sql(batch))
            still.update(d.identity for d in self.comparer.diff(source_rows, target_rows))
        converged = 0
        for diff in self.result.diffs:
            if diff.segment is not None and diff.identity not in still:
                diff.status = IN_FLIGHT
                converged += 1
        return converged


def wait(seconds: float) -> None:
    """Sleep (a function so tests can patch it)."""
    time.sleep(seconds)
