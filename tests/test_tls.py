"""TLS with verification on real servers: a `cdc sandbox up --tls` sandbox (throwaway CA), PostgreSQL with
`sslmode=verify-full` and a client certificate, MariaDB with `ssl_ca` + `ssl_verify_identity`; capture (pgoutput
and binlog), apply and verify run over it both ways, and a wrong CA is refused on both engines.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from cdc import sandbox as sandbox_servers
from cdc.errors import SourceError
from cdc.sandbox.tls import files_in, make_ca
from connectors.mysql.dialect import connect as mysql_connect
from connectors.postgres.dialect import connect as pg_connect

ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def tls_sandbox():
    """A second sandbox, made with --tls (the session one stays plain)."""
    directory = Path(tempfile.mkdtemp(prefix="cdc-test-tls-"))
    directory.chmod(0o755)
    try:
        result = sandbox_servers.up(directory, tls=True)
        yield directory, result.state.endpoints()
    finally:
        if sandbox_servers.holds_sandbox(directory):
            sandbox_servers.down(directory, purge=True)
        shutil.rmtree(directory, ignore_errors=True)


def _database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def test_verified_tls_connections_and_a_wrong_ca_is_refused(tls_sandbox, tmp_path):
    directory, endpoints = tls_sandbox
    assert "sslmode=verify-full" in endpoints.pg_url and "ssl_verify_identity=true" in endpoints.mysql_url
    files = files_in(directory)
    client_cert = f"&sslcert={quote(str(files.client_cert))}&sslkey={quote(str(files.client_key))}"
    with pg_connect(endpoints.pg_url + client_cert) as conn:
        assert conn.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            True, "/O=cdc sandbox/CN=cdc")
    conn = mysql_connect(endpoints.mysql_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert cursor.fetchone()[1].startswith("TLS")
    finally:
        conn.close()

    other_ca, _ = make_ca(tmp_path / "other")
    wrong_pg = endpoints.pg_url.replace(quote(str(files.ca), safe="/"), str(other_ca))
    wrong_mysql = endpoints.mysql_url.replace(quote(str(files.ca), safe="/"), str(other_ca))
    assert str(other_ca) in wrong_pg and str(other_ca) in wrong_mysql
    with pytest.raises(SourceError, match="certificate verify failed"):
        pg_connect(wrong_pg)
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        mysql_connect(wrong_mysql)
    with pytest.raises(SourceError, match="no pg_hba.conf entry"):  # TCP without TLS is not accepted
        pg_connect(endpoints.pg_url.split("?")[0] + "?sslmode=disable")


def _count(url: str, table: str) -> int:
    try:
        if url.startswith("postgresql"):
            with pg_connect(url) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn = mysql_connect(url)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {table}")
                return cursor.fetchone()[0]
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - the table does not exist yet
        return 0


def test_capture_apply_and_verify_run_over_verified_tls_both_ways(tls_sandbox, tmp_path):
    directory, endpoints = tls_sandbox
    suffix = uuid.uuid4().hex[:8]
    pg_source, pg_target = _database(endpoints.pg_url, f"src_{suffix}"), _database(endpoints.pg_url, f"dst_{suffix}")
    my_source, my_target = (_database(endpoints.mysql_url, f"src_{suffix}"),
                            _database(endpoints.mysql_url, f"dst_{suffix}"))
    with pg_connect(endpoints.pg_url) as conn:
        for name in (f"src_{suffix}", f"dst_{suffix}"):
            conn.execute(f'CREATE DATABASE "{name}"')
    with pg_connect(pg_source) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 40) i")
    conn = mysql_connect(endpoints.mysql_url)
    try:
        with conn.cursor() as cursor:
            for name in (f"src_{suffix}", f"dst_{suffix}"):
                cursor.execute(f"CREATE DATABASE `{name}`")
            cursor.execute(f"CREATE TABLE `src_{suffix}`.items (id int PRIMARY KEY, note varchar(40))")
            cursor.executemany(f"INSERT INTO `src_{suffix}`.items VALUES (%s, %s)", [(i, f"item {i}") for i in range(1, 31)])
        conn.commit()
    finally:
        conn.close()
    config = tmp_path / "cdc.toml"
    config.write_text(f"""
[kafka]
bootstrap = "{endpoints.kafka_bootstrap}"

[[source]]
url = "{pg_source}"
prefix = "pg_{suffix}"
tables = ["public.orders"]

[[target]]
url = "{my_target}"
prefix = "pg_{suffix}"
create_tables = true

[[source]]
url = "{my_source}"
prefix = "my_{suffix}"
tables = ["src_{suffix}.items"]

[[target]]
url = "{pg_target}"
prefix = "my_{suffix}"
create_tables = true

[metrics]
listen = ""
""")
    env = {**os.environ, "PYTHONPATH": ROOT}
    with open(tmp_path / "run.log", "w") as log:
        runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--config", str(config)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while (_count(my_target, "orders"), _count(pg_target, "items")) != (40, 30):
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
                assert runner.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                time.sleep(0.5)
        finally:
            os.killpg(runner.pid, signal.SIGTERM)
            runner.wait(60)
    for source, target, table in ((pg_source, my_target, "orders"), (my_source, pg_target, "items")):
        check = subprocess.run([sys.executable, "-m", "cdc.cli", "verify", "--tables", table], capture_output=True,
                               text=True, timeout=120, env={**env, "CDC_SOURCE": source, "CDC_TARGET": target})
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_tls_sandbox_streams_to_its_standby_and_replica_over_tls_with_the_password():
    """--tls --pg-standby --mariadb-replica: the standby's and the replica's links to their primaries log in
    with the sandbox's password over verified TLS (the primaries take nothing else on TCP)."""
    directory = Path(tempfile.mkdtemp(prefix="cdc-test-tls-replicas-"))
    directory.chmod(0o755)
    try:
        endpoints = sandbox_servers.up(directory, tls=True, pg_standby=True, mariadb_replica=True).state.endpoints()
        with pg_connect(endpoints.pg_url) as conn:
            assert conn.execute("SELECT r.sync_state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
                                ).fetchall() == [("sync", True)]
            conn.execute("CREATE TABLE through_tls (id int PRIMARY KEY)")
            conn.execute("INSERT INTO through_tls VALUES (1)")
            conn.commit()
        with pg_connect(endpoints.pg_standby_url) as conn:
            wait = time.monotonic() + 30
            while not conn.execute("SELECT to_regclass('through_tls') IS NOT NULL").fetchone()[0]:
                assert time.monotonic() < wait, "the standby never replayed the table"
                conn.rollback()
                time.sleep(0.2)
        conn = mysql_connect(endpoints.mysql_replica_url)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                status = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
        finally:
            conn.close()
        assert status["Slave_IO_Running"] == "Yes" and status["Master_SSL_Allowed"] == "Yes", status
        assert status["Master_SSL_Verify_Server_Cert"] == "Yes"
    finally:
        if sandbox_servers.holds_sandbox(directory):
            sandbox_servers.down(directory, purge=True)
        shutil.rmtree(directory, ignore_errors=True)
