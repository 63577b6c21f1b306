"""The apply worker needs only the grants docs/security.md lists (## Grants): a target user with exactly
those applies inserts, updates, deletes, a truncate and creates its tables; without one of them it stops.
(`cdc verify`'s SELECT-only users: tests/verify/test_command.py.)"""

from __future__ import annotations

import random
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from cdc.apply.worker import ApplyOptions, ApplyWorker
from cdc.errors import TargetError
from tests.apply.kafka_stream import FAST_GROUP, KafkaStream, unique_prefix
from tests.apply.scenario import execute, rows, simple_table

# docs/security.md, ## Grants: {database} and {user} filled in
APPLY_GRANTS = {
    "postgresql": ["GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {database} TO {user}",
                   "GRANT USAGE, CREATE ON SCHEMA public TO {user}"],
    "mysql": ["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER ON `{database}`.* TO {user}"],
}


def _login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def _apply_user(engine: str, url: str, grants: list[str]) -> tuple[str, str]:
    """A fresh target user with only `grants`; (its URL, its account name for cleanup)."""
    name = f"cdc_apply_{uuid.uuid4().hex[:8]}"
    database = urlsplit(url).path.strip("/")
    account = name if engine == "postgresql" else f"'{name}'@'{urlsplit(url).hostname}'"
    create = f"CREATE ROLE {name} LOGIN PASSWORD 'pw'" if engine == "postgresql" else f"CREATE USER {account} IDENTIFIED BY 'pw'"
    for statement in [create, *(grant.format(database=database, user=account) for grant in grants)]:
        execute(url, statement)
    return _login(url, name, "pw"), account


def _worker(kafka: str, prefix: str, target: str) -> ApplyWorker:
    # a group per target user: the refused worker's membership must not hold up the next one's assignment
    group = f"grants-{urlsplit(target).username}"
    worker = ApplyWorker(ApplyOptions(kafka=kafka, prefix=prefix, target=target, create_tables=True, batch_size=500,
                                      linger_ms=50, idle_exit_s=2.0, group=group, **FAST_GROUP))
    worker.run()
    return worker


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_apply_runs_with_exactly_the_documented_grants(engine, kafka_bootstrap, request):
    admin = request.getfixturevalue("pg_database" if engine == "postgresql" else "mysql_database")
    prefix = unique_prefix("grants")
    # one partition: the stream truncates, and a truncate (no key) is ordered only within its partition
    # (docs/architecture.md, "Order")
    stream = KafkaStream(kafka_bootstrap, prefix, simple_table("postgresql"), partitions=1)
    rng = random.Random(13)
    stream.random_load(400, 60, rng)
    stream.producer.flush(30)

    missing_one, _ = _apply_user(engine, admin, APPLY_GRANTS[engine][:-1] if engine == "postgresql" else [
        APPLY_GRANTS["mysql"][0].replace(", CREATE", "")])
    with pytest.raises(TargetError, match=r"(?s)may not create or change tables.*denied.*docs/security\.md") as refused:
        _worker(kafka_bootstrap, prefix, missing_one)
    assert ":pw@" not in str(refused.value)

    target, _ = _apply_user(engine, admin, APPLY_GRANTS[engine])
    _worker(kafka_bootstrap, prefix, target)
    table = "public.items" if engine == "postgresql" else f"`{urlsplit(admin).path.strip('/')}`.items"
    assert rows(admin, f"SELECT id, name, qty, note FROM {table} ORDER BY id") == stream.rows()
    stream.truncate()  # PostgreSQL: TRUNCATE, by the table's owner; MySQL: DELETE (no DROP privilege needed)
    stream.random_load(100, 30, rng)
    stream.producer.flush(30)
    _worker(kafka_bootstrap, prefix, target)
    assert rows(admin, f"SELECT id, name, qty, note FROM {table} ORDER BY id") == stream.rows()
    stream.close()
