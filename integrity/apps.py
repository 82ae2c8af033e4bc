from django.apps import AppConfig


class IntegrityConfig(AppConfig):
    name = "integrity"
    verbose_name = "Tamper evidence"

    def ready(self) -> None:
        from audit.roles import APPEND_ONLY_TABLES

        from . import checks  # noqa: F401  (registers the signing key's check)
        from .models import Seal

        # The app's role may add seals and read them, never rewrite them.
        APPEND_ONLY_TABLES.add(Seal._meta.db_table)
