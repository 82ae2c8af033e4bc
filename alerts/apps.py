from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from audit.services import after_events_commit

        from . import receivers

        after_events_commit(receivers.queue_evaluation)
