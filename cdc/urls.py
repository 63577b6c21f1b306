"""Database URLs: `postgresql://user:pass@host:port/db?opt=v` and `mysql://user:pass@host:port/db?ssl_ca=...`.

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

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted()!r})"

    __str__ = __repr__

    def _text(self, password: str | None, options: dict[str, str]) -> str:
        auth = quote(self.user, safe="") + (f":{password}" if password is not None else "")
        query = f"?{urlencode(options, safe='/:*')}" if options else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.engine}://{auth}@{host}:{self.port}/{quote(self.database, safe='')}{query}"

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
        port = parts.port
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
    return DatabaseUrl(
        engine=engine,
        host=parts.hostname or "127.0.0.1",
        port=port or DEFAULT_PORTS[engine],
        user=unquote(parts.username or ("postgres" if engine == "postgresql" else "root")),
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
        options=dict(parse_qsl(parts.query)),
    )
