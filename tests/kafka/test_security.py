"""Kafka TLS/SASL settings reach librdkafka's configuration and kafka-python's keyword arguments, from the
CLI options, the environment and `cdc run`'s [kafka] section (with a 0600 secrets file).

The sandbox broker speaks plain TCP only, so these tests stop at the client library's door: librdkafka
itself validates the configuration dict we hand it, and kafka-python's clients list the keys they take.
"""

from __future__ import annotations

import os

import confluent_kafka as ck
import kafka
import pytest
from click.testing import CliRunner

from cdc.cli import cli
from cdc.commands import tail as tail_command
from cdc.commands.run import components_for
from cdc.config import load_config
from cdc.errors import ConfigError
from cdc.kafka.confluent_backend import client as confluent_client
from cdc.kafka.security import ENVIRONMENT, KafkaSecurity, security_from_environment

SASL_SSL = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "cdc", "Kafka-Secret-5e1", "/etc/cdc/ca.pem",
                         "/etc/cdc/client.pem", "/etc/cdc/client.key", "key-pass")


@pytest.fixture
def clean_environment(monkeypatch):
    for variable in ENVIRONMENT.values():
        monkeypatch.setenv(variable, "")  # recorded, so that what a test exports is removed afterwards
        monkeypatch.delenv(variable)
    return monkeypatch


def test_librdkafka_accepts_the_properties_and_gets_every_setting(clean_environment):
    for name, value in SASL_SSL.environment().items():
        clean_environment.setenv(name, value)
    config = confluent_client.common_config("127.0.0.1:1")
    assert config["security.protocol"] == "sasl_ssl" and config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("cdc", "Kafka-Secret-5e1")
    assert config["ssl.ca.location"] == "/etc/cdc/ca.pem" and config["ssl.certificate.location"] == "/etc/cdc/client.pem"
    assert config["ssl.key.location"] == "/etc/cdc/client.key" and config["ssl.key.password"] == "key-pass"
    assert config["ssl.endpoint.identification.algorithm"] == "https"
    plain = {key: value for key, value in SASL_SSL.librdkafka_config().items() if not key.startswith("ssl.")}
    ck.Producer({"bootstrap.servers": "127.0.0.1:1", **plain | {"security.protocol": "sasl_plaintext"}}).flush(0)
    with pytest.raises(ck.KafkaException, match="ssl.ca.location"):  # librdkafka opens the CA file: it got it
        ck.Producer({"bootstrap.servers": "127.0.0.1:1", **SASL_SSL.librdkafka_config()})


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_takes_every_setting(mechanism):
    security = KafkaSecurity("SASL_SSL", mechanism, "cdc", "pw", "/ca.pem", "/c.pem", "/c.key", "kp")
    kwargs = security.kafka_python_kwargs()
    for client in (kafka.KafkaProducer, kafka.KafkaConsumer, kafka.KafkaAdminClient):
        assert set(kwargs) <= set(client.DEFAULT_CONFIG), set(kwargs) - set(client.DEFAULT_CONFIG)
    assert kwargs["sasl_mechanism"] == mechanism and kwargs["sasl_plain_password"] == "pw"
    assert kwargs["ssl_cafile"] == "/ca.pem" and kwargs["ssl_check_hostname"] is True
    assert KafkaSecurity().kafka_python_kwargs() == {} and KafkaSecurity().librdkafka_config() == {}


def test_cli_options_export_the_settings_and_the_password_has_no_option(clean_environment):
    result = CliRunner().invoke(cli, ["tail", "--help"])
    assert "--kafka-security-protocol" in result.output and "--kafka-sasl-password" not in result.output
    tail_command.command.make_context("tail", [
        "--kafka", "127.0.0.1:1", "--prefix", "p", "--kafka-security-protocol", "sasl_ssl",
        "--kafka-sasl-mechanism", "scram-sha-256", "--kafka-sasl-username", "cdc", "--kafka-ssl-ca", "/ca.pem"])
    assert os.environ["CDC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert os.environ["CDC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256" and os.environ["CDC_KAFKA_SSL_CA"] == "/ca.pem"
    with pytest.raises(ConfigError, match="needs a SASL username and password"):
        security_from_environment()
    clean_environment.setenv("CDC_KAFKA_SASL_PASSWORD", "pw")
    assert security_from_environment().kafka_python_kwargs()["sasl_plain_password"] == "pw"


def _write_config(tmp_path, kafka_extra: str):
    path = tmp_path / "cdc.toml"
    path.write_text(f'[kafka]\nbootstrap = "b:9093"\n{kafka_extra}\n'
                    '[[source]]\nurl = "postgresql://u@127.0.0.1:5433/shop"\nprefix = "shop"\n')
    return path


def test_config_kafka_section_with_a_secrets_file_reaches_every_child(tmp_path):
    secrets = tmp_path / "kafka-secrets.toml"
    secrets.write_text('sasl_password = "Kafka-Secret-5e1"\n')
    secrets.chmod(0o644)
    path = _write_config(tmp_path, 'security_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-256"\n'
                                   'sasl_username = "cdc"\nssl_ca = "/etc/cdc/ca.pem"\nsecrets_file = "kafka-secrets.toml"')
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(path)
    secrets.chmod(0o600)
    config = load_config(path)
    assert config.kafka.security.sasl_password == "Kafka-Secret-5e1"
    assert "Kafka-Secret-5e1" not in repr(config)
    (component,) = components_for(config, child_metrics=False)
    assert component.env["CDC_KAFKA_SASL_PASSWORD"] == "Kafka-Secret-5e1"
    assert component.env["CDC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and component.env["CDC_KAFKA_SSL_CA"] == "/etc/cdc/ca.pem"
    assert "Kafka-Secret-5e1" not in " ".join(component.args) and "Kafka-Secret-5e1" not in repr(component)
    with pytest.raises(ConfigError, match="allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"):
        load_config(_write_config(tmp_path, 'security_protocol = "SASL_SSL"\nsasl_mechanism = "GSSAPI"'))
