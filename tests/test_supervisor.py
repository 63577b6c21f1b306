"""`cdc run`'s supervisor restarts exiting children with back-off, stops running ones; /metrics and /healthz answer."""

import signal
import time
from pathlib import Path
import urllib.error
import urllib.request

from cdc.commands.run import apply_args, apply_env, capture_args, capture_env
from cdc.config import load_config
from cdc.metrics import serve_metrics
from cdc.supervisor import Component, Supervisor, backoff_seconds


def test_backoff_doubles_and_caps():
    assert [backoff_seconds(n) for n in (0, 1, 2, 3, 10)] == [1, 2, 4, 8, 60]


def test_child_that_exits_is_restarted_and_reported_unhealthy():
    component = Component("version", ["--version"])
    supervisor = Supervisor([component])
    supervisor.poll()
    assert component.process is not None
    component.process.wait(30)
    supervisor.poll()
    assert component.restarts == 1 and component.last_exit == 0
    assert supervisor.healthy() == (False, "down: version")
    supervisor.stop()


def _catches(pid: int, signum: int) -> bool:
    """True once process `pid` has a handler of its own for `signum` (Linux: SigCgt in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_stop_ends_a_running_child_gracefully(kafka_bootstrap):
    """`cdc tail` runs until SIGTERM; stop() must end it, and it exits 0 (flushed), not killed."""
    component = Component("tail", ["tail", "--kafka", kafka_bootstrap, "--prefix", "supervisor-stop-test"])
    supervisor = Supervisor([component])
    supervisor.poll()
    process = component.process
    deadline = time.monotonic() + 60
    while not _catches(process.pid, signal.SIGTERM):
        assert process.poll() is None, f"tail exited by itself with {process.returncode}"
        assert time.monotonic() < deadline, "tail never installed its SIGTERM handler"
        time.sleep(0.1)
    time.sleep(1.0)
    assert process.poll() is None and supervisor.healthy() == (True, "ok")
    started = time.monotonic()
    supervisor.stop(timeout=30)
    assert process.returncode == 0  # ended by SIGTERM through its own handler, not SIGKILLed
    assert time.monotonic() - started < 30
    supervisor.poll()
    assert component.process is None and component.last_exit == 0 and component.restarts == 0  # not restarted


def test_metrics_and_healthz_endpoints():
    server = serve_metrics("127.0.0.1:0", lambda: (False, "down: x"))
    port = server.server_address[1]
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "cdc_events_captured_total" in body
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as err:
            assert err.code == 503 and b"down: x" in err.read()
    finally:
        server.shutdown()


def test_config_entries_become_capture_and_apply_arguments(tmp_path):
    path = tmp_path / "cdc.toml"
    path.write_text(
        '[kafka]\nbootstrap = "127.0.0.1:9092"\n'
        '[[source]]\nurl = "postgresql://u:p@127.0.0.1:5433/shop"\nprefix = "shop"\ntables = ["public.a"]\nslot = "s1"\n'
        '[[target]]\nurl = "mysql://root@127.0.0.1:3307/replica"\nprefix = "shop"\ncreate_tables = true\n'
    )
    config = load_config(path)
    args = capture_args(config, config.sources[0])
    assert args[0] == "capture" and "--source" not in args and "p@" not in " ".join(args)
    assert capture_env(config, config.sources[0])["CDC_SOURCE"] == "postgresql://u:p@127.0.0.1:5433/shop"
    assert "--tables" in args and "public.a" in args and args[args.index("--slot") + 1] == "s1"
    args = apply_args(config, config.targets[0])
    assert "--create-tables" in args and "--target" not in args
    assert apply_env(config, config.targets[0])["CDC_TARGET"] == "mysql://root@127.0.0.1:3307/replica"
