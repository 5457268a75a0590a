"""The catalog app; its roles (Django groups) are created after every migrate, so a fresh database has them."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "backoffice.catalog"
    label = "catalog"
    verbose_name = "Evidence catalog"

    def ready(self):
        from .roles import ensure_roles

        post_migrate.connect(lambda **kwargs: ensure_roles(), sender=self, weak=False,
                             dispatch_uid="bodycam-catalog-roles")
