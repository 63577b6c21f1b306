"""Server processes: launch detached, recognise by pid (never by name), stop and wait."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from cdc.errors import SandboxError


SOCKET_PATH_LIMIT = 100  # sockaddr_un holds 108 bytes; leave room for the socket's own name


def user_can_traverse(path: Path, uid: int, gids: set[int]) -> bool:
    """True when a user (uid, groups) may enter every directory from / down to path."""
    if uid == 0:
        return True
    for directory in [path, *path.parents]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == uid:
            bit = 0o100
        elif info.st_gid in gids:
            bit = 0o010
        else:
            bit = 0o001
        if not info.st_mode & bit:
            return False
    return True


def server_home(directory: Path, name: str, user: str | None) -> Path:
    """Where a server run as `user` keeps data and socket: DIR/<name>, or /tmp/cdc-sandbox-<name>-<hash> when
    `user` cannot reach DIR or the socket path would be too long."""
    import hashlib
    import pwd

    home = directory / name
    if user is None:
        reachable = True
    else:
        entry = pwd.getpwnam(user)
        gids = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
        reachable = user_can_traverse(directory, entry.pw_uid, gids)
    if reachable and len(str(home)) <= SOCKET_PATH_LIMIT:
        return home
    digest = hashlib.sha1(str(directory).encode()).hexdigest()[:12]
    return Path("/tmp") / f"cdc-sandbox-{name}-{digest}"


def make_home(home: Path, user: str | None) -> None:
    """Create a server's home, owned by `user` (when given) and closed to everyone else."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)


_LAUNCHED: list[subprocess.Popen] = []  # kept so Python does not warn about servers that outlive their Popen


def launch(argv: Sequence[str], log_file: Path, *, user: str | None = None, env: dict | None = None,
           cwd: Path | None = None) -> subprocess.Popen:
    """Start argv in its own session, output appended to log_file, so it outlives this process."""
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, user=user, group=group_of(user), extra_groups=[] if user else None,
            env=env, cwd=cwd,
        )
    _LAUNCHED.append(process)
    return process


def abandon(process: subprocess.Popen, pid_file: str | Path) -> None:
    """Kill a server that did not come up and forget its pid file."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    Path(pid_file).unlink(missing_ok=True)


def group_of(user: str | None) -> int | None:
    """The primary group id of `user` (None for no user)."""
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def write_pid_file(path: Path, pid: int) -> None:
    """Record pid in path."""
    path.write_text(f"{pid}\n")


def read_pid_file(path: Path) -> int | None:
    """The pid written in path, or None when there is no such file or it holds no number."""
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def command_line(pid: int) -> list[str] | None:
    """The argv of a live (non-zombie) process, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        _reap(pid)
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_our_process(pid: int | None, program: str, marker: str) -> bool:
    """True when pid runs `program` with `marker` (e.g. its data dir) on its command line."""
    if not pid:
        return False
    argv = command_line(pid)
    if not argv:
        return False
    return os.path.basename(argv[0]).startswith(program) and any(marker in arg for arg in argv)


def stop(pid: int, program: str, marker: str, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal pid (only if it is really our server) and wait for it to exit; SIGKILL after timeout."""
    if not is_our_process(pid, program, marker):
        return
    os.kill(pid, sig)
    if wait_gone(pid, program, marker, timeout):
        return
    os.kill(pid, signal.SIGKILL)
    if not wait_gone(pid, program, marker, 10.0):
        raise SandboxError(f"{program} (pid {pid}) did not exit after SIGKILL", fix=f"check `ps -p {pid}`")


def wait_gone(pid: int, program: str, marker: str, timeout: float) -> bool:
    """Wait up to timeout seconds for pid to stop being our server; True when it is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_our_process(pid, program, marker):
            return True
        time.sleep(0.05)
    return not is_our_process(pid, program, marker)


def _reap(pid: int) -> None:
    """Collect an exited child of ours so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


ERROR_WORDS = ("ERROR", "FATAL", "PANIC", "Aborting", "error:")


def log_tail(path: Path, lines: int = 20) -> str:
    """The error lines and the last lines of a log file, for error messages (tools often end with help text)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    all_lines = text.splitlines()
    tail = all_lines[-lines:]
    errors = [line for line in all_lines[:-lines] if any(word in line for word in ERROR_WORDS)][-10:]
    return "\n".join([*errors, "...", *tail] if errors else tail)


def failed_to_start(name: str, log_file: Path, why: str) -> SandboxError:
    """The error for a server that did not come up, with the end of its log."""
    return SandboxError(
        f"{name} failed to start: {why}\n--- last lines of {log_file} ---\n{log_tail(log_file)}\n---",
        fix=f"read {log_file}; fix the cause, then run `cdc sandbox down` and `cdc sandbox up` again",
    )
