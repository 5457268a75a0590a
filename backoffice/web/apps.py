"""The review app; it stamps each new session with its start, which the session timeout reads."""

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in


class WebConfig(AppConfig):
    name = "backoffice.web"
    label = "web"
    verbose_name = "Review (Sichtung)"

    def ready(self):
        from .middleware import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="bodycam-web-stamp-session")
