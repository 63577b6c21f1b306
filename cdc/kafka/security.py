"""Kafka TLS and SASL settings: one record, read from CDC_KAFKA_* variables, spelt for each backend.

Every Kafka client of a process (producer, consumer, admin, topic readers) takes them from the
environment, the way the backend choice travels (`CDC_KAFKA_BACKEND`): the CLI options and `cdc run`'s
`[kafka]` section set the variables, so a child process or an apply worker inherits them without any
secret on its command line. The SASL password is read only from `CDC_KAFKA_SASL_PASSWORD` (or the
config's `secrets_file`), never from an option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from cdc.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# field -> environment variable
ENVIRONMENT = {
    "security_protocol": "CDC_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "CDC_KAFKA_SASL_MECHANISM",
    "sasl_username": "CDC_KAFKA_SASL_USERNAME",
    "sasl_password": "CDC_KAFKA_SASL_PASSWORD",
    "ssl_ca": "CDC_KAFKA_SSL_CA",
    "ssl_cert": "CDC_KAFKA_SSL_CERT",
    "ssl_key": "CDC_KAFKA_SSL_KEY",
    "ssl_key_password": "CDC_KAFKA_SSL_KEY_PASSWORD",
}
SECRETS = ("sasl_password", "ssl_key_password")


@dataclass(slots=True, frozen=True)
class KafkaSecurity:
    """How clients authenticate to the brokers and check them; the defaults are plain TCP."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_key_password: str | None = None

    def __repr__(self) -> str:
        shown = {f.name: ("***" if f.name in SECRETS and getattr(self, f.name) else getattr(self, f.name))
                 for f in fields(self)}
        return "KafkaSecurity(" + ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None) + ")"

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def check(self, where: str = "Kafka") -> KafkaSecurity:
        """Itself when consistent; ConfigError naming the setting otherwise."""
        if self.security_protocol not in PROTOCOLS:
            raise ConfigError(f"{where}: security protocol {self.security_protocol!r} is not supported",
                              fix=f"use one of {', '.join(PROTOCOLS)}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ConfigError(f"{where}: SASL mechanism {self.sasl_mechanism!r} is not supported",
                                  fix=f"set the SASL mechanism to one of {', '.join(MECHANISMS)}")
            if not self.sasl_username or self.sasl_password is None:
                raise ConfigError(f"{where}: {self.security_protocol} needs a SASL username and password",
                                  fix="set the username (--kafka-sasl-username / sasl_username) and the password "
                                      "(CDC_KAFKA_SASL_PASSWORD or the config's secrets_file)")
        elif self.sasl_mechanism or self.sasl_username:
            raise ConfigError(f"{where}: SASL settings given but the security protocol is {self.security_protocol}",
                              fix="use SASL_SSL (or SASL_PLAINTEXT on a trusted network)")
        if not self.uses_tls and (self.ssl_ca or self.ssl_cert or self.ssl_key):
            raise ConfigError(f"{where}: TLS files given but the security protocol is {self.security_protocol}",
                              fix="use SSL or SASL_SSL")
        if bool(self.ssl_cert) != bool(self.ssl_key):
            raise ConfigError(f"{where}: a client certificate needs both the certificate and its key",
                              fix="set both ssl_cert and ssl_key (or neither)")
        return self

    def environment(self) -> dict[str, str]:
        """The CDC_KAFKA_* variables that carry these settings to a child process."""
        return {ENVIRONMENT[f.name]: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def librdkafka_config(self) -> dict[str, str]:
        """The settings as librdkafka (confluent-kafka) properties; empty for PLAINTEXT."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        config = {"security.protocol": self.security_protocol.lower()}
        if self.uses_sasl:
            config |= {"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                       "sasl.password": self.sasl_password}
        if self.uses_tls:
            config["ssl.endpoint.identification.algorithm"] = "https"  # the broker's name must match its certificate
            for name, key in (("ssl_ca", "ssl.ca.location"), ("ssl_cert", "ssl.certificate.location"),
                              ("ssl_key", "ssl.key.location"), ("ssl_key_password", "ssl.key.password")):
                if getattr(self, name) is not None:
                    config[key] = getattr(self, name)
        return config

    def kafka_python_kwargs(self) -> dict[str, object]:
        """The settings as kafka-python client keyword arguments; empty for PLAINTEXT."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            kwargs |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                       "sasl_plain_password": self.sasl_password}
        if self.uses_tls:
            kwargs["ssl_check_hostname"] = True
            for name, key in (("ssl_ca", "ssl_cafile"), ("ssl_cert", "ssl_certfile"), ("ssl_key", "ssl_keyfile"),
                              ("ssl_key_password", "ssl_password")):
                if getattr(self, name) is not None:
                    kwargs[key] = getattr(self, name)
        return kwargs


def security_from_environment(environ: dict[str, str] | None = None) -> KafkaSecurity:
    """The settings in the CDC_KAFKA_* variables (plain TCP when none is set), checked."""
    environ = os.environ if environ is None else environ
    values = {name: environ[variable] for name, variable in ENVIRONMENT.items() if environ.get(variable)}
    if "security_protocol" in values:
        values["security_protocol"] = values["security_protocol"].upper()
    if "sasl_mechanism" in values:
        values["sasl_mechanism"] = values["sasl_mechanism"].upper()
    return KafkaSecurity(**values).check("Kafka (CDC_KAFKA_* variables)")


def export_security(security: KafkaSecurity) -> None:
    """Put the settings into this process's environment, for every Kafka client it (and its children) makes."""
    os.environ.update(security.environment())
