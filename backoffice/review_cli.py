"""``bodycam-office web``: the review app (:mod:`backoffice.web`) under gunicorn, for the city's reverse proxy.

It checks what it needs before it listens (a secret for the sessions, a migrated catalog, the office key
that signs the audit log), so a missing piece is one sentence at start instead of an error page later.
systemd runs it as ``bodycam-review.service``; by hand it serves 127.0.0.1 for a local look.
"""

from __future__ import annotations

import logging

from base.errors import BodycamError

logger = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1:8470"
SECRET_HINT = ("set BODYCAM_OFFICE_SECRET_KEY_FILE to a file holding a random secret, e.g. "
               "(umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' > /etc/bodycam/review-secret)")


def register(subparsers) -> None:
    p = subparsers.add_parser("web", help="serve the review web app (gunicorn) for the reverse proxy")
    p.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT|unix:PATH",
                   help=f"where to listen (default {DEFAULT_BIND}; the proxy ends TLS in front of it)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    p.set_defaults(func=cmd_web)


def cmd_web(args) -> int:
    if not (1 <= args.workers <= 64 and 1 <= args.threads <= 256):
        raise BodycamError("--workers must be 1 to 64 and --threads 1 to 256")
    check_ready()
    from gunicorn.app.base import BaseApplication

    class ReviewServer(BaseApplication):
        def load_config(self):
            for key, value in {"bind": [args.bind], "workers": args.workers, "threads": args.threads,
                               "worker_class": "gthread", "proc_name": "bodycam-review", "accesslog": None,
                               "errorlog": "-", "timeout": 60, "graceful_timeout": 20}.items():
                self.cfg.set(key, value)
            # gunicorn >= 25.1 opens a management socket (gunicornc) in $XDG_RUNTIME_DIR or $HOME: nobody
            # manages the app through it, and the unit's user has neither (read-only /nonexistent).
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            from .web.wsgi import application

            return application

    logger.info("review app listening on %s (%d workers x %d threads)", args.bind, args.workers, args.threads)
    ReviewServer().run()  # returns only through SystemExit, when gunicorn stops
    return 0


def check_ready() -> None:
    """Refuse to start without a session secret, a migrated catalog or a usable office key."""
    from .office.bootstrap import setup_django

    setup_django()
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    from .catalog.office import open_office

    try:
        secret = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django's word for an empty one
        secret = ""
    if not secret:
        raise BodycamError(f"the review app needs a secret to sign its sessions: {SECRET_HINT}")
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        raise BodycamError(f"the catalog database cannot be read ({exc}); check DATABASE_URL") from None
    finally:
        connection.close()  # gunicorn's workers open their own
    if pending:
        raise BodycamError(f"the catalog database needs {len(pending)} migration(s): run 'bodycam-office migrate' first")
    open_office(settings.BODYCAM_STORE_DIR, settings.BODYCAM_OFFICE_KEY, settings.BODYCAM_AUDIT_LOG).close()
