"""Pre-flight checks name the cause and the fix; set-up creates the publication."""

from __future__ import annotations

import uuid

import pytest

from cdc.errors import SourceError, UnsupportedError
from connectors.postgres.dialect import connect
from connectors.postgres.replication import ReplicationConnection
from connectors.postgres.setup import (
    check_replication_role,
    check_select_privilege,
    check_server_version,
    check_slot,
    check_wal_level,
    ensure_publication,
    prepare_source,
    resolve_tables,
)
from cdc.urls import parse_url


def test_wal_level_replica_says_how_to_fix():
    with pytest.raises(SourceError) as raised:
        check_wal_level("replica")
    assert str(raised.value) == "wal_level is 'replica'; set wal_level=logical and restart"
    check_wal_level("logical")


def test_server_older_than_10_is_refused_naming_the_minimum():
    with pytest.raises(UnsupportedError, match=r"PostgreSQL 9.6 is too old: capture needs PostgreSQL 10 or newer"):
        check_server_version(90624)
    check_server_version(100000)


def _user_url(url: str, user: str) -> str:
    parsed = parse_url(url)
    return f"postgresql://{user}:pw@{parsed.host}:{parsed.port}/{parsed.database}"


@pytest.fixture
def plain_user(pg_database):
    name = "u_" + uuid.uuid4().hex[:10]
    with connect(pg_database) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
    yield name
    with connect(pg_database) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def test_user_without_replication_is_told_to_alter_role(pg_database, plain_user):
    with connect(_user_url(pg_database, plain_user)) as conn:
        with pytest.raises(SourceError, match=rf"user '{plain_user}' lacks the REPLICATION attribute; "
                                              rf'run ALTER ROLE "{plain_user}" REPLICATION'):
            check_replication_role(conn)


def test_user_without_select_is_told_which_grant(pg_database, plain_user):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE secret (id int PRIMARY KEY)")
    with connect(_user_url(pg_database, plain_user)) as conn:
        with pytest.raises(SourceError, match=r"lacks SELECT on public.secret; run GRANT SELECT ON \"public\".\"secret\""):
            check_select_privilege(conn, [("public", "secret")])


def test_missing_listed_table(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        assert resolve_tables(conn, ["public.orders"], None) == [("public", "orders")]
        with pytest.raises(SourceError, match=r"table \"public\"\.\"nope\" \(from --tables 'public\.nope'\)"
                                              r" does not exist .*; create it, or fix the entry"):
            resolve_tables(conn, ["public.orders", "public.nope"], None)


def test_include_regex_selects_tables(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE order_items (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
        assert resolve_tables(conn, None, r"public\.order.*") == [("public", "order_items"), ("public", "orders")]


def test_slot_active_elsewhere(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        ensure_publication(conn, "p", [("public", "t")])
        busy = "busy_" + uuid.uuid4().hex[:12]
        holder = ReplicationConnection(pg_database)
        try:
            holder.create_slot(busy, export_snapshot=False)
            holder.start_replication(busy, "p", 0)
            with pytest.raises(SourceError, match=rf"replication slot '{busy}' is active \(in use by server process \d+\); "
                                                  r"stop the other consumer"):
                check_slot(conn, busy, wait=0.5)
        finally:
            holder.close()
        assert check_slot(conn, busy, wait=10).name == busy


def test_publication_created_for_listed_tables_or_all(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE b (id int PRIMARY KEY)")
        slot_name = "s_" + uuid.uuid4().hex[:12]
        captured, slot = prepare_source(conn, slot=slot_name, publication="only_a", tables=["public.a"], include=None)
        assert captured == [("public", "a")] and slot is None
        assert conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'only_a'").fetchall() == [("a",)]
        ensure_publication(conn, "only_a", [("public", "a"), ("public", "b")])
        assert len(conn.execute("SELECT 1 FROM pg_publication_tables WHERE pubname = 'only_a'").fetchall()) == 2
        prepare_source(conn, slot=slot_name, publication="everything", tables=None, include=None)
        assert conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = 'everything'").fetchone() == (True,)


def test_keyless_table_with_default_identity_is_refused_naming_it_and_the_fixes(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE history (who text, amount int)")
        slot_name = "s_" + uuid.uuid4().hex[:12]
        with pytest.raises(SourceError) as raised:
            prepare_source(conn, slot=slot_name, publication="p_refused", tables=["public.orders", "public.history"],
                           include=None)
        message = str(raised.value)
        assert "public.history" in message and "public.orders" not in message
        assert 'ALTER TABLE "public"."history" REPLICA IDENTITY FULL' in message
        assert "leave them out" in message and "--keyless insert-only" in message
        # nothing published: the application's writes are untouched
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'p_refused'").fetchone() is None
        conn.execute("UPDATE history SET amount = 1")
        # with the fix, the table is published for updates too
        conn.execute("ALTER TABLE history REPLICA IDENTITY FULL")
        prepare_source(conn, slot=slot_name, publication="p_full", tables=["public.orders", "public.history"],
                       include=None)
        assert sorted(conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'p_full'").fetchall()) \
            == [("history",), ("orders",)]


def test_every_table_is_checked_when_capturing_all_tables(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE log (line text)")
        with pytest.raises(SourceError, match=r"public\.log"):
            prepare_source(conn, slot="s_" + uuid.uuid4().hex[:12], publication="p_all", tables=None, include=None)
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'p_all'").fetchone() is None


def test_keyed_table_with_replica_identity_nothing_is_refused(pg_database):
    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("ALTER TABLE orders REPLICA IDENTITY NOTHING")
        with pytest.raises(SourceError, match=r"public\.orders have REPLICA IDENTITY NOTHING.*REPLICA IDENTITY DEFAULT"):
            prepare_source(conn, slot="s_" + uuid.uuid4().hex[:12], publication="p_nothing",
                           tables=["public.orders"], include=None, keyless="insert-only")


def test_keyless_insert_only_publishes_inserts_in_a_second_publication_and_the_source_keeps_its_updates(pg_database):
    from connectors.postgres.setup import insert_only_name, published
    from connectors.postgres.status import source_status

    with connect(pg_database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE history (who text, amount int)")
        conn.execute("INSERT INTO history VALUES ('ann', 1)")
        slot_name = "s_" + uuid.uuid4().hex[:12]
        tables = ["public.orders", "public.history"]
        prepare_source(conn, slot=slot_name, publication=slot_name, tables=tables, include=None, keyless="insert-only")
        second = insert_only_name(slot_name)
        assert published(conn, slot_name) == (slot_name, second)
        assert conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", (slot_name,)).fetchall() \
            == [("orders",)]
        assert conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", (second,)).fetchall() \
            == [("history",)]
        assert conn.execute("SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = %s",
                            (second,)).fetchone() == (True, False, False)
        # the server keeps accepting the application's UPDATE and DELETE on the keyless table
        conn.execute("UPDATE history SET amount = 2")
        conn.execute("DELETE FROM history")
        # a start again (the table got its identity since) moves it back to the main publication
        ReplicationConnection(parse_url(pg_database)).create_slot(slot_name, export_snapshot=False)
        assert [row["insert_only_tables"] for row in source_status(pg_database) if row["slot"] == slot_name] \
            == ["public.history"]
        conn.execute("ALTER TABLE history REPLICA IDENTITY FULL")
        prepare_source(conn, slot=slot_name, publication=slot_name, tables=tables, include=None, keyless="insert-only")
        assert published(conn, slot_name) == (slot_name,)
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))


def test_capture_without_a_table_list_is_refused_for_a_non_superuser(pg_database, plain_user):
    """Every table means FOR ALL TABLES, which only a superuser may create: told up front, with --tables."""
    from connectors.postgres.setup import ensure_publication

    with connect(pg_database) as conn:
        conn.execute(f"ALTER ROLE {plain_user} REPLICATION")
    with connect(_user_url(pg_database, plain_user)) as conn:
        with pytest.raises(SourceError, match="FOR ALL TABLES.*only a superuser.*pass --tables"):
            ensure_publication(conn, "cdc_all", [])
