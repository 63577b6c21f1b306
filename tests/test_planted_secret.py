"""A password planted in `cdc run`'s URLs shows nowhere: not in `ps` (the children's command lines), the logs,
/metrics, `cdc status` (one-shot and `--run`), the parity reports or error messages; yet the children log in
with it (percent-quoting kept) and keep the URL's options.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from psycopg import sql

from cdc.errors import ConfigError
from cdc.sandbox.ports import pick_free_port
from cdc.urls import mask_password, parse_url
from connectors.mysql.dialect import connect as mysql_connect
from connectors.postgres.dialect import connect as pg_connect

PLANTED = "Pl@nted/Pw:7f3e%9c"  # `@`, `/`, `:` and `%` must travel percent-quoted
QUOTED = quote(PLANTED, safe="")
ROOT = str(Path(__file__).resolve().parents[1])


def _with_login(url: str, user: str, password: str, query: str = "") -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{parts.hostname}:{parts.port}",
                                     query=query))


def test_parse_errors_and_reprs_mask_the_password():
    url = parse_url(f"postgresql://u:{QUOTED}@h:1/db?sslmode=verify-full&sslpassword=keypass")
    for text in (repr(url), str(url), url.redacted(), f"{url}", repr([url])):
        assert PLANTED not in text and QUOTED not in text and "keypass" not in text, text
    assert parse_url(url.secret_text()) == url and url.options["sslmode"] == "verify-full"
    for bad in (f"mysql://u:{QUOTED}@h:3306/", "mysql://u:Pl/Pw:7f3e@h/db", f"mysql://u:{QUOTED}@h:notaport/db"):
        with pytest.raises(ConfigError) as caught:
            parse_url(bad)
        assert "Pw" not in str(caught.value) and "7f3e" not in str(caught.value), str(caught.value)
    assert mask_password("at mysql://root:s3cret@h/db and x") == "at mysql://root:***@h/db and x"


def _processes_text() -> str:
    """Every process's command line, as any local user sees them with `ps`."""
    return subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def planted_logins(pg_database, mysql_database):
    """A PG role and a MariaDB user whose password is PLANTED; yields their URLs (PG keeps an option)."""
    name = f"planted_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg_database) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER REPLICATION PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(PLANTED)))
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 50) i")
    database = urlsplit(mysql_database).path.lstrip("/")
    conn = mysql_connect(mysql_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (name, PLANTED))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@'127.0.0.1'", (name,))
    finally:
        conn.close()
    application = f"app_{name}"
    try:
        yield (_with_login(pg_database, name, PLANTED, f"application_name={application}"),
               _with_login(mysql_database, name, PLANTED), application)
    finally:
        conn = mysql_connect(mysql_database)
        try:
            with conn.cursor() as cursor:
                cursor.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (name,))
        finally:
            conn.close()
        with pg_connect(pg_database) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))


def _wait(what: str, check, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _target_rows(target: str) -> int:
    conn = mysql_connect(target)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
                           " AND table_name = 'orders'")
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute("SELECT count(*) FROM orders")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_a_planted_password_shows_nowhere(planted_logins, pg_database, kafka_bootstrap, tmp_path):
    source, target, application = planted_logins
    prefix = f"sec_{uuid.uuid4().hex[:8]}"
    port = pick_free_port()
    config = tmp_path / "cdc.toml"
    config.write_text(f"""
[kafka]
bootstrap = "{kafka_bootstrap}"

[[source]]
url = "${{PLANTED_SOURCE_URL}}"
prefix = "{prefix}"
tables = ["public.orders"]

[[target]]
url = "{target}"
prefix = "{prefix}"
create_tables = true

[[verify]]
source = "${{PLANTED_SOURCE_URL}}"
target = "{target}"
tables = ["orders"]
every = "2s"
rows_per_run = 0
report_dir = "reports"

[metrics]
listen = "127.0.0.1:{port}"
""")
    env = {**os.environ, "PYTHONPATH": ROOT, "PLANTED_SOURCE_URL": source, "COLUMNS": "200"}
    seen: list[str] = []
    with open(tmp_path / "run.log", "w") as log:
        runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--config", str(config)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait("the snapshot applied", lambda: seen.append(_processes_text()) or _target_rows(target) >= 50)
            assert any(f"{prefix}" in text or "cdc.cli" in text for text in seen)
            with pg_connect(pg_database) as conn:  # the source URL's option reached the capture's connections
                assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                    (application,)).fetchone()[0] >= 1
            reports = _wait("a parity report", lambda: sorted((tmp_path / "reports").glob("parity-*")))
            seen.append(_processes_text())
            seen.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
            for args in (["status", "--run", f"127.0.0.1:{port}", "--json"], ["status", "--run", f"127.0.0.1:{port}"]):
                status = subprocess.run([sys.executable, "-m", "cdc.cli", *args], capture_output=True, text=True,
                                        timeout=60, env=env)
                assert status.returncode == 0, status.stderr
                seen += [status.stdout, status.stderr]
            seen += [report.read_text() for report in reports]
        finally:
            os.killpg(runner.pid, signal.SIGTERM)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()
    seen.append((tmp_path / "run.log").read_text())
    # one-shot status, and errors from a refused login and an unreachable server, through the URL in the env
    one_shot = subprocess.run([sys.executable, "-m", "cdc.cli", "status", "--json"], capture_output=True, text=True,
                              timeout=60, env={**env, "CDC_SOURCE": source, "CDC_TARGET": target})
    assert one_shot.returncode == 0, one_shot.stderr
    closed_port = urlunsplit(urlsplit(source)._replace(netloc=urlsplit(source).netloc.rsplit(":", 1)[0] + ":1"))
    for command, variables in ((["status"], {"CDC_SOURCE": target.replace(QUOTED, QUOTED + "x")}),  # login refused
                               (["verify"], {"CDC_SOURCE": closed_port, "CDC_TARGET": target})):  # nothing listens
        failed = subprocess.run([sys.executable, "-m", "cdc.cli", *command], capture_output=True, text=True,
                                timeout=60, env={**env, **variables})
        assert failed.returncode != 0 and "***@" in failed.stdout + failed.stderr, failed.stdout + failed.stderr
        seen += [failed.stdout, failed.stderr]
    for text in seen:
        assert PLANTED not in text and QUOTED not in text, text[-2000:]
