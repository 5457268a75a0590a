"""The web process's one :class:`~backoffice.catalog.office.Office` (store, signed audit log, clock).

Opened at the first request from the settings and kept for the life of the worker; every thread of the
worker shares it (the audit log serialises its writers with a file lock). Tests put their own in, with an
injected clock, through :func:`using`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

_lock = threading.Lock()
_office = None


def office():
    global _office
    with _lock:
        if _office is None:
            from django.conf import settings

            from ..catalog.office import open_office

            _office = open_office(settings.BODYCAM_STORE_DIR, settings.BODYCAM_OFFICE_KEY,
                                  settings.BODYCAM_AUDIT_LOG)
        return _office


def now():
    """The office's clock (injected in tests): every time the web app compares comes from here."""
    return office().now()


@contextmanager
def using(replacement):
    """Serve with ``replacement`` for the duration (tests); the previous one is put back after."""
    global _office
    with _lock:
        previous, _office = _office, replacement
    try:
        yield replacement
    finally:
        with _lock:
            _office = previous
