"""Publishing a results file: the README and docs blocks between the bench markers are replaced, the rest kept."""

from __future__ import annotations

import pytest

from benchmarks.suite.publish import END, START, MarkersMissing, publish, readme_block, replace_block
from tests.benchmarks.test_tables import payload


def test_only_the_text_between_the_markers_changes():
    text = f"# Title\n\nbefore\n{START}\nold line\nanother\n{END}\nafter\n"
    assert replace_block(text, "new\n") == f"# Title\n\nbefore\n{START}\nnew\n{END}\nafter\n"


def test_replacing_twice_gives_the_same_text():
    text = f"a\n{START}\nx\n{END}\nb\n"
    once = replace_block(text, "body")
    assert replace_block(once, "body") == once


def test_a_file_without_markers_is_an_error_that_says_what_to_add():
    with pytest.raises(MarkersMissing, match="bench:start"):
        replace_block("no markers here", "body")


def test_readme_block_has_date_machine_table_and_charts():
    block = readme_block(payload(), "benchmarks/results/2026-12-07T180000Z.json")
    assert "Run of 2026-12-07T180000Z (quick sizes)" in block
    assert "Some CPU, 2 cores" in block
    assert "| Initial copy | pg->pg | rows/s | 100,000 | pgcopydb 150,000 |" in block
    assert "![Initial copy](docs/img/bench-copy.png)" in block


def test_publish_rewrites_readme_and_docs(tmp_path):
    (tmp_path / "docs").mkdir()
    for path in (tmp_path / "README.md", tmp_path / "docs" / "benchmarks.md"):
        path.write_text(f"intro\n{START}\nplaceholder\n{END}\noutro\n")
    changed = publish(payload(), "benchmarks/results/x.json", tmp_path)
    assert [p.name for p in changed] == ["README.md", "benchmarks.md"]
    docs = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "placeholder" not in docs and docs.startswith("intro\n") and docs.endswith(f"{END}\noutro\n")
    assert "### Initial copy" in docs and "![Initial copy](img/bench-copy.png)" in docs


def test_markers_named_in_prose_are_not_the_block():
    text = f"Publishing rewrites `{START}` to `{END}` below.\n\n{START}\nold\n{END}\n"
    assert replace_block(text, "new") == f"Publishing rewrites `{START}` to `{END}` below.\n\n{START}\nnew\n{END}\n"
