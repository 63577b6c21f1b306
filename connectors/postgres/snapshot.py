"""The snapshot role: read the captured tables as of the slot's exported snapshot, as op `r` events.

The slot is created with EXPORT_SNAPSHOT; each worker connection opens a REPEATABLE READ transaction
and `SET TRANSACTION SNAPSHOT`s that id, so every table is read exactly as of the slot's consistent
point and streaming from that point neither misses nor repeats a change. Tables are split between
several connections and read in primary-key order in chunks (keyset pagination: `WHERE (pk) > (last)
ORDER BY pk LIMIT n`); a table without a primary key is read through one cursor. A table whose first key
column is an integer is split into `--snapshot-workers` ranges of that column (`cdc.snapshot.key_ranges`,
bounds from min/max under the snapshot), read by as many connections at once; all of them import the
same exported snapshot, so the ranges are of one consistent point.

Rows are fetched as `COPY (SELECT ...) TO STDOUT` text (one COPY per chunk, no per-value work in
Python) and turned into values by the same pgoutput decoder the stream uses (`copy_rows`: each field
as an Insert of that text decodes it, after a synthetic Relation message), so a snapshot row and a
streamed row of the same data are identical. Snapshot markers (`source.snapshot`) are set by `cdc.snapshot.SnapshotEmitter`.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from cdc.errors import SourceError
from cdc.events import READ, Change, TableSchema
from cdc.impl import twin
from cdc.pipeline import CaptureOptions, CapturePipeline, StopSignal
from cdc.snapshot import WHOLE_TABLE, KeyRange, SnapshotEmitter, key_ranges, put_unless_stopped
from cdc.urls import DatabaseUrl
from connectors.postgres.schema import CatalogTable, read_table, table_oid, table_schema, type_codec
from connectors.postgres.decode import copy_unescape
from connectors.postgres.dialect import connect, qualified, quote_ident
from connectors.postgres.setup import check_select_privilege
from connectors.postgres.source_info import source_block
from connectors.postgres.types import is_builtin

PgoutputDecoder = twin("connectors.postgres.decode").PgoutputDecoder

log = logging.getLogger(__name__)

_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_I16 = struct.Struct("!h")
SNAPSHOT_CLOCK_FIELDS = ("ts_ms", "ts_us", "ts_ns")  # the source fields a snapshot row fills in per batch
INTEGER_TYPES = frozenset({20, 21, 23})  # int8, int2, int4: key columns that split into ranges


@dataclass(slots=True)
class SnapshotTable:
    """One table to read: its catalog description and the schema its events carry."""

    index: int
    catalog: CatalogTable
    schema: TableSchema
    ranges: list[KeyRange]


def relation_message(table: CatalogTable) -> bytes:
    """A pgoutput (v1) Relation message describing `table` as the stream would."""
    relation = table.relation()
    parts = [b"R", _U32.pack(relation.relid), relation.namespace.encode() + b"\0", relation.name.encode() + b"\0",
             relation.replica_identity.encode(), _I16.pack(len(relation.columns))]
    for flags, name, type_oid, typmod in relation.columns:
        parts += [bytes([flags]), name.encode() + b"\0", _U32.pack(type_oid), _I32.pack(typmod)]
    return b"".join(parts)


def insert_message(relid: int, values: list[bytes | None]) -> bytes:
    """A pgoutput (v1) Insert message carrying the text form of one row."""
    pack = _I32.pack
    return b"".join([b"I", _U32.pack(relid), b"N", _I16.pack(len(values)),
                     *[b"n" if value is None else b"t" + pack(len(value)) + value for value in values]])


def _open_snapshot_connection(url: DatabaseUrl, snapshot_name: str) -> psycopg.Connection:
    conn = connect(url, autocommit=False)
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    try:
        conn.execute("SET TRANSACTION SNAPSHOT %s" % _literal(snapshot_name))
    except psycopg.Error as exc:
        conn.close()
        raise SourceError(f"cannot import the slot's exported snapshot {snapshot_name!r}: {str(exc).strip()}",
                          fix="the replication connection that exported it must stay open and idle") from exc
    return conn


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_table_chunks(conn: psycopg.Connection, table: CatalogTable, chunk: int, stop: threading.Event,
                      key_range: KeyRange = WHOLE_TABLE) -> Iterator[tuple[int, bytes]]:
    """The table's rows (of `key_range`) as `(count, data)` chunks, `data` being `COPY ... TO STDOUT`
    text lines (`PgoutputDecoder.copy_rows` decodes them): keyset pagination on the primary key, one
    COPY per chunk; a table without a primary key in one COPY, cut into chunks as it streams."""
    columns = ", ".join(quote_ident(c.name) for c in table.columns)
    source = qualified(table.namespace, table.name)
    cursor = conn.cursor()
    if not table.primary_key:
        lines: list[bytes] = []
        with cursor.copy(f"COPY (SELECT {columns} FROM {source}) TO STDOUT") as copy:
            for line in copy:
                lines.append(bytes(line))
                if len(lines) >= chunk:
                    yield len(lines), b"".join(lines)
                    lines = []
                    if stop.is_set():
                        return
        if lines:
            yield len(lines), b"".join(lines)
        return
    names = [c.name for c in table.columns]
    key_positions = [names.index(name) for name in table.primary_key]
    types_by_name = {c.name: c.type_name for c in table.columns}
    key_list = ", ".join(quote_ident(name) for name in table.primary_key)
    bound = ", ".join(f"%s::{types_by_name[name]}" for name in table.primary_key)
    in_range, range_params = key_range.condition(quote_ident(table.primary_key[0]))
    # COPY takes no server-side parameters: psycopg binds these client-side, quoted as literals.
    first = f"COPY (SELECT {columns} FROM {source} WHERE true{in_range} ORDER BY {key_list} LIMIT {int(chunk)}) TO STDOUT"
    after = (f"COPY (SELECT {columns} FROM {source} WHERE ({key_list}) > ({bound}){in_range}"
             f" ORDER BY {key_list} LIMIT {int(chunk)}) TO STDOUT")
    last_key: list[str] | None = None
    while not stop.is_set():
        with cursor.copy(first if last_key is None else after,
                         range_params if last_key is None else [*last_key, *range_params]) as copy:
            data = b"".join(copy)
        count = data.count(b"\n")  # a newline inside a value is escaped (`\\n`): one per row
        if not count:
            return
        yield count, data
        if count < chunk:
            return
        last_key = last_key_text(data, key_positions)


def last_key_text(data: bytes, key_positions: list[int]) -> list[str]:
    """The text of the key columns (at `key_positions`) in the last line of COPY text output."""
    fields = data[data.rfind(b"\n", 0, len(data) - 1) + 1:-1].split(b"\t")
    return [copy_unescape(fields[i]).decode() for i in key_positions]


def plan_ranges(conn: psycopg.Connection, table: CatalogTable, parts: int, min_width: int) -> list[KeyRange]:
    """The key ranges to read `table` in: `parts` of them when its first key column is an integer, else one."""
    if parts < 2 or not table.primary_key:
        return [WHOLE_TABLE]
    column = next(c for c in table.columns if c.name == table.primary_key[0])
    if column.type_oid not in INTEGER_TYPES:
        return [WHOLE_TABLE]
    key = quote_ident(column.name)
    low, high = conn.execute(f"SELECT min({key}), max({key}) FROM {qualified(table.namespace, table.name)}").fetchone()
    return key_ranges(low, high, parts, min_width)


def _worker(url: DatabaseUrl, snapshot_name: str, tables: queue.Queue, results: queue.Queue, chunk: int,
            stop: threading.Event) -> None:
    """Read (table, key range) items from `tables` until it is empty, putting ("rows", index, rows) /
    ("done", index) on `results`."""
    try:
        conn = _open_snapshot_connection(url, snapshot_name)
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        results.put(("error", None, exc))
        return
    try:
        while not stop.is_set():
            try:
                table, key_range = tables.get_nowait()
            except queue.Empty:
                break
            started = time.monotonic()
            count = 0
            for rows, data in read_table_chunks(conn, table.catalog, chunk, stop, key_range):
                count += rows
                put_unless_stopped(results, ("rows", table.index, data), stop)
            put_unless_stopped(results, ("done", table.index, None), stop)
            extra = {"table": table.schema.qualified_name, "rows": count,
                     "seconds": round(time.monotonic() - started, 2)}
            if key_range is not WHOLE_TABLE:
                extra["range"] = f"[{key_range.lower}, {key_range.upper})"
            log.info("snapshot read table", extra=extra)
        conn.rollback()
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        results.put(("error", None, exc))
    finally:
        conn.close()
        results.put(("exit", None, None))


def read_snapshot(url: DatabaseUrl, snapshot_name: str, consistent_point: int, tables: list[tuple[str, str]],
                  pipeline: CapturePipeline, options: CaptureOptions, database: str, stop: StopSignal) -> int:
    """Emit every row of `tables` as of the exported snapshot as op `r` events; returns the row count."""
    started = time.monotonic()
    with _open_snapshot_connection(url, snapshot_name) as conn:
        txid = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot())").fetchone()[0]
        decoder = PgoutputDecoder()
        planned: list[SnapshotTable] = []
        for namespace, name in tables:
            relid = table_oid(conn, namespace, name)
            table = read_table(conn, relid) if relid is not None else None
            if table is None:
                raise SourceError(f"table {namespace}.{name} disappeared before the snapshot read it")
            for column in table.columns:
                if not is_builtin(column.type_oid):
                    decoder.set_type_codec(column.type_oid, type_codec(conn, column.type_oid))
            decoder.decode(relation_message(table), consistent_point)
            schema = pipeline.versioned(table_schema(table.relation(), table, database=database))
            ranges = plan_ranges(conn, table, options.snapshot_workers, options.snapshot_chunk)
            planned.append(SnapshotTable(len(planned), table, schema, ranges))
        conn.rollback()
    for table in planned:
        pipeline.publish_schema(table.schema)
    log.info("snapshot starting", extra={"tables": len(planned), "workers": options.snapshot_workers,
                                         "consistent_point": consistent_point})
    emitted = _run_workers(url, snapshot_name, consistent_point, planned, pipeline, options, database, stop,
                           decoder, txid)
    log.info("snapshot done", extra={"rows": emitted, "seconds": round(time.monotonic() - started, 2)})
    return emitted


def _run_workers(url, snapshot_name, consistent_point, planned, pipeline, options, database, stop, decoder,
                 txid) -> int:
    work: queue.Queue = queue.Queue()
    unread = {}  # table index -> its ranges not read to the end yet
    for table in planned:
        unread[table.index] = len(table.ranges)
        for key_range in table.ranges:
            work.put((table, key_range))
    results: queue.Queue = queue.Queue(maxsize=4 * options.snapshot_workers)
    halt = threading.Event()
    workers = [
        threading.Thread(target=_worker, args=(url, snapshot_name, work, results, options.snapshot_chunk, halt),
                         name=f"cdc-snapshot-{n}", daemon=True)
        for n in range(min(options.snapshot_workers, max(1, work.qsize())))
    ]
    for worker in workers:
        worker.start()
    running = len(workers)
    emitter = SnapshotEmitter(pipeline.emit)
    prefix = options.prefix
    copy_rows = decoder.copy_rows
    # One source block per table, its clock fields filled in per batch (the rows' hot path, no Change).
    templates = {table.index: pipeline.envelope.source_template(
        source_block(prefix, database, 0, "true", table.schema.namespace, table.schema.name, txid, consistent_point,
                     None), SNAPSHOT_CLOCK_FIELDS) for table in planned}
    try:
        while running:
            if stop.requested:
                halt.set()
            try:
                kind, index, payload = results.get(timeout=0.2)
            except queue.Empty:
                pipeline.poll()
                continue
            if kind == "error":
                raise payload
            if kind == "exit":
                running -= 1
            elif kind == "rows":
                schema = planned[index].schema
                relid = planned[index].catalog.relid
                afters = copy_rows(relid, payload, consistent_point)
                ts_us = time.time_ns() // 1000

                def change(after, schema=schema, ts_us=ts_us) -> Change:
                    source = source_block(prefix, database, ts_us, "true", schema.namespace, schema.name, txid,
                                          consistent_point, None)
                    return Change(READ, schema, None, after, source, (0, 0))

                clock = (ts_us // 1000, ts_us, ts_us * 1000)
                emitter.rows(index, afters, change,
                             lambda inside, schema=schema, template=templates[index], clock=clock:
                             pipeline.emit_reads(schema, inside, template, clock))
                pipeline.poll()
            elif kind == "done":
                unread[index] -= 1
                if not unread[index]:
                    emitter.table_done(index)
        if not stop.requested:
            emitter.finish()
        return emitter.emitted
    finally:
        halt.set()
        for worker in workers:
            worker.join(timeout=5)


def snapshot_tables(url: DatabaseUrl, captured: list[tuple[str, str]], publication: str) -> list[tuple[str, str]]:
    """The tables to snapshot: the captured list, else every table of the publication."""
    if captured:
        return captured
    with connect(url) as conn:
        tables = [tuple(row) for row in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
            (publication,)).fetchall()]
        check_select_privilege(conn, tables)
        return tables
