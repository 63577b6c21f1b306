"""run.py's reuse of earlier runs (with --quick, the RSS scenario reads the end-to-end scenarios' results) and
its results files in parts (`--add-to`)."""

from __future__ import annotations

import pytest

from benchmarks.run import added_to, reused_outcomes
from benchmarks.suite.tables import run_line
from benchmarks.suite.scenarios import by_name

PG_E2E = {"runs": [{"description": "one transaction of 50000 rows", "pg_recvlogical": {"rows_per_s": 1},
                    "cdc": {"rows_per_s": 1, "stream_rows_per_s": 1, "peak_rss_mb": 64.0}, "debezium": {}}]}


def test_quick_rss_reads_the_pg_kafka_runs_with_its_own_reader():
    pg_kafka, rss = by_name("pg-kafka,rss")
    earlier = {"pg-kafka": [[(invocation, PG_E2E, None, "x.json") for invocation in pg_kafka.invocations(True)]],
               "mysql-kafka": [[]]}
    (run,) = reused_outcomes(rss, True, earlier, runs=1)
    invocation, data, error, file = run[0]
    assert invocation.read(data)[0][0].value == 64.0 and invocation.read(data)[0][0].metric == "peak RSS"


def test_rss_runs_its_own_scripts_when_the_end_to_end_scenarios_did_not_run_or_in_a_full_run():
    (rss,) = by_name("rss")
    assert reused_outcomes(rss, True, {}, runs=3) is None
    assert reused_outcomes(rss, False, {"pg-kafka": [[]], "mysql-kafka": [[]]}, runs=1) is None


def _payload(at: str, commit: str, scenarios: dict, mode: str = "full") -> dict:
    return {"at": at, "mode": mode, "runs": 3, "commit": commit, "wall_seconds": 100.0,
            "machine": {"load_average_before": [1.0, 1.0, 1.0], "load_average_after": [2.0, 2.0, 2.0]},
            "scenarios": scenarios}


def test_a_later_part_replaces_its_scenarios_and_keeps_the_rest_with_when_and_where_each_ran():
    earlier = _payload("T1", "aaa", {"decode": {"v": 1}, "kafka-copy": {"v": 1}})
    later = _payload("T2", "bbb", {"kafka-copy": {"v": 2}})
    merged = added_to(earlier, later)
    assert merged["scenarios"] == {"decode": {"v": 1}, "kafka-copy": {"v": 2}}
    assert [(p["at"], p["commit"], p["scenarios"]) for p in merged["parts"]] == [
        ("T1", "aaa", ["decode", "kafka-copy"]), ("T2", "bbb", ["kafka-copy"])]
    assert merged["wall_seconds"] == 200.0
    line = run_line(merged)
    assert "in 2 parts" in line and "kafka-copy at T2 (commit bbb" in line
    again = added_to(merged, _payload("T3", "ccc", {"decode": {"v": 3}}))
    assert [p["at"] for p in again["parts"]] == ["T1", "T2", "T3"]


def test_parts_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="like to like"):
        added_to(_payload("T1", "a", {}), _payload("T2", "b", {}, mode="quick"))
