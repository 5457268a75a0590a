"""``DATABASE_URL`` -> a Django ``DATABASES`` entry (SQLite by default, PostgreSQL for a city's server).

Parsed here rather than with a package: two schemes, a dozen lines, and a clear error for anything else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from base.errors import BodycamError


class DatabaseUrlError(BodycamError):
    """DATABASE_URL names a database this program cannot use."""


def database_from_url(url: str | None, default_sqlite: Path) -> dict:
    """``sqlite:///abs/path``, ``postgres[ql]://user:password@host:port/name?sslmode=...``; None: ``default_sqlite``."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path.startswith("/") or parts.netloc:
            raise DatabaseUrlError("DATABASE_URL: a SQLite URL must name an absolute file, e.g. "
                                   "sqlite:////var/lib/bodycam-office/catalog.sqlite3")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in ("postgres", "postgresql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise DatabaseUrlError("DATABASE_URL: a PostgreSQL URL must name the database, "
                                   "e.g. postgresql://office@db.example/bodycam")
        try:
            port = parts.port
        except ValueError:
            raise DatabaseUrlError("DATABASE_URL: the port is not a number") from None
        return {"ENGINE": "django.db.backends.postgresql", "NAME": name,
                "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
                "HOST": unquote(parts.hostname or ""), "PORT": str(port or ""),
                "OPTIONS": dict(parse_qsl(parts.query))}
    raise DatabaseUrlError(f"DATABASE_URL: scheme {parts.scheme!r} is not supported (use sqlite:// or postgresql://)")
