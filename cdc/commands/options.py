"""The options every `cdc` command shares: one spelling, one environment variable, one meaning.

An option that reads the environment reads `CDC_<OPTION>` (`--kafka-backend` -> `CDC_KAFKA_BACKEND`);
`--kafka` also reads `CDC_KAFKA_BOOTSTRAP`, the name `cdc sandbox env` exports. Spellings that older
releases used still work for one release as hidden aliases (`HIDDEN_ALIASES` lists them); `--help`
shows only the current one. docs/configuration.md has the table of options, config keys and variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

KAFKA_BACKENDS = ("confluent", "kafka-python")

# current spelling -> the old spellings still accepted (remove in the release after next)
HIDDEN_ALIASES: dict[str, tuple[str, ...]] = {
    "--tables": ("--table",),
    "--kafka-backend": ("--backend",),
}


class AliasedOption(click.Option):
    """A click option whose old spellings parse as usual but stay out of `--help`."""

    def __init__(self, param_decls: Sequence[str], *, aliases: Sequence[str] = (), **attrs: Any) -> None:
        self.aliases = tuple(aliases)
        super().__init__([*param_decls, *self.aliases], **attrs)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [opt for opt in self.opts if opt not in self.aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def split_names(values: Sequence[str] | str | None) -> tuple[str, ...]:
    """`--tables a,b --tables c` -> ("a", "b", "c"): repeated values and comma lists, blanks dropped."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = (values,)
    return tuple(name.strip() for value in values for name in _split_commas(value) if name.strip())


def _split_commas(value: str) -> list[str]:
    """Split at commas outside "..." and `...` quotes (a quoted table name may hold a comma)."""
    parts, current, quote = [], [], None
    for ch in value:
        if quote is None and ch == ",":
            parts.append("".join(current))
            current = []
            continue
        if ch in ('"', "`") and quote in (None, ch):
            quote = None if quote == ch else ch  # a doubled quote closes and reopens: still inside
        current.append(ch)
    parts.append("".join(current))
    return parts


def _split_callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    return split_names(values)


def tables_option(help: str) -> Callable[[F], F]:
    """`--tables LIST`, repeatable and comma-separated, as a tuple of names (parameter `tables`)."""
    return click.option("--tables", "tables", cls=AliasedOption, aliases=HIDDEN_ALIASES["--tables"], multiple=True,
                        metavar="LIST", callback=_split_callback,
                        help=f"{help} Comma-separated and/or repeated.")


def kafka_option(*, required: bool = True, help: str = "Kafka bootstrap servers, HOST:PORT[,...].") -> Callable[[F], F]:
    """`--kafka HOST:PORT` (parameter `kafka`; env CDC_KAFKA, or CDC_KAFKA_BOOTSTRAP as the sandbox exports)."""
    return click.option("--kafka", "kafka", required=required, envvar=["CDC_KAFKA", "CDC_KAFKA_BOOTSTRAP"],
                        metavar="HOST:PORT", help=f"{help} [env CDC_KAFKA or CDC_KAFKA_BOOTSTRAP]")


def kafka_backend_option() -> Callable[[F], F]:
    """`--kafka-backend confluent|kafka-python` (parameter `kafka_backend`; env CDC_KAFKA_BACKEND)."""
    return click.option("--kafka-backend", "kafka_backend", cls=AliasedOption,
                        aliases=HIDDEN_ALIASES["--kafka-backend"], type=click.Choice(KAFKA_BACKENDS), default=None,
                        envvar="CDC_KAFKA_BACKEND",
                        help="Kafka client library [default: confluent; env CDC_KAFKA_BACKEND].")


def _export(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Put a given Kafka security option into CDC_KAFKA_*, where every Kafka client (and child) reads it."""
    if value is not None and param.envvar:
        os.environ[str(param.envvar)] = value


def kafka_security_options() -> Callable[[F], F]:
    """`--kafka-security-protocol`, `--kafka-sasl-mechanism`, `--kafka-sasl-username`, `--kafka-ssl-ca/-cert/-key`.

    They set the CDC_KAFKA_* variables (cdc/kafka/security.py) instead of reaching the command's
    function; the SASL password has no option (it would show in `ps`): CDC_KAFKA_SASL_PASSWORD.
    """
    from cdc.kafka.security import ENVIRONMENT, MECHANISMS, PROTOCOLS

    specs = [
        ("--kafka-security-protocol", "security_protocol", click.Choice(PROTOCOLS, case_sensitive=False),
         "PLAINTEXT, SSL, SASL_SSL or SASL_PLAINTEXT"),
        ("--kafka-sasl-mechanism", "sasl_mechanism", click.Choice(MECHANISMS, case_sensitive=False),
         "SASL mechanism; the password comes from CDC_KAFKA_SASL_PASSWORD"),
        ("--kafka-sasl-username", "sasl_username", None, "SASL username"),
        ("--kafka-ssl-ca", "ssl_ca", click.Path(dir_okay=False), "CA certificate (PEM) that signed the brokers'"),
        ("--kafka-ssl-cert", "ssl_cert", click.Path(dir_okay=False), "client certificate (PEM)"),
        ("--kafka-ssl-key", "ssl_key", click.Path(dir_okay=False),
         "client key (PEM; its password from CDC_KAFKA_SSL_KEY_PASSWORD)"),
    ]

    def decorate(function: F) -> F:
        for flag, name, kind, text in reversed(specs):
            function = click.option(flag, type=kind, envvar=ENVIRONMENT[name], expose_value=False, callback=_export,
                                    help=f"Kafka: {text} [env {ENVIRONMENT[name]}].")(function)
        return function

    return decorate


SOURCE_HELP = "Source database URL: postgresql://user:pass@host:port/db or mysql://..."
TARGET_HELP = "Target database URL: postgresql://user:pass@host:port/db or mysql://..."


def source_option(*, required: bool = True, multiple: bool = False, old_envvar: str | None = None,
                  help: str = SOURCE_HELP) -> Callable[[F], F]:
    """`--source URL` (parameter `source_url`, or `sources` when repeatable; env CDC_SOURCE)."""
    envvar = ["CDC_SOURCE", old_envvar] if old_envvar else "CDC_SOURCE"
    return click.option("--source", "sources" if multiple else "source_url", required=required, multiple=multiple,
                        envvar=envvar, metavar="URL", help=f"{help} [env CDC_SOURCE]")


def target_option(*, required: bool = True, multiple: bool = False, old_envvar: str | None = None,
                  help: str = TARGET_HELP) -> Callable[[F], F]:
    """`--target URL` (parameter `target_url`, or `targets` when repeatable; env CDC_TARGET)."""
    envvar = ["CDC_TARGET", old_envvar] if old_envvar else "CDC_TARGET"
    return click.option("--target", "targets" if multiple else "target_url", required=required, multiple=multiple,
                        envvar=envvar, metavar="URL", help=f"{help} [env CDC_TARGET]")


def prefix_option(*, required: bool = True,
                  help: str = "Topic prefix (topics <prefix>.<schema>.<table>).") -> Callable[[F], F]:
    """`--prefix NAME` (parameter `prefix`)."""
    return click.option("--prefix", "prefix", required=required, metavar="NAME", help=help)


def metrics_option(help: str = "Serve Prometheus /metrics and /healthz on HOST:PORT (or PORT, on 127.0.0.1).") -> Callable[[F], F]:
    """`--metrics LISTEN` (parameter `metrics`; "" serves nothing; env CDC_METRICS)."""
    return click.option("--metrics", "metrics", default="", metavar="LISTEN", envvar="CDC_METRICS",
                        help=f"{help} [env CDC_METRICS]")


def json_option(help: str) -> Callable[[F], F]:
    """`--json [PATH]`: JSON into PATH, or on stdout when PATH is `-` or left out (parameter `json_path`)."""
    return click.option("--json", "json_path", is_flag=False, flag_value="-", default=None, metavar="[PATH]",
                        type=click.Path(dir_okay=False, allow_dash=True),
                        help=f"{help} `--json` alone or `--json -` prints it on stdout.")


def write_json_text(text: str, path: str) -> None:
    """Write a JSON document to `path` (mode 0600), or to stdout when `path` is `-`."""
    if path == "-":
        click.echo(text)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # its owner's only, like the reports
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
