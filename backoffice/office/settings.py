"""Django settings, all from the environment (no settings file to edit on the server).

* ``BODYCAM_OFFICE_DATA``: the data directory (default ``/var/lib/bodycam-office``): ``catalog.sqlite3``,
  ``audit/office-audit.jsonl``, ``keys/office.key``.
* ``DATABASE_URL``: PostgreSQL for a city's server; unset means SQLite in the data directory.
* ``BODYCAM_OFFICE_STORE``: the receiver's evidence store (default ``<data>/store``).
* ``BODYCAM_OFFICE_KEY``: the office audit signing key (default ``<data>/keys/office.key``).
* ``BODYCAM_CUSTODIAN_SOCKET``: the key custodian's socket (default ``/run/bodycam-custodian/custodian.sock``).
* ``BODYCAM_OFFICE_DEVICES``: the enrolled ``device.pub`` files (default ``/etc/bodycam/devices``).
* ``BODYCAM_RECEIPT_PUB``: the receivers' ``receipt.pub``, put into court packages (default
  ``/etc/bodycam/receipt.pub``; left out when missing).
* ``BODYCAM_OFFICE_SECRET_KEY`` (or ``BODYCAM_OFFICE_SECRET_KEY_FILE``, e.g. a systemd credential): Django's
  secret, which signs the review app's sessions (the commands do not use it).

The review web app (:mod:`backoffice.web`, docs/REVIEW.md) reads:

* ``BODYCAM_REVIEW_HOSTS``: the host names it answers to, comma-separated (default ``localhost,127.0.0.1``).
* ``BODYCAM_REVIEW_BEHIND_TLS=1``: it runs behind a reverse proxy that ends TLS: cookies are sent over HTTPS
  only, the proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are trusted, HSTS is on.
* ``BODYCAM_REVIEW_IDLE_MINUTES`` (30) and ``BODYCAM_REVIEW_SESSION_HOURS`` (10): a session ends after this much
  idleness, and after this long in any case.
* ``BODYCAM_REVIEW_LOCKOUT_FAILURES`` (5) within ``BODYCAM_REVIEW_LOCKOUT_MINUTES`` (15): a user name is locked
  for that many minutes.
* ``BODYCAM_REVIEW_TIME_ZONE`` (``Europe/Berlin``): the time zone the pages show (the database keeps UTC).
* ``BODYCAM_REVIEW_QUIET_HOURS`` (72): the dashboard names devices that sent no recording for this long.

DEBUG is always off: this program holds personal data.
"""

import os
from pathlib import Path

from .dburl import database_from_url
from .envvalues import env_flag, env_int, env_list, env_secret, env_zone

DATA_DIR = Path(os.environ.get("BODYCAM_OFFICE_DATA", "/var/lib/bodycam-office"))
BODYCAM_STORE_DIR = Path(os.environ.get("BODYCAM_OFFICE_STORE", DATA_DIR / "store"))
BODYCAM_OFFICE_KEY = Path(os.environ.get("BODYCAM_OFFICE_KEY", DATA_DIR / "keys" / "office.key"))
BODYCAM_AUDIT_LOG = DATA_DIR / "audit" / "office-audit.jsonl"
BODYCAM_CUSTODIAN_SOCKET = Path(os.environ.get("BODYCAM_CUSTODIAN_SOCKET", "/run/bodycam-custodian/custodian.sock"))
BODYCAM_OFFICE_DEVICES = Path(os.environ.get("BODYCAM_OFFICE_DEVICES", "/etc/bodycam/devices"))
BODYCAM_RECEIPT_PUB = Path(os.environ.get("BODYCAM_RECEIPT_PUB", "/etc/bodycam/receipt.pub"))

# One connection per thread for the life of the process, checked before each use: the receiver records every
# segment, and a new PostgreSQL connection for each (Django's default) cost ~22 ms of the ~100 ms a 12.5 MB
# segment takes (docs/BENCHMARKS.md, "Catalog at a large city's scale").
DATABASES = {"default": {**database_from_url(os.environ.get("DATABASE_URL"), DATA_DIR / "catalog.sqlite3"),
                         "CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True}}
SECRET_KEY = env_secret("BODYCAM_OFFICE_SECRET_KEY", "BODYCAM_OFFICE_SECRET_KEY_FILE")
DEBUG = False
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "django.contrib.messages", "backoffice.catalog", "backoffice.web"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None  # base.cli configures logging for the whole command

# --- The review web app (backoffice.web) ---------------------------------------------------------------
ROOT_URLCONF = "backoffice.web.urls"
WSGI_APPLICATION = "backoffice.web.wsgi.application"
ALLOWED_HOSTS = env_list("BODYCAM_REVIEW_HOSTS", ["localhost", "127.0.0.1"])
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "backoffice.web.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "backoffice.web.middleware.GermanUnlessChosenMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "backoffice.web.middleware.SessionTimeoutMiddleware",
    "backoffice.web.middleware.DisplayTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.template.context_processors.i18n",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "backoffice.web.context.review",
    ]},
}]
# Argon2 first (Django's recommendation); the others only read hashes made before.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher",
                    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
                    "django.contrib.auth.hashers.ScryptPasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_FAILURE_VIEW = "backoffice.web.views.errors.csrf_failure"

REVIEW_IDLE_SECONDS = 60 * env_int("BODYCAM_REVIEW_IDLE_MINUTES", 30, low=1, high=24 * 60)
REVIEW_SESSION_SECONDS = 3600 * env_int("BODYCAM_REVIEW_SESSION_HOURS", 10, low=1, high=24)
REVIEW_LOCKOUT_FAILURES = env_int("BODYCAM_REVIEW_LOCKOUT_FAILURES", 5, low=1, high=100)
REVIEW_LOCKOUT_SECONDS = 60 * env_int("BODYCAM_REVIEW_LOCKOUT_MINUTES", 15, low=1, high=24 * 60)
REVIEW_TIME_ZONE = env_zone("BODYCAM_REVIEW_TIME_ZONE", "Europe/Berlin")
REVIEW_QUIET_SECONDS = 3600 * env_int("BODYCAM_REVIEW_QUIET_HOURS", 72, low=1, high=24 * 365)
REVIEW_BEHIND_TLS = env_flag("BODYCAM_REVIEW_BEHIND_TLS")

SESSION_COOKIE_AGE = REVIEW_SESSION_SECONDS  # the session middleware ends it earlier when idle
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = REVIEW_BEHIND_TLS
if REVIEW_BEHIND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
# Deliberate, for `check --deploy`: the proxy redirects HTTP to HTTPS (the app's own port is loopback only),
# and HSTS for the city's other subdomains or the browsers' preload list is the city's decision, not ours.
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W005", "security.W021"]
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

USE_I18N = True
LANGUAGE_CODE = "de"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]  # translations: backoffice/web/locale
