"""The runner's aggregation: median, min and max of each figure over the runs, notes once."""

from __future__ import annotations

from benchmarks.suite.figures import Figure, Note, distinct_notes, summarise


def test_median_min_max_over_three_runs():
    runs = [[Figure("pg->pg", "cdc copy", "rows/s", "rows/s", value)] for value in (300.0, 100.0, 200.0)]
    (summary,) = summarise(runs)
    assert (summary.median, summary.low, summary.high) == (200.0, 100.0, 300.0)
    assert summary.values == (300.0, 100.0, 200.0)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    runs = [[Figure("c", "t", "m", "s", value)] for value in (1, 2, 3, 10)]
    assert summarise(runs)[0].median == 2.5


def test_figures_are_grouped_by_case_tool_and_metric_in_first_seen_order():
    runs = [[Figure("a", "cdc", "rows/s", "rows/s", 10), Figure("a", "peer", "rows/s", "rows/s", 5),
             Figure("a", "cdc", "peak RSS", "MB", 80)],
            [Figure("a", "peer", "rows/s", "rows/s", 7), Figure("a", "cdc", "rows/s", "rows/s", 12)]]
    summaries = summarise(runs)
    assert [(s.tool, s.metric, s.values) for s in summaries] == [
        ("cdc", "rows/s", (10, 12)), ("peer", "rows/s", (5, 7)), ("cdc", "peak RSS", (80,))]


def test_a_figure_missing_from_a_failed_run_is_summarised_over_the_runs_that_measured_it():
    runs = [[Figure("a", "cdc", "rows/s", "rows/s", 10)], [], [Figure("a", "cdc", "rows/s", "rows/s", 20)]]
    (summary,) = summarise(runs)
    assert summary.values == (10, 20) and summary.median == 15


def test_a_note_repeated_in_every_run_is_kept_once():
    note = Note("mariadb->pg", "pg_chameleon", "not installed")
    assert distinct_notes([[note], [note], [note, Note("x", "y", "z")]]) == [note, Note("x", "y", "z")]


def test_summary_as_json_lists_its_values():
    (summary,) = summarise([[Figure("a", "b", "c", "d", 1.0)]])
    assert summary.as_json() == {"case": "a", "tool": "b", "metric": "c", "unit": "d", "median": 1.0,
                                 "low": 1.0, "high": 1.0, "values": [1.0]}


def test_a_peer_failing_in_other_words_in_each_run_gives_one_note_with_the_first_reason():
    first, second = Note("pg->pg", "pg_dump | psql", "no password"), Note("pg->pg", "pg_dump | psql", "password?")
    assert distinct_notes([[first], [second]]) == [first]
