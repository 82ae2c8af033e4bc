from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self) -> None:
        from .evidence import register_sections

        # The report's own sections; other apps (the review schedule) register theirs too.
        register_sections()
