"""`cdc status` on the sandbox: PG slot lag, MariaDB binlog position, apply offsets vs Kafka."""

import orjson
from click.testing import CliRunner

from cdc.cli import cli
from cdc.commands.status import apply_lag
from connectors.postgres.dialect import connect


def test_apply_lag_counts_events_behind():
    rows = apply_lag([("g", "shop.public.t", 0, 5), ("g", "shop.public.t", 1, 9)], {("shop.public.t", 0): 12})
    assert rows[0]["behind"] == 7 and rows[1]["behind"] is None


def test_status_reports_pg_slot_and_mariadb_position(pg_database, mysql_database):
    with connect(pg_database) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('status_slot', 'pgoutput')")
        conn.execute("CREATE TABLE t (id int primary key)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
    result = CliRunner().invoke(cli, ["status", "--source", pg_database, "--source", mysql_database,
                                      "--target", pg_database, "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    pg_rows, mysql_rows = report["sources"].values()
    assert pg_rows[0]["slot"] == "status_slot" and pg_rows[0]["lag_bytes"] > 0
    assert mysql_rows[0]["file"] and mysql_rows[0]["pos"] > 0
    assert list(report["targets"].values()) == [[]]
