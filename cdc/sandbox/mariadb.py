"""The sandbox's MariaDB: mariadb-install-db, start with row binlog and GTIDs, root@127.0.0.1, create `cdc`.

Run as root, the server runs as the `mysql` user (never as root), in a 0700 home of its own; `root` logs
in with the sandbox's password, over TCP and over the socket alike.

`start_replica` adds a second MariaDB (server id 2) replicating from the first by GTID
(`MASTER_USE_GTID = slave_pos`), with its own binlog (log-slave-updates) so it can be promoted; its root has
the same password, which it also uses to log in to the primary.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql
import pymysql.cursors

from cdc.errors import SandboxError
from cdc.sandbox import processes
from cdc.sandbox.state import ServerState

if TYPE_CHECKING:
    from cdc.sandbox.tls import TlsFiles

NAME = "mariadb"
REPLICA_NAME = "mariadb-replica"
PROGRAM = "mariadbd"
RUN_AS = "mysql"  # the unprivileged user the Debian package creates
STOP_SIGNAL = signal.SIGTERM
INSTALL_HINT = "install it with `apt-get install -y postgresql mariadb-server` (or scripts/install.sh)"
SOCKET_PATH_LIMIT = 100


def binaries() -> tuple[Path, Path]:
    """(install-db script, server binary) of the installed MariaDB."""
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    server = next((path for path in (shutil.which("mariadbd"), "/usr/sbin/mariadbd") if path and Path(path).is_file()),
                  None)
    if not install_db or not server:
        raise SandboxError("MariaDB server binaries (mariadb-install-db, mariadbd) not found", fix=INSTALL_HINT)
    return Path(install_db), Path(server)


def server_args(data: Path, port: int, socket: Path, pid_file: Path, server_id: int = 1) -> list[str]:
    """mariadbd options: loopback only, full row binlog with metadata (what the binlog source needs)."""
    args = [
        "--no-defaults",
        f"--datadir={data}",
        f"--tmpdir={data.parent / 'tmp'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={socket}",
        f"--pid-file={pid_file}",
        "--skip-name-resolve",
        "--log-bin=mariadb-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        f"--server-id={server_id}",
        "--log-slave-updates",
        "--gtid-domain-id=0",
        "--innodb-flush-log-at-trx-commit=2",
        "--sync-binlog=0",
        "--max-connections=300",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        # Benchmarks and `cdc verify` scan whole tables; the 128M default pool thrashes (memory is touched lazily).
        "--innodb-buffer-pool-size=1G",
    ]
    return args


def run_as_user() -> str | None:
    """The user to run MariaDB as: `mysql` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError as exc:
        raise SandboxError("running as root, and there is no `mysql` user to run MariaDB as",
                           fix=INSTALL_HINT + ", which creates that user; or run `cdc sandbox up` as an ordinary user") from exc
    return RUN_AS


def home_for(directory: Path, user: str | None, name: str = NAME) -> Path:
    """Where MariaDB's data dir, tmp dir and socket go: DIR/<name>, or a /tmp dir when `user` cannot reach DIR."""
    return processes.server_home(directory, name, user)


def socket_for(home: Path) -> Path:
    """The unix socket path: under DIR/mariadb, or in /tmp when that path would be too long."""
    socket = home / "mariadb.sock"
    if len(str(socket)) <= SOCKET_PATH_LIMIT:
        return socket
    digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
    return Path("/tmp") / f"cdc-sandbox-mariadb-{digest}.sock"


def start(directory: Path, port: int, timeout: float = 90.0, password: str | None = None,
          tls: TlsFiles | None = None, *, name: str = NAME, primary_port: int | None = None) -> ServerState:
    """Create (first time) and start MariaDB on 127.0.0.1:port; return once root can log in over TCP.

    With `tls`, TCP clients must use TLS (`require_secure_transport`) and the server presents a
    certificate signed by the sandbox's CA. With `primary_port`, the server is a GTID replica of the
    MariaDB on that port (server id 2).
    """
    install_db, server_bin = binaries()
    user = run_as_user()
    home = home_for(directory, user, name)
    data = home / "data"
    log_file = directory / f"{name}.log"
    socket = socket_for(home)
    processes.make_home(home, user)
    (home / "tmp").mkdir(exist_ok=True)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(home / "tmp", entry.pw_uid, entry.pw_gid)
    fresh = not (data / "mysql").is_dir()
    if fresh:
        _install_db(install_db, data, log_file, user)
    server_id = 1 if primary_port is None else 2
    argv = [str(server_bin), *server_args(data, port, socket, home / "mariadbd.pid", server_id)]
    ca = None
    if tls is not None:
        from cdc.sandbox.tls import install_server_files

        ca, cert, key = install_server_files(tls, home, user)
        argv += [f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}", "--require-secure-transport=ON"]
    process = processes.launch(argv, log_file, user=user, cwd=home)
    server = ServerState(
        name=name, port=port, pid=process.pid, pid_file=str(directory / f"{name}.pid"), log_file=str(log_file),
        data_dir=str(data), marker=f"--datadir={data}", program=PROGRAM,
    )
    processes.write_pid_file(Path(server.pid_file), process.pid)
    try:
        _wait_ready(process, socket, log_file, timeout, password)
        _grant_root_over_tcp(socket, password, binlogged=primary_port is None)
        if primary_port is not None and fresh:
            _replicate_from(socket, primary_port, password, ca)
        _connect(port, password, tls, database="cdc").close()
    except BaseException:
        processes.abandon(process, server.pid_file)
        raise
    return server


def start_replica(directory: Path, port: int, primary_port: int, timeout: float = 90.0, password: str | None = None,
                  tls: TlsFiles | None = None) -> ServerState:
    """A second MariaDB replicating from the sandbox's by GTID, semi-synchronously (a commit returns once
    the replica has it, so an acknowledged write survives a failover); it has caught up when this returns.

    Its root has the sandbox's password, and it logs in to the primary with it (MASTER_PASSWORD), over TLS
    when the sandbox has TLS."""
    server = start(directory, port, timeout, password, tls, name=REPLICA_NAME, primary_port=primary_port)
    try:
        if _is_replica(port, password, tls):  # not when a drill promoted it and the sandbox restarts
            _semi_sync(primary_port, port, password, tls)
            wait_caught_up(primary_port, port, timeout, password=password, tls=tls)
    except BaseException:  # not left running outside the state file
        processes.stop(server.pid, server.program, server.marker, sig=STOP_SIGNAL)
        Path(server.pid_file).unlink(missing_ok=True)
        raise
    return server


def _connect(port: int, password: str | None, tls: TlsFiles | None = None, **options) -> pymysql.connections.Connection:
    """root over TCP to the sandbox's server on `port`, with the sandbox's password (and its CA under TLS)."""
    if tls is not None:
        options.update(ssl_ca=str(tls.ca), ssl_verify_identity=True)
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password=password or "", **options)


def _is_replica(port: int, password: str | None = None, tls: TlsFiles | None = None) -> bool:
    """True when the server on `port` replicates from a primary (SHOW SLAVE STATUS has a row)."""
    conn = _connect(port, password, tls)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            return cursor.fetchone() is not None
    finally:
        conn.close()


def _semi_sync(primary_port: int, replica_port: int, password: str | None = None, tls: TlsFiles | None = None) -> None:
    """Semi-synchronous replication from the primary to the replica (MariaDB has it built in since 10.3)."""
    for port, statements in (
        (primary_port, ["SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL rpl_semi_sync_master_timeout = 10000"]),
        (replica_port, ["SET GLOBAL rpl_semi_sync_slave_enabled = ON", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"]),
    ):
        conn = _connect(port, password, tls, autocommit=True)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()


def promote_replica(port: int, timeout: float = 60.0, *, password: str | None = None,
                    tls: TlsFiles | None = None) -> None:
    """Make the replica a primary: let it apply what it received, then STOP SLAVE and RESET SLAVE ALL."""
    conn = _connect(port, password, tls, autocommit=True)
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute("STOP SLAVE IO_THREAD")
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute("SHOW SLAVE STATUS")
                status = cursor.fetchone() or {}
                applied = (status.get("Relay_Master_Log_File") == status.get("Master_Log_File")
                           and status.get("Exec_Master_Log_Pos") == status.get("Read_Master_Log_Pos"))
                if applied or not status or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            cursor.execute("STOP SLAVE")
            cursor.execute("RESET SLAVE ALL")
            cursor.execute("SET GLOBAL read_only = OFF")
    finally:
        conn.close()


def _replicate_from(socket: Path, primary_port: int, password: str | None, ca: Path | None) -> None:
    """CHANGE MASTER TO the primary (root with the sandbox's password; TLS verified by the sandbox's CA, the
    copy `ca` in the replica's home, when it has TLS), by GTID from its first transaction, and START SLAVE."""
    conn = _root_over_socket(socket, password, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("RESET MASTER")
            cursor.execute("SET GLOBAL gtid_slave_pos = ''")
            ssl = ", MASTER_SSL = 1, MASTER_SSL_CA = %s, MASTER_SSL_VERIFY_SERVER_CERT = 1" if ca is not None else ""
            cursor.execute("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = 'root', "
                           "MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1" + ssl,
                           (primary_port, password or "", *((str(ca),) if ca is not None else ())))
            cursor.execute("START SLAVE")
    finally:
        conn.close()


def wait_caught_up(primary_port: int, replica_port: int, timeout: float = 60.0, *, password: str | None = None,
                   tls: TlsFiles | None = None) -> None:
    """Wait until the replica has applied the primary's current GTID position."""
    primary = _connect(primary_port, password, tls)
    try:
        with primary.cursor() as cursor:
            cursor.execute("SELECT @@gtid_binlog_pos")
            position = cursor.fetchone()[0]
    finally:
        primary.close()
    replica = _connect(replica_port, password, tls)
    try:
        with replica.cursor() as cursor:
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (position, timeout))
            if cursor.fetchone()[0] != 0:
                cursor.execute("SHOW SLAVE STATUS")
                row = cursor.fetchone()
                columns = [d[0] for d in cursor.description]
                status = dict(zip(columns, row)) if row else {}
                raise SandboxError(f"the MariaDB replica did not reach {position} in {timeout:.0f}s "
                                   f"(Last_IO_Error: {status.get('Last_IO_Error')!r}, "
                                   f"Last_SQL_Error: {status.get('Last_SQL_Error')!r})",
                                   fix="see the replica's log in the sandbox dir")
    finally:
        replica.close()


def _install_db(install_db: Path, data: Path, log_file: Path, user: str | None) -> None:
    """Create the system tables; root gets an empty password (auth `normal`), no test database."""
    # Its own tmpdir: bootstraps sharing /tmp were seen to delete each other's temporary tables.
    argv = [str(install_db), "--no-defaults", f"--datadir={data}", f"--tmpdir={data.parent / 'tmp'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db", "--skip-name-resolve"]
    with open(log_file, "ab") as log:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, user=user,
                                group=processes.group_of(user), extra_groups=[] if user else None,
                                cwd=data.parent, check=False)
    if result.returncode != 0:
        raise processes.failed_to_start(NAME, log_file, f"mariadb-install-db exited with {result.returncode}")


def _root_over_socket(socket: Path, password: str | None, **kwargs) -> pymysql.connections.Connection:
    """root over the unix socket: with the sandbox's password, or (first start, a sandbox made before
    passwords) with none."""
    try:
        return pymysql.connect(unix_socket=str(socket), user="root", password=password or "", **kwargs)
    except pymysql.err.OperationalError as exc:
        if not password or exc.args[0] != 1045:  # 1045: access denied
            raise
    return pymysql.connect(unix_socket=str(socket), user="root", password="", **kwargs)


def _wait_ready(process: subprocess.Popen, socket: Path, log_file: Path, timeout: float, password: str | None) -> None:
    """Poll the unix socket until root can log in; fail early if the server exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise processes.failed_to_start(NAME, log_file, f"mariadbd exited with {process.returncode}")
        try:
            _root_over_socket(socket, password, connect_timeout=2).close()
            return
        except pymysql.err.OperationalError as exc:
            if time.monotonic() > deadline:
                raise processes.failed_to_start(NAME, log_file, f"no connection after {timeout:.0f}s ({exc})") from exc
        time.sleep(0.1)


def _grant_root_over_tcp(socket: Path, password: str | None, *, binlogged: bool = True) -> None:
    """Let root log in from 127.0.0.1 (skip-name-resolve matches by IP) with the sandbox's password, set that
    password on the socket login too, and create `cdc`.

    A replica does it outside its binlog (`binlogged=False`): its GTID history stays the primary's.
    """
    conn = _root_over_socket(socket, password, autocommit=True)
    try:
        with conn.cursor() as cursor:
            if not binlogged:
                cursor.execute("SET SESSION sql_log_bin = 0")
            cursor.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (password or "",))
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            if password:
                cursor.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,))
                cursor.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (password,))
            cursor.execute("CREATE DATABASE IF NOT EXISTS cdc")
    finally:
        conn.close()
