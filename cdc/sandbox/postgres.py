"""The sandbox's PostgreSQL: initdb (as the `postgres` user when we are root), start, wait, create `cdc`."""

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

SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_wal_senders": "32",
    "max_replication_slots": "32",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def bindir() -> Path:
    """The directory with initdb and postgres of the installed major version."""
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


def home_for(directory: Path, user: str | None) -> Path:
    """Where PostgreSQL's data dir and socket go: DIR/postgres, or a /tmp dir when `user` cannot reach DIR."""
    return processes.server_home(directory, "postgres", user)


def start(directory: Path, port: int, timeout: float = 60.0, password: str | None = None,
          tls: TlsFiles | None = None) -> ServerState:
    """Create (first time) and start PostgreSQL on 127.0.0.1:port; return once it accepts connections.

    With a password (every sandbox made now), TCP logins need it (scram-sha-256); the unix socket lives in
    the server's own 0700 home, so only its user and root reach it. With `tls`, TCP clients must use TLS
    (`hostssl` lines only) and the server presents a certificate signed by the sandbox's CA.
    """
    binaries = bindir()
    user = run_as_user()
    home = home_for(directory, user)
    data = home / "data"
    log_file = directory / "postgres.log"
    processes.make_home(home, user)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    if not (data / "PG_VERSION").is_file():
        _initdb(binaries, data, log_file, user, env, password)
        if tls is not None:
            _require_tls(data)
    argv = [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c", f"unix_socket_directories={home}"]
    for key, value in SETTINGS.items():
        argv += ["-c", f"{key}={value}"]
    if tls is not None:
        from cdc.sandbox.tls import install_server_files

        ca, cert, key = install_server_files(tls, home, user)
        argv += ["-c", "ssl=on", "-c", f"ssl_ca_file={ca}", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
    process = processes.launch(argv, log_file, user=user, env=env, cwd=home)
    server = ServerState(
        name=NAME, port=port, pid=process.pid, pid_file=str(directory / "postgres.pid"), log_file=str(log_file),
        data_dir=str(data), marker=str(data), program=PROGRAM,
    )
    processes.write_pid_file(Path(server.pid_file), process.pid)
    try:
        _wait_ready(process, port, log_file, timeout, password)
        _create_database(port, "cdc", password)
    except BaseException:
        processes.abandon(process, server.pid_file)
        raise
    return server


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
        with open(log_file, "ab") as log:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, user=user,
                                    group=processes.group_of(user), extra_groups=[] if user else None, env=env,
                                    cwd=data.parent, check=False)
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise processes.failed_to_start(NAME, log_file, f"initdb exited with {result.returncode}")


def _require_tls(data: Path) -> None:
    """pg_hba.conf: TCP logins only over TLS (`host` lines become `hostssl`)."""
    hba = data / "pg_hba.conf"
    lines = [("hostssl" + line[4:]) if line.startswith("host ") else line for line in hba.read_text().splitlines()]
    hba.write_text("\n".join(lines) + "\n")


def _wait_ready(process: subprocess.Popen, port: int, log_file: Path, timeout: float, password: str | None) -> None:
    """Poll until PostgreSQL accepts a connection; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise processes.failed_to_start(NAME, log_file, f"postgres exited with {process.returncode}")
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                                 connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise processes.failed_to_start(NAME, log_file, f"no connection after {timeout:.0f}s ({exc})") from exc
        time.sleep(0.1)


def _create_database(port: int, name: str, password: str | None) -> None:
    """Create database `name` unless it exists."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
