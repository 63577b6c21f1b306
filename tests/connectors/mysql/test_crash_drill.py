"""Crash drill: `cdc capture` on MariaDB killed with SIGKILL again and again under a mixed write load.

The issue's requirement, end to end and through the real command: a writer thread runs inserts,
updates, deletes, primary-key changes, multi-row and multi-statement transactions (and a few
rollbacks) while `cdc capture` is killed (SIGKILL) at random moments and restarted each time. Then
the writer stops, the last capture catches up to the server's GTID position and is stopped with
SIGTERM (exit 0). Every event of the table's topic is read back, repeats are dropped by their
position (docs/architecture.md, guarantees: binlog file number, event position, row — plus op, since a
primary-key change is a delete and a create at one position), the rest is replayed per key, and the
result must equal the source table row for row and value for value.
"""

from __future__ import annotations

import datetime
import decimal
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from base64 import b64encode
from pathlib import Path

import orjson
import pytest

from cdc.kafka import read_topic
from connectors.mysql.binlog import current_position
from connectors.mysql.dialect import connect
from connectors.mysql.offsets import file_number, parse_gtid_state
from tests.connectors.mysql.mysql_binlog_capture import fresh_server_id

ROOT = Path(__file__).resolve().parents[3]
SEED_ROWS = 200
CRASHES = 5
TABLE_DDL = """CREATE TABLE drill (
    id INT PRIMARY KEY,
    qty INT NOT NULL,
    big BIGINT UNSIGNED NULL,
    amount DECIMAL(12,2) NOT NULL,
    ratio DOUBLE NULL,
    note VARCHAR(60) CHARACTER SET utf8mb4 NOT NULL,
    body TEXT NULL,
    flag TINYINT(1) NOT NULL DEFAULT 0,
    tag VARBINARY(8) NULL,
    changed DATETIME(6) NOT NULL
)"""
COLUMNS = ("id", "qty", "big", "amount", "ratio", "note", "body", "flag", "tag", "changed")


# -- the write load ------------------------------------------------------------------------------


def random_row(rng: random.Random, row_id: int) -> tuple:
    """One row's values as the writer sends them (in COLUMNS order)."""
    return (
        row_id,
        rng.randint(-1000, 1000),
        rng.choice([None, rng.randint(0, 2**64 - 1)]),
        decimal.Decimal(rng.randint(-10**9, 10**9)) / 100,
        rng.choice([None, rng.uniform(-1e6, 1e6)]),
        rng.choice(["ann", "bob", "zoë", "日本", "x" * 58, ""]) + str(rng.randint(0, 99)),
        rng.choice([None, "", "long text " * rng.randint(1, 50)]),
        rng.randint(0, 1),
        rng.choice([None, rng.randbytes(rng.randint(0, 8))]),
        datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10**8),
                                                           microseconds=rng.randint(0, 999_999)),
    )


INSERT = f"INSERT INTO drill ({', '.join(COLUMNS)}) VALUES "
PLACEHOLDERS = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"


class Writer(threading.Thread):
    """Mixed transactions on `drill` until stopped; the only writer, so it knows which ids exist."""

    def __init__(self, url: str, seed: int, first_id: int, ids: list[int]) -> None:
        super().__init__(name="drill-writer", daemon=True)
        self.url = url
        self.rng = random.Random(seed)
        self.next_id = first_id
        self.ids = list(ids)
        self.stopping = threading.Event()
        self.transactions = 0
        self.rollbacks = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = connect(self.url, autocommit=False)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES', time_zone = '+00:00'")
                while not self.stopping.is_set():
                    self.one_transaction(cursor, conn)
                    time.sleep(0.002)  # 2 shared cores: leave room for the capture to keep up
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc
        finally:
            conn.close()

    def _new_ids(self, count: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        return ids

    def _pick(self, count: int) -> list[int]:
        return self.rng.sample(self.ids, min(count, len(self.ids)))

    def insert(self, cursor, count: int) -> list[int]:
        ids = self._new_ids(count)
        rows = [random_row(self.rng, i) for i in ids]
        cursor.execute(INSERT + ", ".join([PLACEHOLDERS] * count), [v for row in rows for v in row])
        return ids

    def update(self, cursor, ids: list[int]) -> None:
        if not ids:
            return
        fresh = random_row(self.rng, 0)
        marks = ", ".join(["%s"] * len(ids))
        if self.rng.random() < 0.5:  # one UPDATE touching several rows: one rows event, several rows
            cursor.execute(f"UPDATE drill SET qty = qty + 1, note = %s, changed = %s, ratio = %s WHERE id IN ({marks})",
                           [fresh[5], fresh[9], fresh[4], *ids])
        else:
            for row_id in ids:
                row = random_row(self.rng, row_id)
                cursor.execute("UPDATE drill SET " + ", ".join(f"{c} = %s" for c in COLUMNS[1:]) + " WHERE id = %s",
                               [*row[1:], row_id])

    def delete(self, cursor, ids: list[int]) -> None:
        if ids:
            cursor.execute(f"DELETE FROM drill WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)

    def one_transaction(self, cursor, conn) -> None:
        rng = self.rng
        choice = rng.random()
        inserted: list[int] = []
        deleted: list[int] = []
        moved: tuple[int, int] | None = None
        if choice < 0.35:
            inserted = self.insert(cursor, rng.randint(1, 20))
        elif choice < 0.55:
            self.update(cursor, self._pick(rng.randint(1, 6)))
        elif choice < 0.65:
            deleted = self._pick(rng.randint(1, 4))
            self.delete(cursor, deleted)
        elif choice < 0.70 and self.ids:
            old, new = self._pick(1)[0], self._new_ids(1)[0]
            cursor.execute("UPDATE drill SET id = %s WHERE id = %s", (new, old))  # key change: d + tombstone + c
            moved = (old, new)
        else:  # a multi-statement transaction touching the same rows more than once
            inserted = self.insert(cursor, rng.randint(1, 8))
            self.update(cursor, self._pick(rng.randint(1, 5)) + inserted[:1])
            deleted = [i for i in self._pick(rng.randint(0, 3)) if i not in inserted]
            self.delete(cursor, deleted)
            if rng.random() < 0.08:
                conn.rollback()
                self.rollbacks += 1
                return
        conn.commit()
        self.transactions += 1
        self.ids.extend(inserted)
        if deleted:
            gone = set(deleted)
            self.ids = [i for i in self.ids if i not in gone]
        if moved:
            self.ids.remove(moved[0])
            self.ids.append(moved[1])


# -- expected values, as docs/event-format.md encodes them -------------------------------------------


def expected_value(column: str, value):
    """A MariaDB value (as PyMySQL returns it) in the event's JSON form."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="microseconds")  # DATETIME(6): precision kept
    if isinstance(value, (bytes, bytearray)):
        return b64encode(value).decode("ascii")
    return value


def source_rows(url: str) -> dict[int, dict]:
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM drill")
            return {row[0]: {c: expected_value(c, v) for c, v in zip(COLUMNS, row)} for row in cursor.fetchall()}
    finally:
        conn.close()


# -- the capture process ------------------------------------------------------------------------


class CaptureProcess:
    """`cdc capture` as a child process; stderr kept in a file for the failure message."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self.started_ms = time.time_ns() // 1_000_000
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "cdc.cli", *args], cwd=ROOT, stdout=self.log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.process.poll() is None, f"capture exited with {self.process.returncode}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no '{needle}' from capture in {timeout}s:\n{self.text()[-3000:]}"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process.poll() is None, f"capture died by itself ({self.process.returncode}):\n{self.text()[-3000:]}"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def terminate(self, timeout: float = 40.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self.log.close()
        return code


def stored_position(bootstrap: str, prefix: str) -> dict | None:
    """The last binlog position on `__cdc-offsets.<prefix>` (None before the first)."""
    try:
        records = read_topic(bootstrap, f"__cdc-offsets.{prefix}", timeout=10)
    except Exception:  # noqa: BLE001 - the topic may not exist yet
        return None
    values = [value for value in (orjson.loads(r.value) for r in records if r.value) if "file" in value]
    return values[-1] if values else None  # binlog positions (not snapshot markers or incremental progress)


def reached(stored: dict | None, server_gtid: str) -> bool:
    """True when the stored GTID state is at or past the server's in every domain."""
    if stored is None or not stored.get("gtid"):
        return False
    mine = {d: int(g.rsplit("-", 1)[1]) for d, g in parse_gtid_state(stored["gtid"]).items()}
    return all(mine.get(d, -1) >= int(g.rsplit("-", 1)[1]) for d, g in parse_gtid_state(server_gtid).items())


def seen_before(records, start_ms: int) -> set[tuple]:
    """Distinct streamed positions (file number, pos, row, op) of the records produced before `start_ms`."""
    found = set()
    for record in records:
        if record.value is not None and record.timestamp_ms < start_ms:
            source = orjson.loads(record.value)
            if source["op"] != "r":
                found.add((file_number(source["source"]["file"]), source["source"]["pos"], source["source"]["row"],
                           source["op"]))
    return found


# -- the drill ----------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_sigkill_under_load_loses_nothing_and_repeats_are_bounded(
        mysql_database: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    started = time.monotonic()
    database = mysql_database.rsplit("/", 1)[1]
    prefix = f"drill{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.{database}.drill"
    seed = int(os.environ.get("CDC_DRILL_SEED", random.randrange(1 << 30)))
    print(f"\ncrash drill seed {seed} (CDC_DRILL_SEED to repeat)")
    rng = random.Random(seed)

    conn = connect(mysql_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(TABLE_DDL)
            cursor.execute(INSERT + ", ".join([PLACEHOLDERS] * SEED_ROWS),
                           [v for i in range(1, SEED_ROWS + 1) for v in random_row(rng, i)])
    finally:
        conn.close()

    args = ["capture", "--source", mysql_database, "--kafka", kafka_bootstrap, "--prefix", prefix,
            "--tables", f"{database}.drill", "--snapshot", "initial", "--server-id", str(fresh_server_id()),
            "--heartbeat-interval", "1"]
    runs: list[CaptureProcess] = [CaptureProcess(args, tmp_path / "capture-0.log")]
    # The snapshot is done once its position is stored: from then on every run streams from an offset.
    deadline = time.monotonic() + 40
    while stored_position(kafka_bootstrap, prefix) is None:
        assert runs[0].process.poll() is None, runs[0].text()[-3000:]
        assert time.monotonic() < deadline, "the snapshot's position was never stored:\n" + runs[0].text()[-3000:]
        time.sleep(0.2)

    writer = Writer(mysql_database, seed, SEED_ROWS + 1, list(range(1, SEED_ROWS + 1)))
    writer.start()
    try:
        for crash in range(CRASHES):
            runs[-1].wait_for_log("capture starting", 30)
            time.sleep(rng.uniform(0.5, 3.0))
            assert writer.error is None, writer.error
            runs[-1].kill()
            runs.append(CaptureProcess(args, tmp_path / f"capture-{crash + 1}.log"))
        runs[-1].wait_for_log("capture starting", 30)
        time.sleep(1.0)
    finally:
        writer.stopping.set()
        writer.join(30)
    assert writer.error is None, writer.error
    load_seconds = time.monotonic() - started

    server = current_position(mysql_database)
    deadline = time.monotonic() + 40
    while not reached(stored_position(kafka_bootstrap, prefix), server.gtid or ""):
        assert runs[-1].process.poll() is None, runs[-1].text()[-3000:]
        assert time.monotonic() < deadline, (f"capture did not catch up to {server.gtid}:\n" + runs[-1].text()[-3000:])
        time.sleep(0.3)
    code = runs[-1].terminate()
    assert code == 0, f"SIGTERM: exit {code}\n{runs[-1].text()[-3000:]}"

    records = read_topic(kafka_bootstrap, topic, timeout=60)
    records.sort(key=lambda r: (r.partition, r.offset))
    run_starts = [run.started_ms for run in runs]

    def run_of(record) -> int:
        return max(i for i, start in enumerate(run_starts) if start <= record.timestamp_ms) \
            if record.timestamp_ms >= run_starts[0] else 0

    # Where each restarted run resumed: the last position stored before it started (killed runs store nothing after).
    values = ((r.timestamp_ms, orjson.loads(r.value)) for r in
              read_topic(kafka_bootstrap, f"__cdc-offsets.{prefix}", timeout=30) if r.value)
    # binlog positions (not snapshot markers or incremental-snapshot progress)
    stored = sorted(((ts, v) for ts, v in values if "file" in v), key=lambda item: item[0])
    resumed_at = [None] + [max(((file_number(v["file"]), v["pos"]) for ts, v in stored if ts < start), default=None)
                           for start in run_starts[1:]]
    sent_before = [0] * len(runs)  # distinct positions at or after the resume point sent before each run
    for run in range(1, len(runs)):
        assert resumed_at[run] is not None, f"run {run} started before any position was stored"

    seen: set[tuple] = set()
    last_in_partition: dict[int, tuple] = {}
    repeats = [0] * len(runs)
    events = [0] * len(runs)
    state: dict[int, dict] = {}
    snapshot_reads = 0
    for record in records:
        if record.value is None:
            continue  # tombstone
        event = orjson.loads(record.value)
        op, source = event["op"], event["source"]
        run = run_of(record)
        events[run] += 1
        if op == "r":
            assert source["snapshot"] != "false"
            snapshot_reads += 1
        else:
            position = (file_number(source["file"]), source["pos"], source["row"], op)
            if position in seen:
                repeats[run] += 1
                assert position[:2] >= resumed_at[run], \
                    f"run {run} resumed at {resumed_at[run]} but sent {position} again: before its stored position"
                continue
            seen.add(position)
            previous = last_in_partition.get(record.partition)
            assert previous is None or position[:3] >= previous[:3], \
                f"position went back without being a repeat: {previous} -> {position}"
            last_in_partition[record.partition] = position
        if op in ("c", "u", "r"):
            state[event["after"]["id"]] = event["after"]
        elif op == "d":
            state.pop(event["before"]["id"], None)
        else:
            pytest.fail(f"unexpected op {op!r}")

    for run in range(1, len(runs)):
        sent_before[run] = sum(1 for p in seen_before(records, run_starts[run]) if p[:2] >= resumed_at[run])

    expected = source_rows(mysql_database)
    print(f"writer: {writer.transactions} transactions committed, {writer.rollbacks} rolled back, "
          f"{len(expected)} rows at the end; topic: {sum(events)} events, {snapshot_reads} snapshot reads")
    for crash in range(1, len(runs)):
        print(f"crash {crash}: {repeats[crash]} repeats (resumed at {resumed_at[crash]}, {sent_before[crash]} events "
              f"after it were already sent) of {events[crash]} events sent by the run after it")
    print(f"drill took {time.monotonic() - started:.1f}s (load phase {load_seconds:.1f}s)")

    assert snapshot_reads == SEED_ROWS
    assert writer.transactions > 100, "the load was too light to prove anything"
    missing = expected.keys() - state.keys()
    extra = state.keys() - expected.keys()
    assert not missing, f"{len(missing)} rows missing from the replay, e.g. {sorted(missing)[:10]}"
    assert not extra, f"{len(extra)} rows in the replay that the source no longer has, e.g. {sorted(extra)[:10]}"
    differing = [k for k in expected if state[k] != expected[k]]
    assert not differing, f"{len(differing)} rows differ, e.g. {differing[0]}: {state[differing[0]]} != {expected[differing[0]]}"
    # Bounded: a restarted run repeats only what was sent after its stored position (checked per event
    # above), so at most those events; offsets are stored every second once Kafka acknowledged.
    for crash in range(1, len(runs)):
        assert repeats[crash] <= sent_before[crash], (crash, repeats, sent_before)
    assert repeats[0] == 0
