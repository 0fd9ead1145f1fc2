"""Database URLs: parsing, validation, driver choice and redaction.

Our data uses psycopg 3; Dagster's storage uses psycopg2 (dagster-postgres depends on it). With
SQLAlchemy 2.1 a bare `postgresql://` selects psycopg 3, so every URL we hand to SQLAlchemy names
its driver explicitly (dagster issue #33958).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from enrichment_pipeline.errors import ConfigurationError

_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")


@dataclass(frozen=True)
class DatabaseUrl:
    user: str
    password: str | None
    host: str
    port: int
    database: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str) -> "DatabaseUrl":
        """Parse a PostgreSQL URL, with a one-line error that never repeats the password."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 5432
        except ValueError as exc:
            raise ConfigurationError(f"DATABASE_URL is malformed ({_scrub(str(exc), url)}); "
                                     "expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None
        if parts.scheme not in _SCHEMES:
            raise ConfigurationError(
                f"DATABASE_URL has scheme {parts.scheme or '(none)'!r}; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname:
            raise ConfigurationError("DATABASE_URL names no host; expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        if not database:
            raise ConfigurationError(f"DATABASE_URL for host {parts.hostname} names no database; add /DATABASE")
        return cls(
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            database=database,
            params=tuple(parse_qsl(parts.query)),
        )

    def with_database(self, database: str) -> "DatabaseUrl":
        return replace(self, database=database)

    def where(self) -> str:
        """Host, port and database: what an error message may name."""
        return f"{self.host}:{self.port}/{self.database}"

    def render(self, driver: str | None = None, *, show_password: bool = False) -> str:
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + (quote(self.password, safe="") if show_password else "***")
        query = f"?{urlencode(self.params)}" if self.params else ""
        return f"{scheme}://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}{query}"

    def redacted(self) -> str:
        return self.render()

    def conninfo_kwargs(self) -> dict[str, str | int]:
        kwargs: dict[str, str | int] = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.database}
        if self.password is not None:
            kwargs["password"] = self.password
        kwargs.update(dict(self.params))
        return kwargs

    def __repr__(self) -> str:  # never leak the password through logs or tracebacks
        return f"DatabaseUrl({self.redacted()})"

    __str__ = __repr__


def _scrub(text: str, url: str) -> str:
    """Remove anything that looks like the password of `url` from `text`."""
    match = re.match(r"^[^:]+://[^:@/]*:([^@/]*)@", url)
    if match and match.group(1):
        text = text.replace(match.group(1), "***").replace(unquote(match.group(1)), "***")
    return text


def scrub_secrets(text: str, *secrets: str | None) -> str:
    """Replace every given secret (and its URL-quoted form) in `text` with ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return re.sub(r"(://[^:@/\s]*:)[^@/\s]+@", r"\1***@", text)
