"""JSON across engines inside the checksum, when both sides store the same text.

No SQL expression gives one canonical text of a JSON document on both PostgreSQL and MariaDB (jsonb
orders keys by length, MariaDB's JSON_NORMALIZE by bytes and spells numbers `1.5E0`; rebuilding either
needs recursion per row). But a replicated column usually holds the same text on both sides: apply
writes PostgreSQL's `jsonb::text` into MariaDB as it is. So each dialect offers a few texts of a JSON
column (`json_text_forms`), and before checksumming, a sample of rows in key order is read from both
sides: if some pair of forms agrees on every sampled row whose values are equal, the column is hashed
in SQL as that text (class `json_text`). Equal texts are equal documents, so an equal checksum is still
sound; rows whose texts differ land in differing segments, are fetched, and are compared by value
(`canonical_json`), so a spelling difference is never reported. When no form agrees, the column stays
client-side (`cdc.verify.client_pass`).
"""

from __future__ import annotations

import dataclasses

from cdc.verify.canonical import canonical_json
from cdc.verify.plan import ColumnPair, TablePlan

SAMPLE_ROWS = 1000


def _sample(pool, plan: TablePlan, side: str, pairs: list[ColumnPair], where: str | None) -> tuple[dict, list[int]]:
    """{canonical key: (texts of every form of every pair)} of the first SAMPLE_ROWS rows in key order."""
    dialect = pool.dialect
    shape = (lambda pair: pair.source) if side == "source" else (lambda pair: pair.target)
    keys = [dialect.canonical(shape(pair), pair.cls) for pair in plan.key_pairs]
    counts = [len(dialect.json_text_forms(shape(pair))) for pair in pairs]
    forms = [form for pair in pairs for form in dialect.json_text_forms(shape(pair))]
    table = plan.source_table if side == "source" else plan.target_table
    # Qualified: a bare name would mean the output column PG names after it (`("id")::text` is "id"),
    # sorting by that text: a scan and sort of the whole table (0.6-1 s at 1M rows) for another sample.
    order = ", ".join(f"{dialect.table_ref(table)}.{dialect.quote(shape(pair).name)}" for pair in plan.key_pairs)
    condition = f" WHERE ({where})" if where else ""
    rows = pool.query(f"SELECT {', '.join(keys + forms)} FROM {dialect.table_ref(table)}{condition} "
                      f"ORDER BY {order} LIMIT {SAMPLE_ROWS}")
    n_key = len(keys)
    return {tuple(row[:n_key]): row[n_key:] for row in rows}, counts


def _agreeing_forms(source: list[tuple], target: list[tuple]) -> tuple[int, int] | None:
    """The first (source form, target form) whose texts agree on every row pair of equal value."""
    if not source:
        return None
    n_source, n_target = len(source[0]), len(target[0])
    for i in range(n_source):
        for j in range(n_target):
            if all(a[i] == b[j] or not _same_value(a[i], b[j]) for a, b in zip(source, target)):
                return i, j
    return None


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return canonical_json(a) == canonical_json(b)
    except ValueError:
        return False


def choose_json_forms(session, plan: TablePlan, where: str | None) -> TablePlan:
    """The plan with each client-side JSON pair moved into the checksum when the sampled texts agree."""
    pairs = [pair for pair in plan.client_pairs if pair.cls == "json"]
    if not pairs or plan.mode == "multiset":
        return plan
    (source, source_counts), (target, target_counts) = (
        _sample(session.source, plan, "source", pairs, where), _sample(session.target, plan, "target", pairs, where))
    common = [key for key in source if key in target]
    if not common:
        return plan
    chosen: dict[str, tuple[int, int]] = {}
    source_at = target_at = 0
    for pair, n_source, n_target in zip(pairs, source_counts, target_counts):
        forms = _agreeing_forms([source[key][source_at:source_at + n_source] for key in common],
                                [target[key][target_at:target_at + n_target] for key in common])
        if forms is not None:
            chosen[pair.name] = forms
        source_at += n_source
        target_at += n_target
    if not chosen:
        return plan
    new_pairs = []
    for pair in plan.pairs:
        if pair.name in chosen:
            pair = dataclasses.replace(pair, cls="json_text", client_side=False, forms=chosen[pair.name],
                                       note="JSON hashed in SQL as each side's stored text (they agree on "
                                            f"{len(common)} sampled rows); rows whose texts differ are compared by value")
        new_pairs.append(pair)
    notes = [note for note in plan.notes if not any(note.startswith(f"{name}: ") for name in chosen)]
    notes += [f"{pair.name}: {pair.note}" for pair in new_pairs if pair.name in chosen]
    return dataclasses.replace(plan, pairs=new_pairs, notes=notes)
