"""Database URLs: `postgresql://user:pass@host:port/db?opt=v` and `mysql://user:pass@host:port/db`."""

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

    def redacted(self) -> str:
        """The URL with the password hidden, for logs and error messages."""
        auth = self.user + (":***" if self.password else "")
        return f"{self.engine}://{auth}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str, *, what: str = "database URL") -> DatabaseUrl:
    """Parse and validate a database URL; ConfigError says what is wrong and shows the expected form."""
    example = "postgresql://user:password@127.0.0.1:5432/dbname or mysql://user:password@127.0.0.1:3306/dbname"
    try:
        parts = urlsplit(url)
        port = parts.port
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
    return DatabaseUrl(
        engine=engine,
        host=parts.hostname or "127.0.0.1",
        port=port or DEFAULT_PORTS[engine],
        user=unquote(parts.username or ("postgres" if engine == "postgresql" else "root")),
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
        options=dict(parse_qsl(parts.query)),
    )
