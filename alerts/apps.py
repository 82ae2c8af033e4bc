from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from audit.services import after_events_commit

        from . import receivers

        # Every committed batch of events is queued for rule evaluation (audit's one registry of
        # reactions to events; see audit.services._after_commit_hooks).
        after_events_commit(receivers.queue_evaluation)
