"""The `revoke` freeze's record: which write privileges were taken from which application role on which table.

What a revoke takes is recorded before it runs (the cutover's progress, then the workflow's record per
side), so a crash recovery, a rollback or a later reverse grants back exactly that and nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SOURCE_SIDE, TARGET_SIDE = "source", "target"


@dataclass(slots=True, frozen=True)
class WriteGrant:
    """Write privileges one role (MariaDB: one account, `host` set) holds on one table."""

    table: str
    role: str
    privileges: tuple[str, ...]
    host: str | None = None
    grantable: tuple[str, ...] = field(default=())

    @property
    def account(self) -> str:
        """The role as the operator names it: `app` (PG) or `app@%` (MariaDB)."""
        return self.role if self.host is None else f"{self.role}@{self.host}"


def to_records(grants: list[WriteGrant]) -> list[dict[str, Any]]:
    """The JSON form kept in the workflow's record and journal."""
    return [asdict(grant) for grant in grants]


def from_records(records: list[dict[str, Any]] | None) -> list[WriteGrant]:
    """The grants back from their JSON form."""
    return [WriteGrant(r["table"], r["role"], tuple(r["privileges"]), r.get("host"), tuple(r.get("grantable", ())))
            for r in records or ()]


def merged(*groups: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Records of several revokes as one list (a privilege taken twice is given back once)."""
    held: dict[tuple[str, str, str | None], dict[str, set[str]]] = {}
    for grant in (g for group in groups for g in from_records(group)):
        entry = held.setdefault((grant.table, grant.role, grant.host), {"privileges": set(), "grantable": set()})
        entry["privileges"].update(grant.privileges)
        entry["grantable"].update(grant.grantable)
    return to_records([WriteGrant(table, role, tuple(sorted(e["privileges"])), host, tuple(sorted(e["grantable"])))
                       for (table, role, host), e in held.items()])


def describe(grants: list[WriteGrant]) -> str:
    """`INSERT, UPDATE on ledger from app; ...` for a journal note."""
    if not grants:
        return "no application role holds a write privilege on the tables"
    return "; ".join(f"{', '.join(g.privileges)} on {g.table} from {g.account}" for g in grants)


def parse_roles(text: str | None) -> tuple[str, ...] | None:
    """`--app-roles a,b` -> ('a', 'b'); None when not given (every role that holds a write privilege)."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())
