"""The report contract (docs/verify-report.schema.json): one value rule on every path, one object behind
the JSON, the HTML page and the terminal summary, `--json -`, private report files, exit-2 reports.

Every report built in tests/verify is also validated by the autouse fixture in conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from cdc.commands.verify import command
from cdc.verify.parity import verify
from cdc.verify.plan import ColumnPair, ColumnShape, VerifyOptions
from cdc.verify.report import report_dict
from cdc.verify.values import report_value, value_type
from tests.verify.conftest import check_report

OPTIONS = dict(threshold=20, segment_rows=100, workers=2, recheck_delay=0)
HUGE = 2**60 + 3  # beyond 2^53: exact only as a string


# the value rule, as a pure function ---------------------------------------------------------------
def pair(source_kind: str, target_kind: str, **shape) -> ColumnPair:
    return ColumnPair("c", ColumnShape("c", source_kind, source_kind, **shape),
                      ColumnShape("c", target_kind, target_kind, **shape), "text")


@pytest.mark.parametrize("kinds, expected", [
    (("int", "int"), "integer"), (("boolean", "int"), "integer"), (("boolean", "boolean"), "boolean"),
    (("decimal", "int"), "decimal"), (("float", "decimal"), "float"), (("json", "string"), "json"),
    (("array", "json"), "json"), (("uuid", "string"), "uuid"), (("bytes", "bytes"), "binary"),
    (("timestamptz", "timestamp"), "timestamp"), (("interval", "interval"), "string"), (("int", "string"), "string"),
])
def test_value_type_is_one_per_column_pair(kinds, expected):
    assert value_type(pair(*kinds)) == expected


@pytest.mark.parametrize("value, vtype, expected", [
    (None, "integer", None), (42, "integer", 42), ("777", "integer", 777), (True, "integer", 1),
    (2**53 - 1, "integer", 2**53 - 1), (2**53, "integer", "9007199254740992"), (-HUGE, "integer", f"-{HUGE}"),
    (True, "boolean", True), (Decimal("52.50"), "decimal", "52.50"), (Decimal("0E-10"), "decimal", "0.0000000000"),
    (Decimal("NaN"), "decimal", "NaN"), (7, "decimal", "7"), (0.1, "float", "0.1"), (1e-7, "float", "1e-07"),
    (float("-inf"), "float", "-Infinity"), (Decimal("2.5"), "float", "2.5"), (b"\x00\xff", "binary", "AP8="),
    (memoryview(b"ab"), "binary", "YWI="), ("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "uuid",
                                            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    (dt.datetime(2024, 2, 29, 13, 45), "timestamp", "2024-02-29T13:45:00.000000Z"),
    (dt.datetime(2024, 3, 1, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), "timestamp",
     "2024-03-01T10:00:00.000005Z"),
    (dt.date(999, 1, 2), "date", "0999-01-02"), (dt.time(1, 2, 3, 4), "time", "01:02:03.000004"),
    (dt.timedelta(hours=-30, microseconds=-1), "time", "-30:00:00.000001"),
    ('{"a": [1, 2.5]}', "json", {"a": [1, 2.5]}), ('"text"', "json", "text"), ("{x,y}", "json", "{x,y}"),
    (b"\x05", "bits", "00000101"), ("é", "string", "é"),
])
def test_report_value_spells_each_type_one_way(value, vtype, expected):
    shape = ColumnShape("c", "bits", "bit", length=8) if vtype == "bits" else None
    assert report_value(value, vtype, shape) == expected


# every path, on real servers ----------------------------------------------------------------------
TYPES = {  # column: (PostgreSQL type, MariaDB type)
    "amount": ("numeric(10,2)", "DECIMAL(10,2)"),
    "ratio": ("double precision", "DOUBLE"),
    "doc": ("jsonb", "JSON"),
    "bin": ("bytea", "LONGBLOB"),
    "at": ("timestamp(6)", "DATETIME(6)"),
}


def create_mixed(db) -> None:
    """A bigint-keyed table of numeric, float, JSON, binary and timestamp columns (range mode)."""
    index = 0 if db.engine == "pg" else 1
    db.run(f"CREATE TABLE mixed (id BIGINT PRIMARY KEY, {', '.join(f'{c} {t[index]}' for c, t in TYPES.items())})")
    rows = [(i, Decimal(n) / 4, n / 3, json.dumps({"k": n}), bytes([n % 256, 0]),
             dt.datetime(2024, 1, 1) + dt.timedelta(seconds=n, microseconds=n))
            for i, n in [(i, i) for i in range(1, 301)] + [(HUGE, 999)]]
    db.run("INSERT INTO mixed VALUES (%s, %s, %s, %s, %s, %s)", rows, many=True)


def create_keyed_by_text(db) -> None:
    """A text key with a float column (hash buckets, client-side floats across engines) and a composite key."""
    db.run("CREATE TABLE words (w VARCHAR(20) PRIMARY KEY, score DOUBLE PRECISION)")
    db.run("INSERT INTO words VALUES (%s, %s)", [(f"w{i}", i / 7) for i in range(200)], many=True)
    db.run("CREATE TABLE order_lines (ref VARCHAR(10), line BIGINT, qty INT, PRIMARY KEY (ref, line))")
    db.run("INSERT INTO order_lines VALUES (%s, %s, %s)",
           [(f"o{i}", n, i) for i in range(100) for n in (1, 2)], many=True)
    db.run("CREATE TABLE events (what VARCHAR(10), amount DECIMAL(10,2))")
    db.run("INSERT INTO events VALUES (%s, %s)", [("a", 1), ("a", 1), ("b", 2.5)], many=True)


def seed(db) -> None:
    db.run("DELETE FROM mixed WHERE id = 7")
    db.run("INSERT INTO mixed (id, amount) VALUES (900, 1)")
    db.run("UPDATE mixed SET amount = 0 WHERE id = 42")
    # Far from the other changes: across engines only the client-side pass sees these two rows.
    db.run("UPDATE mixed SET ratio = 0.5 WHERE id = 150")
    db.run("UPDATE mixed SET doc = %s WHERE id = 250", ('{"k": "changed"}',))
    db.run("UPDATE mixed SET bin = %s, at = %s WHERE id = 79", (b"\x01", dt.datetime(2025, 5, 5, 5, 5, 5, 5)))
    db.run("UPDATE mixed SET amount = 2 WHERE id = %s", (HUGE,))
    db.run("UPDATE words SET score = -1 WHERE w = 'w30'")
    db.run("UPDATE order_lines SET qty = 0 WHERE ref = 'o7' AND line = 2")
    db.run("DELETE FROM events WHERE what = 'b'")


def rows_of(data: dict, table: str) -> dict:
    [t] = [t for t in data["tables"] if t["name"] == table]
    assert t["error"] is None, t["error"]
    return t


@pytest.mark.parametrize("pair", ["pg-my", "my-pg", "pg-pg"], indirect=True)
def test_every_path_gives_keys_and_values_of_one_type_per_column(pair):
    source, target = pair
    for db in (source, target):
        create_mixed(db)
        create_keyed_by_text(db)
    seed(target)
    data = check_report(report_dict(verify(source.url, target.url, VerifyOptions(**OPTIONS))))

    mixed = rows_of(data, "mixed")
    assert mixed["mode"] == "range"
    assert mixed["value_types"] == {"id": "integer", "amount": "decimal", "ratio": "float", "doc": "json",
                                    "bin": "binary", "at": "timestamp"}
    # Doubles are compared by their bits in SQL; the JSON texts agree (json.dumps spells one key as jsonb does).
    assert mixed["client_side_columns"] == []
    by_key = {(row["kind"], row["key"]["id"]): {c["column"]: (c["source"], c["target"]) for c in row.get("columns", [])}
              for row in mixed["rows"]}
    # The same bigint column is a JSON number whichever path found the row (bisection or client-side pass).
    assert by_key == {
        ("missing", 7): {}, ("extra", 900): {},
        ("changed", 42): {"amount": ("10.50", "0.00")},
        ("changed", 150): {"ratio": ("50.0", "0.5")},
        ("changed", 250): {"doc": ({"k": 250}, {"k": "changed"})},
        ("changed", 79): {"bin": ("TwA=", "AQ=="),
                          "at": ("2024-01-01T00:01:19.000079Z", "2025-05-05T05:05:05.000005Z")},
        ("changed", str(HUGE)): {"amount": ("249.75", "2.00")},
    }

    words = rows_of(data, "words")
    assert words["mode"] == "hash" and words["client_side_columns"] == []
    assert [(row["key"], row["columns"]) for row in words["rows"]] == [
        ({"w": "w30"}, [{"column": "score", "source": "4.285714285714286", "target": "-1.0"}])]

    lines = rows_of(data, "order_lines")
    assert [row["key"] for row in lines["rows"]] == [{"ref": "o7", "line": 2}]  # object in key order, line a number

    events = rows_of(data, "events")
    assert events["mode"] == "multiset"
    assert [(row["kind"], row["key"]) for row in events["rows"]] == [("missing", {"what": "b", "amount": "2.50"})]


def test_in_flight_rows_keep_their_key_types(extra_database, monkeypatch):
    source, target = extra_database("my"), extra_database("pg")
    for db in (source, target):
        create_mixed(db)
    target.run("UPDATE mixed SET ratio = 0 WHERE id IN (5, 6)")

    def replication_catches_up(seconds: float) -> None:
        target.run("UPDATE mixed SET ratio = %s WHERE id = 5", (5 / 3,))

    monkeypatch.setattr("cdc.verify.parity.wait", replication_catches_up)
    report = verify(source.url, target.url, VerifyOptions(**{**OPTIONS, "recheck_delay": 0.01}))
    data = check_report(report_dict(report))
    assert {(row["key"]["id"], row["status"]) for row in rows_of(data, "mixed")["rows"]} == {
        (5, "in_flight"), (6, "different")}


# the command: --json -, private files, one object behind JSON, HTML and terminal -------------------
def run(*args: str):
    return CliRunner().invoke(command, ["--recheck-delay", "0", "--threshold", "20", "--segment-rows", "100", *args],
                              catch_exceptions=False)


def test_json_to_stdout_and_private_report_files(extra_database, tmp_path):
    source, target = extra_database("pg"), extra_database("my")
    for db in (source, target):
        create_mixed(db)
        create_keyed_by_text(db)
    seed(target)
    result = run("--source", source.url, "--target", target.url, "--json", "-")
    assert result.exit_code == 1
    data = check_report(json.loads(result.stdout))  # stdout is the report and nothing else
    assert data["status"] == "differences" and "DIFFERENCES FOUND" in result.stderr
    assert "DIFFERENCES FOUND" not in result.stdout

    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    html_path.write_text("old")
    html_path.chmod(0o644)  # an existing file is made private too
    assert run("--source", source.url, "--target", target.url, "--json", str(json_path),
               "--html", str(html_path), "--quiet").exit_code == 1
    for path in (json_path, html_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    check_report(json.loads(json_path.read_text()))


class Cells(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def as_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def key_of(row: dict) -> str:
    return ", ".join(f"{name}={as_text(value)}" for name, value in row["key"].items())


def kind_of(row: dict) -> str:
    return row["kind"] + (" (in flight)" if row["status"] == "in_flight" else "") + (
        f" x{row['count']}" if "count" in row else "")


def test_html_and_terminal_show_exactly_the_json(extra_database, tmp_path):
    source, target = extra_database("pg"), extra_database("my")
    for db in (source, target):
        create_mixed(db)
        create_keyed_by_text(db)
    seed(target)
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    result = run("--source", source.url, "--target", target.url, "--json", str(json_path), "--html", str(html_path))
    assert result.exit_code == 1
    data = check_report(json.loads(json_path.read_text()))
    tables = data["tables"]

    def counts(t: dict) -> list[str]:
        return [str(t["differences"][k]) for k in ("missing", "extra", "changed", "in_flight")]

    page = Cells()
    page.feed(html_path.read_text())
    [summary] = [rows for rows in page.tables if rows[0][0] == "Table"]
    assert [(r[0], r[1], r[2], r[3], r[5:9]) for r in summary[1:]] == [
        (t["name"], t["status"], f"{t['source_rows']:,}", f"{t['target_rows']:,}", counts(t)) for t in tables]
    diff_tables = [rows[1:] for rows in page.tables if rows[0][0] == "Kind"]
    expected_html = []
    for t in tables:
        if not t["rows"]:
            continue
        cells = []
        for row in t["rows"]:
            if "columns" in row:
                cells += [[kind_of(row), key_of(row), c["column"], as_text(c["source"]), as_text(c["target"])]
                          for c in row["columns"]]
            else:
                side = "source" if row["kind"] == "missing" else "target"
                cells.append([kind_of(row), key_of(row), f"row only in {side}"])
        expected_html.append(cells)
    assert diff_tables == expected_html

    terminal = result.stdout.splitlines()
    table_lines = [line.split() for line in terminal
                   if not line.startswith("  ") and line.split() and line.split()[0] in {t["name"] for t in tables}]
    assert [(cells[0], cells[1], cells[2], cells[4:8]) for cells in table_lines] == [
        (t["name"], t["status"], f"{t['source_rows']:,}" if t["source_rows"] == t["target_rows"]
         else f"{t['source_rows']:,}/{t['target_rows']:,}", counts(t)) for t in tables]
    shown_rows = [line.strip() for line in terminal if line.startswith("  ") and line.strip()]
    expected_rows = []
    for t in tables:
        for row in t["rows"]:
            columns = "; ".join(f"{c['column']}: {as_text(c['source'])} -> {as_text(c['target'])}"
                                for c in row.get("columns", []))
            expected_rows.append(f"{t['name']} {kind_of(row)} ({key_of(row)}){' ' + columns if columns else ''}")
    assert shown_rows == expected_rows


# exit code 2 still writes a report ---------------------------------------------------------------
def test_runs_that_cannot_check_write_a_valid_report(extra_database, tmp_path):
    source = extra_database("pg")
    source.run("CREATE TABLE t1 (id INT PRIMARY KEY)")
    cases = {
        "bad_url": ("oracle://x:secret@h/db", source.url, []),
        "unreachable": (source.url, "mysql://root:secret@127.0.0.1:1/nowhere", []),
        "table_error": (source.url, source.url, ["--where", "no_such_column = 1"]),
    }
    for name, (source_url, target_url, extra) in cases.items():
        path = tmp_path / f"{name}.json"
        result = run("--source", source_url, "--target", target_url, "--json", str(path), *extra)
        assert result.exit_code == 2, (name, result.output)
        data = check_report(json.loads(path.read_text()))
        assert data["exit_code"] == 2 and data["status"] == "could_not_check"
        assert "secret" not in path.read_text()
        if name == "table_error":
            assert data["error"] is None and data["tables"][0]["status"] == "error"
        else:
            assert data["error"] and data["tables"] == []
    assert json.loads((tmp_path / "bad_url.json").read_text())["source"] is None
