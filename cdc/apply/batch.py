"""Apply one batch of consumed records to the target in one transaction, with its offsets.

    records -> decode (table, op, key, after) -> per table: fold -> writer.write
            -> cdc_offsets upsert -> commit

When the set-based write fails on a row's data, the batch is rolled back and applied again event by
event, each under a savepoint, so the bad events are isolated and handed to the error policy (stop, or
the dead-letter topic) while the rest commit. Tombstones and records of the prefix's own topics
(schemas, transactions, dlq, ...) only advance offsets.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cdc.apply.dlq import BadEvent
from cdc.apply.fold import fold_batch
from cdc.apply.keyless import drop_repeats, keyless_steps, load_positions, newest_positions, store_positions, write_keyless
from cdc.apply.offsets import advanced, next_offsets
from cdc.apply.schemas import SchemaCatalog, UnknownSchema
from cdc.apply.target import TargetTable, TargetWriter
from cdc.errors import TargetError
from cdc.events import CREATE, DELETE, READ, TRUNCATE, UPDATE, TableSchema
from cdc.kafka import Record
from cdc.kafka.headers import SCHEMA_VERSION
from cdc.registry import event_position_reader

log = logging.getLogger(__name__)

ROW_OPS = frozenset((CREATE, UPDATE, READ))
_loads = orjson.loads
# Topics under the prefix that carry no table changes.
INTERNAL_SUFFIXES = ("schemas", "transaction", "dlq", "schema-changes", "message")


class MalformedEvent(ValueError):
    """A change event that does not have the documented shape."""


@dataclass(slots=True)
class ChangeEvent:
    """One decoded change: table schema, op, primary-key tuple, after image (c/u/r)."""

    record: Record
    schema: TableSchema
    op: str
    key: tuple | None
    after: dict[str, Any] | None
    transaction_id: str | None = None
    transaction_order: int = 0
    ts_ms: int = 0  # source commit time (source.ts_ms), 0 when absent
    before: dict[str, Any] | None = None  # keyless tables only: the whole row the update/delete matches
    position: tuple | None = None  # keyless tables only: the source position (repeats are dropped by it)


def internal_topics(prefix: str) -> frozenset[str]:
    """The prefix's own topics that the `<prefix>.*` subscription also matches."""
    return frozenset(f"{prefix}.{suffix}" for suffix in INTERNAL_SUFFIXES)


_VERSIONS: dict[tuple, int | None] = {}  # headers tuple -> schema version (a handful of distinct ones)


def schema_version(record: Record) -> int | None:
    """The `cdc.schema.version` header as a number (None when absent)."""
    headers = record.headers
    try:
        return _VERSIONS[headers]
    except (KeyError, TypeError):
        pass
    number = None
    for name, value in headers:
        if name == SCHEMA_VERSION:
            try:
                number = int(value)
            except ValueError:
                raise MalformedEvent(f"header {SCHEMA_VERSION} is not a number: {value!r}") from None
            break
    if len(_VERSIONS) < 1000:
        try:
            _VERSIONS[headers] = number
        except TypeError:  # headers that are not hashable (a list): no caching
            pass
    return number


def decode_event(record: Record, schemas: SchemaCatalog, wanted: Any = None) -> ChangeEvent | None:
    """Decode a change record's JSON value (never a tombstone) into a ChangeEvent; MalformedEvent if it is not one.

    None when `wanted` (a predicate on `namespace.table`) leaves the event's table out.
    """
    try:
        value = _loads(record.value)
        op = value["op"]
        source = value["source"]
        table = f"{source['schema'] if 'schema' in source else source['db']}.{source['table']}"
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"value is not JSON ({exc})") from None
    except (KeyError, TypeError):
        raise MalformedEvent("value is not a change event (needs op and source.table)") from None
    if wanted is not None and not wanted(table):
        return None
    try:
        schema = schemas.get(table, schema_version(record))
    except UnknownSchema as exc:
        raise MalformedEvent(str(exc)) from None
    transaction = value.get("transaction")
    transaction_id = order = None
    if type(transaction) is dict:
        transaction_id, order = transaction.get("id"), transaction.get("total_order")
    order = order if type(order) is int else 0
    ts_ms = source.get("ts_ms") if type(source) is dict else None
    ts_ms = ts_ms if type(ts_ms) is int else 0
    if op == TRUNCATE:
        return ChangeEvent(record, schema, op, None, None, transaction_id, order, ts_ms)
    key_columns = schema.primary_key or tuple(c.name for c in schema.columns if c.primary_key)
    if not key_columns:
        return keyless_event(record, schema, op, value, transaction_id, order, ts_ms)
    if op in ROW_OPS:
        after = value.get("after")
        if type(after) is not dict:
            raise MalformedEvent(f"op {op!r} without an 'after' object")
        return ChangeEvent(record, schema, op, _key(after, key_columns), after, transaction_id, order, ts_ms)
    if op == DELETE:
        before = value.get("before")
        image = before if type(before) is dict and all(c in before for c in key_columns) else _record_key(record)
        return ChangeEvent(record, schema, op, _key(image, key_columns), None, transaction_id, order, ts_ms)
    raise MalformedEvent(f"unknown op {op!r}")


def keyless_event(record: Record, schema: TableSchema, op: str, value: dict[str, Any], transaction_id: str | None,
                  order: int, ts_ms: int) -> ChangeEvent:
    """A change of a table without a primary key: whole before/after images and the source position."""
    before, after = value.get("before"), value.get("after")
    if op in ROW_OPS and type(after) is not dict:
        raise MalformedEvent(f"op {op!r} without an 'after' object")
    if op in (UPDATE, DELETE) and type(before) is not dict:
        raise MalformedEvent(
            f"{'update' if op == UPDATE else 'delete'} of table {schema.qualified_name} (no primary key) without"
            " its whole before image: set REPLICA IDENTITY FULL on the source table (MySQL: binlog_row_image=FULL)")
    if op not in ROW_OPS and op != DELETE:
        raise MalformedEvent(f"unknown op {op!r}")
    try:
        position = event_position_reader(schema.engine)(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedEvent(f"source position unreadable ({exc})") from None
    return ChangeEvent(record, schema, op, None, after if op in ROW_OPS else None, transaction_id, order, ts_ms,
                       before if op in (UPDATE, DELETE) else None, position)


def _record_key(record: Record) -> dict[str, Any]:
    try:
        key = orjson.loads(record.key) if record.key is not None else None
    except orjson.JSONDecodeError:
        key = None
    if not isinstance(key, dict):
        raise MalformedEvent("delete without the key columns in 'before' or a JSON key")
    return key


def _key(image: dict[str, Any], columns: tuple[str, ...]) -> tuple:
    try:
        key = (image[columns[0]],) if len(columns) == 1 else tuple([image[c] for c in columns])
    except KeyError as exc:
        raise MalformedEvent(f"primary-key column {exc.args[0]!r} missing") from None
    if None in key:
        raise MalformedEvent("primary-key value is null")
    return key


@dataclass(slots=True)
class PreparedBatch:
    """A batch decoded, folded and converted, ready for its target transaction."""

    offsets: dict[tuple[str, int], int]        # next offset per partition after the batch
    first_offsets: dict[tuple[str, int], int]  # first offset per partition in the batch
    events: list[ChangeEvent]
    bad: list[BadEvent]
    tables: dict[str, TargetTable]
    plan: list[tuple] | None


class BatchApplier:
    """Applies batches of records for one consumer group through one target writer."""

    def __init__(self, writer: TargetWriter, schemas: SchemaCatalog, *, group: str, prefix: str,
                 policy: Any, tables: Any = None, metrics_prefix: str | None = None) -> None:
        self.writer = writer
        self.metrics_prefix = metrics_prefix  # set: record cdc_events_applied_total / cdc_apply_lag_seconds
        self.schemas = schemas
        self.group = group
        self.policy = policy
        self.internal = internal_topics(prefix)
        self.wanted = tables  # callable(qualified name) -> bool, or None for every table
        self.applied_rows = 0
        self.parked: dict[str, str] = {}  # table -> reason: parked by --on-error skip-table, its events skipped
        self._to_park: dict[str, str] = {}  # found unwritable while preparing: parked by the next commit

    def load_parked(self) -> None:
        """Read the tables parked by earlier runs (they stay parked until their cdc_table_state row goes)."""
        self.parked = self.writer.load_parked_tables(self.group)
        for name, reason in self.parked.items():
            log.warning("table is parked: its events are skipped", extra={"table": name, "reason": reason})
            self._parked_metric(name)

    def _parked_metric(self, name: str) -> None:
        if self.metrics_prefix is not None:
            from cdc.metrics import TABLE_PARKED

            TABLE_PARKED.labels(self.metrics_prefix, name).set(1)

    def _skips_tables(self) -> bool:
        return getattr(self.policy, "name", "") == "skip-table"

    def _park_reasons(self, bad: list[BadEvent]) -> dict[str, str]:
        """Table -> reason for every table to park now: found unwritable, or with a bad event."""
        reasons = dict(self._to_park)
        for event in bad:
            if event.table is not None:
                reasons.setdefault(event.table, f"{event.where}: {event.reason}")
        return reasons

    def _park(self, bad: list[BadEvent]) -> list[BadEvent]:
        """Under skip-table: record the tables of bad events (and those found unwritable) as parked, inside
        the open transaction; returns the bad events of no table (the policy stops on them)."""
        if not self._skips_tables():
            return bad
        for name, reason in self._park_reasons(bad).items():
            self.writer.store_table_state(self.group, name, "parked", reason[:2000])
        return [event for event in bad if event.table is None]

    def _parked_after_commit(self, bad: list[BadEvent]) -> None:
        """After the commit that recorded them: skip the parked tables' events from now on, say so."""
        if not self._skips_tables():
            return
        reasons = self._park_reasons(bad)
        self._to_park.clear()
        for name, reason in reasons.items():
            if name not in self.parked:
                log.error("table parked: apply skips its events from now on (--on-error skip-table)",
                          extra={"table": name, "reason": reason})
                self._parked_metric(name)
            self.parked[name] = reason

    def decode(self, records: Iterable[Record]) -> tuple[list[ChangeEvent], list[BadEvent]]:
        """Decoded change events of the wanted tables, and the records that are not valid events."""
        events: list[ChangeEvent] = []
        bad: list[BadEvent] = []
        internal, wanted = self.internal, self.wanted
        for record in records:
            if record.value is None or record.topic in internal:
                continue
            try:
                event = decode_event(record, self.schemas, wanted)
            except MalformedEvent as exc:
                bad.append(BadEvent(record, f"malformed event: {exc}"))
                continue
            if event is not None and event.schema.qualified_name not in self.parked:
                events.append(event)
        return events, bad

    def apply(self, records: list[Record]) -> dict[tuple[str, int], int]:
        """Write the records and their next offsets in one target transaction; returns those offsets."""
        return self.write_prepared(self.prepare(records))

    def prepare(self, records: list[Record], before_ddl: Any = None) -> PreparedBatch:
        """Everything that needs no target transaction: decode, fold per table, convert rows.

        `before_ddl()` runs before the first table of the batch that still needs checking or creating
        (the caller drains a write in flight on the same connection).
        """
        # A batch allocates some dicts per event and keeps them until written: the cyclic collector would
        # run every ~700 of them and walk them again as they age, a third of the decode time, to find
        # nothing (events hold no reference cycles; reference counting frees them). Paused for the
        # prepare only (a write running meanwhile on the writer thread shares the pause).
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._prepare(records, before_ddl)
        finally:
            if paused:
                gc.enable()

    def _prepare(self, records: list[Record], before_ddl: Any) -> PreparedBatch:
        events, bad = self.decode(records)
        first: dict[tuple[str, int], int] = {}
        for record in records:
            tp = (record.topic, record.partition)
            if record.offset < first.get(tp, record.offset + 1):
                first[tp] = record.offset
        schemas = {id(e.schema): e.schema for e in events}.values()
        if before_ddl is not None and not all(self.writer.knows(schema) for schema in schemas):
            before_ddl()
        tables = self._tables_of(events)
        if len(tables) < len({e.schema.qualified_name for e in events}):
            events = [e for e in events if e.schema.qualified_name in tables]
        return PreparedBatch(next_offsets(records), first, events, bad, tables, self._fold(events, tables))

    def _fold(self, events: list[ChangeEvent], tables: dict[str, TargetTable]) -> list[tuple] | None:
        """Per table: (target table, folded batch, converted row groups, converted keys, what the writer
        rendered of them); None if a value does not convert (the write then isolates the bad rows)."""
        by_table: dict[str, list[tuple]] = {}
        names: dict[int, str] = {}  # id(schema) -> qualified name (the property formats a string per call)
        for event in events:
            schema = event.schema
            name = names.get(id(schema))
            if name is None:
                name = names[id(schema)] = schema.qualified_name
            changes = by_table.get(name)
            if changes is None:
                changes = by_table[name] = []
            changes.append((event.op, event.key if event.key is not None else event.before, event.after))
        plan = []
        try:
            for name, changes in by_table.items():
                table = tables[name]
                if not table.key:
                    plan.append((table, keyless_steps(table, changes), None, None, None))
                    continue
                folded = fold_batch(changes)
                groups = table.row_groups(folded.upserts)
                keys = table.key_values(folded.deletes)
                plan.append((table, folded, groups, keys, self.writer.render(table, folded, groups, keys)))
        except (ValueError, TypeError):
            return None
        return plan

    def write_prepared(self, prepared: PreparedBatch) -> dict[tuple[str, int], int]:
        """Write a prepared batch and its offsets in one target transaction; returns the offsets."""
        self.write_unit(prepared.events, prepared.bad, prepared.offsets, prepared=prepared)
        return prepared.offsets

    def write_unit(self, events: list[ChangeEvent], bad: list[BadEvent], offsets: dict[tuple[str, int], int],
                   before_commit: Any = None, prepared: PreparedBatch | None = None) -> None:
        """Events (folded per table), bad events (to the policy) and offsets in one target transaction.

        Events and bad events below the stored offset of their partition were applied already and are
        dropped; `before_commit()` runs last inside the transaction.
        """
        writer = self.writer
        tables = prepared.tables if prepared is not None else self._tables_of(events)
        plan = prepared.plan if prepared is not None else None
        started = time.monotonic()
        writer.begin()
        try:
            stored = writer.load_offsets(self.group, offsets, lock=True)
            if stored and (prepared is None or any(
                    offset < stored.get(tp, 0) for tp, offset in prepared.first_offsets.items())):
                events = [e for e in events if e.record.offset >= stored.get((e.record.topic, e.record.partition), 0)]
                bad = [b for b in bad if b.record.offset >= stored.get((b.record.topic, b.record.partition), 0)]
                plan = None  # some of it was applied already: fold again what is left
            keyless = [name for name, table in tables.items() if not table.key]
            if keyless:
                kept = drop_repeats(events, load_positions(writer, self.group))
                if len(kept) != len(events):
                    log.info("dropped events of keyless tables applied before (sent again by the capture)",
                             extra={"events": len(events) - len(kept)})
                    events, plan = kept, None
            try:
                self._write_plan(plan if plan is not None else self._fold(events, tables), events)
            except Exception as exc:
                if not writer.is_data_error(exc):
                    raise
                log.warning("batch refused, isolating bad rows", extra={"reason": _reason(exc)})
                writer.rollback()
                writer.begin()
                writer.load_offsets(self.group, offsets, lock=True)
                bad = bad + self._write_one_by_one(events, tables)
            self.policy.handle(sorted(self._park(bad), key=lambda b: (b.record.topic, b.record.partition, b.record.offset)))
            if keyless:
                store_positions(writer, self.group, newest_positions(events))
            if before_commit is not None:
                before_commit()
            writer.store_offsets(self.group, advanced(offsets, stored))
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        self._parked_after_commit(bad)
        if self.metrics_prefix is not None:
            record_metrics(self.metrics_prefix, events, bad, self.policy, time.monotonic() - started)

    def _tables_of(self, events: list[ChangeEvent]) -> dict[str, TargetTable]:
        """Target tables for the newest schema of each table in the batch (DDL runs before the transaction)."""
        newest: dict[str, TableSchema] = {}
        seen: set[int] = set()  # schema objects looked at (a batch has a handful among thousands of events)
        for event in events:
            schema = event.schema
            if id(schema) in seen:
                continue
            seen.add(id(schema))
            known = newest.get(schema.qualified_name)
            if known is None or schema.version > known.version:
                newest[schema.qualified_name] = schema
        tables = {}
        for name, schema in newest.items():
            try:
                tables[name] = self.writer.table_for(schema)
            except TargetError as exc:
                if not self._skips_tables():
                    raise
                self._to_park[name] = str(exc)
        return tables

    def _write_plan(self, plan: list[tuple] | None, events: list[ChangeEvent]) -> None:
        if plan is None:
            raise ValueError("a value does not convert to its column's type")
        for table, folded, groups, keys, rendered in plan:
            if table.key:
                self.writer.write(table, folded, groups, keys, rendered)
            else:
                write_keyless(self.writer, table, folded)
            self.applied_rows += len(folded)

    def _write_one_by_one(self, events: list[ChangeEvent], tables: dict[str, TargetTable]) -> list[BadEvent]:
        """Each event alone under a savepoint; the ones the target refuses are returned as bad."""
        writer = self.writer
        bad: list[BadEvent] = []
        for event in events:
            table = tables[event.schema.qualified_name]
            writer.savepoint()
            try:
                write_event(writer, table, event)
            except Exception as exc:
                if not writer.is_data_error(exc):
                    raise
                writer.rollback_to_savepoint()
                bad.append(BadEvent(event.record, _reason(exc), event.schema.qualified_name))
            else:
                self.applied_rows += 1
        return bad


def record_metrics(prefix: str, events: list[ChangeEvent], bad: list[BadEvent], policy: Any,
                   seconds: float = 0.0) -> None:
    """After a target commit: events applied per table, lag from source commit to now, dead letters,
    the batch's size and write time (`seconds`: begin to commit).

    The lag histogram gets one observation per distinct source commit time in the batch (about one
    per source transaction), not one per event: observing 100k events/s would cost more than it tells.
    """
    from cdc.metrics import (APPLY_BATCH_ROWS, APPLY_BATCH_SECONDS, APPLY_LAG_SECONDS, APPLY_LAST_BATCH,
                             EVENTS_APPLIED, EVENTS_DEAD_LETTERED)

    now_ms = time.time() * 1000
    per_table: dict[str, int] = {}
    commit_times: set[int] = set()
    for event in events:
        name = event.schema.qualified_name
        per_table[name] = per_table.get(name, 0) + 1
        commit_times.add(event.ts_ms)
    for name, count in per_table.items():
        EVENTS_APPLIED.labels(prefix, name).inc(count)
    lag = APPLY_LAG_SECONDS.labels(prefix)
    for ts_ms in commit_times:
        if ts_ms:
            lag.observe(max(0.0, (now_ms - ts_ms) / 1000))
    if bad and getattr(policy, "name", "") == "dlq":
        EVENTS_DEAD_LETTERED.labels(prefix).inc(len(bad))
    APPLY_BATCH_ROWS.labels(prefix).observe(len(events))
    APPLY_BATCH_SECONDS.labels(prefix).observe(seconds)
    APPLY_LAST_BATCH.labels(prefix).set(time.time())


def write_event(writer: TargetWriter, table: TargetTable, event: ChangeEvent) -> None:
    """Write one event with single-row statements (the row-by-row path)."""
    if event.op == TRUNCATE:
        writer.truncate(table)
    elif not table.key:
        write_keyless(writer, table, keyless_steps(table, [(event.op, event.before, event.after)]))
    elif event.op == DELETE:
        writer.delete_key(table, event.key)
    else:
        writer.upsert_row(table, event.after)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# GIL switch interval while a batch is prepared and the previous one is written at the same time.
SWITCH_INTERVAL_S = 0.0005


class OverlappedApplier:
    """Writes batch N on a background thread while the caller consumes and prepares batch N+1.

    The write mostly waits on the target (the thread releases the GIL), so decoding, folding and
    converting the next batch costs no wall time. At most one write is in flight; `drain()` waits for
    it (before a rebalance reads or writes offsets, before DDL, when idle, on stop).
    """

    def __init__(self, applier: BatchApplier) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.applier = applier
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdc-apply-write")
        self._inflight = None

    @property
    def applied_rows(self) -> int:
        return self.applier.applied_rows

    def submit(self, records: list[Record]) -> dict[tuple[str, int], int] | None:
        """Prepare `records`, wait for the write in flight, start writing these; returns the offsets
        committed by the write that finished (None when there was none)."""
        if self._inflight is None:
            prepared = self.applier.prepare(records, before_ddl=self.drain)
        else:
            # The writer thread needs the GIL back after each round trip to the target; with the default
            # 5 ms switch interval it waits that long behind this (CPU-bound) prepare at every statement,
            # which made overlapping slower than not overlapping. A short interval while both run fixes it.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
            try:
                prepared = self.applier.prepare(records, before_ddl=self.drain)
            finally:
                sys.setswitchinterval(interval)
        committed = self.drain()
        self._inflight = self._executor.submit(self.applier.write_prepared, prepared)
        return committed

    def drain(self) -> dict[tuple[str, int], int] | None:
        """Wait for the write in flight (raising its error); the offsets it committed, or None."""
        inflight, self._inflight = self._inflight, None
        return inflight.result() if inflight is not None else None

    def close(self) -> None:
        """Stop the writer thread (a write in flight finishes first; call drain() to see its outcome)."""
        self._executor.shutdown(wait=True)
