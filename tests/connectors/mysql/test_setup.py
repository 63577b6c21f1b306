"""Source checks: each unusable setting or missing privilege is a SourceError that names the fix."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from cdc.errors import SourceError
from connectors.mysql.dialect import connect
from connectors.mysql.setup import check_binlog_settings, check_privileges, check_source, parse_grants

GOOD = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}


@pytest.mark.parametrize("setting, value, expected", [
    ("log_bin", "OFF", "log_bin is OFF"),
    ("binlog_format", "MIXED", "binlog_format is 'MIXED'"),
    ("binlog_row_image", "MINIMAL", "binlog_row_image is 'MINIMAL'"),
    ("binlog_row_metadata", "MINIMAL", "binlog_row_metadata is 'MINIMAL'"),
])
def test_each_wrong_binlog_setting_names_itself_and_the_fix(setting, value, expected) -> None:
    with pytest.raises(SourceError) as caught:
        check_binlog_settings({**GOOD, setting: value}, mariadb=True)
    assert expected in str(caught.value)
    assert "restart" in str(caught.value) or "SET GLOBAL" in str(caught.value)


def test_server_without_row_metadata_needs_an_upgrade() -> None:
    settings = {k: v for k, v in GOOD.items() if k != "binlog_row_metadata"}
    with pytest.raises(SourceError, match="MariaDB 10.5"):
        check_binlog_settings(settings, mariadb=True)


def test_good_settings_pass() -> None:
    check_binlog_settings(GOOD, mariadb=True)


@pytest.mark.parametrize("grants, missing", [
    (["GRANT SELECT ON *.* TO `u`@`%`"], "GRANT REPLICATION SLAVE"),
    (["GRANT REPLICATION SLAVE ON *.* TO `u`@`%`", "GRANT SELECT ON `shop`.* TO `u`@`%`"], "REPLICATION CLIENT"),
    (["GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%`"], "GRANT SELECT ON `shop`.*"),
])
def test_missing_privileges_name_the_grant(grants, missing) -> None:
    with pytest.raises(SourceError) as caught:
        check_privileges(parse_grants(grants), "'u'@'%'", "shop")
    assert missing in str(caught.value)


@pytest.mark.parametrize("grants", [
    ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"],
    ["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`", "GRANT SELECT ON `shop`.* TO `u`@`%`"],
    ["GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%`", "GRANT SELECT (id) ON `shop`.`t` TO `u`@`%`"],
])
def test_enough_privileges_pass(grants) -> None:
    check_privileges(parse_grants(grants), "'u'@'%'", "shop")


def test_sandbox_server_passes_and_reports_itself(mysql_database: str) -> None:
    conn = connect(mysql_database)
    try:
        info = check_source(conn, database=mysql_database.rsplit("/", 1)[1], server_id=4_000_000_123)
    finally:
        conn.close()
    assert info.mariadb and info.collations[45] == "utf8mb4"


def test_user_without_replication_privileges_is_refused(mysql_database: str) -> None:
    user = f"cdc_noperm_{uuid.uuid4().hex[:8]}"
    database = mysql_database.rsplit("/", 1)[1]
    admin = connect(mysql_database)
    try:
        with admin.cursor() as cursor:
            for host in ("%", "localhost"):  # a fresh install's anonymous ''@localhost would shadow '%'
                cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw'")
                cursor.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'{host}'")
        parts = urlsplit(mysql_database)
        limited = connect(urlunsplit(parts._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port}")))
        try:
            with pytest.raises(SourceError, match="REPLICATION SLAVE"):
                check_source(limited, database=database)
        finally:
            limited.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%', '{user}'@'localhost'")
        admin.close()


class FakeCursor:
    """SHOW SLAVE HOSTS answers, one list per call."""

    def __init__(self, answers: list[list[tuple]]) -> None:
        self.answers = answers
        self.calls = 0

    def execute(self, sql: str) -> None:
        self.calls += 1

    def fetchall(self) -> list[tuple]:
        return self.answers[min(self.calls, len(self.answers)) - 1]


def test_a_just_stopped_capture_with_our_server_id_is_waited_for() -> None:
    from connectors.mysql.setup import check_server_id_free

    cursor = FakeCursor([[(77, "host", 0, 1)], []])
    check_server_id_free(cursor, 77, wait=3.0)
    assert cursor.calls == 2


def test_a_replica_that_keeps_our_server_id_is_refused() -> None:
    from connectors.mysql.setup import check_server_id_free

    with pytest.raises(SourceError, match="server_id 77"):
        check_server_id_free(FakeCursor([[(77, "replica1", 0, 1)]]), 77, wait=0.6)


def test_privileges_granted_through_a_default_role_are_counted(mysql_database: str) -> None:
    """GRANT role TO user + SET DEFAULT ROLE: the role's privileges satisfy the capture's checks."""
    suffix = uuid.uuid4().hex[:8]
    user, role = f"cdc_byrole_{suffix}", f"cdc_capture_{suffix}"
    database = mysql_database.rsplit("/", 1)[1]
    parts = urlsplit(mysql_database)
    admin = connect(mysql_database)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {role}")
            cursor.execute(f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {role}")
            cursor.execute(f"GRANT SELECT ON `{database}`.* TO {role}")
            cursor.execute(f"CREATE USER '{user}'@'{parts.hostname}' IDENTIFIED BY 'pw'")
            cursor.execute(f"GRANT {role} TO '{user}'@'{parts.hostname}'")
            cursor.execute(f"SET DEFAULT ROLE {role} FOR '{user}'@'{parts.hostname}'")
        limited = connect(urlunsplit(parts._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port}")))
        try:
            check_source(limited, database=database)  # raised "lacks the REPLICATION SLAVE privilege" before
        finally:
            limited.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'{parts.hostname}'")
            cursor.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_role_names_are_read_from_grant_lines_and_current_role():
    from connectors.mysql.setup import granted_roles, parse_roles

    assert granted_roles(["GRANT `cdc_capture` TO `u`@`%`", "GRANT SELECT ON `db`.* TO `u`@`%`",
                          "GRANT `r1`@`%`,`r2`@`%` TO `u`@`%`"]) == ["`cdc_capture`", "`r1`@`%`", "`r2`@`%`"]
    assert parse_roles("NONE") == [] and parse_roles("") == [] and parse_roles("cdc_role") == ["`cdc_role`"]
