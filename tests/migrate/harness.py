"""The migration tests' world: two databases with a `ledger` table, an application writing acknowledged
rows to whichever database the `--on-switch` hook names as primary, and the `cdc migrate` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cdc.migrate.state import MigrationStore
from cdc.urls import parse_url

ROOT = Path(__file__).resolve().parents[2]
APP_USER, APP_PASSWORD = "cdc_app", "app"
HOOK = 'printf %s "$CDC_PRIMARY_URL" > "{path}.tmp" && mv "{path}.tmp" "{path}"'


def app_url(url: str) -> str:
    """The same database, as the application's user (no privilege beyond reading and writing rows)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{APP_USER}:{APP_PASSWORD}@{parts.hostname}:{parts.port}"))


def primary_key(url: str) -> str:
    """A URL as CDC_PRIMARY_URL spells it (no user password, engine://user@host:port/db) -> host:port/db."""
    parsed = parse_url(url)
    return f"{parsed.host}:{parsed.port}/{parsed.database}"


def prepare_side(url: str) -> None:
    """The ledger table (serial / AUTO_INCREMENT id) and the application user with row privileges only."""
    engine = parse_url(url).engine
    if engine == "postgresql":
        from connectors.postgres.dialect import connect

        with connect(url) as conn:
            conn.execute(f"DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_USER}') THEN "
                         f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'; END IF; END$$")
            conn.execute("CREATE TABLE ledger (id bigserial PRIMARY KEY, writer varchar(20) NOT NULL, seq int NOT NULL)")
            conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ledger TO {APP_USER}")
            conn.execute(f"GRANT USAGE ON SEQUENCE ledger_id_seq TO {APP_USER}")
    else:
        from connectors.mysql.dialect import connect

        conn = connect(url)
        try:
            with conn.cursor() as cursor:
                cursor.execute("CREATE TABLE ledger (id bigint AUTO_INCREMENT PRIMARY KEY, writer varchar(20) NOT NULL,"
                               " seq int NOT NULL)")
                cursor.execute(f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'")
                # table by table, as `--freeze revoke` needs (a database-level grant cannot be revoked per table)
                cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{parse_url(url).database}`.`ledger`"
                               f" TO '{APP_USER}'@'%'")
        finally:
            conn.close()


def seed(url: str, rows: int) -> None:
    """`rows` ledger rows written by `seed`, in one statement."""
    from cdc.registry import migrate_module

    parsed = parse_url(url)
    engine = migrate_module(parsed.engine)
    conn = engine.connect(parsed)
    try:
        if parsed.engine == "postgresql":
            engine.execute(conn, "INSERT INTO ledger (writer, seq) SELECT 'seed', g FROM generate_series(1, %s) g",
                           (rows,))
        else:
            engine.execute(conn, f"INSERT INTO ledger (writer, seq) SELECT 'seed', seq FROM seq_1_to_{int(rows)}")
    finally:
        conn.close()


def reopen_all(url: str) -> None:
    """Leave the server open to writes (MariaDB's read_only is server-wide; tests share the server)."""
    from cdc.registry import migrate_module

    parsed = parse_url(url)
    engine = migrate_module(parsed.engine)
    conn = engine.connect(parsed)
    try:
        engine.open_writes(conn, parsed)
    finally:
        conn.close()


def ledger_seqs(url: str, writer: str) -> set[int]:
    """The seq numbers the writer's rows hold in that database."""
    parsed = parse_url(url)
    from cdc.registry import migrate_module

    engine = migrate_module(parsed.engine)
    conn = engine.connect(parsed)
    try:
        return {int(row[0]) for row in engine.execute(conn, "SELECT seq FROM ledger WHERE writer = %s", (writer,))}
    finally:
        conn.close()


def app_write(url: str, writer: str, seq: int) -> None:
    """One row written as the application (raises what the database says)."""
    parsed = parse_url(url)
    if parsed.engine == "postgresql":
        import psycopg

        with psycopg.connect(host=parsed.host, port=parsed.port, user=APP_USER, password=APP_PASSWORD,
                             dbname=parsed.database, autocommit=True, connect_timeout=5) as conn:
            conn.execute("INSERT INTO ledger (writer, seq) VALUES (%s, %s)", (writer, seq))
    else:
        import pymysql

        conn = pymysql.connect(host=parsed.host, port=parsed.port, user=APP_USER, password=APP_PASSWORD,
                               database=parsed.database, autocommit=True, connect_timeout=5)
        try:
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO ledger (writer, seq) VALUES (%s, %s)", (writer, seq))
        finally:
            conn.close()


class _Connection:
    """The application's one open connection to the primary it was told about."""

    def __init__(self, url: str) -> None:
        self.parsed = parse_url(url)
        if self.parsed.engine == "postgresql":
            import psycopg

            self.conn = psycopg.connect(host=self.parsed.host, port=self.parsed.port, user=APP_USER,
                                        password=APP_PASSWORD, dbname=self.parsed.database, autocommit=True,
                                        connect_timeout=5)
        else:
            import pymysql

            self.conn = pymysql.connect(host=self.parsed.host, port=self.parsed.port, user=APP_USER,
                                        password=APP_PASSWORD, database=self.parsed.database, autocommit=True,
                                        connect_timeout=5, read_timeout=30, write_timeout=30)

    def insert(self, writer: str, seq: int) -> None:
        if self.parsed.engine == "postgresql":
            self.conn.execute("INSERT INTO ledger (writer, seq) VALUES (%s, %s)", (writer, seq))
        else:
            with self.conn.cursor() as cursor:
                cursor.execute("INSERT INTO ledger (writer, seq) VALUES (%s, %s)", (writer, seq))

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a killed session is already gone
            pass


class Application(threading.Thread):
    """Writes `rate` rows a second to the primary the hook file names; remembers every acknowledged write."""

    def __init__(self, primary_file: Path, urls: dict[str, str], writer: str = "app", rate: float = 500.0) -> None:
        super().__init__(daemon=True)
        self.primary_file = primary_file
        self.urls = urls  # primary_key -> cdc URL of that side
        self.writer = writer
        self.rate = rate
        self.acks: list[tuple[int, str, float]] = []  # (seq, side key, wall time)
        self.errors = 0
        self.halt = threading.Event()
        self.writing = threading.Event()
        self.writing.set()

    @contextlib.contextmanager
    def paused(self):
        """No writes inside the block (verify then compares tables that stand still)."""
        self.writing.clear()
        time.sleep(0.05)
        try:
            yield
        finally:
            self.writing.set()

    def primary(self) -> str:
        return primary_key(self.primary_file.read_text().strip())

    def run(self) -> None:
        seq, started, connection, side = 0, time.monotonic(), None, None
        while not self.halt.is_set():
            if not self.writing.is_set():
                self.writing.wait()
                started = time.monotonic() - seq / self.rate  # the rate resumes; no burst to catch up
            due = started + seq / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                wanted = self.primary()
                if connection is None or side != wanted:
                    if connection is not None:
                        connection.close()
                    connection, side = None, wanted
                    connection = _Connection(self.urls[wanted])
                connection.insert(self.writer, seq + 1)
            except Exception:  # noqa: BLE001 - refused, killed or frozen: not acknowledged, try again
                self.errors += 1
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.005)
                continue
            seq += 1
            self.acks.append((seq, side, time.time()))
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(30)

    def longest_gap(self, after: float, before: float) -> float:
        """The longest time between two acknowledgements within [after, before] (the pause the app saw)."""
        times = [t for _, _, t in self.acks if after <= t <= before]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


@dataclass
class MigrateCli:
    """`cdc migrate ...` as subprocesses, with the workflow's URLs in the environment (never on the line)."""

    name: str
    source: str
    target: str
    kafka: str
    workdir: Path
    runner: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_")}
        env.update(CDC_SOURCE=self.source, CDC_TARGET=self.target, CDC_KAFKA=self.kafka, PYTHONPATH=str(ROOT), **extra)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "cdc.cli", "migrate", *args], env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout, cwd=self.workdir)
        print(f"  [{time.strftime('%H:%M:%S')}] cdc migrate {args[0]}: exit {done.returncode} in "
              f"{time.monotonic() - started:.1f}s")
        if check and done.returncode != 0:
            raise AssertionError(f"cdc migrate {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def json(self, *args: str, **env: str) -> dict:
        return json.loads(self.run(*args, "--json", **env).stdout)

    def start_runner(self) -> None:
        log = open(self.workdir / f"runner-{self.name}.log", "ab")
        self.runner = subprocess.Popen([sys.executable, "-m", "cdc.cli", "migrate", "run", self.name],
                                       env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

    def stop_runner(self) -> None:
        if self.runner is not None and self.runner.poll() is None:
            self.runner.send_signal(signal.SIGTERM)
            try:
                self.runner.wait(40)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait()
        self.runner = None

    def store(self) -> MigrationStore:
        return MigrationStore(parse_url(self.target))

    def wait_state(self, state: str, timeout: float = 90) -> None:
        store = self.store()
        try:
            deadline = time.monotonic() + timeout
            while (current := store.load(self.name).state) != state:
                assert self.runner is None or self.runner.poll() is None, f"runner exited {self.runner.returncode}"
                assert time.monotonic() < deadline, f"workflow still {current} after {timeout}s, not {state}"
                time.sleep(0.3)
        finally:
            store.close()

    def journal(self) -> list[dict]:
        store = self.store()
        try:
            return store.entries(self.name)
        finally:
            store.close()
