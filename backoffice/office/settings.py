"""Django settings, all from the environment (no settings file to edit on the server).

* ``BODYCAM_OFFICE_DATA``: the data directory (default ``/var/lib/bodycam-office``): ``catalog.sqlite3``,
  ``audit/office-audit.jsonl``, ``keys/office.key``.
* ``DATABASE_URL``: PostgreSQL for a city's server; unset means SQLite in the data directory.
* ``BODYCAM_OFFICE_STORE``: the receiver's evidence store (default ``<data>/store``).
* ``BODYCAM_OFFICE_KEY``: the office audit signing key (default ``<data>/keys/office.key``).
* ``BODYCAM_OFFICE_SECRET_KEY``: Django's secret, needed once the web app arrives (the commands do not use it).

DEBUG is always off: this program holds personal data.
"""

import os
from pathlib import Path

from .dburl import database_from_url

DATA_DIR = Path(os.environ.get("BODYCAM_OFFICE_DATA", "/var/lib/bodycam-office"))
BODYCAM_STORE_DIR = Path(os.environ.get("BODYCAM_OFFICE_STORE", DATA_DIR / "store"))
BODYCAM_OFFICE_KEY = Path(os.environ.get("BODYCAM_OFFICE_KEY", DATA_DIR / "keys" / "office.key"))
BODYCAM_AUDIT_LOG = DATA_DIR / "audit" / "office-audit.jsonl"

# One connection per thread for the life of the process, checked before each use: the receiver records every
# segment, and a new PostgreSQL connection for each (Django's default) cost ~22 ms of the ~100 ms a 12.5 MB
# segment takes (docs/BENCHMARKS.md, "Catalog at a large city's scale").
DATABASES = {"default": {**database_from_url(os.environ.get("DATABASE_URL"), DATA_DIR / "catalog.sqlite3"),
                         "CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True}}
SECRET_KEY = os.environ.get("BODYCAM_OFFICE_SECRET_KEY", "")
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "backoffice.catalog"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None  # base.cli configures logging for the whole command
