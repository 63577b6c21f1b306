"""Incremental snapshots on real servers (both engines): a table read in chunks while a write load
changes the rows being read, the capture SIGKILLed mid-snapshot and restarted, apply creating the
target tables; at the end the target equals the source (`cdc verify` exit 0). Composite and text keys."""

from __future__ import annotations

import time

import pytest

from tests.apply.kafka_stream import unique_prefix
from tests.conftest import create_mysql_database, create_pg_database, database_of, drop_mysql_database, \
    drop_pg_database
from tests.incremental.support import WriteLoad, cdc, events, log_of, progress, start, stop, wait_for

ROWS = 20_000
SMALL = 2_000
CHUNK = 2_000


def _pg_executor(url: str):
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    return conn, lambda sql, params=(): conn.execute(sql, params)


def _mysql_executor(url: str):
    from connectors.mysql.dialect import connect

    conn = connect(url)

    def execute(sql, params=()):
        with conn.cursor() as cursor:
            cursor.execute(sql, params)

    return conn, execute


def _fill(execute, engine: str) -> None:
    text = "text" if engine == "postgresql" else "varchar(64)"
    execute(f"CREATE TABLE items (id int PRIMARY KEY, name {text}, qty int, note {text})")
    execute(f"CREATE TABLE pairs (region {text} NOT NULL, n int NOT NULL, label {text}, PRIMARY KEY (region, n))")
    execute(f"CREATE TABLE words (word {text if engine == 'postgresql' else 'varchar(64)'} PRIMARY KEY, freq int)")
    for start_at in range(1, ROWS + 1, 5000):
        values = ",".join(f"({i}, 'name {i}', {i}, NULL)" for i in range(start_at, min(start_at + 5000, ROWS + 1)))
        execute(f"INSERT INTO items VALUES {values}")
    execute("INSERT INTO pairs VALUES " + ",".join(f"('r{i % 7}', {i}, 'p{i}')" for i in range(SMALL)))
    execute("INSERT INTO words VALUES " + ",".join(f"('w{i:05d}x', {i})" for i in range(SMALL)))


@pytest.fixture
def databases(engine, pg_url, mysql_url):
    """(source URL, target URL): two fresh databases of `engine`."""
    if engine == "postgresql":
        source, target = create_pg_database(pg_url, "inc_src"), create_pg_database(pg_url, "inc_tgt")
        yield source, target
        drop_pg_database(pg_url, source)
        drop_pg_database(pg_url, target)
    else:
        source, target = create_mysql_database(mysql_url, "inc_src"), create_mysql_database(mysql_url, "inc_tgt")
        yield source, target
        drop_mysql_database(mysql_url, source)
        drop_mysql_database(mysql_url, target)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_snapshot_under_load_with_sigkill_resumes_and_target_equals_source(engine, databases, kafka_bootstrap):
    source, target = databases
    namespace = "public" if engine == "postgresql" else database_of(source)
    conn, execute = (_pg_executor if engine == "postgresql" else _mysql_executor)(source)
    prefix = unique_prefix("inc")
    capture_args = ("capture", "--source", source, "--kafka", kafka_bootstrap, "--prefix", prefix,
                    "--tables", "items,pairs,words", "--snapshot", "never", "--heartbeat-interval", "1")
    apply = capture = None
    try:
        _fill(execute, engine)
        capture = start(*capture_args)
        apply = start("apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", target, "--create-tables",
                      "--linger-ms", "50")
        time.sleep(3)  # the capture streams (slot / binlog position taken) before the load starts
        with WriteLoad(execute, ROWS) as load:
            wait_for(lambda: load.changes > 200, 30, "the write load")
            cdc("snapshot", "--source", source, "--prefix", prefix, "--tables", "items,pairs,words",
                "--chunk-rows", str(CHUNK), "--max-rows-per-second", "5000")
            at_kill = wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["rows"] >= 3 * CHUNK and p,
                               60, "three chunks stored", every=0.2)
            assert at_kill["status"] == "running" and at_kill["table_index"] == 0, at_kill
            stop(capture, kill=True)
            capture = start(*capture_args)
            done = wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["status"] == "done" and p,
                            120, "the incremental snapshot to finish")
            assert "incremental snapshot resumes" in log_of(capture)
            time.sleep(1)
            assert load.changes > 1000
        # the stream carries the load's last changes; then the target must equal the source
        verify = ("verify", "--source", source, "--target", target, "--tables", "items,pairs,words")
        wait_for(lambda: cdc(*verify, check=False).returncode == 0, 120, "cdc verify to report parity", every=2)
        reads = [e for e in events(kafka_bootstrap, f"{prefix}.{namespace}.items") if e.get("op") == "r"]
        assert reads and all(e["source"]["snapshot"] == "incremental" for e in reads)
        # resumed at the next chunk, not from the start: at most the chunk in flight is read twice
        assert len(reads) <= ROWS + 2 * CHUNK, (len(reads), at_kill["rows"], done["rows"])
        for table in ("pairs", "words"):
            assert sum(1 for e in events(kafka_bootstrap, f"{prefix}.{namespace}.{table}") if e["op"] == "r") >= SMALL
    finally:
        for process in (capture, apply):
            if process is not None:
                stop(process)
        conn.close()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_signal_via_kafka_snapshots_the_table_with_debezium_shaped_read_events(engine, databases, kafka_bootstrap):
    source, _ = databases
    namespace = "public" if engine == "postgresql" else database_of(source)
    conn, execute = (_pg_executor if engine == "postgresql" else _mysql_executor)(source)
    prefix = unique_prefix("inck")
    capture = None
    try:
        execute("CREATE TABLE words (word varchar(64) PRIMARY KEY, freq int)")
        execute("INSERT INTO words VALUES " + ",".join(f"('w{i:05d}', {i})" for i in range(SMALL)))
        # sent first: the capture finds the signal topic at its first look (then every 10 s) and reads it
        cdc("snapshot", "--kafka", kafka_bootstrap, "--via", "kafka", "--prefix", prefix,
            "--tables", f"{namespace}.words", "--chunk-rows", "500")
        capture = start("capture", "--source", source, "--kafka", kafka_bootstrap, "--prefix", prefix,
                        "--tables", "words", "--snapshot", "never")
        done = wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["status"] == "done" and p, 60,
                        "the snapshot signalled through Kafka to finish")
        assert done["rows"] == SMALL
        reads = events(kafka_bootstrap, f"{prefix}.{namespace}.words")
        assert len(reads) == SMALL
        first = next(r for r in reads if r["after"]["word"] == "w00000")
        assert first["op"] == "r" and first["before"] is None and first["after"] == {"word": "w00000", "freq": 0}
        assert first["source"]["snapshot"] == "incremental"
        assert (first["source"]["table"], first["source"]["name"]) == ("words", prefix)
        assert {r["after"]["word"] for r in reads} == {f"w{i:05d}" for i in range(SMALL)}
        # watermarks and signals are never events
        assert not events(kafka_bootstrap, f"{prefix}.message")
        assert cdc("snapshot", "--kafka", kafka_bootstrap, "--via", "kafka", "--prefix", prefix, "--tables",
                   f"{namespace}.words", "--where", "1=1", check=False).returncode != 0
    finally:
        if capture is not None:
            stop(capture)
        conn.close()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_table_added_to_the_capture_is_snapshotted_and_created_by_apply(engine, databases, kafka_bootstrap):
    source, target = databases
    namespace = "public" if engine == "postgresql" else database_of(source)
    conn, execute = (_pg_executor if engine == "postgresql" else _mysql_executor)(source)
    prefix = unique_prefix("inca")
    capture = apply = None
    args = ("capture", "--source", source, "--kafka", kafka_bootstrap, "--prefix", prefix, "--snapshot", "never")
    try:
        execute("CREATE TABLE words (word varchar(64) PRIMARY KEY, freq int)")
        execute("CREATE TABLE extra (id int PRIMARY KEY, label varchar(20))")
        execute("INSERT INTO extra VALUES " + ",".join(f"({i}, 'e{i}')" for i in range(1, SMALL + 1)))
        capture = start(*args, "--tables", "words")
        wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["known_tables"], 60,
                 "the capture to record its tables")
        stop(capture)
        capture = start(*args, "--tables", "words,extra")  # extra added: PG adds it to the publication
        apply = start("apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", target, "--create-tables")
        done = wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["status"] == "done" and p, 60,
                        "the added table's snapshot")
        assert done["tables"] == [f"{namespace}.extra"] and done["rows"] == SMALL
        verify = ("verify", "--source", source, "--target", target, "--tables", "extra")
        wait_for(lambda: cdc(*verify, check=False).returncode == 0, 90, "the added table to reach the target", every=2)
    finally:
        for process in (capture, apply):
            if process is not None:
                stop(process)
        conn.close()


def test_verify_resync_snapshots_exactly_the_differing_keys(pg_url, kafka_bootstrap):
    source, target = create_pg_database(pg_url, "inc_rs_src"), create_pg_database(pg_url, "inc_rs_tgt")
    conn, execute = _pg_executor(source)
    target_conn, target_execute = _pg_executor(target)
    prefix = unique_prefix("incr")
    capture = apply = None
    try:
        execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        execute("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 500) g")
        capture = start("capture", "--source", source, "--kafka", kafka_bootstrap, "--prefix", prefix,
                        "--tables", "items")
        apply = start("apply", "--kafka", kafka_bootstrap, "--prefix", prefix, "--target", target, "--create-tables")
        verify = ("verify", "--source", source, "--target", target, "--tables", "items")
        wait_for(lambda: cdc(*verify, check=False).returncode == 0, 90, "the initial snapshot in the target", every=2)
        target_execute("UPDATE items SET name = 'drifted' WHERE id IN (7, 300)")
        target_execute("DELETE FROM items WHERE id = 42")
        result = cdc(*verify, "--resync", "--prefix", prefix, check=False)
        assert result.returncode == 1 and "resync: incremental snapshot" in result.stderr, result.stderr
        done = wait_for(lambda: (p := progress(kafka_bootstrap, prefix)) and p["status"] == "done" and p, 60,
                        "the resync snapshot")
        assert done["rows"] == 3 and done["ranges"] == [[[[7], [7]], [[42], [42]], [[300], [300]]]]
        wait_for(lambda: cdc(*verify, check=False).returncode == 0, 60, "parity after the resync", every=2)
    finally:
        for process in (capture, apply):
            if process is not None:
                stop(process)
        conn.close()
        target_conn.close()
        drop_pg_database(pg_url, source)
        drop_pg_database(pg_url, target)
