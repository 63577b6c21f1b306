"""run.py's reuse of earlier runs: with --quick, the RSS scenario reads the end-to-end scenarios' results."""

from __future__ import annotations

from benchmarks.run import reused_outcomes
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
