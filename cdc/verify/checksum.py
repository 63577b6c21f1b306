"""How to hash a table segment inside a database: the SQL for one side of one table.

`TableSide` holds the engine dialect and the table plan and builds the three queries verify runs:
a *grid* query (count and aggregate of the row hashes per child segment of a parent segment, in one
GROUP BY), a *fetch* query (the canonical and raw values of the rows of some segments) and a *stream*
query (key plus client-side columns of every row). The same grid on both engines gives the same segment
numbers, because segment numbers are integer arithmetic on the key or on the 60-bit key hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdc.verify.canonical import LENGTH_PREFIXED
from cdc.verify.plan import ColumnPair, Segment, TablePlan


class EngineDialect:
    """What the engine dialects (`connectors/<engine>/checksum.py`) share: running SQL, naming tables."""

    namespace: str
    # The aggregate of a segment's row hashes when its rows are unique (see `checksum_aggregate`).
    unique_rows_aggregate = "SUM"

    def quote(self, name: str) -> str:
        raise NotImplementedError

    def execute(self, conn, sql: str, params: tuple = ()) -> list[tuple]:
        """All rows of one statement (DB-API; both drivers take `%s` placeholders)."""
        with conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())

    def grid_query(self, sql: str) -> str:
        """A grid (GROUP BY segment) query as this engine should run it (a dialect may mark it)."""
        return sql

    def table_ref(self, table: str) -> str:
        """The quoted `namespace.table` (PG schema or MySQL database)."""
        return f"{self.quote(self.namespace)}.{self.quote(table)}"

    def capture_confirmed(self, conn, position: str) -> bool | None:
        """Whether capture has confirmed the source position `position`, as the source database records it
        (`--wait-for-lag`). None: this database does not record it (no replication slot; or, the default,
        the engine keeps the capture position outside the database, e.g. in Kafka)."""
        return None

    # True when `capture_confirmed` can answer: the database records how far capture has confirmed.
    records_capture_position = False


@dataclass(slots=True, frozen=True)
class Checksum:
    """Row count and the aggregate (exact sum, or XOR) of the 60-bit row hashes of one segment on one side."""

    count: int
    total: int


class TableSide:
    """The SQL for one table on one side (source or target)."""

    def __init__(self, dialect, plan: TablePlan, side: str, where: str | None, *,
                 native: tuple[str, str] | None = None, aggregate: str = "SUM") -> None:
        self.dialect = dialect
        self.plan = plan
        self.side = side
        self.where = where
        self.aggregate = aggregate  # the same on both sides (see `checksum_aggregate`)
        table = plan.source_table if side == "source" else plan.target_table
        self.table_name = table
        self.table_ref = dialect.table_ref(table)
        if native:
            # Same engine, same types: the engine's faster hashes (see `native_row_hash`).
            self.row_hash, self.key_hash = native
        else:
            self.row_hash = dialect.hash60(self._text(plan.sql_pairs))
            self.key_hash = dialect.hash60(self._text(plan.key_pairs))
        if plan.mode == "multiset":
            self.key_hash = self.row_hash
        first_key = self._shape(plan.key_pairs[0]).name if plan.key else None
        self.key_column = dialect.quote(first_key) if first_key else None

    def _shape(self, pair: ColumnPair):
        return pair.source if self.side == "source" else pair.target

    def canonical(self, pair: ColumnPair) -> str:
        if pair.cls == "json_text":
            return self.dialect.json_text_forms(self._shape(pair))[pair.forms[0 if self.side == "source" else 1]]
        return self.dialect.canonical(self._shape(pair), pair.cls)

    def _text(self, pairs: list[ColumnPair]) -> str:
        # A dialect may spell a token more cheaply than token(canonical(...)) when the result is the
        # same text (e.g. MySQL CONCAT_WS prints an integer column as CAST(.. AS CHAR) does).
        cheap = getattr(self.dialect, "hash_token", None)
        tokens = []
        for pair in pairs:
            sql = cheap(self._shape(pair), pair.cls) if cheap else None
            tokens.append(sql or self.dialect.token(self.canonical(pair), pair.cls, pair.cls in LENGTH_PREFIXED))
        return self.dialect.concat(tokens)

    def _filter(self, conditions: list[str]) -> str:
        if self.where:
            conditions = [*conditions, f"({self.where})"]
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def segment_condition(self, segment: Segment) -> str:
        """SQL that selects the rows of one segment."""
        if segment.modulus:
            return f"({self.key_hash}) % {int(segment.modulus)} = {int(segment.residue)}"
        lit = self.dialect.int_literal
        return f"{self.key_column} >= {lit(segment.lo)} AND {self.key_column} < {lit(segment.hi)}"

    def segments_condition(self, segments: list[Segment]) -> str:
        """SQL that selects the rows of several segments (one scan instead of one per segment)."""
        if segments and all(s.modulus == segments[0].modulus and s.modulus for s in segments):
            residues = ", ".join(str(int(s.residue)) for s in segments)
            return f"({self.key_hash}) % {int(segments[0].modulus)} IN ({residues})"
        return "(" + " OR ".join(f"({self.segment_condition(s)})" for s in segments) + ")"

    # queries -----------------------------------------------------------------------------------
    def bounds_sql(self) -> str:
        """min/max of the first key column (range mode)."""
        return f"SELECT MIN({self.key_column}), MAX({self.key_column}) FROM {self.table_ref}{self._filter([])}"

    def count_sql(self) -> str:
        return f"SELECT COUNT(*) FROM {self.table_ref}{self._filter([])}"

    def range_grid_sql(self, lo: int, hi: int, origin: int, width: int) -> str:
        """Count and hash aggregate per child range `origin + n*width` of the rows with lo <= key < hi."""
        lit = self.dialect.int_literal
        child = self.dialect.int_div(f"{self.key_column} - {lit(origin)}", width)
        condition = f"{self.key_column} >= {lit(lo)} AND {self.key_column} < {lit(hi)}"
        return self.dialect.grid_query(f"SELECT {child} AS s, COUNT(*), {self.aggregate}({self.row_hash}) "
                                       f"FROM {self.table_ref}{self._filter([condition])} GROUP BY 1")

    def hash_grid_sql(self, parents: list[Segment], modulus: int) -> str:
        """Count and hash aggregate per bucket `key hash mod modulus`, within the parent buckets (or all rows)."""
        conditions = [self.segments_condition(parents)] if parents else []
        return self.dialect.grid_query(f"SELECT ({self.key_hash}) % {int(modulus)} AS s, COUNT(*), "
                                       f"{self.aggregate}({self.row_hash}) FROM {self.table_ref}"
                                       f"{self._filter(conditions)} GROUP BY 1")

    def fetch_columns(self) -> list[str]:
        """Canonical text of every hashed column, then client-side values, then raw values for display."""
        canonical = [self.canonical(pair) for pair in self.plan.sql_pairs]
        client = [self.dialect.client_value(self._shape(pair), pair.cls) for pair in self.plan.client_pairs]
        raw = [self.dialect.display_value(self._shape(pair)) for pair in self.plan.pairs]
        # Last: the key hash, so a differing row's bucket is known for the re-check.
        return canonical + client + raw + [self.key_hash]

    def fetch_sql(self, segments: list[Segment]) -> str:
        """The rows of the segments, as `fetch_columns`."""
        return (f"SELECT {', '.join(self.fetch_columns())} FROM {self.table_ref}"
                f"{self._filter([self.segments_condition(segments)])}")

    def stream_sql(self) -> str:
        """Canonical key, client-side values, raw key values and key hash of every row (the client-side
        column pass), in an order both engines agree on: the integer key (range mode), else the key hash."""
        columns = [self.canonical(pair) for pair in self.plan.key_pairs]
        columns += [self.dialect.client_value(self._shape(pair), pair.cls) for pair in self.plan.client_pairs]
        columns += [self.dialect.display_value(self._shape(pair)) for pair in self.plan.key_pairs]
        columns.append(self.key_hash)
        # By position: an output column may carry the key column's name. Range mode: the raw key (its index).
        raw_key = len(self.plan.key_pairs) + len(self.plan.client_pairs) + 1
        order = str(raw_key) if self.plan.mode == "range" else str(len(columns))
        return f"SELECT {', '.join(columns)} FROM {self.table_ref}{self._filter([])} ORDER BY {order}"


def checksum_aggregate(plan: TablePlan, source_dialect, target_dialect) -> str:
    """The aggregate of row hashes for one table, the same on both sides: SUM, or BIT_XOR when sound.

    XOR cancels a row that appears twice, so it is used only when the plan has a key (primary or
    unique on at least one side, whose rows are then a set: equal counts and XORs mean equal rows)
    and both engines offer it (PostgreSQL 14+, MySQL, MariaDB). It is cheaper than an exact SUM,
    which both engines compute in decimal arithmetic (about 0.5 us a row on each side). The hashes
    are the same numbers on both sides, native or canonical, so either aggregate compares them.
    """
    if plan.mode == "multiset":
        return "SUM"
    source, target = source_dialect.unique_rows_aggregate, target_dialect.unique_rows_aggregate
    return source if source == target else "SUM"


def read_grid(rows: list[tuple]) -> dict[int, Checksum]:
    """{segment number: Checksum} from a grid query's rows (SUM of no rows is NULL, BIT_XOR 0: both read 0)."""
    return {int(s): Checksum(int(count), int(total or 0)) for s, count, total in rows}
