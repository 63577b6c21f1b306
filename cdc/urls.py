"""Database URLs: `postgresql://user:pass@host:port/db?opt=v` and `mysql://user:pass@host:port/db`.

A URL may list several servers, `postgresql://u@h1:5432,h2:5433/db` (libpq's multi-host form; add
`?target_session_attrs=read-write` to land on the primary) or `mysql://u@h1:3306,h2:3307/db`: the
primary and the replicas that may replace it. `host`/`port` are the first; `hosts` holds them all, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from cdc.errors import ConfigError

SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


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

    def redacted(self) -> str:
        """The URL with the password hidden, for logs and error messages."""
        auth = self.user + (":***" if self.password else "")
        return f"{self.engine}://{auth}@{self.host_list()}/{self.database}"


def parse_url(url: str, *, what: str = "database URL") -> DatabaseUrl:
    """Parse and validate a database URL; ConfigError says what is wrong and shows the expected form."""
    example = "postgresql://user:password@127.0.0.1:5432/dbname or mysql://user:password@127.0.0.1:3306/dbname"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"{what} {url!r} is not a valid URL ({exc})", fix=f"use the form {example}") from exc
    engine = SCHEMES.get(parts.scheme.lower())
    if engine is None:
        raise ConfigError(
            f"{what} has scheme {parts.scheme!r}, which is not a supported engine",
            fix=f"use postgresql://, mysql:// or mariadb://, e.g. {example}",
        )
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(f"{what} {url!r} names no database", fix=f"add it as the path, e.g. {example}")
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at:
        userinfo, hostinfo = "", parts.netloc
    username, colon, password = userinfo.partition(":")
    servers = parse_hosts(hostinfo, DEFAULT_PORTS[engine], what=what, example=example)
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
