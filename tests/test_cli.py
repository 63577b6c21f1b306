"""The CLI lists DESIGN.md's subcommands; unbuilt ones say so plainly."""

import subprocess
import sys

from click.testing import CliRunner

from cdc.cli import COMMANDS, cli


def test_help_lists_every_subcommand_of_the_design():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("run", "capture", "apply", "verify", "status", "cutover", "tail", "sandbox"):
        assert name in result.output
    assert set(COMMANDS) >= {"run", "capture", "apply", "verify", "status", "cutover", "tail", "sandbox"}


def test_every_subcommand_has_help_with_an_example_or_says_not_built():
    for name in COMMANDS:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code in (0, 2), (name, result.output)


def test_config_error_exits_2_with_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cdc.cli", "run", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr or "not built yet" in result.stderr
