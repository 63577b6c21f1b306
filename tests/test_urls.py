"""Database URLs: one server or several (a primary and the replicas that may replace it)."""

from __future__ import annotations

import pytest

from cdc.errors import ConfigError
from cdc.urls import parse_url
from connectors.postgres.dialect import conninfo


def test_one_server_url_keeps_its_host_port_and_options():
    url = parse_url("postgresql://cdc:s3cret@db.example:5433/shop?sslmode=require")
    assert (url.host, url.port, url.user, url.password, url.database) == ("db.example", 5433, "cdc", "s3cret", "shop")
    assert url.servers == (("db.example", 5433),) and url.hosts == ()
    assert url.options == {"sslmode": "require"}
    assert url.redacted() == "postgresql://cdc:***@db.example:5433/shop?sslmode=require"


def test_several_servers_are_listed_in_order_with_default_ports():
    url = parse_url("mysql://root@h1:3306,h2:3307,h3/db")
    assert url.servers == (("h1", 3306), ("h2", 3307), ("h3", 3306))
    assert (url.host, url.port) == ("h1", 3306)
    assert url.redacted() == "mysql://root@h1:3306,h2:3307,h3:3306/db"


def test_ipv6_hosts_and_a_missing_host():
    assert parse_url("postgresql://u@[::1]:6000,127.0.0.1/db").servers == (("::1", 6000), ("127.0.0.1", 5432))
    assert parse_url("postgresql:///db").servers == (("127.0.0.1", 5432),)


def test_postgres_conninfo_lists_every_host_for_libpq():
    info = conninfo(parse_url("postgresql://u@a:1,b:2/db?target_session_attrs=read-write"))
    assert "host=a,b" in info and "port=1,2" in info and "target_session_attrs=read-write" in info


def test_a_bad_port_in_any_host_is_a_config_error():
    with pytest.raises(ConfigError, match="invalid port"):
        parse_url("mysql://u@h1:3306,h2:x/db")


def test_a_multi_host_url_survives_secret_text_and_masks_its_password():
    """`cdc run` hands children secret_text() in CDC_SOURCE/CDC_TARGET: every host must come back."""
    url = parse_url("postgresql://cdc:p%2Fw%40d@h1:5433,[::1]:5434/shop?target_session_attrs=read-write")
    assert url.password == "p/w@d"
    again = parse_url(url.secret_text())
    assert again == url and again.servers == (("h1", 5433), ("::1", 5434))
    assert url.redacted() == "postgresql://cdc:***@h1:5433,[::1]:5434/shop?target_session_attrs=read-write"
    assert "p/w@d" not in repr(url) and "p%2Fw" not in repr(url)


def test_a_bad_port_error_never_shows_part_of_the_password():
    # an unquoted `/` in the password makes the rest look like host:port
    with pytest.raises(ConfigError) as caught:
        parse_url("mysql://root:ab:cdXY/zz@h1:3306,h2:3307/db")
    assert "cdXY" not in str(caught.value) and "zz" not in str(caught.value)
