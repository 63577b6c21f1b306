"""TLS for every MySQL/MariaDB connection (binlog, snapshot, apply, verify, status): URL options -> pymysql.

`mysql://cdc:pw@db.example:3306/shop?ssl_ca=/etc/cdc/ca.pem&ssl_verify_identity=true` checks the
server's certificate against the CA and its name against the host; `ssl_cert`/`ssl_key` add a client
certificate. An option this module does not know is an error, not a silently plain connection.
"""

from __future__ import annotations

from cdc.errors import ConfigError

FILE_OPTIONS = ("ssl_ca", "ssl_cert", "ssl_key")
FLAG_OPTIONS = ("ssl_verify_cert", "ssl_verify_identity")
KNOWN_OPTIONS = (*FILE_OPTIONS, *FLAG_OPTIONS)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ConfigError(f"MySQL URL option {name}={value!r} is not a boolean", fix=f"write {name}=true or {name}=false")


def tls_kwargs(options: dict[str, str]) -> dict[str, object]:
    """pymysql.connect keyword arguments for the URL's TLS options; {} when the URL asks for none."""
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown MySQL/MariaDB URL option {unknown[0]!r}",
                          fix=f"use {', '.join(KNOWN_OPTIONS)} (see docs/security.md)")
    kwargs: dict[str, object] = {name: options[name] for name in FILE_OPTIONS if options.get(name)}
    if bool(options.get("ssl_cert")) != bool(options.get("ssl_key")):
        raise ConfigError("a MySQL client certificate needs both ssl_cert and ssl_key", fix="give both, or neither")
    flags = {name: _flag(name, options[name]) for name in FLAG_OPTIONS if name in options}
    if flags.get("ssl_verify_identity") and "ssl_ca" not in kwargs:
        raise ConfigError("ssl_verify_identity needs ssl_ca (the CA that signed the server's certificate)",
                          fix="add ssl_ca=/path/to/ca.pem to the URL")
    if "ssl_ca" in kwargs:
        kwargs["ssl_verify_cert"] = flags.get("ssl_verify_cert", True)
        kwargs["ssl_verify_identity"] = flags.get("ssl_verify_identity", False)
    return kwargs
