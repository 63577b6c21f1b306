"""Log lines stay one line each: identifiers with newlines, ANSI escapes or invisible characters are escaped."""

from __future__ import annotations

import logging

import orjson

from cdc.commands.options import write_json_text
from cdc.logs import HumanFormatter, JsonFormatter, escape_control

HOSTILE = 'orders\nERROR forged line \x1b[31mred\u202eevil'


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "cdc.test", "levelname": "INFO", "msg": message, "args": args})
    record.__dict__.update(extra)
    return record


def test_human_lines_escape_control_characters_in_messages_and_fields():
    line = HumanFormatter().format(_record("applied table %s", HOSTILE, table=HOSTILE))
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "orders\\nERROR forged line \\x1b[31mred\\u202eevil" in line
    assert line.count("orders\\nERROR") == 2  # the message and the table= field


def test_json_lines_are_one_line_and_keep_the_exact_name():
    line = JsonFormatter().format(_record("applied table %s", HOSTILE, table=HOSTILE))
    assert "\n" not in line and orjson.loads(line)["table"] == HOSTILE


def test_ordinary_names_are_unchanged():
    assert escape_control('public."order items$ü x"') == 'public."order items$ü x"'


def test_json_files_are_written_for_their_owner_only(tmp_path):
    path = tmp_path / "status.json"
    path.write_text("{}")
    path.chmod(0o644)
    write_json_text('{"a": 1}', str(path))
    assert path.stat().st_mode & 0o777 == 0o600 and orjson.loads(path.read_text()) == {"a": 1}
