"""`cdc verify` as a user runs it: exit codes, JSON and HTML reports, bad input, read-only users, lag."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit, urlunsplit

from click.testing import CliRunner

from cdc.commands.verify import command
from cdc.verify.parity import verify
from cdc.verify.plan import VerifyOptions


def run(*args: str):
    return CliRunner().invoke(command, ["--recheck-delay", "0", *args], catch_exceptions=False)


def make_orders(db) -> None:
    db.run("CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(20), total DECIMAL(10,2))")
    db.run("INSERT INTO orders VALUES (%s, %s, %s)", [(i, f"c{i % 7}", i * 1.25) for i in range(1, 501)], many=True)


def with_password(url: str, password: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user or parts.username}:{password}@{parts.hostname}:{parts.port}"))


def test_exit_codes_and_reports(extra_database, tmp_path):
    source, target = extra_database("pg"), extra_database("my")
    make_orders(source)
    make_orders(target)
    equal = run("--source", source.url, "--target", target.url, "--json", str(tmp_path / "eq.json"))
    assert equal.exit_code == 0, equal.output
    assert "PARITY" in equal.output
    assert json.loads((tmp_path / "eq.json").read_text())["status"] == "parity"

    target.run("UPDATE orders SET total = 0 WHERE id = 42")
    target.run("DELETE FROM orders WHERE id = 7")
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    different = run("--source", source.url, "--target", target.url, "--tables", "orders",
                    "--json", str(json_path), "--html", str(html_path))
    assert different.exit_code == 1, different.output
    assert "DIFFERENCES FOUND" in different.output and 'total: "52.50" -> "0.00"' in different.output

    data = json.loads(json_path.read_text())
    assert data["schema_version"] == 2 and data["exit_code"] == 1 and data["status"] == "differences"
    [table] = data["tables"]
    assert table["differences"] == {"missing": 1, "extra": 0, "changed": 1, "in_flight": 0}
    changed = [row for row in table["rows"] if row["kind"] == "changed"]
    assert changed == [{"kind": "changed", "status": "different", "key": {"id": 42},
                        "columns": [{"column": "total", "source": "52.50", "target": "0.00"}]}]
    assert data["summary"]["rows_different"] == 2 and data["summary"]["rows_checked"] == 500

    html = html_path.read_text()
    assert "DIFFERENCES FOUND" in html and "52.50" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html and "<link" not in html


def test_passwords_are_redacted_everywhere(extra_database, tmp_path, pg_url):
    source = extra_database("pg")
    make_orders(source)
    user = f"ro_{uuid.uuid4().hex[:8]}"
    source.run(f"CREATE USER {user} PASSWORD 'Sup3rSecret'")
    source.run(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}")
    try:
        url = with_password(source.url, "Sup3rSecret", user)
        result = run("--source", url, "--target", url, "--json", str(tmp_path / "r.json"),
                     "--html", str(tmp_path / "r.html"))
        assert result.exit_code == 0, result.output  # a SELECT-only user is enough
        for text in (result.output, (tmp_path / "r.json").read_text(), (tmp_path / "r.html").read_text()):
            assert "Sup3rSecret" not in text
    finally:
        source.run(f"DROP OWNED BY {user}")
        source.run(f"DROP USER {user}")


def test_read_only_mariadb_user_is_enough(extra_database):
    source, target = extra_database("my"), extra_database("my")
    make_orders(source)
    make_orders(target)
    user = f"ro_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(source.url)
    account = f"'{user}'@'{parts.hostname}'"  # the host it connects from (anonymous accounts may shadow '%')
    source.run(f"CREATE USER {account} IDENTIFIED BY 'pw'")
    try:
        for db in (source, target):
            source.run(f"GRANT SELECT ON `{urlsplit(db.url).path.strip('/')}`.* TO {account}")
        ro_source = urlunsplit(parts._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port}"))
        ro_target = urlunsplit(urlsplit(target.url)._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port}"))
        report = verify(ro_source, ro_target, VerifyOptions(recheck_delay=0))
        assert report.exit_code == 0, (report.error, report.tables)
    finally:
        source.run(f"DROP USER {account}")


def test_unreachable_database_exits_2_with_the_reason(extra_database):
    source = extra_database("pg")
    result = run("--source", source.url, "--target", "mysql://root@127.0.0.1:1/nowhere")
    assert result.exit_code == 2
    assert "cannot connect to MySQL/MariaDB at mysql://root@127.0.0.1:1/nowhere" in result.output
    bad_scheme = run("--source", "oracle://x@h/db", "--target", source.url)
    assert bad_scheme.exit_code == 2 and "not a supported engine" in bad_scheme.output


def test_wait_for_lag_without_cdc_offsets_says_so_and_goes_on(extra_database):
    source, target = extra_database("pg"), extra_database("pg")
    make_orders(source)
    make_orders(target)
    report = verify(source.url, target.url, VerifyOptions(recheck_delay=0, wait_for_lag=5))
    assert report.exit_code == 0
    assert "no cdc_offsets table" in report.lag["note"] and report.lag["waited_seconds"] == 0


def test_wait_for_lag_waits_until_cdc_offsets_is_still(extra_database):
    source, target = extra_database("my"), extra_database("pg")
    make_orders(source)
    make_orders(target)
    target.run("CREATE TABLE cdc_offsets (group_id text, topic text, partition int, next_offset bigint, "
               "updated_at timestamptz DEFAULT now(), PRIMARY KEY (group_id, topic, partition))")
    target.run("INSERT INTO cdc_offsets VALUES ('g', 'shop.orders', 0, 500)")
    report = verify(source.url, target.url, VerifyOptions(recheck_delay=0, wait_for_lag=10))
    assert report.lag["caught_up"] is True and report.exit_code == 0
    assert [t.name for t in report.tables] == ["orders"]  # cdc_offsets itself is never compared


def test_a_user_without_select_cannot_check_and_is_told_why(extra_database):
    source, target = extra_database("pg"), extra_database("my")
    make_orders(source)
    make_orders(target)
    user = f"nosel_{uuid.uuid4().hex[:8]}"
    source.run(f"CREATE USER {user} PASSWORD 'pw'")
    try:
        url = with_password(source.url, "pw", user)
        report = verify(url, target.url, VerifyOptions(recheck_delay=0))
        [table] = report.tables
        assert table.status == "error" and "permission denied" in table.error
        assert report.exit_code == 2
    finally:
        source.run(f"DROP USER {user}")


def test_tables_named_with_dots_and_quotes(extra_database):
    """`--tables` takes PG "..." and MySQL `...` quoting (a dot inside quotes is part of the name)."""
    source, target = extra_database("pg"), extra_database("my")
    source.run('CREATE TABLE "orders.2024" (id INT PRIMARY KEY, note TEXT)')
    target.run("CREATE TABLE `orders.2024` (id INT PRIMARY KEY, note TEXT)")
    for db in (source, target):
        db.run("CREATE TABLE plain (id INT PRIMARY KEY)")
        db.run("INSERT INTO plain VALUES (1)")
    source.run('INSERT INTO "orders.2024" VALUES (1, \'a\'), (2, \'b\')')
    target.run("INSERT INTO `orders.2024` VALUES (1, 'a'), (2, 'x')")
    for spelled in ('"orders.2024"', "`orders.2024`", 'public."orders.2024"', '"public"."orders.2024"'):
        result = run("--source", source.url, "--target", target.url, "--tables", f"{spelled},plain", "--json", "-",
                     "--quiet")
        assert result.exit_code == 1, (spelled, result.output)
        report = json.loads(result.output)
        assert [(t["name"], t["status"]) for t in report["tables"]] == [("orders.2024", "different"), ("plain", "equal")]
    unclosed = run("--source", source.url, "--target", target.url, "--tables", '"orders.2024', "--quiet")
    assert unclosed.exit_code == 2
