"""pg_chameleon as a benchmark peer: `init_replica` of one MariaDB schema into PostgreSQL, timed.

pg_chameleon lives in its own virtualenv (`/work/peers/chameleon`, or CHAMELEON_VENV):

    python3 -m venv /work/peers/chameleon && /work/peers/chameleon/bin/pip install pg_chameleon

Its quirks, handled here: it refuses to run as root, so it runs as `nobody` (through `runuser`) with a
HOME of its own that holds the configuration (passwords stay in that 0600 file, never on a command
line); without `--debug` its commands return before their work is done (`init_replica` goes to the
background; `create_replica_schema` left no schema here), so every command gets `--debug` (the run then
waits for the copy; the debug log goes to a pipe); the connection string it
builds drops the port when the password is empty (the sandbox's users have passwords).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

VENV = Path(os.environ.get("CHAMELEON_VENV", "/work/peers/chameleon"))
USER = "nobody"
CONFIG = "bench"


def unavailable() -> str | None:
    """Why pg_chameleon cannot run here (None: it can)."""
    if not (VENV / "bin" / "chameleon").exists():
        return (f"pg_chameleon is not installed in {VENV} "
                f"(python3 -m venv {VENV} && {VENV}/bin/pip install pg_chameleon)")
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return "pg_chameleon refuses to run as root; switching to an unprivileged user needs root and runuser"
    return None


def _config(source_url: str, target_url: str, schema: str, target_schema: str, home: Path) -> str:
    src, dst = urlsplit(source_url), urlsplit(target_url)
    return f"""---
pid_dir: '{home}/pid/'
log_dir: '{home}/logs/'
log_dest: file
log_level: info
log_days_keep: 1
rollbar_key: ''
rollbar_env: ''
type_override: {{}}
pg_conn:
  host: "{dst.hostname}"
  port: "{dst.port}"
  user: "{dst.username}"
  password: "{dst.password or ''}"
  database: "{dst.path.lstrip('/')}"
  charset: "utf8"
sources:
  mysql:
    db_conn:
      host: "{src.hostname}"
      port: "{src.port}"
      user: "{src.username}"
      password: "{src.password or ''}"
      charset: 'utf8'
      connect_timeout: 10
    schema_mappings:
      {schema}: {target_schema}
    limit_tables:
    skip_tables:
    grant_select_to:
    lock_timeout: "120s"
    my_server_id: 4242
    replica_batch_size: 10000
    replay_max_rows: 10000
    batch_retention: '1 day'
    copy_max_memory: "300M"
    copy_mode: 'file'
    out_dir: '{home}/out'
    sleep_loop: 1
    on_error_replay: continue
    on_error_read: continue
    auto_maintenance: "disabled"
    gtid_enable: false
    type: mysql
    skip_events:
      insert:
      delete:
      update:
    keep_existing_schema: No
    net_read_timeout: 600
"""


def init_replica(source_url: str, target_url: str, schema: str, target_schema: str) -> dict:
    """Run create_replica_schema + add_source (setup, timed apart) and init_replica (the copy, timed)."""
    home = Path(tempfile.mkdtemp(prefix="chameleon-", dir="/tmp"))
    try:
        config_dir = home / ".pg_chameleon" / "configuration"
        for directory in (config_dir, home / "pid", home / "logs", home / "out"):
            directory.mkdir(parents=True)
        config = config_dir / f"{CONFIG}.yml"
        config.write_text(_config(source_url, target_url, schema, target_schema, home))
        config.chmod(0o600)
        user = pwd.getpwnam(USER)
        for path in [home, *home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)

        def chameleon(*args: str) -> None:
            result = subprocess.run(
                # runuser sets HOME to the user's (nobody's: /nonexistent); env sets it back to ours
                ["runuser", "-u", USER, "--", "env", f"HOME={home}", str(VENV / "bin" / "chameleon"), *args,
                 "--config", CONFIG, "--debug"],
                capture_output=True, text=True, cwd=home, env={"PATH": os.environ["PATH"]})
            output = result.stdout + result.stderr
            if result.returncode != 0 or any(mark in output for mark in ("Traceback", "ERROR - ", "FATAL")):
                raise RuntimeError(f"chameleon {args[0]} failed: {output.strip()[-600:]}")

        started = time.monotonic()
        chameleon("create_replica_schema")
        chameleon("add_source", "--source", "mysql")
        setup = time.monotonic() - started
        started = time.monotonic()
        chameleon("init_replica", "--source", "mysql")
        return {"seconds": round(time.monotonic() - started, 2), "setup_seconds": round(setup, 2)}
    finally:
        shutil.rmtree(home, ignore_errors=True)
