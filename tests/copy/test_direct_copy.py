"""`cdc copy` under a concurrent write load, then streaming from the copy's position: parity, nothing lost or doubled."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from cdc.copy.run import copy_tables
from cdc.errors import TargetError
from cdc.verify.parity import verify
from cdc.verify.plan import VerifyOptions
from connectors.mysql import dialect as mysql_dialect
from connectors.postgres import dialect as pg_dialect
from tests.apply.kafka_stream import FAST_GROUP, unique_prefix
from tests.verify.conftest import Database

CDC = str(Path(sys.executable).with_name("cdc"))
ROWS = 30_000

DDL = {  # a few types that differ between the engines
    "pg": "CREATE TABLE items (id bigint PRIMARY KEY, qty integer, price numeric(12,2), ratio double precision, "
          "active boolean, name varchar(40), at timestamptz, doc jsonb, bin bytea)",
    "my": "CREATE TABLE items (id bigint PRIMARY KEY, qty int, price decimal(12,2), ratio double, active tinyint(1), "
          "name varchar(40), at datetime(6), doc json, bin longblob)",
}
FILL = {
    "pg": "INSERT INTO items SELECT g, g %% 97, g / 4.0, g / 7.0::float8, g %% 2 = 0, 'name ' || g, "
          "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', ('{\"k\": ' || g || '}')::jsonb, "
          "decode(lpad(to_hex(g), 8, '0'), 'hex') FROM generate_series(1, %s) g",
    "my": "INSERT INTO items SELECT seq, seq %% 97, seq / 4.0, seq / 7e0, seq %% 2 = 0, CONCAT('name ', seq), "
          "TIMESTAMPADD(SECOND, seq, '2024-01-01 00:00:00'), CONCAT('{\"k\": ', seq, '}'), UNHEX(LPAD(HEX(seq), 8, '0')) "
          "FROM seq_1_to_%s",
}


def items_writes(db: Database, rng: random.Random, n: int) -> None:
    """One insert, update or delete on `items`."""
    row, kind = rng.randint(1, ROWS), rng.random()
    if kind < 0.4:
        db.run(f"UPDATE items SET qty = qty + 1, name = 'updated {n}' WHERE id = {row}")
    elif kind < 0.6:
        db.run(f"DELETE FROM items WHERE id = {row}")
    else:
        db.run(f"INSERT INTO items (id, qty, name) VALUES ({ROWS + 1 + n}, 1, 'new')")


class WriteLoad:
    """Inserts, updates and deletes on the source in a thread, until stopped."""

    def __init__(self, db: Database, write=items_writes) -> None:
        self.db = db
        self.write = write
        self.stop = threading.Event()
        self.writes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        while not self.stop.is_set():
            self.write(self.db, rng, self.writes)
            self.writes += 1
            time.sleep(0.002)

    def __enter__(self) -> WriteLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([CDC, "--log-level", "warning", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_parity(source: Database, target: Database, deadline: float, tables=("items",)) -> object:
    report = None
    while time.monotonic() < deadline:
        report = verify(source.url, target.url, VerifyOptions(tables=tables, recheck_delay=0, workers=2))
        if report.exit_code == 0:
            return report
        time.sleep(1)
    return report


def _copy_under_load_then_stream(source: Database, target: Database, tables: list[str], kafka: str, write,
                                  **options) -> object:
    """Copy `tables` while `write` runs on the source, then capture + apply; assert parity; the copy's result."""
    prefix = unique_prefix("cp")
    processes = []
    try:
        with WriteLoad(source, write) as load:
            time.sleep(0.3)
            result = copy_tables(source.url, target.url, tables, prefix, workers=2, kafka=kafka, **options)
            writes_during_copy = load.writes
            processes.append(_start("capture", "--source", source.url, "--kafka", kafka, "--prefix", prefix,
                                    "--tables", ",".join(tables), "--snapshot", "never", "--heartbeat-interval", "1"))
            processes.append(_start("apply", "--kafka", kafka, "--prefix", prefix, "--target", target.url,
                                    "--session-timeout-ms", str(FAST_GROUP["session_timeout_ms"]),
                                    "--max-poll-interval-ms", str(FAST_GROUP["max_poll_interval_ms"])))
            time.sleep(3)
        assert writes_during_copy > 0 and load.writes > writes_during_copy  # writes ran during and after the copy
        names = tuple(table.split(".")[-1] for table in tables)
        report = _wait_for_parity(source, target, time.monotonic() + 60, names)
        for process in processes:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert report.exit_code == 0, [(d.kind, d.key) for t in report.tables for d in t.diffs][:10]
        return result
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)


@pytest.mark.parametrize("pair", ["pg-pg", "pg-my", "my-pg"], indirect=True)
def test_copy_under_writes_then_streaming_ends_in_parity(pair, kafka_bootstrap):
    source, target = pair
    source.run(DDL[source.engine])
    source.run(FILL[source.engine] % ROWS)
    target.run(DDL[target.engine])
    table = "public.items" if source.engine == "pg" else "items"
    result = _copy_under_load_then_stream(source, target, [table], kafka_bootstrap, items_writes)
    assert sum(result.rows.values()) >= ROWS * 0.9


KEYED_DDL = ["CREATE TABLE words (word varchar(40) PRIMARY KEY, n int)",
             "CREATE TABLE pairs (a varchar(10), b int, n int, PRIMARY KEY (a, b))"]
KEYED_FILL = {
    "pg": ["INSERT INTO words SELECT md5(g::text), g FROM generate_series(1, 20000) g",
           "INSERT INTO pairs SELECT 'k' || (g % 37), g, g FROM generate_series(1, 20000) g"],
    "my": ["INSERT INTO words SELECT MD5(seq), seq FROM seq_1_to_20000",
           "INSERT INTO pairs SELECT CONCAT('k', seq % 37), seq, seq FROM seq_1_to_20000"],
}


def keyed_writes(db: Database, rng: random.Random, n: int) -> None:
    """One insert, update or delete on `words` (text key) or `pairs` (composite key)."""
    a, b, kind = f"k{rng.randint(0, 40)}", rng.randint(1, 25000), rng.random()
    if kind < 0.3:
        db.run("UPDATE pairs SET n = n + 1 WHERE a = %s AND b = %s", (a, b))
    elif kind < 0.5:
        db.run("DELETE FROM pairs WHERE a = %s AND b = %s", (a, b))
    elif kind < 0.6:
        db.run("DELETE FROM words WHERE word < %s ORDER BY word DESC LIMIT 1" if db.engine == "my" else
               "DELETE FROM words WHERE word = (SELECT max(word) FROM words WHERE word < %s)", (f"{n:x}",))
    elif kind < 0.8:
        db.run("INSERT INTO words (word, n) VALUES (%s, %s)", (f"new {n}", n))
    else:
        db.run("INSERT INTO pairs (a, b, n) VALUES (%s, %s, 0)", (f"new{n % 50}", 100_000 + n))


@pytest.mark.parametrize("pair", ["pg-pg", "my-pg"], indirect=True)
def test_copy_splits_text_and_composite_keys_into_ranges_under_writes(pair, kafka_bootstrap):
    source, target = pair
    for statement in KEYED_DDL + KEYED_FILL[source.engine]:
        source.run(statement)
    tables = ["public.words", "public.pairs"] if source.engine == "pg" else ["words", "pairs"]
    result = _copy_under_load_then_stream(source, target, tables, kafka_bootstrap, keyed_writes, create_tables=True)
    assert all(result.ranges[table] >= 2 for table in tables), result.ranges  # MariaDB: the sandbox's root has RELOAD


@pytest.mark.parametrize("pair", ["my-pg"], indirect=True)
def test_mariadb_source_without_reload_reads_in_one_connection(pair, kafka_bootstrap):
    source, target = pair
    for statement in KEYED_DDL + KEYED_FILL["my"]:
        source.run(statement)
    url = urlsplit(source.url)
    user = f"norel{random.randint(0, 10**6)}"
    source.run(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    source.run(f"GRANT SELECT ON *.* TO '{user}'@'%'")
    try:
        limited = urlunsplit(url._replace(netloc=f"{user}:pw@{url.hostname}:{url.port}"))
        result = copy_tables(limited, target.url, ["words", "pairs"], unique_prefix("cp"), workers=3,
                             kafka=kafka_bootstrap, create_tables=True)
        assert result.ranges == {"words": 1, "pairs": 1} and result.rows == {"words": 20000, "pairs": 20000}
    finally:
        source.run(f"DROP USER '{user}'@'%'")


@pytest.mark.parametrize("pair", ["pg-my"], indirect=True)
def test_copy_refuses_a_target_table_that_holds_rows(pair):
    source, target = pair
    source.run(DDL[source.engine])
    target.run(DDL[target.engine])
    target.run("INSERT INTO items (id) VALUES (1)")
    with pytest.raises(TargetError, match="not empty"):
        copy_tables(source.url, target.url, ["public.items"], unique_prefix("cp"), workers=2)


@pytest.mark.parametrize("pair", ["pg-my", "my-pg", "my-my"], indirect=True)
def test_copy_keeps_awkward_values_exactly(pair, kafka_bootstrap):
    source, target = pair
    source.run(DDL[source.engine])
    target.run(DDL[target.engine])
    texts = ["tab\there", "line\nbreak\r\n", "back\\slash", "\\N", "", None, "é ✓ 😀", "quote ' \" ,"]
    rows = [(i + 1, texts[i], bytes([0, 9, 10, 92, 255]) if i % 2 else None, 1e-310 if i == 3 else -0.5)
            for i in range(len(texts))]
    source.run("INSERT INTO items (id, name, bin, ratio) VALUES (%s, %s, %s, %s)", rows, many=True)
    table = "public.items" if source.engine == "pg" else "items"
    copy_tables(source.url, target.url, [table], unique_prefix("cp"), workers=2, kafka=kafka_bootstrap)
    report = verify(source.url, target.url, VerifyOptions(tables=("items",), recheck_delay=0, workers=2))
    assert report.exit_code == 0, [(d.kind, d.key, d.columns) for t in report.tables for d in t.diffs]


INDEXES = {
    "pg": ["CREATE UNIQUE INDEX items_name ON items (name)", "CREATE INDEX items_qty ON items (qty, price)",
           "CREATE INDEX items_lower ON items (lower(name))"],
    "my": ["CREATE UNIQUE INDEX items_name ON items (name)", "CREATE INDEX items_qty ON items (qty, price)",
           "CREATE INDEX items_lower ON items (name(3))"],
}
INDEX_NAMES_SQL = {
    "pg": "SELECT indexname FROM pg_indexes WHERE tablename = 'items'",
    "my": "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()"
          " AND TABLE_NAME = 'items'",
}


def _index_names(db: Database) -> set[str]:
    if db.engine == "pg":
        with pg_dialect.connect(db.url) as conn:
            return {name for (name,) in conn.execute(INDEX_NAMES_SQL["pg"]).fetchall()}
    conn = mysql_dialect.connect(db.url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(INDEX_NAMES_SQL["my"])
            return {name for (name,) in cursor.fetchall()}
    finally:
        conn.close()


@pytest.mark.parametrize("pair", ["pg-pg", "pg-my", "my-pg"], indirect=True)
def test_copy_creates_missing_tables_then_their_keys_and_indexes(pair, kafka_bootstrap):
    source, target = pair
    source.run(DDL[source.engine])
    source.run(FILL[source.engine] % 5000)
    for statement in INDEXES[source.engine]:
        source.run(statement)
    table = "public.items" if source.engine == "pg" else "items"
    result = copy_tables(source.url, target.url, [table], unique_prefix("cp"), workers=2, kafka=kafka_bootstrap,
                         create_tables=True)
    assert result.created == [table] and result.rows == {table: 5000}
    report = verify(source.url, target.url, VerifyOptions(tables=("items",), recheck_delay=0, workers=2))
    assert report.exit_code == 0, [(d.kind, d.key, d.columns) for t in report.tables for d in t.diffs][:5]
    names = _index_names(target)
    if source.engine == target.engine:
        assert names == _index_names(source)  # every index, expressions included
    else:
        assert len(names) == 3  # primary key, items_name, items_qty
        assert [index for index, _ in result.skipped_indexes[table]] == ["items_lower"]


@pytest.mark.parametrize("pair", ["pg-pg"], indirect=True)
def test_a_failed_copy_drops_the_tables_it_created(pair):
    source, target = pair
    source.run("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    source.run(DDL["pg"])
    source.run(FILL["pg"] % 100)
    source.run("CREATE INDEX items_trgm ON items USING gin (name gin_trgm_ops)")  # the target lacks pg_trgm
    with pytest.raises(psycopg.Error, match="gin_trgm_ops"):
        copy_tables(source.url, target.url, ["public.items"], unique_prefix("cp"), workers=2, create_tables=True)
    with pg_dialect.connect(target.url) as conn:
        assert conn.execute("SELECT to_regclass('public.items')").fetchone()[0] is None
