"""Which tables a MySQL/MariaDB DDL statement touches, read from its text (no full SQL parser).

The binlog's QUERY event carries a DDL as text. The schema-change record names the table it changed
(`source.table`, as Debezium does) and, for CREATE and ALTER, describes the table after it
(`tableChanges`). `ddl_target` finds the statement kind and the tables from the leading keywords and
the identifiers after them: plain or backquoted names (with doubled backquotes), optionally
`db.`-qualified, after comments. Anything it does not recognise gives None: the record then names no
table, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `name`, `na``me`, name, "name" (ANSI_QUOTES); optionally db-qualified
_PART = r"(?:`(?:[^`]|``)+`|\"(?:[^\"]|\"\")+\"|[A-Za-z0-9_$\u0080-\uffff]+)"
_NAME = rf"({_PART})(?:\s*\.\s*({_PART}))?"
_IF_EXISTS = r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
_STATEMENTS = [
    ("CREATE", re.compile(rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+{_IF_EXISTS}{_NAME}", re.I)),
    ("ALTER", re.compile(rf"ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+{_IF_EXISTS}{_NAME}", re.I)),
    ("ALTER", re.compile(rf"(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)*"
                         rf"INDEX\s+{_IF_EXISTS}{_PART}\s+(?:USING\s+\w+\s+)?ON\s+{_NAME}", re.I)),
    ("TRUNCATE", re.compile(rf"TRUNCATE\s+(?:TABLE\s+)?{_NAME}", re.I)),
]
_DROP = re.compile(r"DROP\s+(?:TEMPORARY\s+)?TABLES?\s+" + _IF_EXISTS, re.I)
_RENAME = re.compile(r"RENAME\s+TABLES?\s+", re.I)
_DROP_DATABASE = re.compile(rf"DROP\s+(?:DATABASE|SCHEMA)\s+{_IF_EXISTS}({_PART})", re.I)
_LIST_ITEM = re.compile(rf"\s*{_NAME}\s*(?:,|$|\s+TO\s+|\s+(?:WAIT|NOWAIT|RESTRICT|CASCADE)\b)", re.I)
_RENAME_PAIR = re.compile(rf"\s*{_NAME}\s+TO\s+{_NAME}\s*(?:,|$)", re.I)
# a RENAME clause of ALTER TABLE: at the start of the clause list or after a comma
_ALTER_RENAME = re.compile(rf"(?:^|,)\s*RENAME\s+(?:TO\s+|AS\s+)?(?!(?:COLUMN|INDEX|KEY|CONSTRAINT)\b){_NAME}",
                           re.I)


@dataclass(frozen=True, slots=True)
class DdlTarget:
    """A DDL's kind (CREATE, ALTER, DROP, RENAME, TRUNCATE, DROP DATABASE) and the (db, table) names
    it touches (for DROP DATABASE: (db, "") only; for a rename: old and new names)."""

    kind: str
    tables: tuple[tuple[str, str], ...]

    def touches(self, database: str, table: str) -> bool:
        """Whether this statement may change `database.table`'s definition."""
        if self.kind == "DROP DATABASE":
            return any(db == database for db, _ in self.tables)
        return (database, table) in self.tables


def _unquote(part: str) -> str:
    if part.startswith("`"):
        return part[1:-1].replace("``", "`")
    if part.startswith('"'):
        return part[1:-1].replace('""', '"')
    return part


def _qualified(first: str, second: str | None, default_db: str) -> tuple[str, str]:
    return (_unquote(first), _unquote(second)) if second else (default_db, _unquote(first))


def strip_comments(statement: str) -> str:
    """The statement without comments (outside quotes); executable comments (`/*!50100 ... */`,
    `/*M! ... */`) keep their body, as the server runs it."""
    out: list[str] = []
    i, n = 0, len(statement)
    quote = ""
    executable = 0  # open executable comments, whose closing */ is dropped
    while i < n:
        c = statement[i]
        if quote:
            out.append(c)
            if c == quote:
                if i + 1 < n and statement[i + 1] == quote:  # a doubled quote inside
                    out.append(quote)
                    i += 1
                else:
                    quote = ""
            elif c == "\\" and quote != "`" and i + 1 < n:
                out.append(statement[i + 1])
                i += 1
            i += 1
            continue
        if c in "'\"`":
            quote = c
            out.append(c)
        elif statement.startswith("/*", i):
            body = re.match(r"/\*(?:!|M!)\d*", statement[i:])
            if body:
                executable += 1
                i += body.end()
                out.append(" ")
                continue
            end = statement.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
            continue
        elif executable and statement.startswith("*/", i):
            executable -= 1
            i += 2
            out.append(" ")
            continue
        elif c == "#" or (statement.startswith("--", i) and (i + 2 >= n or statement[i + 2] in " \t\n")):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
            out.append(" ")
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def ddl_target(statement: str, default_db: str) -> DdlTarget | None:
    """The kind and tables of a DDL statement, or None when it is not one this recognises."""
    text = strip_comments(statement)
    for kind, pattern in _STATEMENTS:
        match = pattern.match(text)
        if match:
            tables = [_qualified(match.group(1), match.group(2), default_db)]
            if kind == "ALTER":
                rest = text[match.end():].lstrip()
                renamed = _ALTER_RENAME.search(rest)
                if renamed:  # ALTER TABLE a RENAME TO b: both names change
                    tables.append(_qualified(renamed.group(1), renamed.group(2), default_db))
                    kind = "RENAME"
            return DdlTarget(kind, tuple(tables))
    match = _DROP_DATABASE.match(text)
    if match:
        return DdlTarget("DROP DATABASE", ((_unquote(match.group(1)), ""),))
    match = _DROP.match(text)
    if match:
        tables = _names(_LIST_ITEM, text[match.end():], default_db, 1)
        return DdlTarget("DROP", tables) if tables else None
    match = _RENAME.match(text)
    if match:
        tables = _names(_RENAME_PAIR, text[match.end():], default_db, 2)
        return DdlTarget("RENAME", tables) if tables else None
    return None


def _names(item: re.Pattern, text: str, default_db: str, per_item: int) -> tuple[tuple[str, str], ...]:
    """Comma-separated names (`per_item` names per item) from the start of `text`."""
    names: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = item.match(text, position)
        if not match:
            break
        groups = match.groups()
        for n in range(per_item):
            names.append(_qualified(groups[2 * n], groups[2 * n + 1], default_db))
        if match.end() == position:
            break
        position = match.end()
        if not text[match.start():match.end()].rstrip().endswith(","):
            break
    return tuple(names)
