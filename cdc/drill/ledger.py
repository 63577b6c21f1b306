"""The drill's ledger: a write load that remembers every write the source acknowledged, and a check that
reads source and target with plain SQL (no pipeline code) to count what was lost."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

log = logging.getLogger("cdc.drill")

TABLE = "cdc_drill_ledger"
TICK_SECONDS = 0.05  # one small transaction per tick
UPDATE_SHARE = 0.2  # a fifth of the rows written are updates of acknowledged rows (a new version)


def engine_of(url: str) -> str:
    """`postgresql` or `mysql`, from a URL's scheme."""
    scheme = urlsplit(url).scheme
    return "postgresql" if scheme.startswith("postgres") else "mysql"


def connect(url: str):
    """A plain DB-API connection (psycopg or PyMySQL), autocommit off, to the URL's database."""
    if engine_of(url) == "postgresql":
        import psycopg

        conn = psycopg.connect(url, connect_timeout=5)
        conn.execute("SET synchronous_commit = on")  # the sandbox turns it off; acknowledged means on disk
        conn.commit()
        return conn
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
                           password=unquote(parts.password or ""), database=parts.path.lstrip("/"),
                           connect_timeout=5, read_timeout=30, write_timeout=30, autocommit=False)


def create_table(url: str) -> None:
    """Create the ledger table (id, version, fault, payload) in the URL's database."""
    conn = connect(url)
    try:
        cursor = conn.cursor()
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint PRIMARY KEY, version int NOT NULL, "
                       "fault varchar(40) NOT NULL, payload varchar(200) NOT NULL)")
        conn.commit()
    finally:
        conn.close()


def read_versions(url: str, *, min_id: int = 0) -> dict[int, int]:
    """id -> version of every ledger row (id >= min_id); {} when the table does not exist yet."""
    try:
        conn = connect(url)
    except Exception as exc:  # noqa: BLE001  (a database being restarted by the drill)
        log.debug("ledger read failed: %s", exc)
        return {}
    try:
        cursor = conn.cursor()
        cursor.execute(f"SELECT id, version FROM {TABLE} WHERE id >= %s", (min_id,))
        return {int(row[0]): int(row[1]) for row in cursor.fetchall()}
    except Exception as exc:  # noqa: BLE001  (table not created by apply yet)
        log.debug("ledger read failed: %s", exc)
        return {}
    finally:
        conn.close()


@dataclass(slots=True, frozen=True)
class Tally:
    """What the ledger check found: acknowledged writes, and those missing (or stale) in source and target."""

    acknowledged: int
    source_lost: frozenset[int]  # acknowledged by the source, then gone from it (not cdc's doing)
    lost: frozenset[int]  # in the source at (at least) the acknowledged version, not so in the target


def tally(acknowledged: dict[int, int], source: dict[int, int], target: dict[int, int]) -> Tally:
    """Compare the acknowledged writes with what source and target hold now (a pure function)."""
    source_lost = {row for row, version in acknowledged.items() if source.get(row, -1) < version}
    lost = {row for row, version in acknowledged.items()
            if row not in source_lost and target.get(row, -1) != source[row]}
    return Tally(len(acknowledged), frozenset(source_lost), frozenset(lost))


class LedgerWriter:
    """Writes the ledger at `rate` rows a second in small transactions (inserts, and updates of rows
    already acknowledged); `acknowledged` holds id -> version of every write whose commit returned."""

    def __init__(self, url: str, rate: float, *, seed: int = 16) -> None:
        self.url = url
        self.rate = rate
        self.fault = "start"
        self.acknowledged: dict[int, int] = {}
        self.next_id = 1
        self.failures = 0
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._writing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"ledger:{engine_of(url)}", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> LedgerWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def pause(self) -> None:
        """Stop writing; returns once no transaction is in progress."""
        self.paused.set()
        with self._writing:
            pass

    def resume(self) -> None:
        self.paused.clear()

    def snapshot(self) -> dict[int, int]:
        """A copy of the acknowledged writes."""
        with self._lock:
            return dict(self.acknowledged)

    def _run(self) -> None:
        conn = None
        owed = 0.0
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            owed = min(owed + (now - last) * self.rate, self.rate)  # catch up at most one second after an outage
            last = now
            if self.paused.is_set():
                owed = 0.0
            rows = int(owed)
            if rows:
                try:
                    with self._writing:
                        if conn is None:
                            conn = connect(self.url)
                        if not self.paused.is_set():
                            self._write(conn, rows)
                    owed -= rows
                except Exception as exc:  # noqa: BLE001  (any driver error: the drill is breaking things)
                    self.failures += 1
                    log.debug("ledger write failed: %s", exc)
                    conn = _close_quietly(conn)
                    self._stop.wait(0.2)
            self._stop.wait(TICK_SECONDS)
        _close_quietly(conn)

    def _write(self, conn, rows: int, *, updates: bool = True, padding: int = 0) -> None:
        """One transaction: `rows` writes; remembered only once the commit returned."""
        with self._lock:
            count = int(rows * UPDATE_SHARE) if updates and len(self.acknowledged) > rows else 0
            picked = {self._random.randrange(1, self.next_id) for _ in range(count)}
            changed = {row: self.acknowledged[row] + 1 for row in picked if row in self.acknowledged}
            first = self.next_id
            inserts = rows - len(changed)
            self.next_id += inserts  # ids of a transaction whose commit failed are never reused
        cursor = conn.cursor()
        fault = self.fault
        pad = "x" * padding
        cursor.executemany(f"INSERT INTO {TABLE} (id, version, fault, payload) VALUES (%s, 1, %s, %s)",
                           [(row, fault, f"row {row} written during {fault}{pad}"[:200])
                            for row in range(first, first + inserts)])
        if changed:
            cursor.executemany(f"UPDATE {TABLE} SET version = %s WHERE id = %s",
                               [(version, row) for row, version in changed.items()])
        conn.commit()
        with self._lock:
            for row in range(first, first + inserts):
                self.acknowledged[row] = 1
            for row, version in changed.items():
                self.acknowledged[row] = max(self.acknowledged[row], version)

    def write_huge(self, rows: int) -> None:
        """One transaction of `rows` inserts with full-width payloads, on a connection of its own."""
        conn = connect(self.url)
        try:
            self._write(conn, rows, updates=False, padding=200)
        finally:
            _close_quietly(conn)


def _close_quietly(conn) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001  (closing a broken connection)
            pass
    return None
