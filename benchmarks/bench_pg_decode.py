"""pgoutput decoding speed: Cython module vs pure-Python twin, text vs binary, with and without the envelope.

Run: `.venv/bin/python benchmarks/bench_pg_decode.py [--events 1000000] [--pg-url URL] [--twin-events N]`.

The workload is a recorded stream of Insert messages of a 10-column mixed-type table (the same columns
as benchmarks/bench_envelope.py). With a PostgreSQL URL (`--pg-url` or CDC_PG_URL) a few thousand real
frames are captured from it (text and `binary 'true'`), otherwise equivalent frames are built by hand;
either way they are repeated up to `--events`. Measured on one core, best of `--repeat` runs:

- decode: `PgoutputDecoder.decode(frame, lsn)` per frame;
- pipeline: decode + a `Change` with the PG source block + `Envelope.value` + `Envelope.key` (orjson),
  i.e. everything between the socket and the Kafka producer;
- envelope only: the pipeline with rows decoded beforehand (what the envelope side costs alone).

Times are the process's CPU time (`time.process_time`), so other work on a shared machine does not
count against us (cache and memory-bandwidth contention still do).

Results go to benchmarks/results/pg-decode-<time>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import struct
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cdc  # noqa: E402
from cdc.events import CREATE, Change, Column, TableSchema  # noqa: E402

# CPU time of this process: on a shared machine, time spent descheduled is not ours to count.
_clock = time.process_time

IMPLEMENTATIONS = {"cython": "cdc._ext.pgoutput", "twin": "connectors.postgres.decode"}
RELID = 16401
COLUMNS = (
    ("id", "bigint", 20, -1),
    ("customer_id", "integer", 23, -1),
    ("status", "text", 25, -1),
    ("amount", "numeric(12,2)", 1700, (12 << 16 | 2) + 4),
    ("discount", "double precision", 701, -1),
    ("created_at", "timestamp", 1114, -1),
    ("paid_at", "timestamptz", 1184, -1),
    ("ship_date", "date", 1082, -1),
    ("paid", "boolean", 16, -1),
    ("note", "varchar(200)", 1043, 204),
)
TABLE = TableSchema(
    "postgresql", "public", "orders",
    (
        Column("id", "bigint", "int", nullable=False, primary_key=True, length=8),
        Column("customer_id", "integer", "int", length=4),
        Column("status", "text", "string"),
        Column("amount", "numeric(12,2)", "decimal", precision=12, scale=2),
        Column("discount", "double precision", "float", length=8),
        Column("created_at", "timestamp without time zone", "timestamp"),
        Column("paid_at", "timestamp with time zone", "timestamptz"),
        Column("ship_date", "date", "date"),
        Column("paid", "boolean", "boolean"),
        Column("note", "character varying(200)", "string", length=200),
    ),
    version=1, database="shop", primary_key=("id",),
)
INSERT_SQL = """
INSERT INTO orders
SELECT g, g %% 5000, (ARRAY['new','paid','shipped','returned'])[g %% 4 + 1],
       round((g * 7.31)::numeric %% 100000, 2), (g %% 100) / 100.0,
       timestamp '2024-02-29 13:45:00.123456' + g * interval '1.5 seconds',
       timestamptz '2024-02-29 12:45:00+00' + g * interval '1 minute 0.25 seconds',
       date '2024-01-01' + g %% 700, g %% 3 = 0, 'leave at the door, ring ' || g || ' times'
FROM generate_series(1, %s) g
"""


# -- frames ---------------------------------------------------------------------------------------------


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def relation_frame() -> bytes:
    out = b"R" + struct.pack(">I", RELID) + _cstr("public") + _cstr("orders") + b"d" + struct.pack(">h", len(COLUMNS))
    for index, (name, _, type_oid, typmod) in enumerate(COLUMNS):
        out += bytes([1 if index == 0 else 0]) + _cstr(name) + struct.pack(">Ii", type_oid, typmod)
    return out


def built_frames(count: int) -> dict[str, list[bytes]]:
    """Insert frames built by hand, text and binary, shaped like PG's (no server needed)."""
    frames: dict[str, list[bytes]] = {"text": [], "binary": []}
    for g in range(1, count + 1):
        amount_cents = round(g * 731) % 10_000_000
        created_us = 762_529_500_123_456 + g * 1_500_000
        paid_us = 762_525_900_000_000 + g * 60_250_000
        day = 8766 + g % 700
        texts = [
            str(g), str(g % 5000), ("new", "paid", "shipped", "returned")[g % 4],
            f"{amount_cents // 100}.{amount_cents % 100:02d}", repr((g % 100) / 100.0),
            _pg_timestamp_text(created_us), _pg_timestamp_text(paid_us) + "+00", _pg_date_text(day),
            "t" if g % 3 == 0 else "f", f"leave at the door, ring {g} times",
        ]
        text_body = b"".join(b"t" + struct.pack(">i", len(v.encode())) + v.encode() for v in texts)
        frames["text"].append(b"I" + struct.pack(">I", RELID) + b"N" + struct.pack(">h", 10) + text_body)
        binaries = [
            struct.pack(">q", g), struct.pack(">i", g % 5000), texts[2].encode(), _numeric_send(texts[3]),
            struct.pack(">d", (g % 100) / 100.0), struct.pack(">q", created_us), struct.pack(">q", paid_us),
            struct.pack(">i", day), b"\x01" if g % 3 == 0 else b"\x00", texts[9].encode(),
        ]
        binary_body = b"".join(b"b" + struct.pack(">i", len(v)) + v for v in binaries)
        frames["binary"].append(b"I" + struct.pack(">I", RELID) + b"N" + struct.pack(">h", 10) + binary_body)
    return frames


def _pg_timestamp_text(pg_us: int) -> str:
    moment = datetime(2000, 1, 1) + timedelta(microseconds=pg_us)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else "")


def _pg_date_text(days: int) -> str:
    return (date(2000, 1, 1) + timedelta(days=days)).isoformat()


def _numeric_send(textual: str) -> bytes:
    whole, _, fraction = textual.partition(".")
    digits = whole.lstrip("0")
    digits = "0" * (-len(digits) % 4) + digits
    groups = [int(digits[i:i + 4]) for i in range(0, len(digits), 4)]
    weight = len(groups) - 1
    padded = fraction + "0" * (-len(fraction) % 4)
    groups += [int(padded[i:i + 4]) for i in range(0, len(padded), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    return struct.pack(">hhHh", len(groups), weight if groups else 0, 0, len(fraction)) + b"".join(
        struct.pack(">h", g) for g in groups)


def captured_frames(url: str, count: int) -> dict[str, list[bytes]]:
    """Real Insert frames from PostgreSQL: a scratch database, `count` rows, peeked in both modes."""
    from urllib.parse import urlsplit, urlunsplit

    from connectors.postgres.dialect import connect, quote_ident

    name = f"bench_pg_decode_{uuid.uuid4().hex[:8]}"
    with connect(url) as admin:
        admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    try:
        with connect(urlunsplit(urlsplit(url)._replace(path=f"/{name}"))) as conn:
            conn.execute("SET synchronous_commit = on")  # peeks read flushed WAL only
            definition = ", ".join(f"{column} {sql_type}" for column, sql_type, _, _ in COLUMNS)
            conn.execute(f"CREATE TABLE orders ({definition}, PRIMARY KEY (id))")
            conn.execute("CREATE PUBLICATION bench FOR TABLE orders")
            conn.execute("SELECT pg_create_logical_replication_slot('bench', 'pgoutput')")
            conn.execute(INSERT_SQL, (count,))
            frames = {}
            for mode in ("text", "binary"):
                rows = conn.execute(
                    "SELECT data FROM pg_logical_slot_peek_binary_changes('bench', NULL, NULL, 'proto_version', '1',"
                    " 'publication_names', 'bench', 'binary', %s)", ("true" if mode == "binary" else "false",)
                ).fetchall()
                frames[mode] = [bytes(data) for (data,) in rows if bytes(data)[:1] == b"I"]
                frames[f"{mode}-relation"] = [bytes(data) for (data,) in rows if bytes(data)[:1] == b"R"][:1]
            conn.execute("SELECT pg_drop_replication_slot('bench')")
        return frames
    finally:
        with connect(url) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


# -- measuring --------------------------------------------------------------------------------------------


def _decoder(module, relation: bytes, mode: str):
    decoder = module.PgoutputDecoder(binary=mode == "binary")
    decoder.decode(relation, 0)
    return decoder


def time_decode(module, relation: bytes, frames: list[bytes], events: int, mode: str, repeat: int) -> float:
    """Best seconds to decode `events` frames (cycling through `frames`)."""
    stream = (frames * (events // len(frames) + 1))[:events]
    best = float("inf")
    for _ in range(repeat):
        decoder = _decoder(module, relation, mode)
        decode = decoder.decode
        start = _clock()
        for frame in stream:
            decode(frame, 24023128)
        best = min(best, _clock() - start)
    return best


def time_pipeline(module, relation: bytes, frames: list[bytes], events: int, mode: str, repeat: int,
                  decode_frames: bool = True) -> float:
    """Best seconds for decode + Change + Envelope.value + Envelope.key of `events` frames.

    With `decode_frames=False` the frames are decoded before the clock starts: what is left is the
    envelope side alone (Change with its source block, value, key).
    """
    from cdc.envelope import Envelope

    stream = (frames * (events // len(frames) + 1))[:events]
    best = float("inf")
    for _ in range(repeat):
        decoder = _decoder(module, relation, mode)
        envelope = Envelope("shop")
        value, key = envelope.value, envelope.key
        if decode_frames:
            decode = decoder.decode
        else:
            decoded = {frame: decoder.decode(frame, 0) for frame in frames}
            decode = decoded.get  # a dict lookup stands in for the decoder
        version = cdc.__version__
        start = _clock()
        lsn = 24023128
        for index, frame in enumerate(stream):
            message = decode(frame, lsn) if decode_frames else decode(frame)
            source = {
                "version": version, "connector": "postgresql", "name": "shop", "ts_ms": 1732400000000,
                "snapshot": "false", "db": "shop", "sequence": f'["24023104","{lsn}"]', "ts_us": 1732400000000000,
                "ts_ns": 1732400000000000000, "schema": "public", "table": "orders", "txId": 771, "lsn": lsn,
                "xmin": None,
            }
            change = Change(CREATE, TABLE, None, message[3], source, (24023104, lsn),
                            {"id": "771:24023104", "total_order": index + 1, "data_collection_order": index + 1})
            value(change)
            key(change)
            lsn += 64
        best = min(best, _clock() - start)
    return best


def _figures(seconds: float, events: int) -> dict:
    return {"events": events, "seconds": round(seconds, 4), "events_per_s": round(events / seconds),
            "us_per_event": round(seconds / events * 1e6, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events decoded per Cython measurement")
    parser.add_argument("--twin-events", type=int, default=100_000, help="events per pure-Python measurement")
    parser.add_argument("--frames", type=int, default=5000, help="distinct frames recorded, then repeated")
    parser.add_argument("--pg-url", default=os.environ.get("CDC_PG_URL"), help="capture real frames from here")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    if args.pg_url:
        frames = captured_frames(args.pg_url, args.frames)
        source = f"captured from PostgreSQL ({args.frames} rows, repeated)"
        relations = {mode: frames.pop(f"{mode}-relation")[0] for mode in ("text", "binary")}
    else:
        frames = built_frames(args.frames)
        source = f"built by hand ({args.frames} rows, repeated)"
        relations = {mode: relation_frame() for mode in ("text", "binary")}
    sizes = {mode: sum(map(len, frames[mode])) / len(frames[mode]) for mode in ("text", "binary")}
    print(f"frames {source}; mean frame size text {sizes['text']:.0f} B, binary {sizes['binary']:.0f} B")

    results: dict = {"decode": {}, "pipeline": {}}
    for label, module_name in IMPLEMENTATIONS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"{label}: not available ({exc})")
            continue
        events = args.events if label == "cython" else args.twin_events
        for mode in ("text", "binary"):
            relation = relations[mode]
            decode_s = time_decode(module, relation, frames[mode], events, mode, args.repeat)
            results["decode"][f"{label}-{mode}"] = figures = _figures(decode_s, events)
            print(f"decode   {label:6} {mode:6} {figures['events_per_s']:>10,} events/s  "
                  f"{figures['us_per_event']:6.3f} µs/event")
            pipeline_s = time_pipeline(module, relation, frames[mode], events, mode, args.repeat)
            results["pipeline"][f"{label}-{mode}"] = figures = _figures(pipeline_s, events)
            print(f"pipeline {label:6} {mode:6} {figures['events_per_s']:>10,} events/s  "
                  f"{figures['us_per_event']:6.3f} µs/event  (decode + Change + Envelope.value + key)")

    module = importlib.import_module(IMPLEMENTATIONS["cython"]) if "cython-text" in results["decode"] else None
    if module is not None:
        envelope_s = time_pipeline(module, relations["text"], frames["text"], args.events, "text", args.repeat,
                                   decode_frames=False)
        results["envelope_only"] = figures = _figures(envelope_s, args.events)
        print(f"envelope only (Change + Envelope.value + key, rows decoded beforehand) "
              f"{figures['events_per_s']:>10,} events/s  {figures['us_per_event']:6.3f} µs/event")

    decode = results["decode"]
    summary = {}
    for mode in ("text", "binary"):
        if f"cython-{mode}" in decode and f"twin-{mode}" in decode:
            summary[f"cython_vs_twin_{mode}"] = round(
                decode[f"cython-{mode}"]["events_per_s"] / decode[f"twin-{mode}"]["events_per_s"], 1)
    if "cython-text" in decode and "cython-binary" in decode:
        summary["binary_vs_text_cython"] = round(
            decode["cython-binary"]["events_per_s"] / decode["cython-text"]["events_per_s"], 2)
    if "cython-text" in results["pipeline"]:
        summary["pipeline_target_500k_met"] = results["pipeline"]["cython-text"]["events_per_s"] >= 500_000
    print(json.dumps(summary))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    report = {
        "benchmark": "pg-decode",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "workload": {
            "table": ", ".join(sql_type for _, sql_type, _, _ in COLUMNS),
            "frames": source,
            "mean_frame_bytes": {mode: round(size, 1) for mode, size in sizes.items()},
        },
        **results,
        "summary": summary,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"pg-decode-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
