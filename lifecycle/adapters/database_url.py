"""``LIFECYCLE_DATABASE_URL`` and ``LIFECYCLE_VIEWS_URL``: read in one place, checked once.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``, and
``postgresql://user:password@host:port/dbname``. Parameters: ``lock_timeout`` (seconds a write
waits for another writer's lock); on PostgreSQL also ``schema`` and ``connect_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from lifecycle.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///.lifecycle/lifecycle.db"

_SQLITE_PARAMETERS = {"lock_timeout"}
_POSTGRES_PARAMETERS = {"schema", "connect_timeout", "lock_timeout"}


@dataclass(frozen=True, kw_only=True)
class DatabaseUrl:
    """A database URL taken apart (``file`` None on SQLite: in memory)."""

    url: str
    dialect: Literal["sqlite", "postgres"]
    file: Path | None = None
    lock_timeout: int | None = None
    """Seconds; None: the server's own (PostgreSQL). SQLite's default is 30."""
    dbname: str = ""
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    schema: str = "public"
    connect_timeout: int = 5

    @property
    def conninfo(self) -> str:
        """The PostgreSQL URL without our parameters, for libpq."""
        return urlsplit(self.url)._replace(query="").geturl()

    def create_parent(self) -> None:
        """Make the SQLite file's folder, so that the file can be created."""
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)


def parse(url: str) -> DatabaseUrl:
    """Take ``url`` apart, or raise ``ConfigurationError`` saying what to write instead."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        params = _parameters(url, parts.query, _SQLITE_PARAMETERS)
        return DatabaseUrl(
            url=url,
            dialect="sqlite",
            file=sqlite_file(url),
            lock_timeout=int(params.get("lock_timeout", 30)),
        )
    if parts.scheme in {"postgresql", "postgres"}:
        params = _parameters(url, parts.query, _POSTGRES_PARAMETERS)
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigurationError(f"bad port in database URL {url!r}") from None
        return DatabaseUrl(
            url=url,
            dialect="postgres",
            lock_timeout=int(params["lock_timeout"]) if "lock_timeout" in params else None,
            dbname=unquote(parts.path.removeprefix("/")) or "postgres",
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            schema=params.get("schema", "public"),
            connect_timeout=int(params.get("connect_timeout", 5)),
        )
    raise ConfigurationError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
    )


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///PATH`` URL names (None for another database or ``:memory:``)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        return None
    path = unquote(parts.path.removeprefix("/")) if parts.netloc == "" else ""
    if not path:
        raise ConfigurationError(
            f"cannot read {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return None if path == ":memory:" else Path(path)


def _parameters(url: str, query: str, allowed: set[str]) -> dict[str, str]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigurationError(
            f"unsupported parameter(s) {', '.join(unknown)} in database URL {url!r}: "
            f"use {', '.join(sorted(allowed))}"
        )
    for name, value in params.items():
        if name != "schema" and not value.isdigit():
            raise ConfigurationError(f"database URL parameter {name} must be whole seconds")
    return params
