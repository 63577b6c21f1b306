"""Database URLs: `postgresql://user:pass@host:port/db?opt=v` and `mysql://user:pass@host:port/db?ssl_ca=...`.

A URL may list several servers, `postgresql://u@h1:5432,h2:5433/db` (libpq's multi-host form; add
`?target_session_attrs=read-write` to land on the primary) or `mysql://u@h1:3306,h2:3307/db`: the
primary and the replicas that may replace it. `host`/`port` are the first; `hosts` holds them all, in order.

A password never leaves this module in clear except through `DatabaseUrl.secret_text()`, which `cdc run`
hands its children in their environment (never on a command line). `repr()`, `redacted()` and every
error message show `***` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from cdc.errors import ConfigError

SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
MASK = "***"
# URL options whose values are secrets (libpq's `password`/`sslpassword`); shown as *** like the password
SECRET_OPTIONS = frozenset({"password", "sslpassword"})
# `scheme://user:` then everything up to the last `@` of the authority (a password may hold unquoted `/` or `@`)
_PASSWORD_IN_TEXT = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*:)[^\s]*@")
_SECRET_OPTION_IN_TEXT = re.compile(r"(?P<head>[?&](?:" + "|".join(sorted(SECRET_OPTIONS)) + r")=)[^&\s]*", re.I)


def mask_password(text: str) -> str:
    """`text` with the password of every URL in it (and secret URL options) replaced by ***."""
    text = _PASSWORD_IN_TEXT.sub(lambda m: m.group("head") + MASK + "@", text)
    return _SECRET_OPTION_IN_TEXT.sub(lambda m: m.group("head") + MASK, text)


@dataclass(slots=True, frozen=True)
class DatabaseUrl:
    """A parsed database URL; `engine` is "postgresql" or "mysql" (MariaDB included)."""

    engine: str
    host: str
    port: int
    user: str
    password: str | None
    database: str
    options: dict[str, str] = field(default_factory=dict)
    hosts: tuple[tuple[str, int], ...] = ()  # every (host, port) listed; () means just (host, port)

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        """Every (host, port) of the URL, the first one first."""
        return self.hosts or ((self.host, self.port),)

    def host_list(self) -> str:
        """`host:port[,host:port...]` as written in the URL."""
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.servers)

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted()!r})"

    __str__ = __repr__

    def _text(self, password: str | None, options: dict[str, str]) -> str:
        auth = quote(self.user, safe="") + (f":{password}" if password is not None else "")
        query = f"?{urlencode(options, safe='/:*')}" if options else ""
        return f"{self.engine}://{auth}@{self.host_list()}/{quote(self.database, safe='')}{query}"

    def redacted(self) -> str:
        """The URL with the password (and secret options) shown as ***, for logs, metrics and messages."""
        options = {key: (MASK if key.lower() in SECRET_OPTIONS else value) for key, value in self.options.items()}
        return self._text(MASK if self.password else None, options)

    def secret_text(self) -> str:
        """The whole URL, password and options included, quoted so that `parse_url` gives this object back.

        It holds the secret: hand it over only through a child's environment or a 0600 file.
        """
        password = quote(self.password, safe="") if self.password is not None else None
        return self._text(password, self.options)


def parse_url(url: str, *, what: str = "database URL") -> DatabaseUrl:
    """Parse and validate a database URL; ConfigError says what is wrong (password masked) and shows the form."""
    example = "postgresql://user:password@127.0.0.1:5432/dbname or mysql://user:password@127.0.0.1:3306/dbname"
    shown = mask_password(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        # the parser's own message may quote part of the password (an unquoted `/` in it looks like a port)
        raise ConfigError(f"{what} {shown!r} is not a valid URL (bad host or port)",
                          fix=f"use the form {example}; percent-quote special characters of the password "
                              "(`@` as %40, `/` as %2F, `:` as %3A, `%` as %25)") from None
    engine = SCHEMES.get(parts.scheme.lower())
    if engine is None:
        raise ConfigError(
            f"{what} has scheme {parts.scheme!r}, which is not a supported engine",
            fix=f"use postgresql://, mysql:// or mariadb://, e.g. {example}",
        )
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(f"{what} {shown!r} names no database", fix=f"add it as the path, e.g. {example}")
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        userinfo, hostinfo = "", parts.netloc
    username, colon, password = userinfo.partition(":")
    try:
        servers = parse_hosts(hostinfo, DEFAULT_PORTS[engine], what=what, example=example)
    except ConfigError:
        # parse_hosts quotes the bad port text, which may be part of a password with an unquoted `/` or `@`
        raise ConfigError(f"{what} {shown!r} has an invalid port or host",
                          fix=f"use the form {example}; percent-quote special characters of the password "
                              "(`@` as %40, `/` as %2F, `:` as %3A, `%` as %25)") from None
    host, port = servers[0]
    return DatabaseUrl(
        engine=engine,
        host=host,
        port=port,
        user=unquote(username or ("postgres" if engine == "postgresql" else "root")),
        password=unquote(password) if colon else None,
        database=database,
        options=dict(parse_qsl(parts.query)),
        hosts=servers if len(servers) > 1 else (),
    )


def parse_hosts(text: str, default_port: int, *, what: str = "database URL",
                example: str = "host:port[,host:port]") -> tuple[tuple[str, int], ...]:
    """`h1:p1,h2,[::1]:p3` -> ((h1, p1), (h2, default_port), (::1, p3)); an empty text is 127.0.0.1."""
    servers = []
    for item in (text.split(",") if text else [""]):
        host, port_text = item, ""
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif ":" in item:
            host, _, port_text = item.rpartition(":")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise ConfigError(f"{what} has an invalid port {port_text!r} in {item!r}", fix=f"use the form {example}")
        servers.append((unquote(host) or "127.0.0.1", port))
    return tuple(servers)
