"""The sandbox's state file, DIR/sandbox.json (mode 0600): which servers run where, with which pid, and the
sandbox's password (PostgreSQL `postgres` and MariaDB `root` log in with it over TCP)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
from urllib.parse import quote
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cdc.errors import SandboxError

STATE_FILE = "sandbox.json"
STATE_VERSION = 1
SERVERS = ("postgres", "mariadb", "kafka")


@dataclass(slots=True, frozen=True)
class ServerState:
    """One server of the sandbox: its port, pid and files; `marker` is a string found in its command line."""

    name: str
    port: int
    pid: int | None
    pid_file: str
    log_file: str
    data_dir: str
    marker: str
    program: str


@dataclass(slots=True, frozen=True)
class Endpoints:
    """How clients reach the sandbox's servers."""

    pg_url: str
    mysql_url: str
    kafka_bootstrap: str
    pg_standby_url: str = ""  # the PostgreSQL standby, when the sandbox has one
    mysql_replica_url: str = ""  # the MariaDB replica, when the sandbox has one

    def __repr__(self) -> str:
        from cdc.urls import mask_password

        return mask_password(f"Endpoints(pg_url={self.pg_url!r}, mysql_url={self.mysql_url!r}, "
                             f"kafka_bootstrap={self.kafka_bootstrap!r}, pg_standby_url={self.pg_standby_url!r}, "
                             f"mysql_replica_url={self.mysql_replica_url!r})")

    def env_lines(self) -> list[str]:
        """Shell lines that export the endpoints (for `eval "$(cdc sandbox env)"`); the URLs hold the password."""
        lines = [
            f"export CDC_PG_URL={shlex.quote(self.pg_url)}",
            f"export CDC_MYSQL_URL={shlex.quote(self.mysql_url)}",
            f"export CDC_KAFKA_BOOTSTRAP={shlex.quote(self.kafka_bootstrap)}",
        ]
        if self.pg_standby_url:
            lines.append(f"export CDC_PG_STANDBY_URL={shlex.quote(self.pg_standby_url)}")
        if self.mysql_replica_url:
            lines.append(f"export CDC_MYSQL_REPLICA_URL={shlex.quote(self.mysql_replica_url)}")
        return lines


@dataclass(slots=True, frozen=True)
class SandboxState:
    """Everything `cdc sandbox` knows about the servers it started under `dir`."""

    dir: str
    servers: dict[str, ServerState] = field(default_factory=dict)
    password: str | None = None  # None: a sandbox made before passwords (trust auth, root without one)
    tls: bool = False  # `up --tls`: servers take TLS only on TCP, with the CA in DIR/tls/ca.pem

    def __repr__(self) -> str:
        return (f"SandboxState(dir={self.dir!r}, servers={self.servers!r}, "
                f"password={'***' if self.password else None}, tls={self.tls})")

    def endpoints(self) -> Endpoints:
        """The URLs of the sandbox's servers (database `cdc` on each)."""
        missing = [name for name in SERVERS if name not in self.servers]
        if missing:
            raise SandboxError(
                f"the sandbox state in {self.dir} lacks {', '.join(missing)}",
                fix=f"run `cdc sandbox down --dir {self.dir}` and `cdc sandbox up --dir {self.dir}`",
            )
        standby = self.servers.get("postgres-standby")
        replica = self.servers.get("mariadb-replica")
        auth = f":{self.password}" if self.password else ""
        pg_options = mysql_options = ""
        if self.tls:  # verify the chain and the name (the server certificate names 127.0.0.1)
            ca = quote(str(Path(self.dir) / "tls" / "ca.pem"), safe="/")
            pg_options, mysql_options = f"?sslmode=verify-full&sslrootcert={ca}", f"?ssl_ca={ca}&ssl_verify_identity=true"
        return Endpoints(
            pg_url=f"postgresql://postgres{auth}@127.0.0.1:{self.servers['postgres'].port}/cdc{pg_options}",
            mysql_url=f"mysql://root{auth}@127.0.0.1:{self.servers['mariadb'].port}/cdc{mysql_options}",
            kafka_bootstrap=f"127.0.0.1:{self.servers['kafka'].port}",
            pg_standby_url=f"postgresql://postgres{auth}@127.0.0.1:{standby.port}/cdc{pg_options}" if standby else "",
            mysql_replica_url=f"mysql://root{auth}@127.0.0.1:{replica.port}/cdc{mysql_options}" if replica else "",
        )


def new_password() -> str:
    """A random password for a new sandbox (URL-safe: it needs no quoting in a URL or a shell)."""
    return secrets.token_urlsafe(18)


def state_path(directory: Path) -> Path:
    """Where the state file of the sandbox in `directory` lives."""
    return directory / STATE_FILE


def parse_state(text: str, *, source: str = STATE_FILE) -> SandboxState:
    """Parse the JSON text of a state file; SandboxError when it is not one."""
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
        servers = {name: ServerState(**server) for name, server in data["servers"].items()}
        password = data.get("password")
        if password is not None and not isinstance(password, str):
            raise ValueError("password is not a string")
        return SandboxState(dir=data["dir"], servers=servers, password=password, tls=bool(data.get("tls", False)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SandboxError(
            f"{source} is not a sandbox state file ({exc})",
            fix="stop any servers it started by hand, delete the file and run `cdc sandbox up` again",
        ) from exc


def format_state(state: SandboxState) -> str:
    """The JSON text of a state file."""
    data = {
        "version": STATE_VERSION,
        "dir": state.dir,
        "servers": {name: asdict(server) for name, server in state.servers.items()},
        "password": state.password,
        "tls": state.tls,
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_state(directory: Path) -> SandboxState | None:
    """The state of the sandbox in `directory`, or None when there is none."""
    path = state_path(directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return parse_state(text, source=str(path))


def save_state(state: SandboxState) -> None:
    """Write the state file atomically (a crash never leaves half a file), readable by its owner only."""
    path = state_path(Path(state.dir))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(format_state(state))
    os.replace(tmp, path)
