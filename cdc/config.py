"""The TOML configuration of `cdc run`: loading, `${VAR}` expansion from the environment, validation.

Every validation error names the file and the key (`cdc.toml: source[0].snapshot: ...`) and says what
is allowed. Values that come from the environment are never echoed back (they may be secrets). A key
is spelt like the `cdc capture` / `cdc apply` flag it becomes (`heartbeat_interval` <->
`--heartbeat-interval`); `ALIASES` lists older key spellings that still load for one release.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdc.errors import ConfigError
from cdc.kafka.security import MECHANISMS, PROTOCOLS, SECRETS, KafkaSecurity
from cdc.urls import DatabaseUrl, parse_url

SNAPSHOT_MODES = ("initial", "never", "initial_only", "when_needed")
COMPAT_MODES = ("none", "debezium")
KEYLESS_POLICIES = ("refuse", "insert-only")
ON_ERROR = ("stop", "dlq", "skip-table")
CONSISTENCY = ("batch", "transaction")
KAFKA_BACKENDS = ("confluent", "kafka-python")
DROP_COLUMNS = ("keep", "drop")
# current key -> an older spelling still accepted (remove in the release after next)
ALIASES = {"heartbeat_interval": "heartbeat_seconds"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(slots=True, frozen=True)
class KafkaConfig:
    bootstrap: str
    backend: str = "confluent"
    security: KafkaSecurity = KafkaSecurity()


@dataclass(slots=True, frozen=True)
class SourceConfig:
    url: DatabaseUrl
    prefix: str
    tables: tuple[str, ...] = ()
    include: str | None = None
    snapshot: str = "initial"
    slot: str | None = None
    publication: str | None = None
    server_id: int | None = None
    compat: str = "none"
    heartbeat_interval: float = 10.0
    failover_slot: bool | None = None  # PostgreSQL: None = on for 17+
    max_message_bytes: int | None = None
    max_spool_bytes: int | None = None
    keyless: str = "refuse"


@dataclass(slots=True, frozen=True)
class TargetConfig:
    url: DatabaseUrl
    prefix: str
    tables: tuple[str, ...] = ()
    create_tables: bool = False
    group: str | None = None
    workers: int = 1
    on_error: str = "stop"
    consistency: str = "batch"
    drop_columns: str = "keep"
    max_poll_interval_ms: int | None = None
    max_transaction_bytes: int | None = None


@dataclass(slots=True, frozen=True)
class VerifyConfig:
    """One [[verify]] entry: a parity check `cdc run` repeats every `every_seconds` (cdc/verify/schedule.py)."""

    source: str  # the URL as written (after ${VAR} expansion): it may hold a password, never log it
    target: str
    pipeline: str  # the `pipeline` label of its metrics and the name of its log lines
    report_dir: Path
    tables: tuple[str, ...] = ()
    every_seconds: float = 900.0
    wait_for_lag: float | None = None
    keep: int = 20
    rows_per_run: int | None = 100_000  # a slice of about this many rows per table and check; None: whole tables
    full_every_seconds: float = 86400.0  # every slice of every table checked at least this often
    workers: int = 2
    recheck_delay: float = 2.0


@dataclass(slots=True, frozen=True)
class MigrationConfig:
    """One [[migration]] entry: a `cdc migrate` workflow (cdc/migrate/); `cdc run` runs its runner."""

    name: str
    source: str  # the URL as written (after ${VAR} expansion): it may hold a password, never log it
    target: str
    tables: tuple[str, ...] = ()
    create_tables: bool = False
    initial_copy: str = "direct"  # or "kafka": the forward capture's snapshot through Kafka


@dataclass(slots=True, frozen=True)
class Config:
    path: Path
    kafka: KafkaConfig
    sources: tuple[SourceConfig, ...] = ()
    targets: tuple[TargetConfig, ...] = ()
    verifies: tuple[VerifyConfig, ...] = ()
    migrations: tuple[MigrationConfig, ...] = ()
    metrics_listen: str | None = "127.0.0.1:9187"
    log_format: str = "human"
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)


class _Section:
    """Reads typed keys from one TOML table, remembering which were read to reject unknown ones."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: {where} must be a table, got {type(data).__name__}")
        self.path, self.where, self.data, self.seen = path, where, data, set()

    def _fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}.{key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., choices: tuple | None = None) -> Any:
        self.seen.add(key)
        old = ALIASES.get(key)
        if old is not None and old in self.data:
            self.seen.add(old)
            if key in self.data:
                raise self._fail(old, f"is the old spelling of {key}; set only {key}")
            key = old
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, str):
            value = expand_env(value, where=f"{self.path}: {self.where}.{key}")
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise self._fail(key, f"must be {names}, got {type(value).__name__}")
        if choices is not None and value not in choices:
            raise self._fail(key, f"is {value!r}; allowed: {', '.join(map(str, choices))}")
        return value

    def url(self, key: str) -> DatabaseUrl:
        raw = self.get(key, str)
        try:
            return parse_url(raw, what=f"{self.path}: {self.where}.{key}")
        except ConfigError as exc:
            raise ConfigError(exc.message, fix=exc.fix) from None

    def duration(self, key: str, default: Any = ...) -> Any:
        """Seconds from "30s", "15m", "1h", "2d" (or a number of seconds)."""
        value = self.get(key, (str, int, float), default)
        if value is default:
            return value
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self._fail(key, f"{value!r} is not a duration; write e.g. \"30s\", \"15m\", \"1h\"") from None
        if seconds <= 0:
            raise self._fail(key, "must be more than 0")
        return seconds

    def tables(self, key: str = "tables") -> tuple[str, ...]:
        value = self.get(key, (list, str), ())
        items = value.split(",") if isinstance(value, str) else value
        if not all(isinstance(item, str) for item in items):
            raise self._fail(key, "must be a list of 'schema.table' strings")
        return tuple(item.strip() for item in items if item.strip())

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self._fail(unknown[0], f"unknown key (known: {', '.join(sorted(self.seen))})")


def parse_duration(value: str | int | float) -> float:
    """"30s" -> 30.0, "15m" -> 900.0, "1h" -> 3600.0, "1.5d", "250ms"; a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.fullmatch(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def expand_env(text: str, *, where: str = "config") -> str:
    """Replace `${VAR}` and `${VAR:-default}` with environment values; a missing VAR is a ConfigError."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set", fix=f"export {name}=... before running")
        return value

    return _VAR.sub(replace, text)


def load_config(path: str | Path) -> Config:
    """Read and validate a `cdc run` config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", fix="pass --config with the path of your cdc.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    root = _Section(path, "(top level)", raw)
    kafka = _Section(path, "kafka", root.get("kafka", dict))
    kafka_config = KafkaConfig(
        bootstrap=kafka.get("bootstrap", str), backend=kafka.get("backend", str, "confluent", KAFKA_BACKENDS),
        security=_kafka_security(path, kafka),
    )
    kafka.finish()
    sources = tuple(_source(path, i, data) for i, data in enumerate(root.get("source", list, [])))
    targets = tuple(_target(path, i, data) for i, data in enumerate(root.get("target", list, [])))
    verifies = tuple(_verify(path, i, data, sources) for i, data in enumerate(root.get("verify", list, [])))
    migrations = tuple(_migration(path, i, data) for i, data in enumerate(root.get("migration", list, [])))
    names = [v.pipeline for v in verifies]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two [[verify]] entries share the name {sorted(n for n in names if names.count(n) > 1)[0]!r}",
                          fix="give each its own `name`")
    metrics = _Section(path, "metrics", root.get("metrics", dict, {}))
    metrics_listen = metrics.get("listen", str, "127.0.0.1:9187") or None
    metrics.finish()
    logging_section = _Section(path, "logging", root.get("logging", dict, {}))
    log_format = logging_section.get("format", str, "human", ("human", "json"))
    log_level = logging_section.get("level", str, "info", ("debug", "info", "warning", "error"))
    logging_section.finish()
    root.finish()
    if not sources and not targets and not verifies and not migrations:
        raise ConfigError(f"{path}: no [[source]], [[target]], [[verify]] or [[migration]] entries",
                          fix="add at least one of them")
    return Config(path, kafka_config, sources, targets, verifies, migrations, metrics_listen, log_format, log_level)


def _kafka_security(path: Path, kafka: _Section) -> KafkaSecurity:
    """[kafka] TLS/SASL keys; the passwords from `secrets_file` (a 0600 TOML file) or ${VAR} expansion."""
    values = {
        "security_protocol": kafka.get("security_protocol", str, "PLAINTEXT", PROTOCOLS),
        "sasl_mechanism": kafka.get("sasl_mechanism", str, None, MECHANISMS),
        **{key: kafka.get(key, str, None) for key in ("sasl_username", "ssl_ca", "ssl_cert", "ssl_key", *SECRETS)},
    }
    secrets_file = kafka.get("secrets_file", str, None)
    if secrets_file is not None:
        secrets_path = Path(secrets_file) if Path(secrets_file).is_absolute() else path.parent / secrets_file
        for key, value in read_secrets_file(secrets_path, allowed=SECRETS).items():
            if values[key] is not None:
                raise ConfigError(f"{path}: kafka.{key} is set both here and in {secrets_path}", fix="keep one")
            values[key] = value
    return KafkaSecurity(**values).check(f"{path}: kafka")


def read_secrets_file(path: Path, *, allowed: tuple[str, ...]) -> dict[str, str]:
    """The `key = "value"` pairs of a secrets file, which only its owner may read (mode 0600 or 0400)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"secrets file {path} does not exist", fix="create it (mode 0600) or fix the path") from None
    if mode & 0o077:
        raise ConfigError(f"secrets file {path} can be read by other users (mode {mode & 0o777:o})",
                          fix=f"chmod 600 {path}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"secrets file {path} is not valid TOML", fix='write lines like sasl_password = "..."') from None
    unknown = sorted(set(data) - set(allowed))
    if unknown or not all(isinstance(value, str) for value in data.values()):
        raise ConfigError(f"secrets file {path}: only string keys {', '.join(allowed)} are allowed",
                          fix=f"remove {', '.join(unknown) or 'the non-string values'}")
    return data


def _source(path: Path, index: int, data: Any) -> SourceConfig:
    section = _Section(path, f"source[{index}]", data)
    config = SourceConfig(
        url=section.url("url"),
        prefix=_prefix(section),
        tables=section.tables(),
        include=section.get("include", str, None),
        snapshot=section.get("snapshot", str, "initial", SNAPSHOT_MODES),
        slot=section.get("slot", str, None),
        publication=section.get("publication", str, None),
        server_id=section.get("server_id", int, None),
        compat=section.get("compat", str, "none", COMPAT_MODES),
        heartbeat_interval=float(section.get("heartbeat_interval", (int, float), 10.0)),
        failover_slot=section.get("failover_slot", bool, None),
        max_message_bytes=section.get("max_message_bytes", int, None),
        max_spool_bytes=section.get("max_spool_bytes", int, None),
        keyless=section.get("keyless", str, "refuse", KEYLESS_POLICIES),
    )
    if config.tables and config.include:
        raise ConfigError(f"{path}: source[{index}]: set either tables or include, not both")
    if config.include:
        try:
            re.compile(config.include)
        except re.error as exc:
            raise ConfigError(f"{path}: source[{index}].include: not a valid regular expression ({exc})") from None
    section.finish()
    return config


def _target(path: Path, index: int, data: Any) -> TargetConfig:
    section = _Section(path, f"target[{index}]", data)
    config = TargetConfig(
        url=section.url("url"),
        prefix=_prefix(section),
        tables=section.tables(),
        create_tables=section.get("create_tables", bool, False),
        group=section.get("group", str, None),
        workers=section.get("workers", int, 1),
        on_error=section.get("on_error", str, "stop", ON_ERROR),
        consistency=section.get("consistency", str, "batch", CONSISTENCY),
        drop_columns=_drop_columns(section),
        max_poll_interval_ms=section.get("max_poll_interval_ms", int, None),
        max_transaction_bytes=section.get("max_transaction_bytes", int, None),
    )
    if config.workers < 1:
        raise ConfigError(f"{path}: target[{index}].workers: must be at least 1, got {config.workers}")
    section.finish()
    return config


def _verify(path: Path, index: int, data: Any, sources: tuple[SourceConfig, ...]) -> VerifyConfig:
    section = _Section(path, f"verify[{index}]", data)
    source_text, target_text = section.get("source", str), section.get("target", str)
    source, _ = section.url("source"), section.url("target")
    same_source = [s.prefix for s in sources
                   if (s.url.engine, s.url.host, s.url.port, s.url.database) == (source.engine, source.host, source.port, source.database)]
    name = section.get("name", str, same_source[0] if same_source else f"verify{index}")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise section._fail("name", f"{name!r} is not a valid name (letters, digits, '_', '.', '-')")
    report_dir = Path(section.get("report_dir", str, f"verify-reports/{name}"))
    rows = section.get("rows_per_run", int, 100_000)
    if rows < 0:
        raise section._fail("rows_per_run", "must be 0 (whole tables) or more")
    config = VerifyConfig(
        source=source_text, target=target_text, pipeline=name,
        report_dir=report_dir if report_dir.is_absolute() else path.parent / report_dir,
        tables=section.tables(), every_seconds=section.duration("every", 900.0),
        wait_for_lag=section.duration("wait_for_lag", None), keep=section.get("keep", int, 20),
        rows_per_run=rows or None, full_every_seconds=section.duration("full_every", 86400.0),
        workers=section.get("workers", int, 2), recheck_delay=float(section.get("recheck_delay", (int, float), 2.0)),
    )
    if config.keep < 1:
        raise section._fail("keep", f"must be at least 1, got {config.keep}")
    if config.workers < 1:
        raise section._fail("workers", f"must be at least 1, got {config.workers}")
    if config.full_every_seconds < config.every_seconds:
        raise section._fail("full_every", "must be at least `every` (a full pass takes one check or more)")
    section.finish()
    return config


def _migration(path: Path, index: int, data: Any) -> MigrationConfig:
    section = _Section(path, f"migration[{index}]", data)
    name = section.get("name", str)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise section._fail("name", f"{name!r} is not a valid workflow name (lower-case letters, digits, '_')")
    section.url("source"), section.url("target")
    config = MigrationConfig(name=name, source=section.get("source", str), target=section.get("target", str),
                             tables=section.tables(), create_tables=section.get("create_tables", bool, False),
                             initial_copy=section.get("initial_copy", str, "direct", choices=("direct", "kafka")))
    section.finish()
    return config


def _drop_columns(section: _Section) -> str:
    """`drop_columns = "keep" | "drop"` as `--drop-columns` takes it; true/false still mean drop/keep."""
    value = section.get("drop_columns", (str, bool), "keep")
    if isinstance(value, bool):
        return "drop" if value else "keep"
    if value not in DROP_COLUMNS:
        raise section._fail("drop_columns", f"is {value!r}; allowed: {', '.join(DROP_COLUMNS)}")
    return value


def _prefix(section: _Section) -> str:
    prefix = section.get("prefix", str)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", prefix):
        raise section._fail("prefix", f"{prefix!r} is not a valid Kafka topic prefix (letters, digits, '_', '.', '-')")
    return prefix
