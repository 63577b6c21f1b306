"""Throwaway PostgreSQL, MariaDB and Kafka-protocol servers on loopback ports, all under one directory.

`up` starts them (in parallel) and records ports and pids in DIR/sandbox.json; `down` stops only the
processes it started (checked by pid and command line); `status` says what runs. Used by `cdc sandbox`
and by the pytest fixtures in tests/conftest.py.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from cdc.errors import SandboxError
from cdc.sandbox import kafka, mariadb, postgres, processes
from cdc.sandbox.ports import pick_free_port, port_is_free
from cdc.sandbox.state import (SERVERS, STATE_FILE, Endpoints, SandboxState, ServerState, load_state, new_password,
                               save_state)

DEFAULT_DIR = ".cdc-sandbox"
MARKER_FILE = ".cdc-sandbox-dir"
SERVER_MODULES: dict[str, ModuleType] = {"postgres": postgres, "mariadb": mariadb, "kafka": kafka,
                                         postgres.STANDBY_NAME: postgres, mariadb.REPLICA_NAME: mariadb}
PORT_OPTIONS = {"postgres": "--pg-port", "mariadb": "--mysql-port", "kafka": "--kafka-port"}
REPLICAS = (postgres.STANDBY_NAME, mariadb.REPLICA_NAME)  # optional second servers, started after their primary

__all__ = ["DEFAULT_DIR", "Endpoints", "holds_sandbox", "SandboxState", "ServerStatus", "down", "endpoints", "restart",
           "status", "up"]


@dataclass(slots=True, frozen=True)
class ServerStatus:
    """One row of `cdc sandbox status`."""

    name: str
    port: int
    pid: int | None
    running: bool
    log_file: str


@dataclass(slots=True, frozen=True)
class UpResult:
    """What `up` did: the state, and whether the servers were already running."""

    state: SandboxState
    already_running: bool
    notes: tuple[str, ...] = ()


def up(directory: str | Path = DEFAULT_DIR, ports: dict[str, int] | None = None, *, tls: bool = False,
       pg_version: int | None = None, pg_standby: bool = False, mariadb_replica: bool = False) -> UpResult:
    """Start the three servers under directory (a no-op when they already run); ports 0/absent = pick free.

    `tls`: a new sandbox gets a throwaway CA (DIR/tls/) and its PostgreSQL and MariaDB accept TCP clients
    over TLS only; an existing sandbox keeps what it was made with.
    `pg_version`: PostgreSQL major version (None: the system's). `pg_standby`: also a physical streaming
    standby of PostgreSQL; `mariadb_replica`: also a MariaDB GTID replica (both started after the rest, with
    the sandbox's password and TLS).
    """
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise SandboxError(f"{directory} is not a directory", fix="pass another path with --dir")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER_FILE).touch()  # says "a sandbox lives here" even when this `up` fails before the state file
    with _locked(directory):
        previous = load_state(directory)
        if previous is not None:
            _refuse_stale_pid_files(previous)
            running = [name for name, server in previous.servers.items() if _is_running(server)]
            if running and len(running) == len(previous.servers):
                return UpResult(previous, already_running=True)
            if running:
                raise SandboxError(
                    f"the sandbox in {directory} runs only {', '.join(running)}",
                    fix=f"run `cdc sandbox down --dir {directory}`, then `cdc sandbox up --dir {directory}`",
                )
        requested = {name: port for name, port in (ports or {}).items() if port}
        chosen = _choose_ports(requested, previous)
        # a sandbox keeps its password across down/up (its data dirs have it); one made before passwords has none
        password = previous.password if previous is not None else new_password()
        tls = previous.tls if previous is not None else tls
        tls_files = _tls_files(directory, new=previous is None) if tls else None
        started: dict[str, ServerState] = {}
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
            futures = {
                name: pool.submit(_start, name, directory, chosen[name], set(chosen.values()), name in requested,
                                  password, tls_files, pg_version)
                for name in SERVERS
            }
            for name, future in futures.items():
                try:
                    started[name] = future.result()
                except BaseException as exc:  # collect every failure; the first one is raised below
                    errors.append(exc)
        if not errors:
            wanted = [name for name, on in ((postgres.STANDBY_NAME, pg_standby), (mariadb.REPLICA_NAME, mariadb_replica))
                      if on or (previous is not None and name in previous.servers)]
            for name in wanted:
                try:
                    started[name] = _start_replica(name, directory, started, previous, password, tls_files)
                except BaseException as exc:
                    errors.append(exc)
                    break
        if errors:
            for server in started.values():
                _stop_server(server)
            raise errors[0]
        state = SandboxState(dir=str(directory), servers=started, password=password, tls=tls)
        save_state(state)
        notes = tuple(_relocation_notes(state))
        return UpResult(state, already_running=False, notes=notes)


def down(directory: str | Path = DEFAULT_DIR, *, purge: bool = False) -> list[ServerStatus]:
    """Stop the servers this sandbox started (safe to repeat); purge also deletes their data.

    Purging refuses a directory without a sandbox state file: `--dir` pointing at the wrong place must not
    delete it.
    """
    directory = Path(directory).absolute()
    if purge and directory.exists() and not holds_sandbox(directory):
        raise SandboxError(f"{directory} holds no sandbox (no {STATE_FILE} or {MARKER_FILE}): refusing to delete it",
                           fix="check --dir; to delete the directory anyway, do it yourself")
    state = load_state(directory) if directory.is_dir() else None
    before: list[ServerStatus] = []
    if state is not None:
        with _locked(directory):
            before = status(directory)
            replicas = [server for name, server in state.servers.items() if name in REPLICAS]
            for server in replicas:
                _stop_server(server)
            with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
                list(pool.map(_stop_server, [s for s in state.servers.values() if s.name not in REPLICAS]))
            stopped = {name: replace(server, pid=None) for name, server in state.servers.items()}
            save_state(replace(state, servers=stopped))
    if purge:
        _purge(directory, state)
    return before


def holds_sandbox(directory: str | Path) -> bool:
    """True when `up` made (or began making) a sandbox in directory: the only kind `down --purge` deletes."""
    directory = Path(directory)
    return (directory / STATE_FILE).is_file() or (directory / MARKER_FILE).is_file()


def _purge(directory: Path, state: SandboxState | None) -> None:
    """Delete the sandbox dir and PostgreSQL's data dir when it had to live elsewhere."""
    user = postgres.run_as_user()
    homes = {postgres.home_for(directory, user), postgres.home_for(directory, user, postgres.STANDBY_NAME),
             mariadb.home_for(directory, mariadb.run_as_user()),
             mariadb.home_for(directory, mariadb.run_as_user(), mariadb.REPLICA_NAME)}
    if state is not None:
        homes.update(Path(server.data_dir).parent for name, server in state.servers.items()
                     if name in ("postgres", "mariadb", *REPLICAS))
    for home in homes:
        if not home.is_relative_to(directory):
            shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)


def restart(directory: str | Path, name: str, *, sig: int | None = None) -> ServerState:
    """Stop one server with `sig` (default: its clean stop), start it again on its port (`cdc drill`'s hook)."""
    directory = Path(directory).absolute()
    with _locked(directory):
        state = load_state(directory)
        if state is None or name not in state.servers:
            raise SandboxError(f"no {name} in the sandbox in {directory}", fix=f"run `cdc sandbox up --dir {directory}`")
        server = state.servers[name]
        pid = processes.read_pid_file(Path(server.pid_file)) or server.pid
        if pid:
            processes.stop(pid, server.program, server.marker, sig=sig or SERVER_MODULES[name].STOP_SIGNAL)
        Path(server.pid_file).unlink(missing_ok=True)
        tls = _tls_files(directory, new=False) if state.tls else None
        if name in REPLICAS:
            started = _start_replica_on(name, directory, server.port, state.servers, state.password, tls)
        else:
            extra = {"tls": tls} if tls is not None else {}
            started = SERVER_MODULES[name].start(directory, server.port, password=state.password, **extra)
            standby = state.servers.get(postgres.STANDBY_NAME)
            if name == "postgres" and standby is not None and _is_running(standby):
                # start() stopped the primary waiting for a standby; this one still follows it
                postgres.wait_for_standby_again(started.port, standby.port, password=state.password)
        save_state(replace(state, servers={**state.servers, name: started}))
        return started


def status(directory: str | Path = DEFAULT_DIR) -> list[ServerStatus]:
    """Each server of the sandbox in directory: port, pid, running or not."""
    directory = Path(directory).absolute()
    state = load_state(directory)
    if state is None:
        raise SandboxError(f"no sandbox in {directory}", fix=f"start one with `cdc sandbox up --dir {directory}`")
    rows = []
    for name in (*SERVERS, *REPLICAS):
        server = state.servers.get(name)
        if server is None:
            continue
        pid = processes.read_pid_file(Path(server.pid_file)) or server.pid
        running = processes.is_our_process(pid, server.program, server.marker)
        rows.append(ServerStatus(name, server.port, pid, running, server.log_file))
    return rows


def endpoints(directory: str | Path = DEFAULT_DIR) -> Endpoints:
    """The URLs of a running sandbox; SandboxError when it is absent or not fully running."""
    directory = Path(directory).absolute()
    stopped = [row.name for row in status(directory) if not row.running]
    if stopped:
        raise SandboxError(
            f"the sandbox in {directory} is not running ({', '.join(stopped)} stopped)",
            fix=f"run `cdc sandbox up --dir {directory}`",
        )
    state = load_state(directory)
    assert state is not None  # status() raised otherwise
    return state.endpoints()


def _is_running(server: ServerState) -> bool:
    """True when the server's pid is alive and is that server."""
    pid = processes.read_pid_file(Path(server.pid_file)) or server.pid
    return processes.is_our_process(pid, server.program, server.marker)


def _refuse_stale_pid_files(state: SandboxState) -> None:
    """A pid file whose process is gone means a crash or reboot: say so instead of guessing."""
    for server in state.servers.values():
        pid = processes.read_pid_file(Path(server.pid_file))
        if pid is not None and not processes.is_our_process(pid, server.program, server.marker):
            raise SandboxError(
                f"stale pid file {server.pid_file}: pid {pid} is not a running {server.program} of this sandbox "
                "(it crashed, was killed, or the machine rebooted)",
                fix=f"run `cdc sandbox down --dir {state.dir}` to clean up, then `cdc sandbox up --dir {state.dir}`",
            )


def _choose_ports(requested: dict[str, int], previous: SandboxState | None) -> dict[str, int]:
    """A port per server: the requested one (must be free), else the previous one if free, else any free one."""
    chosen: dict[str, int] = {}
    for name in SERVERS:
        port = requested.get(name) or 0
        if port:
            if not port_is_free(port) or port in chosen.values():
                raise SandboxError(
                    f"port {port} on 127.0.0.1 (asked for {name}) is already in use",
                    fix=f"choose another with {PORT_OPTIONS[name]} PORT, or leave it out to pick a free port",
                )
            chosen[name] = port
    for name in SERVERS:
        if name in chosen:
            continue
        old = previous.servers[name].port if previous and name in previous.servers else 0
        if old and old not in chosen.values() and port_is_free(old):
            chosen[name] = old
        else:
            chosen[name] = pick_free_port(avoid=chosen.values())
    return chosen


def _tls_files(directory: Path, *, new: bool):
    """The sandbox's CA and certificates: made now for a new sandbox (`cryptography`, the sandbox extra)."""
    from cdc.sandbox import tls

    return tls.make_certificates(directory) if new else tls.files_in(directory)


def _start(name: str, directory: Path, port: int, promised: set[int], pinned: bool, password: str | None,
           tls=None, pg_version: int | None = None) -> ServerState:
    """Start one server; when another program grabbed its free port meanwhile, try once more on a new port."""
    extra = {"tls": tls} if tls is not None else {}
    if name == "postgres":
        extra["version"] = pg_version
    try:
        return SERVER_MODULES[name].start(directory, port, password=password, **extra)
    except SandboxError:
        if pinned or port_is_free(port):
            raise
    return SERVER_MODULES[name].start(directory, pick_free_port(avoid=promised), password=password, **extra)


def _start_replica(name: str, directory: Path, started: dict[str, ServerState], previous: SandboxState | None,
                   password: str | None, tls=None) -> ServerState:
    """Start the PostgreSQL standby or MariaDB replica of the server started as its primary."""
    old = previous.servers[name].port if previous is not None and name in previous.servers else 0
    taken = {server.port for server in started.values()}
    port = old if old and old not in taken and port_is_free(old) else pick_free_port(avoid=taken)
    return _start_replica_on(name, directory, port, started, password, tls)


def _start_replica_on(name: str, directory: Path, port: int, servers: dict[str, ServerState], password: str | None,
                      tls=None) -> ServerState:
    """Start the standby/replica `name` on `port`, replicating from its primary in `servers`."""
    if name == postgres.STANDBY_NAME:
        return postgres.start_standby(directory, port, servers["postgres"].port, password=password, tls=tls)
    return mariadb.start_replica(directory, port, servers["mariadb"].port, password=password, tls=tls)


def _stop_server(server: ServerState) -> None:
    """Stop one server if it is still ours, then remove its pid file."""
    pid_file = Path(server.pid_file)
    pid = processes.read_pid_file(pid_file) or server.pid
    if pid:
        processes.stop(pid, server.program, server.marker, sig=SERVER_MODULES[server.name].STOP_SIGNAL)
    pid_file.unlink(missing_ok=True)


def _relocation_notes(state: SandboxState) -> Iterator[str]:
    """Say where a data dir went when it could not live under the sandbox dir."""
    for name, title, user in (("postgres", "PostgreSQL", postgres.RUN_AS), ("mariadb", "MariaDB", mariadb.RUN_AS)):
        server = state.servers[name]
        if not Path(server.data_dir).is_relative_to(state.dir):
            yield (f"note: {title}'s data dir is {server.data_dir} (the `{user}` user cannot reach "
                   f"{state.dir}, or its socket path would be too long)")


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on DIR/.lock so two `up`/`down` on one dir do not race."""
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
