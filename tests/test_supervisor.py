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


def test_children_die_with_a_sigkilled_cdc_run(kafka_bootstrap, tmp_path):
    """Without PDEATHSIG the children of a SIGKILLed `cdc run` run on, orphaned, beside the next run's."""
    import os
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from cdc.supervisor import Component, Supervisor\n"
        f"s = Supervisor([Component('tail', ['tail', '--kafka', {kafka_bootstrap!r}, '--prefix', 'orphan-test'])])\n"
        "s.poll()\nprint(s.components[0].process.pid, flush=True)\ntime.sleep(300)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
            if state in ("Z", "X"):
                break
            time.sleep(0.1)
        alive = Path(f"/proc/{child}").exists() and \
            Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
        assert not alive, "the child outlived its SIGKILLed supervisor"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_backoff_starts_over_after_a_stable_run(monkeypatch):
    """Found by `cdc drill`: after six faults spread over twenty minutes, apply waited 60 s to restart."""
    monkeypatch.setattr("cdc.supervisor.STABLE_SECONDS", 0.0)  # every run counts as stable
    component = Component("version", ["--version"])
    supervisor = Supervisor([component])
    for _ in range(4):
        supervisor.poll()
        component.process.wait(30)
        supervisor.poll()
        assert component.next_start - time.monotonic() <= backoff_seconds(1)
        component.next_start = 0.0
    assert component.restarts == 4


def test_backoff_grows_while_a_child_keeps_failing_fast():
    component = Component("version", ["--version"])
    supervisor = Supervisor([component])
    delays = []
    for _ in range(3):
        supervisor.poll()
        component.process.wait(30)
        supervisor.poll()
        delays.append(component.next_start - time.monotonic())
        component.next_start = 0.0
    assert delays[2] > backoff_seconds(2) - 1 and delays[0] <= backoff_seconds(1)
