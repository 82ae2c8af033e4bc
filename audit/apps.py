from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from .roles import grant_after_migrate

        post_migrate.connect(grant_after_migrate, sender=self, dispatch_uid="audit-roles-grant")
