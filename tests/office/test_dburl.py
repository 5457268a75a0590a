"""DATABASE_URL parsing, and which database this run uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from backoffice.office.dburl import DatabaseUrlError, database_from_url


def test_unset_means_sqlite_in_the_data_dir():
    db = database_from_url(None, Path("/d/catalog.sqlite3"))
    assert (db["ENGINE"], db["NAME"]) == ("django.db.backends.sqlite3", "/d/catalog.sqlite3")


def test_sqlite_runs_with_a_write_ahead_log_synced_at_every_commit(django_db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's settings")
    with connection.cursor() as cur:
        modes = [cur.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous")]
    assert modes == ["wal", 2]  # 2: FULL
    assert connection.transaction_mode == "IMMEDIATE"


def test_a_sqlite_without_insert_returning_is_refused_before_anything_runs(monkeypatch):
    """Django 5.2 still takes SQLite 3.31; the receiver's statements need 3.35 (Ubuntu 20.04 has 3.31)."""
    import sqlite3

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(DatabaseUrlError, match=r"needs SQLite 3\.35 or newer; this Python has 3\.31\.1"):
        database_from_url(None, Path("/d/catalog.sqlite3"))
    with pytest.raises(DatabaseUrlError, match="3.35"):
        database_from_url("sqlite:////d/catalog.sqlite3", Path("/x"))
    assert database_from_url("postgresql://h/bodycam", Path("/x"))["ENGINE"] == "django.db.backends.postgresql"


def test_postgresql_url_with_password_port_and_options():
    db = database_from_url("postgresql://office:s%40cret@db.example:5433/bodycam?sslmode=require", Path("/x"))
    assert db == {"ENGINE": "django.db.backends.postgresql", "NAME": "bodycam", "USER": "office",
                  "PASSWORD": "s@cret", "HOST": "db.example", "PORT": "5433", "OPTIONS": {"sslmode": "require"}}


@pytest.mark.parametrize("url, words", [
    ("mysql://x/y", "not supported"), ("postgres://host/", "name the database"),
    ("sqlite://relative.db", "absolute"), ("postgres://h:port/db", "port"),
])
def test_bad_urls_are_refused_with_a_clear_sentence(url, words):
    with pytest.raises(DatabaseUrlError, match=words):
        database_from_url(url, Path("/x"))


def test_report_the_backend_in_use(django_db, capsys):
    from django.db import connection

    with capsys.disabled():
        print(f"\ncatalog tests ran on {connection.vendor}")
