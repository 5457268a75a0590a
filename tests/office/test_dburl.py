"""DATABASE_URL parsing, and which database this run uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from backoffice.office.dburl import DatabaseUrlError, database_from_url


def test_unset_means_sqlite_in_the_data_dir():
    assert database_from_url(None, Path("/d/catalog.sqlite3")) == {"ENGINE": "django.db.backends.sqlite3",
                                                                   "NAME": "/d/catalog.sqlite3"}


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
