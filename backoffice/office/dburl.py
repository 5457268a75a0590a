"""``DATABASE_URL`` -> a Django ``DATABASES`` entry (SQLite by default, PostgreSQL for a city's server).

Parsed here rather than with a package: two schemes, a dozen lines, and a clear error for anything else.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from base.errors import BodycamError


class DatabaseUrlError(BodycamError):
    """DATABASE_URL names a database this program cannot use."""


#: SQLite as the catalog uses it: write-ahead log (readers never wait for the writer; a commit is one
#: append and one fsync instead of a rollback journal's several), every commit still synced
#: (``synchronous=FULL``: a hold or tombstone that was confirmed survives a power cut), and a transaction
#: takes the write lock when it begins, so the receiver, the retention timer and the commands queue up for
#: it (``busy_timeout``) instead of failing when one of them wrote in between. docs/BACKOFFICE.md,
#: "SQLite or PostgreSQL".
SQLITE_OPTIONS = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
                  "transaction_mode": "IMMEDIATE"}


#: The oldest SQLite the catalog runs on: 3.35 has INSERT ... RETURNING, which the receiver's statements use
#: (backoffice/catalog/segment_rows.py); Debian 12 ships 3.40.
SQLITE_NEEDED = (3, 35)


def _sqlite(path: str) -> dict:
    library = sqlite3.sqlite_version_info
    if library < SQLITE_NEEDED:
        raise DatabaseUrlError(f"the catalog needs SQLite {'.'.join(map(str, SQLITE_NEEDED))} or newer; this Python "
                               f"has {'.'.join(map(str, library))} (or use PostgreSQL: DATABASE_URL=postgresql://...)")
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": dict(SQLITE_OPTIONS)}


def database_from_url(url: str | None, default_sqlite: Path) -> dict:
    """``sqlite:///abs/path``, ``postgres[ql]://user:password@host:port/name?sslmode=...``; None: ``default_sqlite``."""
    if not url:
        return _sqlite(str(default_sqlite))
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path.startswith("/") or parts.netloc:
            raise DatabaseUrlError("DATABASE_URL: a SQLite URL must name an absolute file, e.g. "
                                   "sqlite:////var/lib/bodycam-office/catalog.sqlite3")
        return _sqlite(path)
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
