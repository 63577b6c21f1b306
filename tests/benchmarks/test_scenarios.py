"""The scenarios: every script they call exists, names select them, and the readers of the scripts' JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.suite.figures import Figure, Note
from benchmarks.suite.scenarios import SCENARIOS, by_name, highest_bounded_load, read_kafka_copy, read_tool_table

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("quick", [True, False])
def test_every_script_called_exists_unless_the_scenario_may_skip_it(quick):
    for scenario in SCENARIOS:
        for invocation in scenario.invocations(quick):
            assert (BENCHMARKS / invocation.script).exists() or invocation.script in scenario.needs


def test_by_name_keeps_the_suite_order_and_rejects_unknown_names():
    assert [s.name for s in by_name("lag,decode")] == ["decode", "lag"]
    assert len(by_name(None)) == len(SCENARIOS)
    with pytest.raises(ValueError, match="unknown scenario"):
        by_name("decode,nope")


def lag_file(rate, achieved, p99, catch_up=0.5, target="postgresql"):
    return {"workload": {"rate": rate}, "results": [{"target": target, "achieved_changes_per_s": achieved,
                                                     "lag_p99_s": p99, "catch_up_after_writer_s": catch_up}]}


def test_highest_bounded_load_is_the_highest_rate_reached_with_short_lag():
    files = [lag_file(1000, 1000, 0.3), lag_file(5000, 4990, 0.9), lag_file(20000, 12000, 8.0, catch_up=9.0)]
    assert highest_bounded_load(files) == [
        Figure("highest load with bounded lag -> PostgreSQL", "cdc", "highest bounded load", "changes/s", 4990)]


def test_the_rate_the_writer_reached_counts_when_it_could_not_reach_the_rate_asked():
    assert highest_bounded_load([lag_file(1000, 1000, 0.3), lag_file(20000, 5100, 1.4)])[0].value == 5100


def test_a_load_whose_backlog_grows_is_not_bounded_even_with_a_short_p99():
    files = [lag_file(1000, 1000, 0.3), lag_file(5000, 5000, 1.5, catch_up=6.0)]
    assert highest_bounded_load(files)[0].value == 1000


def test_no_bounded_load_gives_zero():
    assert highest_bounded_load([lag_file(1000, 500, 5.0)])[0].value == 0


def test_tool_table_reads_figures_and_turns_errors_into_notes():
    data = {"results": {"pg->pg": {"cdc_copy": {"seconds": 2.0, "rows_per_s": 500},
                                   "pg_dump | psql": {"error": "pg_dump failed: no password supplied"}},
                        "mariadb->pg": {"pg_chameleon init_replica": {"error": "refuses to run as root"}}}}
    figures, notes = read_tool_table(data)
    assert figures == [Figure("pg->pg", "cdc copy", "time", "s", 2.0),
                       Figure("pg->pg", "cdc copy", "rows/s", "rows/s", 500)]
    assert notes == [Note("pg->pg", "pg_dump | psql", "pg_dump failed: no password supplied"),
                     Note("mariadb->pg", "pg_chameleon init_replica", "refuses to run as root")]


def test_an_incomplete_reladiff_run_is_a_note_not_a_figure():
    from benchmarks.suite.scenarios import read_verify

    data = {"results": [{"case": "mariadb->pg", "rows": 100, "seeded_differences": 5,
                         "cdc_verify": {"rows_per_s": 50, "seconds": 2.0, "peak_rss_mb": 60, "differences": 5},
                         "reladiff": {"seconds": 1.0, "complete": False, "error": "Incompatible types for column 'doc'"}}]}
    figures, notes = read_verify(data)
    assert {f.tool for f in figures} == {"cdc verify"}
    assert notes == [Note("mariadb->pg, 100 rows", "reladiff", "its run was incomplete: Incompatible types for column 'doc'")]


def test_kafka_copy_reads_one_tree_and_several_trees_alike():
    run = {"seconds": 4.8, "rows_per_s": 10420, "time_to_first_assignment_s": 3.19, "apply_peak_rss_mb": 126}
    figures, notes = read_kafka_copy({"results": {"PG->PG": run, "PG->MariaDB": {"error": "broker gone"}}})
    ours = "cdc (capture -> Kafka -> apply)"
    assert Figure("PG->PG", ours, "rows/s", "rows/s", 10420) in figures
    assert Figure("PG->PG", ours, "first assignment", "s", 3.19) in figures
    assert notes == [Note("PG->MariaDB", ours, "broker gone")]
    figures, _ = read_kafka_copy({"results": {"PG->PG": {"old": run, "new": {**run, "rows_per_s": 20000}}}})
    assert {(f.tool, f.value) for f in figures if f.metric == "rows/s"} == {("old", 10420), ("new", 20000)}
