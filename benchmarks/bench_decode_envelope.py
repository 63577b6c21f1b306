"""Decode + envelope + serialise, Cython vs pure-Python twin: the foundation issue's benchmark.

Run: `.venv/bin/python benchmarks/bench_decode_envelope.py [--events 1000000] [--twin-events 100000]
[--pg-url URL] [--transaction-size 100]`.

The workload is benchmarks/bench_pg_decode.py's recorded stream: Insert frames of a 10-column
mixed-type table (bigint, integer, text, numeric(12,2), double, timestamp, timestamptz, date, boolean,
varchar), captured from PostgreSQL with `--pg-url`/CDC_PG_URL or built by hand, text format,
repeated up to `--events`, cut into transactions of `--transaction-size` events. Each event goes
from the frame to Kafka key and value bytes, on one core, as a PG source does it:

- `row_records` (the hot path): decode, then `Envelope.row_records` with a `SourceTemplate` built
  once per transaction (per event: the lsn, spliced into `sequence` and `lsn`) and the transaction
  tuple `(id, total_order, data_collection_order)`;
- `records`: decode, the PG source block dict, a `Change`, `Envelope.records(change)`.

"cython" is the compiled decoder and envelope (`cdc._ext.pgoutput`, `cdc._ext.envelope`); "twin"
is the pure-Python twins, measured in a child process with CDC_PURE_PYTHON=1. Times are the
process's CPU time, best of `--repeat`. Results go to benchmarks/results/decode-envelope-<time>.json.
Target: cython row_records >= 500k events/s (<= 2 µs/event) and >= 10x the twin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import orjson  # noqa: E402

import cdc  # noqa: E402
from bench_pg_decode import COLUMNS, TABLE, built_frames, captured_frames, relation_frame  # noqa: E402
from cdc.envelope import Envelope  # noqa: E402
from cdc.events import CREATE, Change  # noqa: E402

_clock = time.process_time
PATHS = ("row_records", "records")
FIRST_LSN = 24023128
LAST_COMMIT_LSN = 24023104
COMMIT_TS_US = 1732400000000000
PREFIX = "shop"


def pg_source(database: str, ts_us: int, schema: str, table: str, txid: int, lsn: int, last_commit_lsn: int) -> dict:
    """The PG source block, as connectors/postgres/source.py's `source_block` builds it."""
    sequence = orjson.dumps([str(last_commit_lsn), str(lsn)]).decode()
    return {"version": cdc.__version__, "connector": "postgresql", "name": PREFIX, "ts_ms": ts_us // 1000,
            "snapshot": "false", "db": database, "sequence": sequence, "ts_us": ts_us, "ts_ns": ts_us * 1000,
            "schema": schema, "table": table, "txId": txid, "lsn": lsn, "xmin": None}


def transactions(stream: list[bytes], size: int) -> list[list[bytes]]:
    """The stream cut into transactions of `size` events (done before the clock starts)."""
    return [stream[start:start + size] for start in range(0, len(stream), size)]


def run_row_records(decoder, stream: list[list[bytes]]) -> int:
    """decode + `Envelope.row_records`, a source template per transaction; returns the sampled value bytes."""
    envelope = Envelope(PREFIX)
    row_records = envelope.row_records
    decode = decoder.decode
    table = TABLE
    lsn = FIRST_LSN
    written = 0
    txid = 771
    variable = (("sequence", f'["{LAST_COMMIT_LSN}","', '"]'), "lsn")  # the lsn inside `sequence`, and `lsn`
    for frames in stream:
        txid += 1  # Begin: one template per transaction and table
        template = envelope.source_template(
            pg_source("shop", COMMIT_TS_US, table.namespace, table.name, txid, lsn, LAST_COMMIT_LSN), variable)
        transaction = f"{txid}:{lsn}"
        order = 0
        for frame in frames:
            order += 1
            records = row_records(table, CREATE, None, decode(frame, lsn)[3], template, (lsn, lsn),
                                  (transaction, order, order))
            lsn += 64
        written += len(records[0][2])
    return written


def run_records(decoder, stream: list[list[bytes]]) -> int:
    """decode + source dict + Change + `Envelope.records` (every source's general path)."""
    envelope = Envelope(PREFIX)
    records_of = envelope.records
    decode = decoder.decode
    table = TABLE
    lsn = FIRST_LSN
    written = 0
    txid = 771
    for frames in stream:
        txid += 1
        transaction = f"{txid}:{lsn}"
        order = 0
        for frame in frames:
            order += 1
            source = pg_source("shop", COMMIT_TS_US, table.namespace, table.name, txid, lsn, LAST_COMMIT_LSN)
            change = Change(CREATE, table, None, decode(frame, lsn)[3], source, (LAST_COMMIT_LSN, lsn, 0),
                            {"id": transaction, "total_order": order, "data_collection_order": order})
            records = records_of(change)
            lsn += 64
        written += len(records[0][2])
    return written


def measure(frames: list[bytes], relation: bytes, events: int, transaction_size: int, repeat: int) -> dict:
    """Best CPU seconds per path for `events` events in this process's implementation."""
    from cdc.impl import twin

    PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder

    stream = transactions((frames * (events // len(frames) + 1))[:events], transaction_size)
    results = {}
    for path, run in (("row_records", run_row_records), ("records", run_records)):
        best = float("inf")
        size = 0
        for _ in range(repeat):
            decoder = PgoutputDecoder()
            decoder.decode(relation, 0)
            start = _clock()
            size = run(decoder, stream)
            best = min(best, _clock() - start)
        results[path] = {"events": events, "seconds": round(best, 4), "events_per_s": round(events / best),
                         "us_per_event": round(best / events * 1e6, 3),
                         "value_bytes_sampled": round(size / len(stream), 1)}  # each transaction's last value
    return results


def load_frames(pg_url: str | None, count: int) -> tuple[list[bytes], bytes, str]:
    """(Insert frames, Relation frame, where they came from)."""
    if pg_url:
        frames = captured_frames(pg_url, count)
        return frames["text"], frames["text-relation"][0], f"captured from PostgreSQL ({count} rows, repeated)"
    return built_frames(count)["text"], relation_frame(), f"built by hand ({count} rows, repeated)"


def child_main(args: argparse.Namespace) -> None:
    """Measure this process's implementation on frames handed over in a file; print JSON."""
    data = orjson.loads(Path(args.child).read_bytes())
    frames = [bytes.fromhex(frame) for frame in data["frames"]]
    results = measure(frames, bytes.fromhex(data["relation"]), args.events, args.transaction_size, args.repeat)
    print(json.dumps({"impl": cdc.__impl__, "results": results}))


def run_twin(frames: list[bytes], relation: bytes, args: argparse.Namespace, scratch: Path) -> dict:
    """The twin's figures from a child process started with CDC_PURE_PYTHON=1."""
    scratch.write_bytes(orjson.dumps({"frames": [frame.hex() for frame in frames], "relation": relation.hex()}))
    command = [sys.executable, __file__, "--child", str(scratch), "--events", str(args.twin_events),
               "--transaction-size", str(args.transaction_size), "--repeat", str(args.repeat)]
    output = subprocess.run(command, env={**os.environ, "CDC_PURE_PYTHON": "1"}, check=True, capture_output=True,
                            text=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    if report["impl"] != "python":
        raise RuntimeError(f"the twin child ran impl {report['impl']!r}")
    return report["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events per Cython measurement")
    parser.add_argument("--twin-events", type=int, default=100_000, help="events per pure-Python measurement")
    parser.add_argument("--frames", type=int, default=5000, help="distinct frames recorded, then repeated")
    parser.add_argument("--transaction-size", type=int, default=100, help="events per transaction")
    parser.add_argument("--pg-url", default=os.environ.get("CDC_PG_URL"), help="capture real frames from here")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-twin", action="store_true", help="measure the compiled modules only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if cdc.__impl__ != "cython":
        sys.exit("the compiled modules are not loaded (CDC_PURE_PYTHON set, or not built): nothing to compare")

    frames, relation, source = load_frames(args.pg_url, args.frames)
    print(f"frames {source}; {len(frames)} distinct, mean {sum(map(len, frames)) / len(frames):.0f} B; "
          f"transactions of {args.transaction_size} events")
    results = {"cython": measure(frames, relation, args.events, args.transaction_size, args.repeat)}
    if not args.skip_twin:
        scratch = Path(args.out) / f".frames-{os.getpid()}.json"
        Path(args.out).mkdir(parents=True, exist_ok=True)
        try:
            results["twin"] = run_twin(frames, relation, args, scratch)
        finally:
            scratch.unlink(missing_ok=True)
    for impl, figures in results.items():
        for path in PATHS:
            f = figures[path]
            print(f"{impl:6} {path:12} {f['events_per_s']:>10,} events/s  {f['us_per_event']:6.3f} µs/event  "
                  f"({f['events']:,} events)")

    summary = {}
    cython = results["cython"]["row_records"]
    summary["target_500k_met"] = cython["events_per_s"] >= 500_000
    if "twin" in results:
        for path in PATHS:
            summary[f"cython_vs_twin_{path}"] = round(
                results["cython"][path]["events_per_s"] / results["twin"][path]["events_per_s"], 1)
        summary["target_10x_met"] = summary["cython_vs_twin_row_records"] >= 10
    print(json.dumps(summary))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "benchmark": "decode-envelope",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "workload": {"table": ", ".join(sql_type for _, sql_type, _, _ in COLUMNS), "frames": source,
                     "transaction_size": args.transaction_size, "format": "pgoutput text"},
        "results": results,
        "summary": summary,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"decode-envelope-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
