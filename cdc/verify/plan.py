"""What to compare: which tables, which column pairs as which class, by which key, split how.

A table is split one of three ways (`TablePlan.mode`):

- `range`: the key is one integer column on both sides. Segments are integer ranges of that
  column, identical on both engines (no collation involved), checked with index range scans and
  bisected into 16 sub-ranges while they differ and hold more rows than the threshold.
- `hash`: any other key (text, uuid, composite). (A composite key's first column may hold few
  distinct values, so integer ranges of it could not be split below the threshold.) Segments are
  buckets `hash(canonical key text) mod M`, computed identically by both engines whatever their
  collations; sized so a bucket holds about `threshold / 2` rows, so one checksum pass and one
  fetch pass find every differing row. Text ordering never matters, so PG `en_US` vs MariaDB
  `utf8mb4_general_ci` cannot shift a boundary.
- `multiset`: no primary or non-null unique key. Segments are buckets of the full-row hash; rows
  at the bottom are compared as multisets (duplicates counted). Reported with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc.verify.canonical import class_of


@dataclass(slots=True, frozen=True)
class ColumnShape:
    """A column as read from one database's catalog."""

    name: str
    kind: str
    source_type: str
    scale: int | None = None
    length: int | None = None
    nullable: bool = True
    charset: str | None = None


@dataclass(slots=True, frozen=True)
class TableShape:
    """A table as read from one database's catalog: columns in order and its key, if any."""

    name: str
    columns: tuple[ColumnShape, ...]
    primary_key: tuple[str, ...] = ()
    unique_key: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnShape:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(slots=True, frozen=True)
class ColumnPair:
    """One compared column: its shape on each side, its class, and where it is compared."""

    name: str
    source: ColumnShape
    target: ColumnShape
    cls: str
    client_side: bool = False  # compared after download, not inside the checksum
    note: str | None = None
    # class json_text: which of each side's JSON texts (`json_text_forms` of its dialect) is hashed
    forms: tuple[int, int] = (0, 0)


@dataclass(slots=True)
class TablePlan:
    """Everything needed to compare one table."""

    name: str
    source_table: str
    target_table: str
    key: tuple[str, ...]
    mode: str  # "range" | "hash" | "multiset"
    pairs: list[ColumnPair]
    notes: list[str] = field(default_factory=list)
    schema_differences: list[str] = field(default_factory=list)
    native: bool = False  # same engine and identical column types: the engine's own row hash may be used

    @property
    def key_pairs(self) -> list[ColumnPair]:
        by_name = {pair.name: pair for pair in self.pairs}
        return [by_name[name] for name in self.key]

    @property
    def sql_pairs(self) -> list[ColumnPair]:
        """Columns hashed inside the databases."""
        return [pair for pair in self.pairs if not pair.client_side]

    @property
    def client_pairs(self) -> list[ColumnPair]:
        """Columns compared client-side after download."""
        return [pair for pair in self.pairs if pair.client_side]


@dataclass(slots=True, frozen=True)
class Segment:
    """A part of a table: `lo <= key < hi` (range mode) or `hash mod modulus == residue` (hash modes)."""

    lo: int = 0
    hi: int = 0
    modulus: int = 0
    residue: int = 0
    depth: int = 0

    @property
    def label(self) -> str:
        if self.modulus:
            return f"bucket {self.residue}/{self.modulus}"
        return f"[{self.lo}, {self.hi})"


@dataclass(slots=True)
class Slicing:
    """Check one slice of each table per run (scheduled verify): about `rows` rows, at most `max_parts` slices.

    A table of N rows is cut in min(max_parts, ceil(N / rows)) slices: key ranges of equal width in range
    mode, key-hash classes otherwise. Run r of a table checks slice r mod that count, so `max_parts` runs
    make a full pass. `runs` is the caller's cursor (table -> runs so far); verify only reads it.
    """

    rows: int
    max_parts: int = 1_000_000
    runs: dict[str, int] = field(default_factory=dict)

    def parts_for(self, estimated_rows: int) -> int:
        return max(1, min(self.max_parts, -(-max(estimated_rows, 0) // max(1, self.rows))))

    def index_for(self, table: str, parts: int) -> int:
        return self.runs.get(table, 0) % parts


@dataclass(slots=True)
class VerifyOptions:
    """The user's choices for one run."""

    tables: tuple[str, ...] = ()
    where: str | None = None
    columns: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()
    float_tolerance: float | None = None
    workers: int = 4
    threshold: int = 1000
    segment_rows: int = 20000
    max_diffs: int = 1000
    recheck_delay: float = 2.0
    wait_for_lag: float | None = None
    slicing: Slicing | None = None  # None: whole tables


# cdc's own tables: apply's (offsets, transactions, table state), the migration workflow's state and
# journal, and the MySQL/MariaDB source's incremental-snapshot signal table
INTERNAL_TABLES = frozenset({"cdc_offsets", "cdc_transactions", "cdc_table_state", "cdc_migrations",
                             "cdc_migration_journal", "cdc_signal"})


def _column_filter(name: str, options: VerifyOptions, table: str) -> bool:
    """True when the column is to be compared (`--columns` names `col` or `table.col`)."""
    qualified = f"{table}.{name}"

    def named(patterns: tuple[str, ...]) -> bool:
        return name in patterns or qualified in patterns

    if options.columns and not named(options.columns):
        return False
    return not named(options.exclude_columns)


def pair_class(source: ColumnShape, target: ColumnShape, same_engine: bool, options: VerifyOptions) -> tuple[str, bool, str | None]:
    """(class, compared client-side?, note) for a column pair under the cross-engine type map."""
    source_cls, target_cls = class_of(source.kind), class_of(target.kind)
    if "float" in (source_cls, target_cls) and source_cls in ("float", "number") and target_cls in ("float", "number"):
        if options.float_tolerance is not None:
            return "float", True, f"float compared client-side with tolerance {options.float_tolerance}"
        if source_cls != target_cls:
            return "float", True, "float paired with a decimal: compared client-side as IEEE values"
        if not same_engine:
            if source.length != target.length:
                return "float", True, "4-byte float paired with an 8-byte one: compared client-side at single precision"
            return "float_exact", False, None  # exact on both engines (`canonical_float_exact`)
        return "float", False, None
    if "json" in (source_cls, target_cls):
        if same_engine and source.kind == target.kind:
            return "json", False, None
        # Until the run samples both sides' texts (`cdc.verify.json_forms`): compared client-side by value.
        return "json", True, "JSON/array compared client-side by value (the engines' texts differ)"
    if source.kind == target.kind == "decimal" and source.scale is not None and source.scale == target.scale:
        return "fixed", False, None  # same declared scale: both engines print the same digits, no trimming
    if source_cls == target_cls:
        return source_cls, False, None
    if {source_cls, target_cls} == {"uuid", "text"}:
        return "uuid", False, None
    return "text", False, f"types differ ({source.source_type} vs {target.source_type}); compared as text"


def build_table_plan(
    name: str, source: TableShape, target: TableShape, *, same_engine: bool, options: VerifyOptions
) -> TablePlan:
    """Pair the columns of one table, choose its key and its split mode, and note what differs."""
    target_by_name = {column.name.lower(): column for column in target.columns}
    source_names = {column.name.lower() for column in source.columns}
    differences = [
        f"column {column.name!r} only in source" for column in source.columns
        if column.name.lower() not in target_by_name and _column_filter(column.name, options, name)
    ]
    differences += [
        f"column {column.name!r} only in target" for column in target.columns
        if column.name.lower() not in source_names and _column_filter(column.name, options, name)
    ]
    key = source.primary_key or target.primary_key
    notes: list[str] = []
    if not source.primary_key and key:
        notes.append("source has no primary key; using the target's")
    if not key:
        key = source.unique_key or target.unique_key
        if key:
            notes.append(f"no primary key; using unique key ({', '.join(key)})")
    key = tuple(column for column in key if column.lower() in target_by_name)
    pairs: list[ColumnPair] = []
    for column in source.columns:
        peer = target_by_name.get(column.name.lower())
        if peer is None:
            continue
        if column.name not in key and not _column_filter(column.name, options, name):
            continue
        cls, client_side, note = pair_class(column, peer, same_engine, options)
        if column.name in key:
            client_side = False
            if cls in ("float", "float_exact", "json"):
                cls = "text"
        pairs.append(ColumnPair(column.name, column, peer, cls, client_side, note))
        if note:
            notes.append(f"{column.name}: {note}")
    if not key:
        mode = "multiset"
        notes.append("no primary or unique key: rows compared as a multiset of whole rows (duplicates counted)")
    elif len(key) == 1 and source.column(key[0]).kind == "int" and target_by_name[key[0].lower()].kind == "int":
        mode = "range"
    else:
        mode = "hash"
    if mode == "multiset" and any(pair.client_side for pair in pairs):
        # A whole-row multiset needs every column inside the hash.
        pairs = [ColumnPair(p.name, p.source, p.target, "text" if p.cls in ("float", "json") else p.cls)
                 if p.client_side else p for p in pairs]
        notes.append("float/JSON columns hashed as text in a keyless table (no client-side pairing possible)")
    native = same_engine and all(
        pair.source.source_type.lower() == pair.target.source_type.lower()
        and (pair.source.charset or "").lower() == (pair.target.charset or "").lower()  # same bytes for same text
        for pair in pairs if not pair.client_side)
    return TablePlan(
        name=name, source_table=source.name, target_table=target.name, key=key, mode=mode,
        pairs=pairs, notes=notes, schema_differences=differences, native=native,
    )
