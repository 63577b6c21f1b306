"""Apply throughput: rows/s into each target engine, batched (fold + COPY/multi-row) vs one statement per row.

A 10-column table; the stream is 80% updates, 10% inserts, 10% deletes over existing keys (Debezium
envelopes built by cdc.envelope, as the workers consume them). Timed: decode + fold + convert + write +
cdc_offsets, from Kafka records in memory to committed target rows (Kafka itself is left out, so the
figure is the apply side's own ceiling). The per-row baseline applies the same kind of stream with one
INSERT .. ON CONFLICT / ON DUPLICATE KEY UPDATE or DELETE per event, committed per batch. "batched" runs
as the worker does (the next batch is decoded/folded/converted while the previous one is written);
"no overlap" is the same batched path run strictly one batch after the other.

    .venv/bin/python benchmarks/bench_apply.py --pg postgresql://... --mysql mysql://... [--events 200000] [--batch-size N]

Writes benchmarks/results/apply-<UTC time>.json and prints a summary. Targets: >= 100k rows/s into
PostgreSQL, >= 50k rows/s into MariaDB (batched).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdc.apply.batch import BatchApplier, OverlappedApplier, write_event  # noqa: E402
from cdc.apply.dlq import StopPolicy  # noqa: E402
from cdc.apply.schemas import SchemaCatalog  # noqa: E402
from cdc.apply.target import open_writer  # noqa: E402
from cdc.apply.worker import ApplyOptions  # noqa: E402
from cdc.envelope import Envelope  # noqa: E402
from cdc.events import Change, Column, TableSchema  # noqa: E402
from cdc.kafka import Record  # noqa: E402

PREFIX = "bench"
BATCH = ApplyOptions.__dataclass_fields__["batch_size"].default  # the worker's default --batch-size

SCHEMA = TableSchema(
    engine="postgresql", namespace="public", name="bench_items", version=1, primary_key=("id",),
    columns=(
        Column("id", "bigint", "int", nullable=False, primary_key=True, length=8),
        Column("account", "integer", "int", length=4),
        Column("amount", "numeric(12,2)", "decimal", precision=12, scale=2),
        Column("ratio", "double precision", "float", length=8),
        Column("name", "character varying(40)", "string", length=40),
        Column("note", "text", "string"),
        Column("active", "boolean", "boolean"),
        Column("created", "timestamp(6) without time zone", "timestamp", precision=6),
        Column("updated", "timestamp(6) with time zone", "timestamptz", precision=6),
        Column("day", "date", "date"),
    ),
)


def _row(key: int, rng: random.Random) -> dict:
    return {
        "id": key, "account": rng.randrange(10_000), "amount": f"{rng.randrange(-10**8, 10**8) / 100:.2f}",
        "ratio": rng.random(), "name": f"name-{rng.randrange(10**9)}", "note": "n" * rng.randrange(0, 60),
        "active": rng.random() < 0.5, "created": "2024-02-29T13:45:00.123456",
        "updated": "2024-02-29T12:45:00.654321Z", "day": "2024-02-29",
    }


class Workload:
    """Kafka records (in memory) of a change stream over keys 0..rows-1, with the model of live keys."""

    def __init__(self, seed: int = 1) -> None:
        self.envelope = Envelope(PREFIX)
        self.rng = random.Random(seed)
        self.live: list[int] = []
        self.live_index: dict[int, int] = {}
        self.next_key = 0
        self.offset = 0

    def _records(self, op: str, before: dict | None, after: dict | None) -> list[Record]:
        source = {"connector": "postgresql", "name": PREFIX, "db": "src", "schema": "public", "table": SCHEMA.name}
        out = []
        for topic, key, value, headers in self.envelope.records(Change(op, SCHEMA, before, after, source, (0,))):
            out.append(Record(topic, 0, self.offset, key, value, tuple(headers), 0))
            self.offset += 1
        return out

    def _add(self, key: int) -> None:
        self.live_index[key] = len(self.live)
        self.live.append(key)

    def _remove(self, key: int) -> None:
        index = self.live_index.pop(key)
        last = self.live.pop()
        if last != key:
            self.live[index] = last
            self.live_index[last] = index

    def inserts(self, count: int) -> list[Record]:
        out = []
        for _ in range(count):
            key = self.next_key
            self.next_key += 1
            self._add(key)
            out += self._records("c", None, _row(key, self.rng))
        return out

    def mixed(self, count: int) -> tuple[list[Record], int]:
        """80% updates, 10% inserts, 10% deletes; returns the records and the number of change events."""
        out = []
        rng = self.rng
        for _ in range(count):
            roll = rng.random()
            if roll < 0.1 or not self.live:
                out += self.inserts(1)
            elif roll < 0.2:
                key = self.live[rng.randrange(len(self.live))]
                self._remove(key)
                out += self._records("d", {"id": key}, None)  # + its tombstone
            else:
                key = self.live[rng.randrange(len(self.live))]
                out += self._records("u", None, _row(key, rng))
        return out, count


def _batches(records: list[Record], size: int | None = None) -> list[list[Record]]:
    size = size or BATCH
    return [records[i:i + size] for i in range(0, len(records), size)]


def _reset(url: str) -> None:
    writer = open_writer(url)
    for statement in ("DROP TABLE IF EXISTS {t}", "DROP TABLE IF EXISTS {o}"):
        if url.startswith("postgres"):
            writer.execute_ddl(statement.format(t="public.bench_items", o="public.cdc_offsets"))
        else:
            writer.execute_ddl(statement.format(t="bench_items", o="cdc_offsets"))
    writer.close()


def _applier(url: str) -> BatchApplier:
    writer = open_writer(url, create_tables=True)
    writer.ensure_offsets_table()
    catalog = SchemaCatalog()
    catalog.add(SCHEMA)
    return BatchApplier(writer, catalog, group="bench", prefix=PREFIX, policy=StopPolicy())


def run_engine(url: str, events: int, baseline_events: int, preload: int) -> dict:
    """Batched and per-row figures for one target."""
    _reset(url)
    workload = Workload()
    applier = _applier(url)
    started = time.perf_counter()
    for batch in _batches(workload.inserts(preload)):
        applier.apply(batch)
    preload_s = time.perf_counter() - started

    # Overlapped (as the worker runs) and strictly sequential batches, alternating in rounds of 10
    # batches so that both see the same machine load.
    overlapped = OverlappedApplier(applier)  # batch N+1 decoded/folded/converted while N is written
    count = count_seq = 0
    batched_s = sequential_s = 0.0
    rounds = max(1, events // (10 * BATCH))
    for _ in range(rounds):
        records, n = workload.mixed(events // rounds)
        started = time.perf_counter()
        for batch in _batches(records):
            overlapped.submit(batch)
        overlapped.drain()
        batched_s += time.perf_counter() - started
        count += n
        records, n = workload.mixed(events // rounds)
        started = time.perf_counter()
        for batch in _batches(records):
            applier.apply(batch)
        sequential_s += time.perf_counter() - started
        count_seq += n
    overlapped.close()

    base_records, base_count = workload.mixed(baseline_events)
    writer = applier.writer
    started = time.perf_counter()
    for batch in _batches(base_records):
        found, _ = applier.decode(batch)
        table = writer.table_for(SCHEMA)
        writer.begin()
        for event in found:
            write_event(writer, table, event)
        writer.commit()
    per_row_s = time.perf_counter() - started
    writer.close()
    return {
        "target": url.split("://", 1)[0],
        "preload_rows": preload,
        "preload_rows_per_s": round(preload / preload_s),
        "batched_events": count,
        "batched_seconds": round(batched_s, 3),
        "batched_rows_per_s": round(count / batched_s),
        "batched_no_overlap_events": count_seq,
        "batched_no_overlap_rows_per_s": round(count_seq / sequential_s),
        "per_row_events": base_count,
        "per_row_seconds": round(per_row_s, 3),
        "per_row_rows_per_s": round(base_count / per_row_s),
        "speedup": round((count / batched_s) / (base_count / per_row_s), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("CDC_PG_URL"), help="PostgreSQL target URL")
    parser.add_argument("--mysql", default=os.environ.get("CDC_MYSQL_URL"), help="MySQL/MariaDB target URL")
    parser.add_argument("--events", type=int, default=200_000, help="change events in the batched run")
    parser.add_argument("--baseline-events", type=int, default=20_000, help="change events in the per-row run")
    parser.add_argument("--batch-size", type=int, default=BATCH, help="records per batch (the worker's --batch-size)")
    parser.add_argument("--preload", type=int, default=100_000, help="rows inserted before the mixed stream")
    args = parser.parse_args()
    globals()["BATCH"] = args.batch_size  # _batches() and the rounds in run_engine() read it
    results = []
    load_before = os.getloadavg()[0]
    for url in (args.pg, args.mysql):
        if url:
            result = run_engine(url, args.events, args.baseline_events, args.preload)
            results.append(result)
            print(f"{result['target']:10} batched {result['batched_rows_per_s']:>8} rows/s   (no overlap "
                  f"{result['batched_no_overlap_rows_per_s']:>7})   per-row "
                  f"{result['per_row_rows_per_s']:>7} rows/s   x{result['speedup']}   (preload "
                  f"{result['preload_rows_per_s']} rows/s)")
    out = {
        "benchmark": "apply",
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    # the machine is shared: figures scale with how busy it was
                    "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "workload": {"columns": len(SCHEMA.columns), "mix": "80% update, 10% insert, 10% delete", "batch": args.batch_size},
        "results": results,
    }
    directory = ROOT / "benchmarks" / "results"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"apply-{out['when'].replace(':', '')}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
