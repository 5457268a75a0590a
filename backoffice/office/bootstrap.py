"""Start Django once per process, for the commands and the tests."""

from __future__ import annotations

import os

_done = False


def setup_django() -> None:
    """Point Django at :mod:`backoffice.office.settings` (unless told otherwise) and load the apps."""
    global _done
    if _done:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.office.settings")
    import django

    django.setup()
    _done = True
