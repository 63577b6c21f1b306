"""The runner's markdown: cells as median (min-max), one table per scenario, notes and errors, the README table."""

from __future__ import annotations

from benchmarks.suite.figures import Figure, summarise
from benchmarks.suite.tables import (format_number, format_summary, headline_table, results_markdown,
                                     scenario_table)


def scenario(name="copy", figures=None, **extra):
    """A scenario entry as run.py stores it, from one run's figures per inner list."""
    runs = figures if figures is not None else [
        [Figure("pg->pg", "cdc copy", "rows/s", "rows/s", v), Figure("pg->pg", "pgcopydb", "rows/s", "rows/s", w),
         Figure("pg->pg", "cdc copy", "peak RSS", "MB", 80)]
        for v, w in ((100_000, 150_000), (120_000, 140_000), (90_000, 160_000))]
    return {"name": name, "title": "Initial copy", "chart_metric": "rows/s", "ours": ["cdc copy"], "status": "ok",
            "summaries": [s.as_json() for s in summarise(runs)], "notes": [], "runs": [], **extra}


def payload(**scenarios):
    return {"at": "2026-12-07T180000Z", "mode": "quick", "runs": 3, "wall_seconds": 420.0,
            "machine": {"cpu": "Some CPU", "cores": 2, "ram_gb": 7.8, "python": "3.11.7",
                        "load_average_before": [1.0, 2.0, 3.0], "load_average_after": [4.0, 5.0, 6.0],
                        "servers": {"postgresql": "15.20", "mariadb": "10.11.6-MariaDB", "broker": "tansu 0.6.0"}},
            "scenarios": scenarios or {"copy": scenario()}}


def test_numbers_keep_the_digits_they_deserve():
    assert [format_number(v) for v in (1234567, 456.7, 45.67, 0.12345, 0)] == ["1,234,567", "457", "45.7", "0.123", "0"]


def test_a_cell_is_the_median_with_min_and_max_unless_all_runs_agree():
    low, same = summarise([[Figure("c", "t", "m", "u", v)] for v in (90_000, 100_000, 120_000)])[0], \
        summarise([[Figure("c", "t", "m", "u", 80)]] * 3)[0]
    assert format_summary(low) == "100,000 (90,000-120,000)"
    assert format_summary(same) == "80"


def test_one_row_per_case_and_tool_and_one_column_per_metric():
    lines = scenario_table(scenario())
    assert lines[0] == "| case | tool | rows/s | peak RSS (MB) |"
    assert lines[2] == "| pg->pg | cdc copy | 100,000 (90,000-120,000) | 80 |"
    assert lines[3] == "| pg->pg | pgcopydb | 150,000 (140,000-160,000) |  |"


def test_a_pipe_in_a_tool_name_does_not_break_the_table():
    entry = scenario(figures=[[Figure("pg->pg", "pg_dump | psql", "rows/s", "rows/s", 5)]])
    assert "pg_dump \\| psql" in scenario_table(entry)[2]


def test_results_markdown_has_the_machine_notes_errors_and_skipped_scenarios():
    failed = scenario(notes=[{"case": "mariadb->pg", "tool": "pg_chameleon", "reason": "refuses to run as root"}],
                      runs=[{"seconds": 1.0, "error": "bench_copy.py: exit 1: boom"}])
    skipped = {"name": "kafka-copy", "title": "Initial copy through Kafka", "status": "skipped",
               "reason": "benchmarks/bench_kafka_snapshot.py is not in this checkout"}
    text = results_markdown(payload(copy=failed, **{"kafka-copy": skipped}))
    assert "Some CPU, 2 cores, 7.8 GB RAM; load average 1.00/2.00/3.00 before, 4.00/5.00/6.00 after" in text
    assert "PostgreSQL 15.20, MariaDB 10.11.6-MariaDB, Python 3.11.7, broker tansu 0.6.0" in text
    assert "- pg_chameleon (mariadb->pg): not measured, refuses to run as root" in text
    assert "- run 1 failed: `bench_copy.py: exit 1: boom`" in text
    assert "## Initial copy through Kafka\n\nNot run: benchmarks/bench_kafka_snapshot.py is not in this checkout" in text
    assert "median of 3 runs" in text


def test_headline_table_puts_our_figure_beside_the_peers():
    lines = headline_table(payload())
    assert lines[2] == "| Initial copy | pg->pg | rows/s | 100,000 | pgcopydb 150,000 |"


def test_headline_table_shows_at_most_a_few_cases_per_scenario():
    runs = [[Figure(f"case {i}", "cdc copy", "rows/s", "rows/s", i) for i in range(6)]]
    assert len(headline_table(payload(copy=scenario(figures=runs)), per_scenario=3)) == 2 + 3


def test_headline_table_shows_each_headline_metric_and_only_the_chosen_cases():
    runs = [[Figure("1,000 changes/s", "cdc", "lag p99", "s", 0.4), Figure("5,000 changes/s", "cdc", "lag p99", "s", 1.2),
             Figure("highest load with bounded lag", "cdc", "highest bounded load", "changes/s", 5000)]]
    lag = scenario(name="lag", figures=runs, title="Lag", ours=["cdc"],
                   headline_metrics=["lag p99", "highest bounded load"], headline_cases=[])
    rows = headline_table(payload(lag=lag))[2:]
    assert [row.split(" | ")[1:4] for row in rows] == [
        ["1,000 changes/s", "lag p99 (s)", "0.4"], ["5,000 changes/s", "lag p99 (s)", "1.2"],
        ["highest load with bounded lag", "highest bounded load (changes/s)", "5,000"]]
    lag["headline_cases"] = ["5,000"]
    assert len(headline_table(payload(lag=lag))) == 2 + 1
