"""MySQL/MariaDB side of `cdc verify`: catalog reading and the SQL that computes canonical row text.

The canonical forms are specified in `cdc.verify.canonical`; this module spells them in MySQL.
Sessions run with `time_zone = '+00:00'` (see `dialect.connection_kwargs`), so TIMESTAMP columns
read as UTC; text is converted to utf8mb4 before hashing whatever the column's character set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pymysql.cursors

from cdc.errors import VerifyError
from cdc.urls import DatabaseUrl
from cdc.verify.canonical import FIXED_FLOAT_RANGE
from cdc.verify.checksum import EngineDialect
from cdc.verify.plan import ColumnShape, TableShape
from connectors.mysql.dialect import connect, quote_ident

ENGINE = "mysql"
UTF8_CHARSETS = frozenset({"utf8mb4", "utf8mb3", "utf8", "ascii"})

KIND_OF_TYPE = {
    "tinyint": "int", "smallint": "int", "mediumint": "int", "int": "int", "integer": "int", "bigint": "int",
    "decimal": "decimal", "numeric": "decimal", "float": "float", "double": "float", "real": "float",
    "char": "string", "varchar": "string", "tinytext": "string", "text": "string", "mediumtext": "string",
    "longtext": "string", "enum": "enum", "set": "set",
    "binary": "bytes", "varbinary": "bytes", "tinyblob": "bytes", "blob": "bytes", "mediumblob": "bytes",
    "longblob": "bytes", "bit": "bits", "date": "date", "time": "time", "datetime": "timestamp",
    "timestamp": "timestamptz", "year": "year", "json": "json", "uuid": "uuid", "inet4": "inet", "inet6": "inet",
    "geometry": "geometry", "point": "geometry", "linestring": "geometry", "polygon": "geometry",
}

COLUMNS_SQL = """
SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, NUMERIC_SCALE, IS_NULLABLE, CHARACTER_SET_NAME
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION
"""

KEYS_SQL = """
SELECT s.INDEX_NAME, s.COLUMN_NAME, c.IS_NULLABLE, s.SUB_PART
FROM information_schema.STATISTICS s
JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s AND s.NON_UNIQUE = 0
ORDER BY s.INDEX_NAME = 'PRIMARY' DESC, s.INDEX_NAME, s.SEQ_IN_INDEX
"""

# MariaDB's JSON is LONGTEXT with a json_valid() check constraint.
JSON_CHECKS_SQL = """
SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s
"""


class MysqlChecksumDialect(EngineDialect):
    """Connections, catalog and canonical-text SQL for one MySQL/MariaDB database."""

    engine = ENGINE
    # BIT_XOR is integer arithmetic; SUM of BIGINT UNSIGNED is DECIMAL arithmetic (~12% of a grid query).
    unique_rows_aggregate = "BIT_XOR"

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.namespace = url.database
        self._mariadb: bool | None = None

    # connections -------------------------------------------------------------------------------
    def connect(self):
        conn = connect(self.url, error=VerifyError)
        with conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            self._mariadb = "mariadb" in cursor.fetchone()[0].lower()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def stream(self, conn, sql: str, params: tuple = (), batch: int = 5000) -> Iterator[tuple]:
        """Rows of a large result without holding them all (unbuffered cursor)."""
        with conn.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(sql, params or None)
            while True:
                rows = cursor.fetchmany(batch)
                if not rows:
                    break
                yield from rows

    # catalog -----------------------------------------------------------------------------------
    def list_tables(self, conn) -> list[str]:
        rows = self.execute(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
            "ORDER BY 1",
            (self.namespace,),
        )
        return [row[0] for row in rows]

    def read_table(self, conn, table: str) -> TableShape | None:
        rows = self.execute(conn, COLUMNS_SQL, (self.namespace, table))
        if not rows:
            return None
        json_columns = set()
        for (clause,) in self.execute(conn, JSON_CHECKS_SQL, (self.namespace, table)):
            json_columns.update(re.findall(r"json_valid\(`((?:[^`]|``)+)`\)", clause or "", flags=re.I))
        columns = []
        for name, column_type, data_type, scale, nullable, charset in rows:
            data_type = data_type.lower()
            kind = KIND_OF_TYPE.get(data_type, "text")
            if name in json_columns and kind == "string":
                kind = "json"
            length = None
            if data_type == "float":
                length = 4
            elif data_type in ("double", "real"):
                length = 8
            elif data_type == "bit":
                match = re.search(r"\((\d+)\)", column_type)
                length = int(match.group(1)) if match else 1
            columns.append(ColumnShape(name, kind, column_type, scale=scale, length=length, nullable=nullable == "YES",
                                       charset=charset))
        indexes: dict[str, list[tuple[str, bool, object]]] = {}
        for index, column, nullable, sub_part in self.execute(conn, KEYS_SQL, (self.namespace, table)):
            indexes.setdefault(index, []).append((column, nullable == "YES", sub_part))
        primary = tuple(column for column, _, _ in indexes.pop("PRIMARY", []))
        unique: tuple[str, ...] = ()
        for parts in indexes.values():
            if all(not nullable and sub_part is None for _, nullable, sub_part in parts):
                unique = tuple(column for column, _, _ in parts)
                break
        return TableShape(table, tuple(columns), primary, unique)

    def estimate_rows(self, conn, table: str) -> int:
        rows = self.execute(
            conn, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (self.namespace, table),
        )
        return int(rows[0][0] or 0) if rows else 0

    # canonical text ----------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return quote_ident(name)

    def canonical(self, column: ColumnShape, cls: str) -> str:
        """SQL for the canonical text of one column (NULL stays NULL)."""
        c = quote_ident(column.name)
        kind = column.kind
        if cls == "number":
            if kind == "decimal" and column.scale:
                return f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST({c} AS CHAR)))"
            return f"CAST({c} AS CHAR)"
        if cls == "fixed":
            return f"CAST({c} AS CHAR)"
        if cls == "float_exact":
            return self.float_exact(column)
        if cls == "float":
            # A FLOAT prints with 6 digits; as DOUBLE it prints every bit of its value.
            return f"CAST(CAST({c} AS DOUBLE) AS CHAR)" if column.length == 4 else f"CAST({c} AS CHAR)"
        if cls == "timestamp":
            if kind in ("timestamp", "timestamptz"):
                return f"CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c}) AS CHAR)"
            return f"CONVERT({c} USING utf8mb4)"
        if cls == "time":
            if kind == "time":
                return f"CAST(ROUND(TIME_TO_SEC({c}) * 1000000) AS CHAR)"
            return f"CONVERT({c} USING utf8mb4)"
        if cls == "date":
            return f"CAST({c} AS CHAR)" if kind == "date" else f"CAST(CAST({c} AS DATE) AS CHAR)"
        if cls == "bytes":
            return f"LOWER(HEX({c}))"
        if cls == "bits":
            if kind == "bits":
                return f"LPAD(BIN({c}), {int(column.length or 1)}, '0')"
            return f"CONVERT({c} USING utf8mb4)"
        if cls == "uuid":
            return f"LOWER(CONVERT({c} USING utf8mb4))"
        if cls == "json":
            if self._mariadb:
                return f"JSON_NORMALIZE({c})"
            return f"CAST(CAST({c} AS JSON) AS CHAR)"
        if kind == "geometry":
            return f"ST_AsText({c})"
        if kind in ("int", "decimal", "float", "year", "date", "time", "timestamp", "timestamptz"):
            return f"CAST({c} AS CHAR)"
        if (column.charset or "").lower() in UTF8_CHARSETS:
            return c  # already UTF-8 text: SHA2 sees the same bytes without a conversion
        return f"CONVERT({c} USING utf8mb4)"

    def float_exact(self, column: ColumnShape) -> str:
        """`canonical.canonical_float_exact`: in range, the server's own shortest text (a FLOAT widened to
        DOUBLE first), which is PostgreSQL's there; elsewhere `b` and the bits (`float_bits`)."""
        c = quote_ident(column.name)
        x = f"CAST({c} AS DOUBLE)" if column.length == 4 else c
        low, high = FIXED_FLOAT_RANGE
        return (f"IF(ABS({x}) >= {low!r} AND ABS({x}) < {high!r}, CAST({x} AS CHAR), "
                f"CONCAT('b', {self.float_bits(column)}))")

    @staticmethod
    def float_bits(column: ColumnShape) -> str:
        """The IEEE bits of abs(x) as an integer, negated when x < 0 (`canonical.canonical_float_exact` outside its range).

        MariaDB has no function that exposes a double's bits, so they are computed: with e the binary
        exponent (FLOOR(LOG2(a)), corrected by one where LOG2 rounds across a power of two, and at
        least -1022 so subnormals take the exponent field 0), `a * 2^-e` is the mantissa in [1, 2)
        (or [0, 1) for a subnormal) and `a * 2^-e * 2^52` its exact 53-bit integer. Scaling by a power
        of two is exact in binary floating point, so no step rounds; tests/verify/test_float_json.py
        holds the result to Python's `struct` bit for bit on powers of two, their neighbours,
        subnormals and random doubles.
        """
        c = quote_ident(column.name)
        a = f"ABS({c})"
        g = f"GREATEST(FLOOR(LOG2({a})), -1022)"
        m = f"({a} * POW(2, -{g}))"
        fast = f"((({g} + 1022) << 52) + CAST({m} * 4503599627370496 AS UNSIGNED))"
        e = f"GREATEST({g} + ({m} >= 2) - ({m} < 1), -1022)"
        slow = f"((({e} + 1022) << 52) + CAST({a} * POW(2, -{e}) * 4503599627370496 AS UNSIGNED))"
        # MariaDB evaluates each spelled-out copy of LOG2/POW, so the test reads m once: m in [1, 2) also
        # means `a` is normal (a subnormal's g is clamped to -1022, so its m is below 1).
        magnitude = f"(CASE WHEN FLOOR({m}) = 1 THEN {fast} ELSE {slow} END)"
        return f"IF({c} = 0, 0, IF({c} < 0, -{magnitude}, {magnitude}))"

    def json_text_forms(self, column: ColumnShape) -> list[str]:
        """The texts of a JSON column that another engine's text may equal (class json_text): as stored,
        with PostgreSQL jsonb's spacing (MariaDB JSON_LOOSE), compact."""
        c = quote_ident(column.name)
        # Already UTF-8 (MariaDB's JSON is utf8mb4 LONGTEXT): the stored bytes as they are, no conversion copy.
        forms = [c if (column.charset or "").lower() in UTF8_CHARSETS else f"CONVERT({c} USING utf8mb4)"]
        if self._mariadb:
            forms.append(f"JSON_LOOSE({c})")
        forms.append(f"JSON_COMPACT({c})")
        return forms

    def client_value(self, column: ColumnShape, cls: str) -> str:
        c = quote_ident(column.name)
        if cls == "json":
            return f"CONVERT({c} USING utf8mb4)"
        return c

    def display_value(self, column: ColumnShape) -> str:
        """SQL for a column's value as shown in a diff (pymysql reads every type)."""
        if column.kind == "geometry":
            return f"ST_AsText({quote_ident(column.name)})"
        return quote_ident(column.name)

    def token(self, canonical_sql: str, cls: str, length_prefixed: bool) -> str:
        if length_prefixed:
            return f"COALESCE(CONCAT(LENGTH({canonical_sql}), ':', {canonical_sql}), 'N')"
        return f"COALESCE({canonical_sql}, 'N')"

    def hash_token(self, column: ColumnShape, cls: str) -> str | None:
        """A cheaper spelling of `token(canonical(column, cls))` for the row hash, or None.

        CONCAT_WS turns an integer or DECIMAL argument into the same text as `CAST(.. AS CHAR)`, so
        the per-row CAST (a string allocation) is skipped for integer, fixed-scale and whole-number
        columns and for the microsecond count of a timestamp; a NOT NULL column needs no COALESCE.
        The text hashed is byte-for-byte the same (tests/verify/test_parity.py checks it).
        """
        c = quote_ident(column.name)
        kind = column.kind
        if (cls == "number" and (kind in ("int", "year", "boolean") or (kind == "decimal" and not column.scale))) or (
                cls == "fixed" and kind == "decimal"):
            value = c  # canonical() would be CAST(c AS CHAR): the same text
        elif cls == "timestamp" and kind in ("timestamp", "timestamptz"):
            value = f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c})"
        elif cls == "float_exact":
            value = self.float_exact(column)
        else:
            return None
        if value == c and not column.nullable:
            return c
        return f"COALESCE({value}, 'N')"

    def concat(self, parts: list[str]) -> str:
        return f"CONCAT_WS('|', {', '.join(parts)})" if parts else "''"

    def hash60(self, text_sql: str) -> str:
        # SHA2 rather than MD5: MariaDB's MD5() costs ~0.45 us a call, SHA2(.., 256) ~0.1 us.
        return f"CAST(CONV(LEFT(SHA2({text_sql}, 256), 15), 16, 10) AS UNSIGNED)"

    def native_row_hash(self, conn, columns: list[ColumnShape], table: str | None = None) -> str | None:
        """A faster row hash for MySQL<->MySQL with identical column types: SHA2 over the values as stored.

        With the same declared types on both sides, the server's own text of a value is already the
        same on both sides, so the per-type canonical conversions are skipped. FLOAT is widened to DOUBLE
        (as FLOAT it prints only 6 digits) and BIT keeps its canonical form (it is binary); JSON is hashed
        as stored (see below).
        """
        if not columns:
            return None
        tokens = []
        for column in columns:
            c = quote_ident(column.name)
            if column.kind == "json":
                # The stored text, not JSON_NORMALIZE (which parses every document, twice a row: length and
                # value): equal texts are equal documents, and rows whose texts differ are fetched and
                # compared on JSON_NORMALIZE, so a spelling difference is never reported.
                tokens += self._length_and_value(c, column.nullable)
            elif column.kind == "float":
                # One argument, no length: a double's text (digits, '.', 'e', '-') holds no separator and
                # is never 'N', and CONCAT_WS prints it as CAST(.. AS CHAR) does, every bit kept; computing
                # it once instead of twice (length, value) was a third of a 13-column grid query.
                value = f"CAST({c} AS DOUBLE)" if column.length == 4 else c
                tokens.append(f"COALESCE({value}, 'N')" if column.nullable else value)
            elif column.kind == "bits":
                tokens += self._length_and_value(self.canonical(column, "bits"), True)
            elif column.kind in ("int", "decimal", "year", "date", "time", "timestamp", "timestamptz"):
                tokens.append(c if not column.nullable else f"COALESCE({c}, 'N')")
            else:
                tokens += self._length_and_value(c, column.nullable)
        return self.hash60(self.concat(tokens))

    @staticmethod
    def _length_and_value(value: str, nullable: bool) -> list[str]:
        """A text value as two CONCAT_WS arguments: its length (`N` for NULL), then the value itself.

        CONCAT_WS skips a NULL argument, so NULL is `N`, '' is `0|` and 'x' is `1|x`: the length says
        where the value ends, whatever it holds. Cheaper than one nested CONCAT(length, ':', value).
        """
        length = f"IFNULL(LENGTH({value}), 'N')" if nullable else f"LENGTH({value})"
        return [length, value]

    def int_div(self, a: str, b: int) -> str:
        return f"(({a}) DIV {int(b)})"

    def int_literal(self, value: int) -> str:
        return f"({int(value)})"

    # replication position, for --wait-for-lag --------------------------------------------------
    def current_position(self, conn) -> str:
        rows = self.execute(conn, "SELECT @@gtid_binlog_pos") if self._mariadb else self.execute(
            conn, "SELECT @@gtid_executed")
        return str(rows[0][0]) if rows else ""


ChecksumDialect = MysqlChecksumDialect  # the name `cdc.registry` looks up
