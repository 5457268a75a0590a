"""The review app as a WSGI application, for gunicorn (``bodycam-office web``, systemd/bodycam-review.service)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.office.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
