"""What apply recorded about tables in the target (`cdc_table_state`): the tables it parked."""

from __future__ import annotations

TABLE_STATE = "cdc_table_state"


def parked_tables(dialect, conn) -> dict[str, str]:
    """Source table (`namespace.table`) -> reason, for the tables `--on-error skip-table` parked; {} without the table."""
    if TABLE_STATE not in dialect.list_tables(conn):
        return {}
    ref = dialect.table_ref(TABLE_STATE)
    return {str(table): str(reason) for table, reason in
            dialect.execute(conn, f"SELECT table_name, parked FROM {ref} WHERE parked IS NOT NULL")}


def parked_note(name: str, parked: dict[str, str]) -> str | None:
    """The report note for compared table `name` if apply parked it (`namespace.table` or bare), else None."""
    for table, reason in parked.items():
        # The namespace ends at the first dot: the table part of `shop.a.b` is `a.b`.
        if table == name or table.partition(".")[2] == name:
            return f"parked by apply (--on-error skip-table) since: {reason}; its changes are not applied"
    return None
