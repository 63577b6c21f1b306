"""The MySQL URL's TLS options become pymysql's TLS arguments on every connection (one place builds them)."""

from __future__ import annotations

import pytest

from cdc.errors import ConfigError
from connectors.mysql.dialect import connection_kwargs
from connectors.mysql.tls import tls_kwargs


def test_url_tls_options_reach_the_connection_arguments():
    kwargs = connection_kwargs("mysql://cdc:pw@db:3306/shop?ssl_ca=/ca.pem&ssl_cert=/c.pem&ssl_key=/c.key"
                               "&ssl_verify_identity=true")
    assert (kwargs["ssl_ca"], kwargs["ssl_cert"], kwargs["ssl_key"]) == ("/ca.pem", "/c.pem", "/c.key")
    assert kwargs["ssl_verify_cert"] is True and kwargs["ssl_verify_identity"] is True
    assert "ssl_ca" not in connection_kwargs("mysql://cdc:pw@db:3306/shop")
    assert tls_kwargs({"ssl_ca": "/ca.pem"}) == {"ssl_ca": "/ca.pem", "ssl_verify_cert": True,
                                                 "ssl_verify_identity": False}


@pytest.mark.parametrize(("options", "message"), [
    ({"sslmode": "verify-full"}, "unknown MySQL/MariaDB URL option 'sslmode'"),
    ({"ssl_ca": "/ca.pem", "ssl_verify_identity": "maybe"}, "is not a boolean"),
    ({"ssl_verify_identity": "true"}, "needs ssl_ca"),
    ({"ssl_ca": "/ca.pem", "ssl_cert": "/c.pem"}, "needs both ssl_cert and ssl_key"),
])
def test_unknown_or_inconsistent_tls_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        tls_kwargs(options)
